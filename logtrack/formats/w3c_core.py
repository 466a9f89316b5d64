"""The generic W3C extended reader (DESIGN §3): a layout built from each `#Fields:` header.

A W3C log declares its columns in a `#Fields:` directive; the directives arrive in
`Lines.comments` with their line numbers, and a layout applies to the data lines after it until
the next header (IIS writes a new one after a restart), across blocks through the per-source
`state`. Lines are split on tabs (CloudFront), on runs of spaces (IIS, NetScaler, CloudFront
RTMP), or quote-aware where values are quoted (Incapsula, IIS advanced logging); each W3C field
name then maps to a REQUESTS column through `w3c_fields.map_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from ..schema import REJECTS, REQUESTS, empty
from . import convert as cv
from .base import LogFormat, Parsed, assemble, rejects_table
from .delimited import fixed_width
from .w3c_fields import Decoding, map_fields

_SEP = "\x1f"  # marks token ends in quote-aware splitting; a line holding it simply mismatches
_TOKEN = r'[ \t]*("[^"]*"|[^ \t"]+)[ \t]*'
_IIS = re.compile(r"Internet Information Services|\bIIS\b", re.I)
_DATE = re.compile(r"^\s*(\d{4}-\d\d-\d\d)")
NO_HEADER = "no #Fields: header before this line (a W3C extended log declares its fields first)"


@dataclass(frozen=True)
class Layout:
    """The fields a `#Fields:` header declared, with the directives that qualify them."""

    fields: tuple[str, ...]
    line: int  # line number of the `#Fields:` header
    software: str | None = None  # `#Software:` seen before the header
    date: str | None = None  # `#Date:` day, for layouts with `time` but no `date`

    @property
    def is_iis(self) -> bool:
        """True when the `#Software:` directive names IIS (time-taken in milliseconds)."""
        return bool(self.software and _IIS.search(self.software))


def parse_directive(text: str) -> tuple[str, str] | None:
    """`#Name: value` → (lower-case name, value), or None for a comment that is no directive."""
    m = re.match(r"^#\s*([A-Za-z-]+)\s*:(.*)$", text)
    return (m.group(1).lower(), m.group(2).strip()) if m else None


def header_fields(value: str) -> tuple[str, ...]:
    """Field names of a `#Fields:` value (any whitespace between them, stray U+200B removed)."""
    return tuple(value.replace("\u200b", "").split())


def layout_changes(lines: Lines, state: dict[str, Any]) -> tuple[np.ndarray, list[Layout | None]]:
    """Walk the block's directives in line order.

    Returns the line numbers where the layout changes and the layout from each change on; index
    0 of the list is the layout the block starts with (from `state`). `state` is left holding the
    layout, software and date in force at the end of the block.
    """
    lines_at: list[int] = []
    layouts: list[Layout | None] = [state.get("layout")]
    for number, text in lines.comments:
        directive = parse_directive(text)
        if directive is None:
            continue
        name, value = directive
        current = state.get("layout")
        if name == "fields":
            new: Layout | None = Layout(header_fields(value), number, state.get("software"), state.get("date"))
        elif name == "software":
            state["software"] = value
            continue  # applies to the next `#Fields:` header
        elif name == "date":
            m = _DATE.match(value)
            state["date"] = m.group(1) if m else None
            if current is None or "date" in current.fields:
                continue
            new = replace(current, date=state["date"])
        else:
            continue
        state["layout"] = new
        lines_at.append(number)
        layouts.append(new)
    return np.array(lines_at, dtype=np.int64), layouts


def split_fields(text: pa.Array, k: int) -> tuple[list[pa.Array], np.ndarray]:
    """Split W3C data lines into `k` string columns; the mask says which lines had `k` fields.

    Tab-separated lines split on single tabs (empty fields allowed); lines with a `"` are split
    quote-aware (quotes removed); the rest split on runs of spaces.
    """
    n = len(text)
    if pc.any(pc.match_substring(text, "\u200b")).as_py():
        text = pc.replace_substring(text, "\u200b", "")  # pasted from AWS's HTML docs, invisible
    tab = pc.fill_null(pc.match_substring(text, "\t"), False).to_numpy(zero_copy_only=False)
    quote = pc.fill_null(pc.match_substring(text, '"'), False).to_numpy(zero_copy_only=False) & ~tab
    plain = ~tab & ~quote
    parts: list[tuple[np.ndarray, pa.Array]] = []
    quoted = partial(_split_quoted, k=k)
    for mask, splitter in ((tab, _split_tabs), (quote, quoted), (plain, _split_spaces)):
        if mask.all():
            parts = [(np.arange(n), splitter(text))]
            break
        if mask.any():
            idx = np.flatnonzero(mask)
            parts.append((idx, splitter(text.take(pa.array(idx)))))
    if not parts:
        return [pa.nulls(0, pa.string()) for _ in range(k)], np.zeros(0, dtype=bool)
    if len(parts) == 1:
        lists = parts[0][1]
    else:
        order = np.concatenate([idx for idx, _ in parts])
        lists = pa.concat_arrays([lst for _, lst in parts]).take(pa.array(np.argsort(order, kind="stable")))
    ok = pc.equal(pc.list_value_length(lists), k).to_numpy(zero_copy_only=False)
    grid = fixed_width(lists, k)  # lines with another count are padded or cut, and not ok
    return [grid.element(i) for i in range(k)], ok


def _split_tabs(text: pa.Array) -> pa.Array:
    return pc.split_pattern(text, "\t")


def _split_spaces(text: pa.Array) -> pa.Array:
    # Single spaces between fields and none around them (IIS): the plain split is exact.
    if not pc.any(pc.match_substring_regex(text, r"(^ |  | $)")).as_py():
        return pc.split_pattern(text, " ")
    return pc.split_pattern_regex(pc.utf8_trim(text, " \t"), r"[ \t]+")


def _split_quoted(text: pa.Array, k: int) -> pa.Array:
    # Every value quoted (Incapsula): `"a" "b c" ""` splits on `" "` without a regex.
    whole = cv.as_mask(pc.and_(pc.starts_with(text, '"'), pc.ends_with(text, '"')))
    if whole.all() and len(text):
        lists = pc.split_pattern(pc.utf8_slice_codeunits(text, 1, -1), '" "')
        if pc.all(pc.equal(pc.list_value_length(lists), k)).as_py():
            return lists
    return _tokenize_quoted(text)


def _tokenize_quoted(text: pa.Array) -> pa.Array:
    """Quote-aware tokens of each line (some values quoted, some not), quotes removed."""
    marked = pc.utf8_rtrim(pc.replace_substring_regex(text, _TOKEN, "\\1" + _SEP), _SEP)
    lists = pc.split_pattern(marked, _SEP)
    flat = pc.replace_substring_regex(pc.list_flatten(lists), r'^"(.*)"$', r"\1")
    return pa.ListArray.from_arrays(lists.offsets, flat)


class W3CFormat(LogFormat):
    """A W3C extended log read through its `#Fields:` headers.

    `time_taken` is the unit of `time-taken`: `s`, `ms`, or `auto` (milliseconds when the
    `#Software:` directive names IIS, seconds otherwise, as the W3C draft defines it).
    `accepts(layout)` returns None for a layout this preset reads, or why it does not (so a
    preset rejects other products' W3C logs, which auto-detection relies on).
    """

    def __init__(self, name: str, description: str, time_taken: str = "auto",
                 decoding: Decoding | None = None,
                 accepts: Callable[[Layout], str | None] | None = None) -> None:
        self.name, self.description = name, description
        self.time_taken = time_taken
        self.decoding = decoding or Decoding()
        self.accepts = accepts

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse a block: each data line with the layout of the last `#Fields:` header above it."""
        change_lines, layouts = layout_changes(lines, state)
        n = len(lines)
        if n == 0:
            return Parsed(empty(REQUESTS), empty(REJECTS))
        numbers = lines.line.to_numpy()
        which = np.searchsorted(change_lines, numbers, side="right") if len(change_lines) else np.zeros(n, np.int64)
        results: list[Parsed] = []
        for li in np.unique(which):
            mask = which == li
            sub = lines if mask.all() else lines.take(pa.array(np.flatnonzero(mask)))
            results.append(self._parse_layout(sub, layouts[int(li)]))
        if len(results) == 1:
            return results[0]
        requests = pa.concat_tables([r.requests for r in results])
        rejects = pa.concat_tables([r.rejects for r in results])
        return Parsed(requests.take(pc.sort_indices(requests["line"])),
                      rejects.take(pc.sort_indices(rejects["line"])))

    def unit(self, layout: Layout) -> str:
        """The unit of `time-taken` for this layout."""
        if self.time_taken != "auto":
            return self.time_taken
        return "ms" if layout.is_iis else "s"

    def _parse_layout(self, lines: Lines, layout: Layout | None) -> Parsed:
        everything = np.ones(len(lines), dtype=bool)
        if layout is None:
            return Parsed(empty(REQUESTS), rejects_table(lines, everything, NO_HEADER))
        refusal = self.accepts(layout) if self.accepts else None
        if refusal:
            return Parsed(empty(REQUESTS), rejects_table(lines, everything, refusal))
        k = len(layout.fields)
        values, ok = split_fields(lines.text, k)
        columns, fields = map_fields(dict(zip(layout.fields, values, strict=True)), len(lines),
                                     self.unit(layout), self.decoding, layout.date)
        reason = f"not the {k} fields of the #Fields: header at line {layout.line}"
        return assemble(lines, columns, pa.array(ok), fields, reason=reason)
