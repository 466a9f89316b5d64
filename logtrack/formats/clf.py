"""Common Log Format family: Apache common/combined/vhost and the nginx default layouts."""

from __future__ import annotations

from .base import register
from .template import Template, TemplateFormat

COMMON = 'apache:%h %l %u %t "%r" %>s %b'
COMBINED = 'apache:%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
# Some servers write a missing referer/user agent as a bare `-` instead of `"-"`.
COMBINED_BARE = 'apache:%h %l %u %t "%r" %>s %b %{Referer}i %{User-Agent}i'
IP_LIKE = r"[0-9A-Fa-f:.\[\]]+"

register(TemplateFormat(
    "combined",
    "NCSA combined (Apache/nginx default): %h %l %u %t \"%r\" %>s %b \"Referer\" \"User-Agent\"",
    [Template(COMBINED), Template(COMBINED, allow_trailing=True), Template(COMBINED_BARE)],
))
register(TemplateFormat(
    "common",
    "NCSA common log format (CLF): %h %l %u %t \"%r\" %>s %b",
    [Template(COMMON)],
))
register(TemplateFormat(
    "vhost_combined",
    "Apache vhost_combined: %v:%p %h %l %u %t \"%r\" %>s %O \"Referer\" \"User-Agent\" (also %h %v order)",
    [
        Template('apache:%v %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
                 patterns={"remote_addr": IP_LIKE}),
        Template('nginx:$remote_addr $host $remote_logname $remote_user [$time_local] "$request" $status $bytes_sent "$http_referer" "$http_user_agent"'),
    ],
))
