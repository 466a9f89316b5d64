"""Typed conversions shared by every format, each vectorized or run once per distinct value.

Raw captures arrive as strings; these turn them into the REQUESTS column types and conventions
(DESIGN §2): UTC timestamps, `-` as null, request lines split, hosts without ports, IPs without
brackets or ports, escapes decoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote, unquote_plus

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import TS
from . import strbuf
from .clftime import parse_clf_fixed
from .reqline import split_origin_form

STRING = pa.string()
INT64 = pa.int64()
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"


def nullify(arr: pa.Array, *missing: str) -> pa.Array:
    """Strings equal to one of `missing` (default `-` and empty) become null."""
    missing = missing or ("-", "")
    arr = arr.cast(pa.string())
    if missing == ("-", ""):  # the usual pair: lengths and one byte, from the buffers
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        mask = strbuf.dash_or_empty(arr)
        if mask is not None:
            return strbuf.with_nulls(arr, mask)
        return set_null(arr, pc.or_(pc.equal(arr, "-"), pc.equal(pc.binary_length(arr), 0)))
    return set_null(arr, pc.is_in(arr, pa.array(missing)))


def set_null(arr: pa.Array, mask: pa.Array) -> pa.Array:
    """`arr` with nulls where `mask` is true, sharing the value buffers (no copy of strings)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return arr
    valid = pc.and_not(pc.is_valid(arr), mask)
    if arr.offset != 0 or valid.offset != 0 or not pa.types.is_string(arr.type):
        return pc.if_else(mask, pa.scalar(None, arr.type), arr)
    return pa.Array.from_buffers(arr.type, len(arr), [valid.buffers()[1], *arr.buffers()[1:]])


def per_distinct(arr: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply `fn` to the distinct values of `arr` only, then expand (DESIGN §1)."""
    if len(arr) == 0:
        return fn(arr)
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return fn(enc.dictionary).take(enc.indices)


def map_python(arr: pa.Array, fn: Callable[[str], object], typ: pa.DataType = STRING) -> pa.Array:
    """Apply a Python function once per distinct non-null value."""
    return per_distinct(arr, lambda d: pa.array([None if v is None else fn(v) for v in d.to_pylist()], typ))


# --- timestamps ---------------------------------------------------------------------------

def _strptime_distinct(arr: pa.Array, fmt: str) -> pa.Array:
    def parse(d: pa.Array) -> pa.Array:
        return pc.strptime(d, format=fmt, unit="us", error_is_null=True)

    out = per_distinct(arr, parse)
    return out.cast(TS) if out.type.tz else pc.assume_timezone(out, "UTC").cast(TS)


def time_clf(arr: pa.Array) -> pa.Array:
    """`10/Oct/2000:13:55:36 -0700`, bare or in brackets (optionally with `.mmm` fractions, or
    no zone: UTC); `-` and empty are null."""
    arr = arr.cast(pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    micros, fixed, tried = parse_clf_fixed(arr)
    # The microseconds are the timestamp's buffer as they are (no copy, no cast).
    out = strbuf.with_nulls(pa.Array.from_buffers(TS, len(micros), [None, pa.py_buffer(micros)]), ~fixed)
    others = ~tried
    if arr.null_count:
        others &= arr.is_valid().to_numpy(zero_copy_only=False)
    if not others.any():
        return out
    rest = pa.array(others)
    # Other shapes (fractions, no zone, a day that does not exist): strptime, then Python.
    others = nullify(pc.utf8_trim(arr.filter(rest), "[]"))
    parsed = _strptime_distinct(others, "%d/%b/%Y:%H:%M:%S %z")
    if not pc.all(pc.or_(pc.is_valid(parsed), pc.is_null(others))).as_py():
        parsed = pc.coalesce(parsed, map_python(others, _parse_any_time, TS))
    return pc.replace_with_mask(out, rest, parsed)


def time_iso(arr: pa.Array) -> pa.Array:
    """ISO 8601 / RFC 3339 with optional fraction and zone (`Z`, `+02:00`); no zone means UTC.

    Arrow's own cast reads the common shapes at C speed (millisecond stamps are nearly all
    distinct, so per-value Python would dominate); what it cannot read goes through Python.
    """
    arr = nullify(arr.cast(pa.string()))
    try:
        return arr.cast(TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return map_python(arr, _parse_any_time, TS)


def time_epoch(arr: pa.Array, unit: str = "s") -> pa.Array:
    """Epoch numbers (float or int strings) in `unit` s|ms|us|ns to UTC timestamps."""
    scale = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}[unit]
    num = pc.cast(nullify(arr.cast(pa.string())), pa.float64(), safe=False) if not pa.types.is_floating(arr.type) and not pa.types.is_integer(arr.type) else arr.cast(pa.float64())
    micros = pc.round(pc.multiply(num, scale))
    return pc.cast(micros, pa.int64()).cast(TS)


_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$")
_CLF = re.compile(rf"^(\d\d)/({_MONTHS})/(\d{{4}}):(\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(?:\s*([+-]\d{{4}}))?$")


def _parse_any_time(text: str) -> datetime | None:
    text = text.strip().strip("[]")
    m = _ISO.match(text)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        return _mk(int(y), int(mo), int(d), int(h), int(mi), int(s), frac, zone)
    m = _CLF.match(text)
    if m:
        d, mon, y, h, mi, s, frac, zone = m.groups()
        return _mk(int(y), _MONTHS.split("|").index(mon) + 1, int(d), int(h), int(mi), int(s), frac, zone)
    return None


def _mk(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str | None, zone: str | None) -> datetime | None:
    from datetime import timedelta, timezone

    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = UTC
        if zone and zone != "Z":
            z = zone.replace(":", "")
            sign = -1 if z[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(z[1:3]), minutes=int(z[3:5])))
        return datetime(y, mo, d, h, mi, min(s, 59), micro, tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


# --- numbers and durations ----------------------------------------------------------------

def to_int(arr: pa.Array, typ: pa.DataType = INT64) -> pa.Array:
    """Integer strings to `typ`; `-`, empty and anything not an integer become null."""
    arr = nullify(arr.cast(pa.string()))
    try:  # the usual case, values a template already checked: one cast, no regex
        return arr.cast(pa.int64()).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    arr = pc.if_else(pc.match_substring_regex(arr, r"^-?\d{1,18}$"), arr, pa.scalar(None, pa.string()))
    return arr.cast(pa.int64()).cast(typ, safe=False)


def status(arr: pa.Array) -> pa.Array:
    """HTTP status codes to int16 (`-` and nonsense become null)."""
    arr = nullify(arr.cast(pa.string()))
    try:
        codes = arr.cast(pa.int16())
        if pc.all(pc.and_(pc.greater_equal(codes, 0), pc.less(codes, 1000))).as_py() is not False:
            return codes
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.match_substring_regex(arr, r"^\d{1,3}$")
    return pc.if_else(ok, arr, pa.scalar(None, pa.string())).cast(pa.int16())


def duration_ms(arr: pa.Array, unit: str) -> pa.Array:
    """A duration in `unit` (s|ms|us|ns) to float milliseconds; lists like `0.1, 0.2` are summed
    (nginx writes one value per upstream tried); `-` and negatives (ALB's -1) become null."""
    factor = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}[unit]
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        num = arr.cast(pa.float64())
    else:
        s = nullify(arr.cast(pa.string()))
        s = pc.replace_substring_regex(s, r"(ms|s)$", "")
        simple = pc.match_substring_regex(s, r"^-?\d+(\.\d+)?$")
        num = pc.if_else(simple, s, pa.scalar(None, pa.string())).cast(pa.float64())
        if not pc.all(pc.or_(simple, pc.is_null(s))).as_py():
            num = pc.coalesce(num, map_python(s, _sum_list, pa.float64()))
    num = pc.multiply(num, factor)
    return pc.if_else(pc.less(num, 0), pa.scalar(None, pa.float64()), num)


def _sum_list(text: str) -> float | None:
    try:
        parts = [float(p) for p in re.split(r"[,:]\s*", text) if p.strip() not in ("", "-")]
    except ValueError:
        return None
    return sum(parts) if parts else None


# --- request line, hosts, addresses ---------------------------------------------------------

REQUEST_RE = r"^(?P<method>[A-Za-z][A-Za-z0-9_-]*) (?P<target>\S+)(?: (?P<protocol>[A-Za-z]+/[0-9.]+))?$"
TARGET_RE = r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*))?(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?"


def split_request(request: pa.Array) -> dict[str, pa.Array]:
    """Split `"$request"` into method, scheme, host, path, query, protocol.

    A request that is not `METHOD TARGET [PROTOCOL]` (`""`, `"-"`, TLS bytes) keeps nulls and
    its raw text in `request_raw` (goes to `fields.request`). Origin-form lines are cut from
    their bytes (`reqline`); the others take `split_request_general`.
    """
    request = request.cast(pa.string())
    if isinstance(request, pa.ChunkedArray):
        request = request.combine_chunks()
    fast = split_origin_form(request, split_request_general)
    return fast if fast is not None else split_request_general(request)


def split_request_general(request: pa.Array) -> dict[str, pa.Array]:
    """`split_request` for any shape: three words split on spaces (several times faster than a
    capturing regex), then the regex for the other rows, and the target split by `split_target`."""
    request = request.cast(pa.string())
    words = pc.split_pattern(request, " ")
    offsets = words.offsets.to_numpy()
    three = np.diff(offsets) == 3
    method, target, protocol = (words.values.take(pa.array(offsets[:-1] + i, mask=~three)) for i in range(3))
    # The words' shapes are checked on the short words, not by a regex over the whole request.
    shaped = pc.fill_null(pc.and_(pc.match_substring_regex(method, r"^[A-Za-z][A-Za-z0-9_-]*$"),
                                  pc.match_substring_regex(protocol, r"^[A-Za-z]+/[0-9.]+$")), False)
    if not pc.all(shaped).as_py():
        off = pc.invert(shaped)
        method, target, protocol = (set_null(w, off) for w in (method, target, protocol))
    odd = pc.and_(pc.invert(shaped), pc.is_valid(request))
    if pc.any(odd).as_py():  # HTTP/0.9 `GET /`, doubled spaces: the regex decides
        parts = pc.extract_regex(request.filter(odd), REQUEST_RE)
        if parts.null_count < len(parts):  # usually odd rows are garbage (`-`, TLS bytes): nothing to add
            method = pc.replace_with_mask(method, odd, pc.struct_field(parts, "method"))
            target = pc.replace_with_mask(target, odd, pc.struct_field(parts, "target"))
            protocol = pc.replace_with_mask(protocol, odd, nullify(pc.struct_field(parts, "protocol"), ""))
    out = split_target(target)
    out["method"] = method
    out["protocol"] = protocol
    out["request_raw"] = set_null(request, pc.is_valid(method))  # as logged: `-`, `""`, TLS bytes
    return out


def split_target(target: pa.Array) -> dict[str, pa.Array]:
    """Split a request target (origin- or absolute-form) into scheme, host, path, query."""
    target = target.cast(pa.string())
    n = len(target)
    halves = pc.split_pattern(target, "?", max_splits=1)
    path = pc.list_element(halves, 0)
    # The query is the second half where there is one: one take on the split's values (a regex
    # capture costs several times more).
    offsets = halves.offsets.to_numpy()
    has_query = np.diff(offsets) == 2
    query = halves.values.take(pa.array(offsets[:-1] + 1, mask=~has_query)) if has_query.any() \
        else pa.nulls(len(target), pa.string())
    out = {"scheme": pa.nulls(n, pa.string()), "host": pa.nulls(n, pa.string()), "path": path, "query": query}
    other = pc.invert(pc.fill_null(pc.starts_with(target, "/"), True))
    if not pc.any(other).as_py():
        return out
    # Absolute-form (`GET http://host:80/x`), `*`, or garbage: the full regex, on those rows only.
    sub = target.filter(other)
    t = pc.extract_regex(sub, TARGET_RE)
    scheme = nullify(pc.struct_field(t, "scheme"), "")
    host = host_only(nullify(pc.struct_field(t, "authority"), ""))
    sub_path = pc.struct_field(t, "path")
    sub_path = pc.if_else(pc.and_(pc.is_valid(scheme), pc.equal(sub_path, "")), "/", sub_path)
    sub_query = pc.if_else(pc.fill_null(pc.match_substring(sub, "?"), False), pc.struct_field(t, "query"),
                           pa.scalar(None, pa.string()))
    for name, values in (("scheme", scheme), ("host", host), ("path", sub_path), ("query", sub_query)):
        out[name] = pc.replace_with_mask(out[name], other, values.cast(pa.string()))
    return out


def host_only(arr: pa.Array) -> pa.Array:
    """A Host header or vhost without its port (and without IPv6 brackets), lower-cased."""
    arr = nullify(arr.cast(pa.string()))
    arr = pc.replace_substring_regex(arr, r"^([^@]*@)", "")
    bracket = pc.extract_regex(arr, r"^\[(?P<h>[^\]]*)\]")
    no_port = pc.replace_substring_regex(arr, r"^([^:\[]*):\d*$", r"\1")
    return pc.utf8_lower(pc.coalesce(pc.struct_field(bracket, "h"), no_port))


def client_ip(arr: pa.Array) -> pa.Array:
    """An address as logged: IPv6 without brackets, no port (`1.2.3.4:5678` → `1.2.3.4`)."""
    arr = nullify(arr.cast(pa.string()))
    found = strbuf.holding(arr, 0x3A)
    if found is None:
        found = as_mask(pc.match_substring(arr, ":"))
    elif arr.null_count:
        found &= arr.is_valid().to_numpy(zero_copy_only=False)
    if not found.any():  # plain IPv4 or names: nothing to strip
        return arr
    colon = pa.array(found)
    sub = arr.filter(colon)
    bracket = pc.struct_field(pc.extract_regex(sub, r"^\[(?P<h>[^\]]*)\]"), "h")
    v4port = pc.replace_substring_regex(sub, r"^([^:]+):\d+$", r"\1")
    stripped = pc.coalesce(bracket, v4port)
    spliced = strbuf.replace_rows(arr, np.flatnonzero(found), stripped)
    return spliced if spliced is not None else pc.replace_with_mask(arr, colon, stripped)


# --- escapes ------------------------------------------------------------------------------

_ESC = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unescape_one(text: str) -> str:
    raw = bytearray()
    pos = 0
    for m in _ESC.finditer(text):
        raw += text[pos:m.start()].encode("utf-8")
        tok = m.group(1)
        if tok[0] == "x" and len(tok) == 3:
            raw.append(int(tok[1:], 16))
        else:
            raw += _SIMPLE.get(tok, "\\" + tok).encode("utf-8")
        pos = m.end()
    raw += text[pos:].encode("utf-8")
    return raw.decode("utf-8", "replace")


def unescape(arr: pa.Array, candidates: np.ndarray | None = None) -> pa.Array:
    """Decode nginx `\\xHH` and Apache `\\"` / `\\\\` escapes, only where a backslash occurs.

    `candidates` (optional) marks the rows that may hold one (lines with a backslash anywhere):
    the others are not even scanned.
    """
    arr = arr.cast(pa.string())
    if candidates is not None:
        if not candidates.any():
            return arr
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        rows = np.flatnonzero(candidates)
        decoded = unescape(arr.take(pa.array(rows)))
        spliced = strbuf.replace_rows(arr, rows, decoded)
        return spliced if spliced is not None else pc.replace_with_mask(arr, pa.array(candidates), decoded)
    has = pc.fill_null(pc.match_substring(arr, "\\"), False)
    if not pc.any(has).as_py():
        return arr
    return pc.if_else(has, map_python(arr, _unescape_one), arr)


def url_decode(arr: pa.Array, plus: bool = True) -> pa.Array:
    """Percent-decode (and `+` as space when `plus`), once per distinct value, where needed."""
    arr = arr.cast(pa.string())
    pattern = r"[%+]" if plus else "%"
    has = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    if not pc.any(has).as_py():
        return arr
    fn = unquote_plus if plus else unquote
    return pc.if_else(has, map_python(arr, fn), arr)


def first_of(*arrays: pa.Array | None) -> pa.Array | None:
    """Coalesce the given arrays (skipping Nones)."""
    present = [a for a in arrays if a is not None]
    return pc.coalesce(*present) if present else None


def as_mask(arr: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a numpy mask (nulls are false)."""
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
