"""What each nginx variable and Apache directive means: its column, conversion and pattern.

A `Var` names one captured value. `kind` says how `convert_vars` turns the raw text into a
column; `target` is a REQUESTS column, or None to keep the value in `fields` under `name`
(nginx naming: `cookie_<name>`, `http_<header>`, DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

QUOTED = r'(?:[^"\\]|\\.)*'
STATUS = r"(?:\d{1,3}|-)"
COUNT = r"(?:\d+|-)"


@dataclass(frozen=True)
class Var:
    """One captured value of a template."""

    name: str
    kind: str = "str"  # str|text|raw|ip|host|status|int|request|target|time_clf|time_iso|epoch_s|epoch_ms|dur_s|dur_ms|dur_us|dur_ns|query
    target: str | None = None
    pattern: str = r"\S+"


_NGINX: dict[str, tuple[str, str | None, str]] = {
    # name: (kind, column, unquoted pattern)
    "remote_addr": ("ip", "client_ip", r"\S+"),
    "realip_remote_addr": ("ip", "client_ip", r"\S+"),
    "remote_user": ("str", "remote_user", r"\S+"),
    "time_local": ("time_clf", "ts", r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)? [+-]\d{4}"),
    "time_iso8601": ("time_iso", "ts", r"\S+"),
    "msec": ("epoch_s", "ts", r"\d+(?:\.\d+)?"),
    "request": ("request", None, r"\S+ \S+ \S+"),
    "request_method": ("str", "method", r"\S+"),
    "request_uri": ("target", None, r"\S+"),
    "uri": ("str", "path", r"\S+"),
    "document_uri": ("str", "path", r"\S+"),
    "args": ("query", "query", r"\S*"),
    "query_string": ("query", "query", r"\S*"),
    "server_protocol": ("str", "protocol", r"\S+"),
    "scheme": ("str", "scheme", r"\S+"),
    "host": ("host", "host", r"\S+"),
    "http_host": ("host", "host", r"\S+"),
    "server_name": ("host", "host", r"\S+"),
    "status": ("status", "status", STATUS),
    "body_bytes_sent": ("int", "bytes_sent", COUNT),
    "bytes_sent": ("int", "bytes_sent", COUNT),
    "http_referer": ("text", "referer", r"\S+"),
    "http_referrer": ("text", "referer", r"\S+"),
    "http_user_agent": ("text", "user_agent", r"\S+"),
    "request_time": ("dur_s", "request_time_ms", r"\S+"),
    "upstream_response_time": ("dur_s", "upstream_time_ms", r"[^\s,]+(?:,\s*[^\s,]+)*"),
    "request_id": ("str", "request_id", r"\S+"),
    "req_id": ("str", "request_id", r"\S+"),
    "upstream_addr": ("str", None, r"[^\s,]+(?:,\s*[^\s,]+)*"),
    "upstream_status": ("str", None, r"[^\s,]+(?:,\s*[^\s,]+)*"),
    "upstream_response_length": ("str", None, r"[^\s,]+(?:,\s*[^\s,]+)*"),
    # Internal names presets use for values nginx has no variable for.
    "request_time_msec": ("dur_ms", "request_time_ms", r"\S+"),
    "upstream_time_msec": ("dur_ms", "upstream_time_ms", r"\S+"),
    "time_clf_ms": ("time_clf", "ts", r"[^\]]+"),
}


def nginx_var(name: str) -> Var:
    """The Var for an nginx variable name (unknown names go to `fields` as text)."""
    if name in _NGINX:
        kind, target, pattern = _NGINX[name]
        return Var(name, kind, target, pattern)
    return Var(name, "text", None, r"\S+")


def _header_name(header: str) -> str:
    return header.strip().lower().replace("-", "_")


def apache_var(directive: str, arg: str | None) -> Var:
    """The Var for an Apache LogFormat directive (`h`, `>s`, `{Referer}i`, `{%Y-%m-%d}t` …)."""
    code = directive.lstrip("<>")
    if code == "i" and arg:
        header = _header_name(arg)
        named = {"referer": "http_referer", "user_agent": "http_user_agent", "host": "http_host",
                 "x_request_id": "request_id"}
        return nginx_var(named.get(header, "http_" + header))
    if code == "C" and arg:
        return Var("cookie_" + arg, "text", None)
    if code == "o" and arg:
        return Var("sent_http_" + _header_name(arg), "text", None)
    if code == "e" and arg:
        return Var(arg, "text", None)
    if code == "n" and arg:
        return Var(arg, "text", None)
    if code == "t":
        if not arg:
            return Var("time_local", "time_clf", "ts", r"\[[^\]]*\]")
        if arg in ("sec", "msec", "usec"):
            return Var("time_" + arg, {"sec": "epoch_s", "msec": "epoch_ms", "usec": "epoch_us"}[arg], "ts", r"\d+")
        return Var("time_" + arg, "strftime:" + arg, "ts", r"[^\]]+?")
    if code == "T":
        unit = {"ms": "dur_ms", "us": "dur_us", "s": "dur_s", None: "dur_s"}.get(arg, "dur_s")
        return Var("request_time", unit, "request_time_ms", r"\d+")
    simple: dict[str, Var] = {
        "h": Var("remote_addr", "ip", "client_ip"),
        "a": Var("remote_addr", "ip", "client_ip"),
        "l": Var("remote_logname", "str", None),
        "u": Var("remote_user", "str", "remote_user"),
        "r": Var("request", "request", None, r"\S+ \S+ \S+"),
        "s": Var("status", "status", "status", STATUS),
        "b": Var("body_bytes_sent", "int", "bytes_sent", COUNT),
        "B": Var("body_bytes_sent", "int", "bytes_sent", COUNT),
        "O": Var("bytes_sent", "int", "bytes_sent", COUNT),
        "I": Var("request_length", "str", None),
        "S": Var("bytes_transferred", "str", None),
        "v": Var("server_name", "host", "host"),
        "V": Var("server_name", "host", "host"),
        "p": Var("server_port", "str", None),
        "D": Var("request_time", "dur_us", "request_time_ms", r"\d+"),
        "m": Var("request_method", "str", "method"),
        "U": Var("uri", "str", "path"),
        "q": Var("query_string", "query", "query", r"\S*"),
        "H": Var("server_protocol", "str", "protocol"),
        "X": Var("connection_status", "str", None),
        "k": Var("keepalive_requests", "str", None),
        "P": Var("pid", "str", None),
        "L": Var("log_id", "str", None),
        "R": Var("handler", "str", None),
        "f": Var("request_filename", "str", None),
    }
    if code in simple:
        return simple[code]
    return Var("apache_" + code + (f"_{arg}" if arg else ""), "text", None)
