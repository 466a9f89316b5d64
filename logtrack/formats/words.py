"""Space-separated words: how an unquoted stretch of a template maps onto the words of a line.

`word_plan` turns a segment of template tokens (`$remote_addr - $remote_user [$time_local] `)
into steps over its words; `values_from_words` evaluates the steps over any source of word
arrays — the words of a `split_pattern` (`split_words`) or the columns of Arrow's CSV reader
(`csvplan`) — checking literals, affixes and patterns the same way for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import strbuf
from .variables import COUNT, QUOTED, STATUS, Var

Token = str | Var
_WORD_PATTERNS = {r"\S+": 0, r"\S*": 0, r"\d+": 0}


@dataclass
class Segment:
    """A stretch of template tokens between two `"` (quoted) or outside them."""

    quoted: bool
    tokens: list[Token]


def word_plan(seg: Segment) -> tuple[list[tuple], int] | None:
    """Plan an unquoted segment as space-separated words, or None when it cannot be.

    Each step is ("lit", position, text) or ("var", position, span, prefix, suffix, var).
    """
    words: list[list[Token]] = [[]]
    for tok in seg.tokens:
        if isinstance(tok, str):
            for j, piece in enumerate(tok.split(" ")):
                if j:
                    words.append([])
                if piece:
                    words[-1].append(piece)
        else:
            words[-1].append(tok)
    steps: list[tuple] = []
    pos = 0
    for word in words:
        found = [t for t in word if isinstance(t, Var)]
        if len(found) > 1:
            return None
        if not found:
            steps.append(("lit", pos, "".join(str(t) for t in word)))
            pos += 1
            continue
        var = found[0]
        if var.kind == "time_clf":
            span = 1
        elif var.pattern in _WORD_PATTERNS or not _may_hold_space(var.pattern):
            span = 0
        else:
            return None
        at = word.index(var)
        prefix = "".join(str(t) for t in word[:at])
        suffix = "".join(str(t) for t in word[at + 1:])
        steps.append(("var", pos, span, prefix, suffix, var))
        pos += span + 1
    return steps, pos


def _may_hold_space(pattern: str) -> bool:
    return " " in pattern or "\\s" in pattern.replace("\\S", "") or "." in pattern.replace("\\.", "") or "[^" in pattern


def values_from_words(steps: list[tuple], word: Callable[[int], pa.Array], n: int
                      ) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Each variable's value from the words the steps name; the rows whose words fit."""
    ok = np.ones(n, dtype=bool)
    values: dict[str, pa.Array] = {}
    for step in steps:
        if step[0] == "lit":
            ok &= pc.fill_null(pc.equal(word(step[1]), step[2]), False).to_numpy(zero_copy_only=False)
            continue
        _, pos, span, prefix, suffix, var = step
        value = word(pos)
        for extra in range(1, span + 1):
            value = join_words(value, word(pos + extra))
        if prefix or suffix:
            fits = pc.and_(pc.starts_with(value, prefix), pc.ends_with(value, suffix))
            ok &= pc.fill_null(fits, False).to_numpy(zero_copy_only=False)
            value = pc.utf8_slice_codeunits(value, len(prefix), -len(suffix) if suffix else None)
        if var.pattern not in _WORD_PATTERNS and var.pattern != QUOTED and var.kind != "time_clf":
            # (a CLF time is checked to the character by its parser; a misfit becomes a reject there)
            ok &= _fits(value, var.pattern)
        values[var.name] = value
    return values, ok


def join_words(left: pa.Array, right: pa.Array) -> pa.Array:
    """`left + " " + right` per row. Words of one width each (a CLF time's `[10/Oct/2000:13:55:36`
    and `-0700]`) are laid side by side as byte matrices, a fraction of the join kernel's time."""
    a, b = strbuf.buffers(left), strbuf.buffers(right)
    n = len(left)
    if a is not None and b is not None and n and not left.null_count and not right.null_count:
        (ao, ad), (bo, bd) = a, b
        wa, wb = int(ao[1] - ao[0]), int(bo[1] - bo[0])
        if wa and wb and (ao[-1] - ao[0] == wa * n) and (bo[-1] - bo[0] == wb * n) \
                and (np.diff(ao) == wa).all() and (np.diff(bo) == wb).all():
            width = wa + 1 + wb
            matrix = np.empty((n, width), dtype=np.uint8)
            matrix[:, :wa] = ad[ao[0]:ao[-1]].reshape(n, wa)
            matrix[:, wa] = 0x20
            matrix[:, wa + 1:] = bd[bo[0]:bo[-1]].reshape(n, wb)
            offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])
    return pc.binary_join_element_wise(left, right, " ")


def _fits(value: pa.Array, pattern: str) -> np.ndarray:
    """Rows whose value matches `pattern` whole; digit patterns use a kernel, not a regex."""
    if pattern in (STATUS, COUNT):
        quick = _ascii_digits(value, 3 if pattern == STATUS else None)
        if quick is not None:
            return quick
        digits = pc.utf8_is_digit(value)
        if pattern == STATUS:
            digits = pc.and_(digits, pc.less_equal(pc.binary_length(value), 3))
        fits = pc.or_(digits, pc.equal(value, "-"))
    else:
        fits = pc.match_substring_regex(value, f"^(?:{pattern})$")
    return pc.fill_null(fits, False).to_numpy(zero_copy_only=False)


def _ascii_digits(value: pa.Array, longest: int | None) -> np.ndarray | None:
    """`_fits` of a digits-or-`-` pattern from the buffers: rows of 1..`longest` ASCII digits,
    or `-`. Rows holding any other byte are decided by the kernels, as before (Unicode digits
    are digits to `utf8_is_digit`). None: not a plain string array without nulls."""
    found = strbuf.buffers(value)
    if found is None or value.null_count:
        return None
    offsets, data = found
    lengths = np.diff(offsets)
    fits = lengths > 0 if longest is None else (lengths > 0) & (lengths <= longest)
    region = data[offsets[0]:offsets[-1]]
    other = np.flatnonzero((region < 0x30) | (region > 0x39))
    if len(other):
        rows = np.unique(np.searchsorted(offsets, other + offsets[0], side="right") - 1)
        sub = value.take(pa.array(rows))
        digits = pc.utf8_is_digit(sub)
        if longest is not None:
            digits = pc.and_(digits, pc.less_equal(pc.binary_length(sub), longest))
        fits[rows] = pc.fill_null(pc.or_(digits, pc.equal(sub, "-")), False).to_numpy(zero_copy_only=False)
    return fits


def split_words(part: pa.Array, seg: Segment) -> tuple[dict[str, pa.Array], np.ndarray] | None:
    """Values of an unquoted segment by splitting on single spaces (None: use the regex)."""
    plan = word_plan(seg)
    if plan is None:
        return None
    steps, count = plan
    words = pc.split_pattern(part, " ")
    if not pc.all(pc.equal(pc.list_value_length(words), count)).as_py():
        return None  # some lines have other spacing: the segment regex handles them all
    return values_from_words(steps, lambda i: pc.list_element(words, i), len(part))
