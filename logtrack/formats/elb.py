"""`elb`: AWS Classic Load Balancer access logs (DESIGN §2, §3).

`time elb client:port backend:port request_processing_time backend_processing_time
response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
"request" "user_agent" ssl_cipher ssl_protocol` — lines written before 2014 end at
`"request"`. Columns follow `alb`: `ts` is `time`, `status` is `elb_status_code`,
`request_time_ms` the sum of the three processing times (null when one is `-1`: no backend
answered), `upstream_time_ms` the backend processing time. TCP/SSL listeners log `"- - - "` as
the request and `-` statuses: those lines are kept with nulls and the raw request in
`fields.request` (DESIGN §2).
"""

from __future__ import annotations

import pyarrow as pa

from .base import register
from .delimited import Delimited, DelimitedFormat, load_balancer_columns, load_balancer_variables

SPEC = (
    "time elb client backend request_processing_time backend_processing_time"
    " response_processing_time elb_status_code backend_status_code received_bytes sent_bytes"
    ' "request" "user_agent" ssl_cipher ssl_protocol'
)
_FIELDS = ("elb", "backend", "backend_status_code", "received_bytes", "ssl_cipher", "ssl_protocol")
VARIABLES = load_balancer_variables(_FIELDS)


def derive(raw: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """ts, client_ip, the request line and the durations (see the module docstring)."""
    return load_balancer_columns(raw, upstream="backend")


FORMAT = register(DelimitedFormat(
    "elb",
    "AWS Classic Load Balancer access log (time elb client:port backend:port … \"request\" …)",
    Delimited(SPEC, required="request"),
    VARIABLES,
    derive,
))
