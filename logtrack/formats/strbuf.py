"""Questions about a string column answered from its offsets and bytes with numpy.

A `pyarrow.compute` call over a block's column costs tens of microseconds plus a pass over the
strings, and the answer comes back as another Arrow array to convert. Where the answer only
needs the lengths or one byte per value (`-` or empty, which values hold a `:`), numpy over
the column's own buffers is one cheap pass and yields the mask directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """The offsets (length n+1) and bytes of a plain `string` array, or None for other types."""
    if arr.type != pa.string():
        return None
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + n + 1] if n else np.zeros(1, np.int32)
    data = arr.buffers()[2]
    return offsets, (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8))


def dash_or_empty(arr: pa.StringArray, empty: bool = True) -> np.ndarray | None:
    """Which values are `-` (or empty, with `empty`); nulls: whatever their slot holds; None for
    other types."""
    found = buffers(arr)
    if found is None:
        return None
    offsets, data = found
    lengths = np.diff(offsets)
    mask = lengths == 0 if empty else np.zeros(len(lengths), dtype=bool)
    ones = np.flatnonzero(lengths == 1)
    if len(ones):
        mask[ones] = data[offsets[ones]] == 0x2D
    return mask


def holding(arr: pa.StringArray, byte: int) -> np.ndarray | None:
    """Which values contain `byte` (an ASCII byte: never part of a longer UTF-8 character)."""
    found = buffers(arr)
    if found is None:
        return None
    offsets, data = found
    mask = np.zeros(len(arr), dtype=bool)
    hits = np.flatnonzero(data[offsets[0]:offsets[-1]] == byte)
    if len(hits):
        rows = np.searchsorted(offsets, hits + offsets[0], side="right") - 1
        mask[rows] = True
    return mask


def with_nulls(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    """`arr` (a plain array) with nulls where `mask` is true, sharing its buffers."""
    valid = ~mask
    if arr.null_count:
        valid &= arr.is_valid().to_numpy(zero_copy_only=False)
    if valid.all():
        return arr
    if not valid.any():
        return pa.nulls(len(arr), arr.type)
    bits = np.concatenate([np.zeros(arr.offset, dtype=bool), valid]) if arr.offset else valid
    bitmap = pa.array(bits).buffers()[1]
    return pa.Array.from_buffers(arr.type, len(arr), [bitmap, *arr.buffers()[1:]], offset=arr.offset)


SPLICE_ROWS = 64  # at most this many replaced rows are spliced (a few numpy copies each)


def replace_rows(arr: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array | None:
    """`arr` with the strings at `rows` (ascending, distinct) replaced by `values`, or None when
    this cannot tell (other types, nulls among `values` or at `rows`, many rows).

    `pc.replace_with_mask` rebuilds every string of the column; a block's escaped user agents or
    bracketed addresses are a handful of rows, so the bytes between them are copied as whole
    stretches and only the offsets after each replaced row move.
    """
    found, new = buffers(arr), buffers(values)
    n = len(arr)
    if found is None or new is None or values.null_count or len(rows) != len(values) or len(rows) > SPLICE_ROWS:
        return None
    if not len(rows):
        return arr
    rows = np.asarray(rows, dtype=np.int64)
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    if valid is not None and not valid[rows].all():
        return None
    offsets, data = found
    vo, vd = new
    starts, ends = offsets[rows].astype(np.int64), offsets[rows + 1].astype(np.int64)
    pieces = []
    prev = int(offsets[0])
    for k in range(len(rows)):
        pieces += [data[prev:starts[k]], vd[vo[k]:vo[k + 1]]]
        prev = int(ends[k])
    pieces.append(data[prev:offsets[-1]])
    joined = np.concatenate(pieces)
    if len(joined) >= 1 << 31:
        return None
    shift = np.zeros(n + 1, dtype=np.int64)
    shift[rows + 1] = np.diff(vo).astype(np.int64) - (ends - starts)
    out_offsets = (offsets.astype(np.int64) - offsets[0] + np.cumsum(shift)).astype(np.int32)
    bitmap = pa.array(valid).buffers()[1] if valid is not None else None
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(out_offsets), pa.py_buffer(joined)])
