"""The format interface and registry (DESIGN §3).

A format turns a `Lines` block into requests (REQUESTS columns) and rejects. Formats are
declarative: a format module builds `LogFormat` objects from a template string, a JSON key map
or a W3C field table, and registers them under their preset names. Parsers produce raw column
arrays; `assemble` converts and conforms them in one place so every format obeys the column
conventions of DESIGN §2 the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UsageError
from ..lines import Lines
from ..schema import REJECTS, REQUESTS, conform, empty
from . import strbuf


@dataclass
class Parsed:
    """What a format made of one block: requests (REQUESTS schema) and rejects (REJECTS)."""

    requests: pa.Table
    rejects: pa.Table


class LogFormat(ABC):
    """A log format: `parse` is a pure function of a block of lines and per-source state."""

    name: str = ""
    description: str = ""
    #: Formats that only make sense when named (a user's exotic layout) are not auto-detected.
    detectable: bool = True

    def new_state(self) -> dict[str, Any]:
        """Per-source state carried across blocks (a W3C `#Fields:` layout, say)."""
        return {}

    @abstractmethod
    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse one block of data lines."""


_REGISTRY: dict[str, LogFormat] = {}


def register(fmt: LogFormat) -> LogFormat:
    """Add a format under its name; a second format with the same name is a programming error."""
    if fmt.name in _REGISTRY:
        raise ValueError(f"format {fmt.name!r} registered twice")
    _REGISTRY[fmt.name] = fmt
    return fmt


def registry() -> dict[str, LogFormat]:
    """Every registered format by name (built-ins are imported on first use)."""
    from . import load_builtins

    load_builtins()
    return _REGISTRY


def get_format(name: str) -> LogFormat:
    """A registered format by name, or a UsageError listing the names."""
    formats = registry()
    if name not in formats:
        raise UsageError(f"unknown format {name!r}; known: {', '.join(sorted(formats))}")
    return formats[name]


def rejects_table(lines: Lines | RowsOf, mask: np.ndarray | pa.Array, reason: str | pa.Array) -> pa.Table:
    """Reject rows for the lines where `mask` is true, with one reason or one per line."""
    mask_arr = pa.array(mask) if isinstance(mask, np.ndarray) else mask
    if not pc.any(mask_arr).as_py():
        return empty(REJECTS)
    text = lines.text_of(np.flatnonzero(np.asarray(mask_arr.to_numpy(zero_copy_only=False))))
    reasons = reason.filter(mask_arr) if isinstance(reason, pa.Array) else pa.repeat(reason, len(text))
    return pa.table(
        {
            "source": pa.repeat(lines.source, len(text)).cast(pa.string()),
            "line": lines.line.filter(mask_arr),
            "reason": reasons.cast(pa.string()),
            "text": text,
        },
        schema=REJECTS,
    )


class RowsOf:
    """Some rows of a block, for `assemble`: line numbers taken now, text only if a reject needs it
    (copying the whole text of a block to report nothing was a measurable cost)."""

    def __init__(self, lines: Lines, rows: np.ndarray) -> None:
        self.source = lines.source
        self._lines, self._rows = lines, pa.array(rows)
        self.line = lines.line.take(self._rows)
        self._text: pa.Array | None = None

    @property
    def text(self) -> pa.Array:
        if self._text is None:
            self._text = self._lines.text_of(self._rows.to_numpy())
        return self._text

    def text_of(self, rows: np.ndarray) -> pa.Array:
        """The strings of some of these rows."""
        return self._lines.text_of(self._rows.to_numpy()[rows])

    def __len__(self) -> int:
        return len(self._rows)


def assemble(lines: Lines | RowsOf, columns: dict[str, pa.Array], ok: pa.Array, fields: dict[str, pa.Array],
             reason: str = "does not match the format") -> Parsed:
    """Build the requests table from converted columns for rows where `ok` is true.

    `columns` hold REQUESTS columns for every line of `lines` (nulls where not parsed); `fields`
    the extra named values that go into the `fields` map (null entries are left out). Rows with
    a null `ts` are rejected as "bad or missing timestamp".
    """
    ok = pc.fill_null(ok, False)
    if "ts" in columns:
        bad_ts = pc.and_(ok, pc.is_null(columns["ts"]))
    else:
        bad_ts = pc.and_(ok, pa.repeat(True, len(lines)))
    good = pc.and_not(ok, bad_ts)
    rejects = pa.concat_tables([
        rejects_table(lines, pc.invert(ok), reason),
        rejects_table(lines, bad_ts, "bad or missing timestamp"),
    ])
    everything = pc.all(good).as_py() is not False
    keep = (lambda a: a) if everything else (lambda a: a.filter(good))
    cols = {name: keep(arr) for name, arr in columns.items()}
    n = len(cols["ts"]) if "ts" in cols else 0
    if fields:
        cols["fields"] = build_map({k: keep(v) for k, v in fields.items()}, n)
    cols["source"] = pa.repeat(lines.source, n).cast(pa.string())
    cols["line"] = keep(lines.line)
    table = conform(pa.table(cols) if cols else pa.table({"ts": pa.nulls(0)}), REQUESTS)
    return Parsed(table, rejects)


def _no_dash(arr: pa.Array) -> pa.Array:
    """`arr` with `-` values null (sharing its buffers when it is a plain string array)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dash = strbuf.dash_or_empty(arr, empty=False)
    if dash is None:
        return pc.if_else(pc.equal(arr, "-"), None, arr)
    return strbuf.with_nulls(arr, dash)


def build_map(fields: dict[str, pa.Array], n: int) -> pa.MapArray:
    """A map<string,string> column from named columns, leaving out null and `-` values."""
    if not fields:
        return pa.nulls(n, REQUESTS.field("fields").type)
    # `-` means "no value" in logs, except in `request`, which keeps the raw request as logged.
    cleaned = {k: a.cast(pa.string()) if k == "request" else _no_dash(a.cast(pa.string())) for k, a in fields.items()}
    cleaned = {k: v for k, v in cleaned.items() if v.null_count < len(v)}  # e.g. `%l`, always `-`
    if not cleaned:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string()))
    names, values = list(cleaned), list(cleaned.values())
    valid = np.stack([pc.is_valid(v).to_numpy(zero_copy_only=False) for v in values], axis=1)
    counts = valid.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    flat_vals = pa.concat_arrays([v.cast(pa.string()) for v in values])  # column-major
    # Reorder to row-major: row r, field f sits at f * n + r in the concatenation.
    order = (np.arange(len(names))[None, :] * n + np.arange(n)[:, None])[valid]
    keys = pa.array(np.array(names, dtype=object)[np.nonzero(valid)[1]], pa.string())
    items = flat_vals.take(pa.array(order, pa.int64()))
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items)
