"""Envoy's default text access log, and Istio's (Envoy with Istio's TEXT format).

Envoy default: `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"`, sometimes after `ACCESS `
(Ambassador). TCP proxy lines (`"- - -"`) are kept as rows with nulls; status 0 (Envoy: no
response was sent) is null.

The default format has no downstream address, so `client_ip` is the first (left-most)
X-Forwarded-For address when there is one; the whole header stays in
`fields.http_x_forwarded_for`. Istio's format logs the downstream remote address, which is the
client (`[ipv6]:port` → address without brackets or port).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from ..schema import REQUESTS
from . import convert as cv
from .base import Parsed, register
from .template import Template, TemplateFormat

_REQ = '[$time_iso8601] "$request" $status $response_flags'
_TIMES = "$bytes_received $bytes_sent $request_time_msec $upstream_time_msec"
_HEADERS = '"$http_x_forwarded_for" "$http_user_agent" "$request_id" "$http_host" "$upstream_host"'
_ENVOY = f"{_REQ} {_TIMES} {_HEADERS}"
_NUMBERS = {"request_time_msec": r"-|\d+", "upstream_time_msec": r"-|\d+"}


class EnvoyFormat(TemplateFormat):
    """Envoy layouts: status 0 ("no response was sent", Envoy docs) is null, and without a
    downstream address in the layout, `client_ip` is the first X-Forwarded-For address."""

    def __init__(self, name: str, description: str, templates: list[Template], client_from_xff: bool) -> None:
        super().__init__(name, description, templates)
        self.client_from_xff = client_from_xff

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse with the templates, then apply the two Envoy conventions above."""
        parsed = super().parse(lines, state)
        table = parsed.requests
        if table.num_rows == 0:
            return parsed
        status = table.column("status")
        table = table.set_column(table.schema.get_field_index("status"), REQUESTS.field("status"),
                                 pc.if_else(pc.equal(status, 0), pa.scalar(None, status.type), status))
        if self.client_from_xff:
            xff = pc.map_lookup(table.column("fields"), "http_x_forwarded_for", "first")
            first = pc.utf8_trim_whitespace(pc.list_element(pc.split_pattern(xff, ","), 0))
            client = cv.client_ip(first).cast(REQUESTS.field("client_ip").type)
            table = table.set_column(table.schema.get_field_index("client_ip"), REQUESTS.field("client_ip"), client)
        return Parsed(table, parsed.rejects)


register(EnvoyFormat(
    "envoy",
    "Envoy default access log: [start] \"request\" code flags rx tx duration upstream-time \"XFF\" \"UA\" \"id\" \"authority\" \"upstream\"",
    [
        Template("nginx:" + _ENVOY, patterns=_NUMBERS),
        Template("nginx:ACCESS " + _ENVOY, patterns=_NUMBERS),  # Ambassador's prefix
    ],
    client_from_xff=True,
))

# Istio ≥ 1.9 TEXT format: response code details, termination details and transport failure
# reason after the flags; upstream cluster and addresses, SNI and route name at the end.
_ISTIO_TAIL = ("$upstream_cluster $upstream_local_address $downstream_local_address"
               " $remote_addr $requested_server_name $route_name")

register(EnvoyFormat(
    "istio",
    "Istio (Envoy) TEXT access log: Envoy's default fields + response details, upstream cluster, local/remote addresses",
    [
        Template('nginx:' + _REQ + ' $response_code_details $connection_termination_details'
                 ' "$upstream_transport_failure_reason" ' + _TIMES + " " + _HEADERS + " " + _ISTIO_TAIL,
                 patterns=_NUMBERS),
        # Istio 1.5–1.8: the mixer status instead of the response/termination details.
        Template('nginx:' + _REQ + ' "$mixer_status" "$upstream_transport_failure_reason" '
                 + _TIMES + " " + _HEADERS + " " + _ISTIO_TAIL, patterns=_NUMBERS),
    ],
    client_from_xff=False,
))
