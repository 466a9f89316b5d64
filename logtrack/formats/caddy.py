"""`caddy`: Caddy's structured access log (`log { format json }`, logger `http.log.access`).

`ts` is float epoch seconds, `duration` float seconds, `size` the response body bytes;
`request.headers` / `resp_headers` hold arrays of values per header (joined with `, ` into
`http_*` / `sent_http_*` fields); `request.tls` appears only on TLS connections (scheme https).
"""

from __future__ import annotations

from .base import register
from .jsonmap import CADDY, JsonFormat

register(JsonFormat(
    "caddy",
    "Caddy JSON access log: ts, request{client_ip,method,host,uri,proto,headers}, status, size, duration",
    CADDY,
))
