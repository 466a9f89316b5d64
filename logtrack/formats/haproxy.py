"""HAProxy `option httplog` lines, with or without the syslog header in front.

`client:port [accept_date] frontend backend/server Tq/Tw/Tc/Tr/Tt status bytes
req_cookie resp_cookie termination_state actconn/feconn/beconn/srv_conn/retries
srv_queue/backend_queue {captured request headers} {captured response headers} "request"`.

- `ts` is the accept date (`25/Feb/2019:16:19:48.143`), which has no zone: it is read as UTC
  (run HAProxy with TZ=UTC, or name the layout yourself, if its clock is local).
- `request_time_ms` is Tt (total time; Ta on HAProxy ≥ 1.8), `upstream_time_ms` is Tr (server
  response time); Tq, Tw, Tc and the counters stay in `fields` under HAProxy's names.
- The captured request headers (`{…}`) are kept raw in `fields.captured_request_headers`.
  HAProxy logs them in `capture request header` order, which the log does not name; when the
  capture is a single value that looks like a user agent (`Product/version …`, the usual
  `capture request header User-Agent`), it also becomes `user_agent`. Users with other captures
  can name them with their own layout.
- Connection-level messages (`SSL handshake failure`, …) are not HTTP requests: they are
  rejected with a reason saying so.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from ..schema import REQUESTS
from . import convert as cv
from .base import Parsed, register
from .template import Template, TemplateFormat

# `Feb 25 16:19:49 host haproxy[7]: ` (BSD syslog, optional PRI) or an RFC 3339 stamp; optional.
SYSLOG_PREFIX = (r"(?:(?:<\d+>)?(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d +|\d{4}-\d\d-\d\dT\S+ +)?"
                 r"(?:\S+ +)?[\w./-]+(?:\[\d+\])?: +)?")
_HEAD = ("nginx:$remote_addr:$client_port [$time_clf_ms] $frontend_name $backend_name/$backend_server"
         " $tq/$tw/$tc/$upstream_time_msec/$request_time_msec $status $body_bytes_sent"
         " $captured_request_cookie $captured_response_cookie $termination_state"
         " $actconn/$feconn/$beconn/$srv_conn/$retries $srv_queue/$backend_queue")
_REQUEST = ' "$request"'
_PATTERNS = {
    "remote_addr": r"[0-9A-Fa-f.:\[\]]+",  # IPv6 comes without brackets: the port is after the last `:`
    "captured_request_headers": r"[^}]*",
    "captured_response_headers": r"[^}]*",
    # Timers are integers; -1 means "never reached" (duration_ms turns negatives to null).
    "upstream_time_msec": r"-?\d+", "request_time_msec": r"\+?-?\d+",
}
# Text after `]: ` without a quoted request: HAProxy's connection-level messages.
_CONNECTION_MESSAGE = r"\] [^ \"]+ ?[^\"]*(?:handshake|failure|error|timeout|closed|aborted|refused)[^\"]*$"
# `Mozilla/5.0 (…)`, `curl/8.4.0`, `Googlebot/2.1`: a product token, a slash, a version.
_LOOKS_LIKE_UA = r"^[A-Za-z][A-Za-z0-9._-]*/[0-9A-Za-z]"


class HAProxyFormat(TemplateFormat):
    """Templates plus the user agent from a single captured header and clearer reject reasons."""

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse `option httplog` lines; see the module docstring for the column choices."""
        parsed = super().parse(lines, state)
        rejects = parsed.rejects
        if rejects.num_rows:
            conn = pc.fill_null(pc.match_substring_regex(rejects.column("text"), _CONNECTION_MESSAGE), False)
            if pc.any(conn).as_py():
                reason = pc.if_else(conn, "HAProxy connection message, not an HTTP request log line",
                                    rejects.column("reason"))
                rejects = rejects.set_column(rejects.schema.get_field_index("reason"), "reason", reason)
        table = parsed.requests
        if table.num_rows:
            captured = pc.map_lookup(table.column("fields"), "captured_request_headers", "first")
            single = pc.and_(pc.invert(pc.match_substring(captured, "|")),
                             pc.match_substring_regex(captured, _LOOKS_LIKE_UA))
            ua = pc.if_else(pc.fill_null(single, False), _decode_hash(captured), pa.scalar(None, pa.string()))
            ua = pc.coalesce(table.column("user_agent"), ua).cast(REQUESTS.field("user_agent").type)
            table = table.set_column(table.schema.get_field_index("user_agent"), REQUESTS.field("user_agent"), ua)
        return Parsed(table, rejects)


def _decode_hash(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """HAProxy writes `"`, `#`, `{`, `|`, `}` and non-printables of captures as `#XX` (hex)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    has = pc.fill_null(pc.match_substring_regex(values, "#[0-9A-Fa-f]{2}"), False)
    if not pc.any(has).as_py():
        return values
    return pc.if_else(has, cv.map_python(values, _unhash), values)


def _unhash(text: str) -> str:
    raw = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return raw.decode("utf-8", "replace")


_FULL = _HEAD + " {$captured_request_headers} {$captured_response_headers}" + _REQUEST

register(HAProxyFormat(
    "haproxy",
    "HAProxy option httplog (optionally syslog-prefixed): client [accept_date] frontend backend/server timers status bytes … \"request\"",
    [
        Template(_FULL, prefix=SYSLOG_PREFIX, patterns=_PATTERNS),
        Template(_HEAD + " {$captured_request_headers}" + _REQUEST, prefix=SYSLOG_PREFIX, patterns=_PATTERNS),
        Template(_HEAD + _REQUEST, prefix=SYSLOG_PREFIX, patterns=_PATTERNS),
    ],
))
