"""`gcp_lb`: Google Cloud HTTP(S) Load Balancing request logs (Cloud Logging `LogEntry` JSON).

The request is the entry's `httpRequest` object (the same one Cloud Run and App Engine write):
`requestMethod`, `requestUrl` (absolute: scheme, host, path and query), `status`,
`responseSize` (a string), `userAgent`, `remoteIp` (may carry a port), `referer`, `protocol`,
`latency` (`"0.123s"`); `timestamp` is RFC 3339 with up to nanoseconds. Cache results and the
load balancer's status details go into `fields`.
"""

from __future__ import annotations

from .base import register
from .jsonmap import GCP, JsonFormat

register(JsonFormat(
    "gcp_lb",
    "Google Cloud HTTP(S) load balancer logs: timestamp, httpRequest{requestMethod,requestUrl,status,remoteIp,…}",
    GCP,
))
