"""`traefik_json`: Traefik's JSON access log (`accessLog.format: json`), v1 and v2 field names.

`Duration`/`OriginDuration` are nanoseconds; `RequestPath` carries the query string; `StartUTC`
(else `StartLocal`, else the logger's `time`) is the timestamp; kept headers arrive as
`request_<Name>` / `downstream_<Name>` / `origin_<Name>` keys and become `http_*`,
`sent_http_*` and `upstream_http_*` fields; `DownstreamStatus` may be a number or a string.
"""

from __future__ import annotations

from .base import register
from .jsonmap import TRAEFIK, JsonFormat

register(JsonFormat(
    "traefik_json",
    "Traefik JSON access log (v1/v2): StartUTC, ClientHost, RequestMethod/Host/Path/Protocol, DownstreamStatus",
    TRAEFIK,
))
