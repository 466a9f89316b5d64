"""Read a block of JSON lines into flat Arrow columns, robustly (DESIGN §3, §8).

Fast path: the whole block goes through `pyarrow.json.read_json` once, and nested objects are
flattened into dotted column names (`request.headers.User-Agent`); arrays of scalars become one
`", "`-joined string (HTTP header semantics). Only when the fast path raises (a line that is not
JSON, a value whose type changes between lines) is the block read again line by line with
`json.loads`, so one bad line becomes one reject instead of failing the block.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..lines import Lines
from . import convert as cv

INVALID = "invalid JSON"
NOT_OBJECT = "not a JSON object"
_MIN_BLOCK = 1 << 20


def read_objects(lines: Lines) -> tuple[dict[str, pa.Array], pa.Array]:
    """Flat columns for the lines that are JSON objects, and a reason per line for the others.

    Returns `(flat, reasons)`: `flat` maps dotted key paths to arrays with one row per line whose
    reason is null, in line order; `reasons` has one entry per line of `lines`.
    """
    n = len(lines)
    text = lines.text.cast(pa.string())
    table = _read_fast(text)
    if table is not None:
        return flatten(table), pa.nulls(n, pa.string())
    reasons: list[str | None] = [None] * n
    pieces = _bisect(text, reasons)
    if pieces is None:
        return _read_python(text, reasons), pa.array(reasons, pa.string())
    return _concat(pieces), pa.array(reasons, pa.string())


MAX_READS = 64


def _bisect(text: pa.Array, reasons: list[str | None]) -> list[tuple[int, dict[str, pa.Array]]] | None:
    """Read a block pyarrow refused in halves, recursively, down to the lines it refuses alone.

    A bad line (not JSON, cut off) or lines that disagree on a value's type (`"size":"46"` then
    `"size":139`, a header logged once as a string and once as an array) cost a few reads of
    the agreeing runs around them; a line pyarrow refuses alone goes through `json.loads` (and
    gets its reason). None after MAX_READS reads: the block is too mixed, read it in Python.
    """
    pieces: list[tuple[int, dict[str, pa.Array]]] = []
    reads = 0

    def walk(lo: int, hi: int) -> bool:
        nonlocal reads
        if hi - lo == 1:
            value = _loads(text[lo].as_py())
            if isinstance(value, dict):
                pieces.append((1, flatten_python([value])))
            else:
                reasons[lo] = INVALID if value is _BAD else NOT_OBJECT
            return True
        mid = (lo + hi) // 2
        for a, b in ((lo, mid), (mid, hi)):
            reads += 1
            if reads > MAX_READS:
                return False
            table = _read_fast(text.slice(a, b - a))
            if table is not None:
                pieces.append((b - a, flatten(table)))
            elif not walk(a, b):
                return False
        return True

    return pieces if walk(0, len(text)) else None


def _read_python(text: pa.Array, reasons: list[str | None]) -> dict[str, pa.Array]:
    """Every line through `json.loads` (blocks too mixed to bisect, text that is not JSON)."""
    objs: list[dict[str, Any]] = []
    for i, raw in enumerate(text.to_pylist()):
        value = _loads(raw)
        if isinstance(value, dict):
            objs.append(value)
            reasons[i] = None
        else:
            reasons[i] = INVALID if value is _BAD else NOT_OBJECT
    return flatten_python(objs)


def _concat(pieces: list[tuple[int, dict[str, pa.Array]]]) -> dict[str, pa.Array]:
    names = list(dict.fromkeys(name for _, cols in pieces for name in cols))
    out: dict[str, pa.Array] = {}
    for name in names:
        types = {cols[name].type for _, cols in pieces if name in cols and cols[name].type != pa.null()}
        typ = types.pop() if len(types) == 1 else pa.string() if types else pa.null()
        parts = []
        for n, cols in pieces:
            arr = cols.get(name)
            if arr is None or arr.type == pa.null():
                parts.append(pa.nulls(n, typ))
            elif arr.type != typ:
                parts.append(_plain_text(arr))
            else:
                parts.append(arr)
        out[name] = pa.concat_arrays(parts)
    return out


def _plain_text(arr: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr.cast(cv.TS), format="%Y-%m-%dT%H:%M:%SZ")
    return arr.cast(pa.string())


_BAD = object()
# nginx without `escape=json` writes `"`, `\\` and bytes outside printable ASCII as `\xHH`,
# which JSON does not allow; such a line is read as if they were `\u00HH` escapes.
_NGINX_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})")


def _loads(raw: str) -> Any:
    raw = raw.removeprefix("\ufeff")  # a byte-order mark opening the file
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    if "\\x" not in raw:
        return _BAD
    try:
        value = json.loads(_NGINX_ESCAPE.sub(r"\1\\u00\2", raw))
    except (ValueError, RecursionError):
        return _BAD
    return {k: _utf8(v) for k, v in value.items()} if isinstance(value, dict) else value


def _utf8(value: Any) -> Any:
    r"""`\xHH` escapes were bytes of UTF-8: re-read the code points U+0080-U+00FF as bytes."""
    if not isinstance(value, str) or not re.search("[\x80-\xff]", value):
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _read_fast(text: pa.Array) -> pa.Table | None:
    """The block through `pyarrow.json`, or None when it raised or rows do not match lines."""
    n = len(text)
    if n == 0:
        return pa.table({})
    joined = pc.binary_join_element_wise(text, "", "\n")  # every line gets its "\n"
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:joined.offset + n + 1]
    data = joined.buffers()[2][int(offsets[0]):int(offsets[-1])]
    longest = int(np.diff(offsets).max())
    opts = pj.ReadOptions(block_size=max(_MIN_BLOCK, 2 * longest + 16))
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=opts)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table if table.num_rows == n else None


def flatten(table: pa.Table) -> dict[str, pa.Array]:
    """Dotted leaf columns of a table read from JSON; arrays of scalars joined with `, `."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    out: dict[str, pa.Array] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            item = arr.type.value_type
            if pa.types.is_nested(item):
                continue  # arrays of objects (Kong `tries`) hold nothing a column needs
            arr = pc.binary_join(arr.cast(pa.list_(pa.string())), ", ")
        elif pa.types.is_nested(arr.type):
            continue
        out[name] = arr
    return out


def flatten_python(objs: list[dict[str, Any]]) -> dict[str, pa.Array]:
    """The slow twin of `flatten` for parsed objects (fallback path), with the same names."""
    n = len(objs)
    cols: dict[str, list[Any]] = {}
    for i, obj in enumerate(objs):
        stack: list[tuple[str, dict[str, Any]]] = [("", obj)]
        while stack:
            prefix, node = stack.pop()
            for key, value in node.items():
                name = prefix + key
                if isinstance(value, dict):
                    stack.append((name + ".", value))
                    continue
                if isinstance(value, list):
                    if any(isinstance(v, dict | list) for v in value):
                        continue
                    value = ", ".join(_text(v) or "" for v in value)
                cols.setdefault(name, [None] * n)[i] = value
    return {name: _typed(values) for name, values in cols.items()}


def _typed(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values if v is not None}
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds and kinds <= {int, float} and all(v is None or abs(v) < 2**62 for v in values):
        return pa.array(values, pa.int64() if kinds == {int} else pa.float64())
    return pa.array([_text(v) for v in values], pa.string())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


# --- values of JSON columns as text and time ------------------------------------------------

def as_text(arr: pa.Array) -> pa.Array:
    """A JSON column as strings: timestamps (inferred by pyarrow) in ISO form, `""` as null."""
    if pa.types.is_timestamp(arr.type):
        arr = pc.strftime(arr.cast(cv.TS), format="%Y-%m-%dT%H:%M:%SZ")
    return cv.nullify(arr.cast(pa.string()), "")


_ISO_SHAPE = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?$"
_HAS_ZONE = r"(?:Z|[+-]\d\d:?\d\d)$"


def time_iso(arr: pa.Array) -> pa.Array:
    """RFC 3339 / ISO 8601 (any fraction up to ns, zone or UTC) to UTC, vectorized.

    Arrow's own cast parses the usual shapes; anything else (CLF, odd layouts) goes to the
    per-distinct parser of `convert`.
    """
    if pa.types.is_timestamp(arr.type):
        return arr.cast(cv.TS)
    s = cv.nullify(arr.cast(pa.string()))
    shaped = pc.fill_null(pc.match_substring_regex(s, _ISO_SHAPE), False)
    zoned = pc.if_else(pc.match_substring_regex(s, _HAS_ZONE), s, pc.binary_join_element_wise(s, "Z", ""))
    try:
        fast = pc.cast(cv.set_null(zoned, pc.invert(shaped)), pa.timestamp("ns", "UTC")).cast(cv.TS, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return cv.time_iso(s)
    if pc.all(pc.or_(shaped, pc.is_null(s))).as_py():
        return fast
    return pc.coalesce(fast, cv.time_iso(cv.set_null(s, shaped)))


def time_epoch_auto(arr: pa.Array) -> pa.Array:
    """Epoch numbers whose unit is told by their size: s, ms, µs or ns since 1970."""
    if pa.types.is_integer(arr.type):
        # Integers stay integers: nanoseconds do not fit a double exactly.
        x = arr.cast(pa.int64())
        mag = pc.abs(x)
        micros = pc.if_else(pc.less(mag, 10**11), pc.multiply(x, 10**6), pc.if_else(
            pc.less(mag, 10**14), pc.multiply(x, 1000), pc.if_else(pc.less(mag, 10**17), x, pc.divide(x, 1000))))
        return micros.cast(cv.TS)
    num = arr.cast(pa.float64()) if pa.types.is_floating(arr.type) else \
        pc.cast(cv.nullify(arr.cast(pa.string())), pa.float64(), safe=False)
    num = pc.if_else(pc.is_finite(num), num, pa.scalar(None, pa.float64()))
    mag = pc.abs(num)
    scale = pc.if_else(pc.less(mag, 1e11), 1e6, pc.if_else(pc.less(mag, 1e14), 1e3,
                                                           pc.if_else(pc.less(mag, 1e17), 1.0, 1e-3)))
    micros = pc.round(pc.multiply(num, scale))
    micros = pc.if_else(pc.less(pc.abs(micros), 2.5e17), micros, pa.scalar(None, pa.float64()))  # year < 9999
    return pc.cast(micros, pa.int64()).cast(cv.TS)


def time_any(arr: pa.Array) -> pa.Array:
    """A timestamp of unknown layout: JSON numbers and numeric strings are epochs, other strings
    ISO 8601 or CLF (`time`, `ts`, `date`, `@timestamp` keys mean different things in the wild)."""
    if pa.types.is_timestamp(arr.type):
        return arr.cast(cv.TS)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return time_epoch_auto(arr)
    s = cv.nullify(arr.cast(pa.string()))
    numeric = pc.fill_null(pc.match_substring_regex(s, r"^\d{9,}(?:\.\d+)?$"), False)
    if not pc.any(numeric).as_py():
        return time_iso(s)
    return pc.coalesce(time_epoch_auto(cv.set_null(s, pc.invert(numeric))), time_iso(cv.set_null(s, numeric)))
