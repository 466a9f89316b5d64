"""CLF variants: nginx with timings, Kubernetes ingress-nginx, and Matomo's Apache-like layouts.

Every preset is a template list (DESIGN §3): the server's own log-format string, so a user can
compare it with their config. Layouts that `combined`, `common` or `vhost_combined` already read
(Matomo's `ncsa_extended`, `common_complete`, `static_ignores`, `logs_to_tests`) are not repeated.
"""

from __future__ import annotations

from .base import register
from .template import Template, TemplateFormat

_COMBINED = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
# A timing is a number (nginx writes `-` when there was no upstream); keeping it strict stops
# these presets from taking a plain combined line with some other trailing word.
_SECONDS = r"-|\d+(?:\.\d+)?"
_SECONDS_LIST = r"-|\d+(?:\.\d+)?(?:(?:, | : )\d+(?:\.\d+)?)*"
# nginx writes one value per upstream tried (`0.100, 0.049`). Each preset first tries a template
# with single values, which the split plan reads word by word (fast), then one that takes lists
# for the lines the first missed.
_SINGLE = {"request_time": _SECONDS, "upstream_response_time": _SECONDS,
           "upstream_addr": r"\S+", "upstream_status": r"\S+", "upstream_response_length": r"\S+"}
_LISTS = {"request_time": _SECONDS, "upstream_response_time": _SECONDS_LIST}


def _single_then_lists(spec: str, patterns: dict[str, str] | None = None) -> list[Template]:
    return [Template(spec, patterns={**(patterns or {}), **_SINGLE}),
            Template(spec, patterns={**(patterns or {}), **_LISTS})]


register(TemplateFormat(
    "nginx_upstream",
    "Kubernetes ingress-nginx upstreaminfo: combined + request length/time, [upstream names], upstream addr/length/time/status, req id",
    _single_then_lists(
        "nginx:" + _COMBINED + " $request_length $request_time [$proxy_upstream_name]"
        " [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length"
        " $upstream_response_time $upstream_status $req_id",
        # `[]` when there is no alternative upstream: the names may be empty.
        {"proxy_upstream_name": r"\S*", "proxy_alternative_upstream_name": r"\S*"},
    ),
))

register(TemplateFormat(
    "nginx_timed",
    "nginx combined + $request_time [$upstream_response_time] (or rt=… urt=\"…\" key=value timings)",
    [
        *_single_then_lists("nginx:" + _COMBINED + " $request_time $upstream_response_time"),
        Template("nginx:" + _COMBINED + " $request_time", patterns=_SINGLE),
        # The nginx blog's `main_ext`-style layout: rt=… uct="…" uht="…" urt="…".
        Template("nginx:" + _COMBINED + ' rt=$request_time uct="$upstream_connect_time"'
                 ' uht="$upstream_header_time" urt="$upstream_response_time"'),
        # The same timings after the nginx `main` format's "$http_x_forwarded_for".
        *_single_then_lists("nginx:" + _COMBINED + ' "$http_x_forwarded_for" $request_time $upstream_response_time'),
        Template("nginx:" + _COMBINED + ' "$http_x_forwarded_for" $request_time', patterns=_SINGLE),
    ],
))

# Matomo's log importer formats (matomo/ samples). Apache `%v` first: the virtual host.
_VHOST_IP = {"remote_addr": r"[0-9A-Fa-f:.\[\]]+"}

register(TemplateFormat(
    "common_vhost",
    "Apache common with the virtual host first: %v %h %l %u %t \"%r\" %>s %b",
    [Template('apache:%v %h %l %u %t "%r" %>s %b', patterns=_VHOST_IP)],
))

register(TemplateFormat(
    "gandi",
    "Gandi hosting: %v %h %l %u %t (%T s) \"%r\" %>s %b \"Referer\" \"User-Agent\" (seconds taken)",
    [Template('apache:%v %h %l %u %t (%T s) "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
              patterns={"request_time": r"\d+(?:\.\d+)?"})],
))

register(TemplateFormat(
    "ovh",
    "OVH hosting: %h %v %u %t \"%r\" %>s %b \"Referer\" \"User-Agent\" (virtual host second)",
    [Template('apache:%h %v %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
              patterns={"server_name": r"[^\s\[\]]*[A-Za-z][^\s\[\]]*"})],
))

register(TemplateFormat(
    "icecast2",
    "Icecast 2 access log: combined + seconds connected",
    [Template('apache:%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %T')],
))
