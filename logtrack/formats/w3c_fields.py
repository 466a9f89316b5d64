"""W3C extended field names → REQUESTS columns and `fields` (DESIGN §2, §3).

One table for every W3C product (IIS, CloudFront, NetScaler, Shoutcast, Incapsula). What the
products disagree on is a parameter: the unit of `time-taken` (seconds in the W3C draft and at
CloudFront, milliseconds at IIS) and how values were URL-encoded (`Decoding`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc

from . import convert as cv

# Column of each W3C field (names compared lower-case). Host sources are ranked separately.
_COLUMN = {
    "c-ip": "client_ip",
    "cs-method": "method",
    "sc-status": "status",
    "c-status": "status",  # Shoutcast
    "sc-bytes": "bytes_sent",
    "cs(user-agent)": "user_agent",
    "c-user-agent": "user_agent",  # CloudFront RTMP
    "cs(referer)": "referer",
    "cs(referrer)": "referer",  # Incapsula
    "c-referrer": "referer",  # CloudFront RTMP
    "cs-username": "remote_user",
    "cs-protocol": "scheme",
    "cs-protocol-version": "protocol",
    "cs-version": "protocol",
    "x-edge-request-id": "request_id",
}
# The viewer's Host at CloudFront first (cs(Host) is the distribution's domain there).
_HOSTS = ("x-host-header", "cs(host)", "cs-host")
_FIELD_ALIASES = {"x-forwarded-for": "http_x_forwarded_for", "s-xff": "http_x_forwarded_for"}
_HANDLED = set(_COLUMN) | set(_HOSTS) | {
    "date", "time", "date-local", "time-local", "cs-uri-stem", "cs-uri-query", "cs-uri",
    "time-taken", "timetakenms", "cs(cookie)",
}
MAX_COOKIES = 64  # distinct cookie names per block kept as `cookie_<name>`; beyond, the raw header


@dataclass(frozen=True)
class Decoding:
    """How a product URL-encoded its text fields.

    `user_agent`: `plus` (IIS writes spaces as `+`), `percent` (CloudFront `%20`) or None;
    `twice` decodes a second `%25` layer (old CloudFront logs hold `%2520`); `referer` and
    `cookie`: `percent` where the product encoded them (CloudFront), else None — a referer is a
    URL, so a `+` in it was a literal `+`, never an encoded space.
    """

    user_agent: str | None = "plus"
    twice: bool = False
    referer: str | None = None
    cookie: str | None = None


def _decode_text(value: str, mode: str | None, twice: bool) -> str:
    """Undo a product's URL encoding of one value; values with spaces were never encoded."""
    if mode is None or " " in value:
        return value
    if mode == "plus":
        # IIS writes a space as `+` and leaves a `+` alone: `;++http` is `; +http` (bot UAs).
        value = re.sub(r"\+\+?", lambda m: " +" if len(m.group(0)) == 2 else " ", value)
    out = unquote(value)
    if twice and "%25" in value:
        out = unquote(out)
    return out


def decode(arr: pa.Array, mode: str | None, twice: bool = False) -> pa.Array:
    """`_decode_text` once per distinct value, only where a `+` or `%` occurs."""
    arr = cv.nullify(arr)
    if mode is None:
        return arr
    has = pc.fill_null(pc.match_substring_regex(arr, r"[%+]" if mode == "plus" else "%"), False)
    if not pc.any(has).as_py():
        return arr
    return pc.if_else(has, cv.map_python(arr, lambda v: _decode_text(v, mode, twice)), arr)


def w3c_time(date: pa.Array, time: pa.Array) -> pa.Array:
    """`date` + `time` (UTC by definition) to timestamps: strptime once per distinct value, the
    ISO parser only for what it missed (fractions of seconds, IIS Advanced Logging)."""
    joined = pc.binary_join_element_wise(cv.nullify(date), cv.nullify(time), " ")
    out = cv.per_distinct(joined, lambda d: pc.strptime(d, format="%Y-%m-%d %H:%M:%S", unit="us",
                                                         error_is_null=True))
    out = pc.assume_timezone(out, "UTC").cast(cv.TS)
    missed = pc.and_(pc.is_null(out), pc.is_valid(joined))
    if pc.any(missed).as_py():
        out = pc.coalesce(out, cv.time_iso(cv.set_null(joined, pc.invert(missed))))
    return out


def header_field_name(name: str) -> str | None:
    """`cs(Accept-Language)` → `http_accept_language`; `sc(Content-Type)` → `sent_http_…`."""
    m = re.match(r"^(cs|sc)\((.+)\)$", name, re.I)
    if not m:
        return None
    header = m.group(2).strip().lower().replace("-", "_")
    return ("http_" if m.group(1).lower() == "cs" else "sent_http_") + header


def _hostlike_target(uri: pa.Array) -> pa.Array:
    """Incapsula's `cs-uri` is `host/path` without a scheme: give it one so the host splits out."""
    hostlike = pc.fill_null(pc.match_substring_regex(uri, r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?(/|$)"), False)
    if not pc.any(hostlike).as_py():
        return uri
    return pc.if_else(hostlike, pc.binary_join_element_wise("//", uri, ""), uri)


def _split_uri(uri: pa.Array) -> dict[str, pa.Array]:
    """A full `cs-uri` (origin-form, absolute, or `host/path`) into scheme/host/path/query."""
    target = _hostlike_target(cv.nullify(uri))
    slashed = pc.fill_null(pc.starts_with(target, "//"), False)
    if not pc.any(slashed).as_py():
        return cv.split_target(target)
    parts = cv.split_target(pc.if_else(slashed, pc.binary_join_element_wise("x:", target, ""), target))
    parts["scheme"] = cv.set_null(parts["scheme"], slashed)  # the `x:` was ours, not the log's
    return parts


def _cookies(header: pa.Array, mode: str | None) -> dict[str, pa.Array]:
    """`cs(Cookie)` → `cookie_<name>` columns, parsed once per distinct header value."""
    header = decode(header, mode)
    enc = pc.dictionary_encode(header)
    parsed = [_parse_cookie(v) if v is not None else {} for v in enc.dictionary.to_pylist()]
    names = sorted({k for d in parsed for k in d})
    if not names or len(names) > MAX_COOKIES:
        return {"cs(Cookie)": header}
    out = {}
    for name in names:
        values = pa.array([d.get(name) for d in parsed], pa.string())
        out["cookie_" + name] = values.take(enc.indices)
    unparsed = [None if d or v is None else v for d, v in zip(parsed, enc.dictionary.to_pylist(), strict=True)]
    if any(unparsed):
        out["cs(Cookie)"] = pa.array(unparsed, pa.string()).take(enc.indices)
    return out


def _parse_cookie(text: str) -> dict[str, str]:
    out = {}
    for part in re.split(r";", text):
        name, eq, value = part.partition("=")
        name = name.strip(" +")
        if eq and name and re.fullmatch(r"[!#$%&'*.^`|~\w-]+", name):
            out[name] = value.strip(" ")
    return out


def map_fields(values: dict[str, pa.Array], n: int, unit: str, decoding: Decoding,
               default_date: str | None = None) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """REQUESTS columns and extra `fields` from one layout's raw field values (length `n`)."""
    by_lower = {name.lower(): arr for name, arr in values.items()}
    columns: dict[str, pa.Array] = {}
    fields: dict[str, pa.Array] = {}

    date = by_lower.get("date", by_lower.get("date-local"))
    time = by_lower.get("time", by_lower.get("time-local"))
    if time is not None and date is None and default_date:
        date = pa.repeat(default_date, n).cast(pa.string())
    if date is not None and time is not None:
        columns["ts"] = w3c_time(date, time)

    for name, column in _COLUMN.items():
        if name not in by_lower or column in columns:
            continue
        raw = by_lower[name]
        if column == "client_ip":
            columns[column] = cv.client_ip(raw)
        elif column == "status":
            columns[column] = cv.status(raw)
        elif column == "bytes_sent":
            columns[column] = cv.to_int(raw)
        elif column == "user_agent":
            columns[column] = decode(raw, decoding.user_agent, decoding.twice)
        elif column == "referer":
            columns[column] = decode(raw, decoding.referer)
        else:
            columns[column] = cv.nullify(raw)

    hosts = [cv.host_only(by_lower[h]) for h in _HOSTS if h in by_lower]
    target: dict[str, pa.Array] = {}
    if "cs-uri" in by_lower:
        target = _split_uri(by_lower["cs-uri"])
    if "cs-uri-stem" in by_lower:
        stem = cv.split_target(cv.nullify(by_lower["cs-uri-stem"]))
        target = {k: cv.first_of(stem[k], target.get(k)) for k in stem}
    query = by_lower.get("cs-uri-query")
    if query is not None:
        query = pc.replace_substring_regex(cv.nullify(query), r"^\?", "")
        target["query"] = cv.first_of(query, target.get("query"))
    if target:
        hosts.append(target["host"])
        columns["path"] = target["path"]
        columns["query"] = target["query"]
        columns["scheme"] = cv.first_of(columns.get("scheme"), target["scheme"])
    if hosts:
        columns["host"] = cv.first_of(*hosts)

    if "time-taken" in by_lower:
        columns["request_time_ms"] = cv.duration_ms(by_lower["time-taken"], unit)
    elif "timetakenms" in by_lower:
        columns["request_time_ms"] = cv.duration_ms(by_lower["timetakenms"], "ms")
    if "cs(cookie)" in by_lower:
        fields.update(_cookies(by_lower["cs(cookie)"], decoding.cookie))

    for name, raw in values.items():
        low = name.lower()
        if low in _HANDLED:
            continue
        key = _FIELD_ALIASES.get(low) or header_field_name(name) or name
        fields.setdefault(key, cv.nullify(raw))
    return columns, fields
