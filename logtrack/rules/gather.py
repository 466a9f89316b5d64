"""The request columns events copy, gathered at the emitted rows (DESIGN §2, §5).

An event carries 18 context columns of its request, and most events are page views (half the
rows of a batch), so this gather is one of the rules stage's larger costs. Arrow's take from a
chunked column (the chain's tables come in up to ten chunks, one per sessionizer push) costs
no more than combining the chunks first, and a few ns per null row, measured on those tables;
what is left to save is the columns that need no take at all: one without a value (no consent
signal in the log) is a null array, one of a single value (`source`, one log file) that value
repeated.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .context import DictCol


def gather(col: pa.Array | pa.ChunkedArray, rows: np.ndarray, encoded: DictCol | None = None) -> pa.Array | pa.ChunkedArray:
    """`col` at ascending `rows`. `encoded`, the batch's encoding of `col` when one exists,
    tells a single-valued column at no cost."""
    if col.null_count == len(col):
        return pa.nulls(len(rows), col.type)
    if encoded is not None and encoded.m == 1 and not col.null_count:
        return pa.repeat(encoded.values[0], len(rows))
    return col.take(pa.array(rows))
