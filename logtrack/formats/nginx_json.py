"""`nginx_json`: any JSON-lines access log keyed by nginx variable names (DESIGN §3).

The generic alias-table format: an nginx `log_format … escape=json` layout written by hand
(`{"time_local":"$time_local","remote_addr":"$remote_addr","request":"$request",…}`), with
the names people commonly give values (`time`, `vhost`, `method`) and Matomo's documented keys
(`ip`, `host`, `path`, `status`, `referrer`, `user_agent`, `length`, `generation_time_milli`,
`date`), works without configuration. Keys it does not map (`$cookie_uid`, `$http_x_forwarded_for`,
`$upstream_addr`) go into `fields` under their own names.
"""

from __future__ import annotations

from .base import register
from .jsonmap import GENERIC, JsonFormat

register(JsonFormat(
    "nginx_json",
    "JSON lines keyed by nginx variable names (log_format escape=json) or Matomo's JSON keys",
    GENERIC,
    generic=True,
))
