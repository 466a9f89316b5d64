"""Traefik's CLF access log: combined + request count, router/frontend name, backend URL, duration.

Traefik v1/v2 write `"$router_name" "$backend_url" ${duration}ms` after the combined fields; a
missing referer is sometimes a bare `-` instead of `"-"`, and a request that never got a
response has `- -` for status and size (kept as a row with nulls, DESIGN §2).
"""

from __future__ import annotations

from .base import register
from .template import Template, TemplateFormat

_HEAD = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
_TAIL = ' $request_count "$router_name" "$backend_url" ${request_time_msec}ms'
_DURATION = {"request_time_msec": r"\d+(?:\.\d+)?"}

register(TemplateFormat(
    "traefik",
    'Traefik CLF: combined + request count, "router" "backend URL" and duration in ms',
    [
        Template("nginx:" + _HEAD + ' "$http_referer" "$http_user_agent"' + _TAIL, patterns=_DURATION),
        Template("nginx:" + _HEAD + ' $http_referer "$http_user_agent"' + _TAIL, patterns=_DURATION),
    ],
))
