"""Per-column work done once and shared between stages: dictionary encodings and derived results.

The chain runs `identify` then `privacy.apply` over the same table: both need the distinct user
agents, and both truncate `client_ip`. Rather than change the stage contracts, results are
remembered per Arrow array (`memo`): the key is the identity of the array's buffers plus its
offset and length, and the entry holds a reference to the array, so its buffers stay alive and no
other array can reuse their addresses — an equal key then means the very same data (Arrow
buffers are immutable). The memo is tiny (the last few columns): it spans one batch, not a run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

T = TypeVar("T")
_MEMO_SIZE = 32
_memo: OrderedDict[tuple, tuple[pa.Array, Any]] = OrderedDict()
_lock = threading.Lock()


def single(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array, without copying when the column has a single chunk (the usual case:
    `combine_chunks` copies even then, which would also defeat `memo`)."""
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 1:
            return col.chunk(0)
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col


def _identity(arr: pa.Array) -> tuple:
    return (str(arr.type), arr.offset, len(arr),
            tuple(0 if b is None else b.address for b in arr.buffers()))


def memo(kind: Hashable, arr: pa.Array, compute: Callable[[pa.Array], T]) -> T:
    """`compute(arr)`, remembered for this very array under `kind` (see the module docstring)."""
    key = (kind, _identity(arr))
    with _lock:
        hit = _memo.get(key)
        if hit is not None:
            _memo.move_to_end(key)
            return hit[1]
    value = compute(arr)
    with _lock:
        _memo[key] = (arr, value)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return value


def peek(kind: Hashable, arr: pa.Array) -> Any | None:
    """What `memo` holds for this array under `kind`, without computing it (None when absent)."""
    with _lock:
        hit = _memo.get((kind, _identity(arr)))
    return None if hit is None else hit[1]


def _encode(arr: pa.Array) -> pa.DictionaryArray:
    if pa.types.is_dictionary(arr.type):
        return arr
    return pc.dictionary_encode(arr.cast(pa.string()) if arr.type != pa.string() else arr)


def encode(col: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """Dictionary encoding of a string column (nulls stay null in the indices), once per array."""
    return memo("encode", single(col), _encode)


def _keys(fields: pa.Array) -> frozenset[str]:
    return frozenset(pc.unique(fields.keys).to_pylist())


def field_keys(fields: pa.Array | pa.ChunkedArray) -> frozenset[str]:
    """Every key used in a `fields` map column (once per array). A superset when the array is a
    slice — fine: it only tells which `map_lookup`s can be skipped because no row has the key."""
    fields = single(fields)
    if len(fields) == 0 or fields.null_count == len(fields) or len(fields.keys) == 0:
        return frozenset()
    return memo("field_keys", fields, _keys)


def per_distinct(col: pa.Array | pa.ChunkedArray, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """`fn` over the distinct values only, spread back to the rows with `take`."""
    enc = encode(col)
    return spread(fn(enc.dictionary), enc.indices)


def codes(indices: pa.Array) -> np.ndarray:
    """Dictionary indices as int64 numpy, nulls pointing one past the dictionary's last slot
    (callers append a null slot), computed once per indices array."""
    def compute(ix: pa.Array) -> np.ndarray:
        return ix.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return memo("codes", indices, compute)


def pairs(a: np.ndarray, a_size: int, b: np.ndarray, b_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (a, b) code pairs of the rows (codes in [-1, size), -1 meaning null): the a
    and b code of each pair, and each row's pair number: a presence table (O(rows)) when the
    pairs' range is small, else by a's usual b (see below) and sorting the packed keys of the rest."""
    width = b_size + 1
    key = (a + 1) * width + (b + 1)
    span = (a_size + 1) * width
    if span <= 4 * len(key) + 1024:
        present = np.zeros(span, dtype=bool)
        present[key] = True
        found = np.flatnonzero(present)
        remap = np.zeros(span, np.int64)
        remap[found] = np.arange(len(found))
        slot = remap[key]
        return found // width - 1, found % width - 1, slot
    # A wide range: most a values usually come with one b (an address with one user agent).
    # Rows whose b is the last one written for their a are numbered by their a alone (linear);
    # only the others are sorted.
    last = np.full(a_size + 1, -2, np.int64)
    last[a + 1] = b
    usual = last[a + 1] == b
    if 2 * int(np.count_nonzero(usual)) < len(key):
        found, slot = np.unique(key, return_inverse=True)
        return found // width - 1, found % width - 1, slot.reshape(-1).astype(np.int64, copy=False)
    present = np.zeros(a_size + 1, dtype=bool)
    present[(a + 1)[usual]] = True
    usual_a = np.flatnonzero(present)  # a + 1 of each usual pair
    number = np.zeros(a_size + 1, np.int64)
    number[usual_a] = np.arange(len(usual_a))
    slot = number[a + 1]
    pair_a, pair_b = usual_a - 1, last[usual_a]
    rest = np.flatnonzero(~usual)
    if len(rest):
        found, inverse = np.unique(key[rest], return_inverse=True)
        slot[rest] = len(usual_a) + inverse.reshape(-1)
        pair_a = np.concatenate([pair_a, found // width - 1])
        pair_b = np.concatenate([pair_b, found % width - 1])
    return pair_a, pair_b, slot


def _valid_slots(values: pa.Array) -> np.ndarray:
    # Which slots hold a value, plus the trailing slot of null rows.
    if values.null_count == 0:
        out = np.ones(len(values) + 1, dtype=bool)
    else:
        out = np.append(values.is_valid().to_numpy(zero_copy_only=False), True)
    out[-1] = False
    return out


def spread(values: pa.Array, indices: pa.Array | np.ndarray) -> pa.Array:
    """`take(values, indices)` (null index → null), cheaper when most rows come out null.

    Columns such as utm_term or referer_host hold a value in a few rows of a batch; a `take`
    still copies every row, while here only the rows with a value are taken and the nulls are
    laid out by numpy (offsets and a validity bitmap). Dense results use `take`.
    """
    ix = indices if isinstance(indices, np.ndarray) else codes(indices)
    n = len(ix)
    if n == 0:
        return values.slice(0, 0)
    if not (pa.types.is_string(values.type) or pa.types.is_boolean(values.type)):
        return pc.take(values, pa.array(ix, mask=ix < 0) if isinstance(indices, np.ndarray) else indices)
    valid = _valid_slots(values)[ix]  # ix == -1 reads the null slot
    k = int(np.count_nonzero(valid))
    if k == 0:
        return pa.nulls(n, values.type)
    if pa.types.is_boolean(values.type):
        bits = np.append(values.fill_null(False).to_numpy(zero_copy_only=False), False)[ix]
        return pa.array(bits, mask=~valid) if k < n else pa.array(bits)
    if k * 4 > n:
        return pc.take(values, pa.array(ix, mask=ix < 0) if ix.min(initial=0) < 0 else pa.array(ix))
    sub = pc.take(values, pa.array(ix[valid]))
    sub_offsets = np.frombuffer(sub.buffers()[1], np.int32, k + 1, sub.offset * 4)
    lengths = np.zeros(n, np.int32)
    lengths[valid] = np.diff(sub_offsets)
    offsets = np.empty(n + 1, np.int32)
    offsets[0] = sub_offsets[0]
    np.cumsum(lengths, out=offsets[1:])
    offsets[1:] += sub_offsets[0]
    mask = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(offsets), sub.buffers()[2]], null_count=n - k)


class SparseRows:
    """`spread` of several value arrays through one index array whose rows mostly point nowhere
    (-1): the utm_* and click id columns of a batch share the rows that carry a campaign. The
    selection is found once, and each column then costs a take of those rows plus a few passes
    over small integer arrays, instead of `spread`'s own passes over every row."""

    def __init__(self, ix: np.ndarray) -> None:
        """`ix`: for each row, the slot of its value (-1: none)."""
        self.n = len(ix)
        self.rows = np.flatnonzero(ix >= 0)  # the rows with a value slot, and their slots
        self.local = ix[self.rows]
        self.slots = pa.array(self.local)

    def spread(self, values: pa.Array) -> pa.Array:
        """`spread(values, ix)` (a string array; null where ix is -1 or the value is null)."""
        n = self.n
        if len(self.rows) == 0 or values.null_count == len(values):
            return pa.nulls(n, values.type)
        sub = pc.take(values, self.slots)
        valid = np.zeros(n, dtype=bool)
        lengths = np.zeros(n, np.int32)
        sub_offsets = np.frombuffer(sub.buffers()[1], np.int32, len(sub) + 1, sub.offset * 4)
        lengths[self.rows] = np.diff(sub_offsets)  # nulls have length 0
        valid[self.rows] = sub.is_valid().to_numpy(zero_copy_only=False) if sub.null_count else True
        k = int(np.count_nonzero(valid)) if sub.null_count else len(sub)
        if k == 0:
            return pa.nulls(n, values.type)
        offsets = np.empty(n + 1, np.int32)
        offsets[0] = sub_offsets[0]
        np.cumsum(lengths, out=offsets[1:])
        offsets[1:] += sub_offsets[0]
        mask = pa.py_buffer(np.packbits(valid, bitorder="little")) if k < n else None
        data = sub.buffers()[2] or pa.py_buffer(b"")  # all empty strings: no data buffer
        return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(offsets), data], null_count=n - k)


class ValueCache:
    """Results per distinct string, kept across batches (held by a stage's config), bounded.

    When full, the older half is dropped (dicts keep insertion order) rather than everything,
    so a working set just above the limit does not recompute all of it.
    """

    def __init__(self, limit: int = 200_000) -> None:
        """An empty cache holding at most `limit` values."""
        self.values: dict[Hashable, Any] = {}
        self.limit = limit
        self._lock = threading.Lock()

    def get_many(self, keys: list) -> list:
        """The cached value of each key, None where unknown."""
        get = self.values.get
        return [get(k) for k in keys]

    def put_many(self, keys: list, values: list) -> None:
        """Remember values, evicting the older half when over the limit."""
        with self._lock:
            self.values.update(zip(keys, values, strict=True))
            if len(self.values) > self.limit:
                for key in list(self.values)[: len(self.values) // 2]:
                    self.values.pop(key, None)
