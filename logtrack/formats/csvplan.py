"""The fastest plan for quote-and-space layouts: Arrow's CSV reader cuts the lines at their quotes.

Combined-style lines are space-separated words and `"quoted"` values. Arrow's CSV reader, told
that `"` is the delimiter and that nothing is quoted, splits a whole block at its quotes in one
C++ pass: the odd columns are the quoted values as they are, the even ones the short unquoted
stretches between them (`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] `, ` 200 512 `). Those are
then cut at their spaces with numpy (`Stretch`), each word a piece of the column's own bytes.
This is the `"`-split plan of `template` done in bulk. The reader's pass costs ≈40 % less than
reading every space-separated field with quoting on, and no line's quotes need counting first
(an unclosed quote there swallowed the next line; here a quote delimits nothing more).

A line is read here only when it has the layout's number of quotes, none escaped (`\\"` is the
split plan's and the regex's job; a backslash elsewhere, as in nginx's `\\x22`, delimits
nothing) and the layout's number of single spaces in each stretch. Everything else falls through
to those plans, which read such lines as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.csv as csv

from . import strbuf
from .variables import QUOTED, Var
from .words import Segment, values_from_words, word_plan


@dataclass(frozen=True)
class CsvPlan:
    """Per `"`-delimited column: ("quoted", var) for a quoted value, or ("words", steps, count)
    for an unquoted stretch of `count` space-separated words (steps: `words.word_plan`)."""

    columns: tuple[tuple, ...]


def csv_plan(segments: list[Segment]) -> CsvPlan | None:
    """The CSV reading of a template's segments, or None when a quoted segment is more than
    one variable or an unquoted one is not space-separated words."""
    columns: list[tuple] = []
    for seg in segments:
        if seg.quoted:
            if len(seg.tokens) != 1 or not isinstance(seg.tokens[0], Var):
                return None
            # Inside quotes any text is the value, as in the split plan and the full regex
            # (`"-"` or a garbage request is split_request's to judge, not a misfit).
            columns.append(("quoted", replace(seg.tokens[0], pattern=QUOTED)))
            continue
        plan = word_plan(seg)
        if plan is None:
            return None
        columns.append(("words", tuple(plan[0]), plan[1]))
    return CsvPlan(tuple(columns))


def read_columns(raw: bytes | bytearray, columns: int) -> tuple[list[pa.Array], np.ndarray] | None:
    """Every line of `raw` (valid UTF-8: `lines.split_lines` repaired it) cut at its `"` into
    `columns` strings; the 0-based lines with another number of quotes (left out)."""
    names = [f"f{i}" for i in range(columns)]
    misfits: list[int] = []

    def misfit(row: csv.InvalidRow) -> str:
        misfits.append(row.number)
        return "skip"

    try:
        table = csv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)),
            read_options=csv.ReadOptions(column_names=names, use_threads=False, block_size=len(raw) + 1),
            parse_options=csv.ParseOptions(delimiter='"', quote_char=False, escape_char=False, double_quote=False,
                                           newlines_in_values=False, ignore_empty_lines=False,
                                           invalid_row_handler=misfit),
            # Read as binary and viewed as strings: the block is valid UTF-8 already, and a cut
            # at an ASCII quote is a character boundary.
            convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()), null_values=[],
                                               strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if any(n < 1 for n in misfits):
        return None  # row numbers unknown: cannot map rows to lines
    cols = [(c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()).view(pa.string()) for c in table.columns]
    return cols, np.array(misfits, dtype=np.int64) - 1


class Stretch:
    """An unquoted stretch per row cut into `count` words at single spaces, as pieces of the
    column's bytes; `fits` marks the rows with exactly count - 1 spaces."""

    def __init__(self, column: pa.Array, count: int) -> None:
        found = strbuf.buffers(column)
        assert found is not None
        offsets, data = found
        n = len(column)
        lo = int(offsets[0])
        spaces = (np.flatnonzero(data[lo:int(offsets[-1])] == 0x20) + lo).astype(np.int32)
        first = np.searchsorted(spaces, offsets)
        self.fits = np.diff(first) == count - 1
        # Per row: the words' starts and the spaces between them, in order (each piece ends
        # where the next begins, a row's last word where the next row starts).
        bounds = np.empty((n, 2 * count - 1), dtype=np.int32)
        bounds[:, 0] = offsets[:-1]
        if count > 1:
            if len(spaces):
                at = spaces[np.minimum(first[:-1, None] + np.arange(count - 1), len(spaces) - 1)]
            else:
                at = np.zeros((n, count - 1), dtype=np.int32)
            if not self.fits.all():  # a row of another shape: one last word, whole
                at[~self.fits] = offsets[:-1][~self.fits, None]
                bounds[:, 1::2] = at
                bounds[:, 2::2] = at + self.fits[:, None]
            else:
                bounds[:, 1::2] = at
                bounds[:, 2::2] = at + 1
        flat = np.append(bounds.ravel(), offsets[-1:])
        self.pieces = pa.Array.from_buffers(pa.string(), n * (2 * count - 1),
                                            [None, pa.py_buffer(flat), column.buffers()[2]])
        self.bounds, self.ends = bounds, offsets[1:]
        self.data, self.count, self.n = data, count, n
        self._words: dict[int, pa.Array] = {}

    def word(self, j: int) -> pa.Array:
        """Word j of every row (one take from the pieces)."""
        if j not in self._words:
            index = np.arange(self.n, dtype=np.int32) * np.int32(2 * self.count - 1) + np.int32(2 * j)
            self._words[j] = self.pieces.take(pa.array(index))
        return self._words[j]

    def equals(self, j: int, text: str) -> np.ndarray:
        """Which rows' word j is `text`, from the bytes (no strings built)."""
        end = self.bounds[:, 2 * j + 1] if j < self.count - 1 else self.ends
        return _equal_bytes(self.data, self.bounds[:, 2 * j], end, text)


def _equal_bytes(data: np.ndarray, start: np.ndarray, end: np.ndarray, text: str) -> np.ndarray:
    """Which data[start:end] are `text`."""
    literal = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    same = end - start == len(literal)
    if not len(data):
        return same & (len(literal) == 0)
    for i, byte in enumerate(literal):
        same &= data[np.minimum(start + i, len(data) - 1)] == byte
    return same


def csv_piece(plan: CsvPlan, raw: bytes | bytearray, starts: np.ndarray, n: int, escaped_quote: np.ndarray
              ) -> tuple[np.ndarray, dict[str, pa.Array]] | None:
    """The lines of a clean block this plan reads (indices) and their raw values.

    `escaped_quote` marks the lines with a backslash before a `"`: the reader would take that
    quote as a delimiter where the template's regex takes it as text. Other backslashes (nginx
    `\\x22`) delimit nothing in either reading: those lines are the reader's too.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    cr = np.flatnonzero(buf[:-1] == 0x0D)
    cr = cr[buf[cr + 1] != 0x0A]
    blanked = np.unique(np.searchsorted(starts, cr, side="right") - 1)
    if len(blanked):
        # A lone `\r` is data in a line but a line break to the reader: blank out those lines
        # (each becomes a one-field row, a misfit in place) so that rows and lines line up.
        ends = np.append(starts[1:] - 1, len(buf))
        copy = bytearray(raw)
        for i in blanked:
            start, end = int(starts[i]), int(ends[i])
            copy[start:end] = b"x" * (end - start)
        raw = copy
    read = read_columns(raw, len(plan.columns))
    if read is None:
        return None
    cols, misfits = read
    rows_read = len(cols[0]) if cols else 0
    if rows_read + len(misfits) != n:
        return None  # rows and lines do not line up (a lone `\r`): leave the block to the other plans
    kept = np.ones(n, dtype=bool)
    kept[misfits] = False
    odd = ~kept | escaped_quote
    odd[blanked] = False  # (not another shape: left to the other plans all the same)
    if int(odd.sum()) > n // 20:
        return None  # mostly other shapes: the split plan is the better tool for this block
    rows = np.flatnonzero(kept)
    ok = ~escaped_quote[rows]
    values: dict[str, pa.Array] = {}
    for col, spec in zip(cols, plan.columns, strict=True):
        if spec[0] == "quoted":
            values[spec[1].name] = col
            continue
        _, steps, count = spec
        if all(step[0] == "lit" for step in steps):  # (` ` between two quoted values, `` after the last)
            found = strbuf.buffers(col)
            assert found is not None
            offsets, data = found
            ok &= _equal_bytes(data, offsets[:-1], offsets[1:], " ".join(step[2] for step in steps))
            continue
        stretch = Stretch(col, count)
        ok &= stretch.fits
        others = []
        for step in steps:  # literals are checked from the bytes; the variables take words
            if step[0] == "lit":
                ok &= stretch.equals(step[1], step[2])
            else:
                others.append(step)
        found, fits = values_from_words(others, stretch.word, len(rows))
        values.update(found)
        ok &= fits
    if not ok.any():
        return None
    if not ok.all():
        keep = pa.array(ok)
        values = {k: v.filter(keep) for k, v in values.items()}
        rows = rows[ok]
    return rows, values
