"""Turn raw captured strings into REQUESTS columns and `fields`, by each variable's kind.

Shared by every format family (templates, JSON, W3C, delimited) so that conversions and the
column conventions of DESIGN §2 live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import convert as cv
from .variables import Var

# When two variables feed one column, the earlier kind in this list wins.
_PRIORITY = ["body_bytes_sent", "bytes_sent"]


def convert_one(kind: str, values: pa.Array, escaped: np.ndarray | None = None) -> pa.Array:
    """Convert one raw string column by kind (see `Var.kind`); `escaped` marks rows whose line
    holds a backslash (None: check every row)."""
    if kind == "ip":
        return cv.client_ip(values)
    if kind == "host":
        return cv.host_only(values)
    if kind == "status":
        return cv.status(values)
    if kind == "int":
        return cv.to_int(values)
    if kind == "text":
        return cv.nullify(cv.unescape(values, escaped))
    if kind == "urltext":
        return cv.nullify(cv.url_decode(values))
    if kind == "raw":
        return values.cast(pa.string())
    if kind == "query":
        return pc.replace_substring_regex(cv.nullify(values), r"^\?", "")
    if kind == "time_clf":
        return cv.time_clf(values)
    if kind == "time_iso":
        return cv.time_iso(values)
    if kind.startswith("epoch_"):
        return cv.time_epoch(values, kind.split("_", 1)[1])
    if kind.startswith("dur_"):
        return cv.duration_ms(values, kind.split("_", 1)[1])
    if kind.startswith("strftime:"):
        fmt = kind.split(":", 1)[1]
        parsed = cv.per_distinct(cv.nullify(values), lambda d: pc.strptime(d, format=fmt, unit="us", error_is_null=True))
        if not parsed.type.tz:
            parsed = pc.assume_timezone(parsed, "UTC")
        return parsed.cast(cv.TS)
    return cv.nullify(values)  # "str"


def convert_vars(raw: Mapping[str, pa.Array], variables: Mapping[str, Var], n: int,
                 escaped: np.ndarray | None = None) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """Columns and fields from raw captures (`raw[var.name]`, length `n`, null = not captured)."""
    columns: dict[str, pa.Array] = {}
    fields: dict[str, pa.Array] = {}
    # Later merges win for explicit columns, so the preferred variable is merged last.
    ordered = sorted(variables.values(),
                     key=lambda v: (1, -_PRIORITY.index(v.name)) if v.name in _PRIORITY else (0, 0))
    for var in ordered:
        values = raw.get(var.name)
        if values is None:
            continue
        if var.kind == "request":
            parts = cv.split_request(values)
            for col in ("method", "scheme", "host", "path", "query", "protocol"):
                _merge(columns, col, parts[col], prefer_existing=True)
            if pc.any(pc.is_valid(parts["request_raw"])).as_py():
                fields["request"] = parts["request_raw"]
            continue
        if var.kind == "target":
            parts = cv.split_target(cv.nullify(values))
            for col in ("scheme", "host", "path", "query"):
                _merge(columns, col, parts[col], prefer_existing=True)
            continue
        converted = convert_one(var.kind, values, escaped)
        if var.target:
            # An explicit variable ($host, $uri) beats what the request line implies.
            _merge(columns, var.target, converted, prefer_existing=False)
        else:
            fields[var.name] = converted.cast(pa.string())
    return columns, fields


def _merge(columns: dict[str, pa.Array], col: str, values: pa.Array, prefer_existing: bool) -> None:
    if col not in columns:
        columns[col] = values
    elif prefer_existing:
        columns[col] = pc.coalesce(columns[col], values)
    else:
        columns[col] = pc.coalesce(values, columns[col])
