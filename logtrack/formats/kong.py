"""`kong`: Kong Gateway's log-plugin serializer (file-log, http-log, tcp-log …), one object a line.

`started_at` is epoch milliseconds; `request.uri` the raw target and `request.url` the absolute
URL; `latencies.request` / `latencies.proxy` are milliseconds (`proxy` is the upstream's time,
-1 when there was none); `response.size` may be a string or a number; request and response
headers become `http_*` / `sent_http_*` fields; the service and route names are kept.
"""

from __future__ import annotations

from .base import register
from .jsonmap import KONG, JsonFormat

register(JsonFormat(
    "kong",
    "Kong log plugins (file-log/http-log): started_at, client_ip, request{method,uri,url,headers}, response{status,size}",
    KONG,
))
