"""`alb`: AWS Application Load Balancer access logs (DESIGN §2, §3).

The documented layout, space-separated with quoted values; ALB appends fields over the years
(`conn_trace_id`, `"classification"`, … after `"error_reason"`), so any number of trailing
fields is accepted and lines of the original 2016 layout (ending at `"trace_id"`) still parse.

Columns: `ts` is the `time` field (when the response was sent, as GoAccess reads it); `host`,
`scheme`, `path`, `query` come from the absolute-form request URL (host without port);
`client_ip` is `client:port` without the port (IPv6 too); `status` is `elb_status_code`;
`request_time_ms` is the sum of the three processing times (request + target + response: the
time the load balancer spent on the request), null when any of them is `-1` (the target could
not be reached or closed the connection); `upstream_time_ms` is `target_processing_time`.
Everything else the log names is kept in `fields` under ALB's own names (`target` is
`target:port`); a request that is not `METHOD URL PROTOCOL` keeps its raw text in
`fields.request`.
"""

from __future__ import annotations

import pyarrow as pa

from .base import register
from .delimited import Delimited, DelimitedFormat, load_balancer_columns, load_balancer_variables

SPEC = (
    "type time elb client target request_processing_time target_processing_time"
    " response_processing_time elb_status_code target_status_code received_bytes sent_bytes"
    ' "request" "user_agent" ssl_cipher ssl_protocol target_group_arn "trace_id" "domain_name"'
    ' "chosen_cert_arn" matched_rule_priority request_creation_time "actions_executed"'
    ' "redirect_url" "error_reason"'
)
_FIELDS = (
    "type", "elb", "target", "target_status_code", "received_bytes", "ssl_cipher", "ssl_protocol",
    "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn", "matched_rule_priority",
    "request_creation_time", "actions_executed", "redirect_url", "error_reason",
)
VARIABLES = load_balancer_variables(_FIELDS)


def derive(raw: dict[str, pa.Array]) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """ts, client_ip, the request line and the durations (see the module docstring)."""
    return load_balancer_columns(raw, upstream="target")


FORMAT = register(DelimitedFormat(
    "alb",
    "AWS Application Load Balancer access log (type time elb client:port … \"request\" …)",
    Delimited(SPEC, required="trace_id"),
    VARIABLES,
    derive,
))
