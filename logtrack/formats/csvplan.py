"""The fastest plan for quote-and-space layouts: Arrow's CSV reader as the tokenizer.

Combined-style lines are space-separated fields, some in double quotes. Arrow's CSV reader
splits a whole block into such fields in one C++ pass — several times faster than splitting on
`"` and then on spaces. It is lenient where a log format is strict (a quote inside an unquoted
field, text after a closing quote), so it only reads lines that cannot be ambiguous: exactly the
template's number of quote characters and no backslash before a quote (escaped quotes are the
split plan's and the regex's job; a backslash elsewhere, as in nginx's `\\x22`, delimits nothing).
Everything it does not take falls through to those plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.csv as csv

from .strbuf import count_between
from .variables import QUOTED, Var
from .words import Segment, values_from_words, word_plan


@dataclass(frozen=True)
class CsvPlan:
    """Steps over CSV columns (see `words.values_from_words`), the column count, and the number
    of `"` characters a line of this layout holds."""

    steps: tuple[tuple, ...]
    columns: int
    quotes: int


def csv_plan(segments: list[Segment]) -> CsvPlan | None:
    """The CSV reading of a template's segments, or None when its layout is not fields
    separated by single spaces with whole-field quoting."""
    steps: list[tuple] = []
    col = 0
    quotes = 0
    last_index = len(segments) - 1
    for k, seg in enumerate(segments):
        if seg.quoted:
            if len(seg.tokens) != 1 or not isinstance(seg.tokens[0], Var):
                return None
            # Inside quotes any text is the value, as in the split plan and the full regex
            # (`"-"` or a garbage request is split_request's to judge, not a misfit).
            steps.append(("var", col, 0, "", "", replace(seg.tokens[0], pattern=QUOTED)))
            col += 1
            quotes += 2
            continue
        plan = word_plan(seg)
        if plan is None:
            return None
        word_steps, count = plan
        # The space next to a quote is the delimiter before or after a quoted field, not a word.
        first = 1 if k > 0 else 0
        stop = count - 1 if k < last_index else count
        for step in word_steps:
            if step[1] < first or step[1] >= stop:
                if step[0] != "lit" or step[2] != "":
                    return None  # a quote glued to other text (`]"`): not CSV fields
                continue
            steps.append((step[0], step[1] - first + col, *step[2:]))
        col += max(stop - first, 0)
    return CsvPlan(tuple(steps), col, quotes)


def read_fields(raw: bytes | bytearray, columns: int) -> tuple[pa.Table, np.ndarray] | None:
    """All lines of `raw` (valid UTF-8: `lines.split_lines` repaired it) as `columns` string fields;
    the 0-based lines that did not fit."""
    names = [f"f{i}" for i in range(columns)]
    misfits: list[int] = []

    def misfit(row: csv.InvalidRow) -> str:
        misfits.append(row.number)
        return "skip"

    try:
        table = csv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)),
            read_options=csv.ReadOptions(column_names=names, use_threads=False, block_size=len(raw) + 1),
            parse_options=csv.ParseOptions(delimiter=" ", quote_char='"', escape_char=False, double_quote=False,
                                           newlines_in_values=False, ignore_empty_lines=False,
                                           invalid_row_handler=misfit),
            # Read as binary and viewed as strings: the block is valid UTF-8 already, and the
            # reader's own validation was ≈3 % of a parse.
            convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()), null_values=[],
                                               strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if any(n < 1 for n in misfits):
        return None  # row numbers unknown: cannot map rows to lines
    strings = pa.Table.from_arrays(
        [(c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()).view(pa.string()) for c in table.columns],
        names=names)
    return strings, np.array(misfits, dtype=np.int64) - 1


def csv_piece(plan: CsvPlan, raw: bytes | bytearray, starts: np.ndarray, n: int, escaped_quote: np.ndarray
              ) -> tuple[np.ndarray, dict[str, pa.Array]] | None:
    """The lines of a clean block the CSV reader can take (indices) and their raw values.

    `escaped_quote` marks the lines with a backslash before a `"`: the reader would take that
    quote as a delimiter where the template's regex takes it as text. Other backslashes (nginx
    `\\x22`) delimit nothing in either reading: those lines are the reader's too.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    quotes = count_between(buf, 0x22, np.append(starts, len(buf)))
    unclear = (quotes != plan.quotes) | escaped_quote
    if unclear.all():
        return None
    odd = np.flatnonzero(unclear)
    if len(odd) > n // 20:
        return None  # mostly other shapes: the split plan is the better tool for this block
    if len(odd):
        # Blank out the lines the reader could misread (an unclosed quote would swallow the next
        # line and shift every row after it): each becomes a one-field row, a misfit in place.
        ends = np.append(starts[1:] - 1, len(buf))
        copy = bytearray(raw)
        for i in odd:
            start, end = int(starts[i]), int(ends[i])
            copy[start:end] = b"x" * (end - start)
        raw = copy  # (read as it is: no second copy of the block)
    read = read_fields(raw, plan.columns)
    if read is None:
        return None
    table, misfits = read
    if table.num_rows + len(misfits) != n:
        return None  # rows and lines do not line up: leave the block to the other plans
    # `table` holds every row that was not a misfit, in line order; keep the clear ones.
    kept = np.ones(n, dtype=bool)
    kept[misfits] = False
    clear_of_kept = ~unclear[kept]
    rows = np.flatnonzero(kept)[clear_of_kept]
    if not clear_of_kept.all():
        table = table.filter(pa.array(clear_of_kept))
    cols = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
    values, ok = values_from_words(list(plan.steps), lambda i: cols[i], len(rows))
    if not ok.all():
        keep = pa.array(ok)
        values = {k: v.filter(keep) for k, v in values.items()}
        rows = rows[ok]
    return rows, values
