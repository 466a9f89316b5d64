"""Numeric helpers of the sessionizer (`sessions.Sessionizer`), whose state is plain numpy arrays
(the rows themselves stay in `rowstore.RowStore`): visitor hashes, row orders, merging sorted
rows, visitor counts, stitching. `pack_keys` packs a row's sort key (visitor hash, ts, source
rank and line) into fixed-width bytes that numpy sorts and binary-searches as one value.

Rows are selected by index arrays rather than boolean masks: numpy's boolean indexing branches
per row, several times slower than a gather on the mixed masks a push makes.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .hashing import blake2b_each

Cols = dict[str, np.ndarray]  # numeric per-row state, one array per name, all the same length
SIGN = np.uint64(1 << 63)
LINE_BITS = 47  # `rank_lines`: line + 1 in the low bits, source rank + 1 above them
LINE_MASK = (1 << LINE_BITS) - 1
# Flags of a row in a session (one byte per row instead of an array per flag).
PAGEVIEW, HAS_USER, TAGGED = 1, 2, 4


def chunk(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array from a (possibly chunked) column."""
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 1:
            return col.chunk(0)
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col


def ints(col: pa.ChunkedArray | pa.Array, null: int) -> np.ndarray:
    """An integer (or timestamp) column as int64, nulls replaced."""
    return pc.fill_null(pc.cast(col, pa.int64()), null).to_numpy()


def bools(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean column as numpy, null = False."""
    return pc.fill_null(col, False).to_numpy(zero_copy_only=False)


_FMIX = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


def _fmix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (every input bit affects every output bit), in place."""
    shift, m1, m2 = _FMIX
    x ^= x >> shift
    x *= m1
    x ^= x >> shift
    x *= m2
    x ^= x >> shift
    return x


@lru_cache(maxsize=8)
def _seed(key: str) -> np.uint64:
    """The start value of the word hash for one purpose (anonymous ids, user ids…)."""
    return np.uint64(int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little"))


def hashes(col: pa.ChunkedArray | pa.Array, key: str, among: np.ndarray | None = None) -> np.ndarray:
    """A 64-bit hash of each string (0 for null, and for rows not `among` when given), the same
    for a string whatever its batch.

    32-byte strings (the hex digests identity makes anonymous ids of) are hashed from their bytes
    as four 64-bit words, without a dictionary; other strings (user ids, cookie ids) by keyed
    BLAKE2b-64, once per distinct value.
    """
    arr = chunk(col)
    n, out = len(arr), np.zeros(len(arr), np.uint64)
    if arr.null_count == n:
        return out
    valid = bools(pc.is_valid(arr))
    if among is not None:
        valid &= among
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4)
    fixed = valid & (offsets[1:] - offsets[:-1] == 32)
    data = arr.buffers()[2]
    if fixed.any() and int(offsets[-1]) - int(offsets[0]) == 32 * n and data.address % 8 == 0 and offsets[0] % 8 == 0:
        # Every value is 32 bytes (identity's hex digests, no nulls): the bytes are rows of four
        # words. Every row is hashed (cheaper than selecting the rows first), the others zeroed.
        words = np.frombuffer(data, np.uint64, 4 * n, int(offsets[0])).reshape(n, 4)
        h = np.full(n, _seed(key), np.uint64)
        for i in range(4):
            h ^= words[:, i]
            h = _fmix(h)
        out = np.where(fixed, h, np.uint64(0))
    elif fixed.any():
        starts = offsets[:-1][fixed].astype(np.int64)
        if not (starts % 8).any() and data.address % 8 == 0:
            words = np.frombuffer(data, np.uint64, data.size // 8)[(starts // 8)[:, None] + np.arange(4)]
        else:
            words = np.ascontiguousarray(np.frombuffer(data, np.uint8)[starts[:, None] + np.arange(32)]).view(np.uint64)
        h = np.full(len(starts), _seed(key), np.uint64)
        for i in range(4):
            h = _fmix(h ^ words[:, i])
        out[fixed] = h
    other = valid & ~fixed
    if other.any():
        enc = pc.dictionary_encode(arr.filter(pa.array(other)))
        digests = blake2b_each(pc.cast(enc.dictionary, pa.binary()).to_pylist(), 8, key.encode())
        out[other] = np.frombuffer(digests, "<u8")[enc.indices.to_numpy()]
    return out


def visitor_order(vh: np.ndarray) -> np.ndarray:
    """A stable sort of rows by visitor hash.

    Usually one unstable sort of unique keys: the hash's top bits above the row number. It is the
    stable sort unless two visitors share those top bits (then the hashes come out unsorted, which
    one pass sees); otherwise visitors are ranked (np.unique) and the ranks sorted stably (a radix
    sort while they fit 16 bits, else unique keys (rank, row))."""
    n = len(vh)
    bits = max(n - 1, 1).bit_length()
    if n and bits <= 32:
        low = np.uint64((1 << bits) - 1)
        order = np.argsort((vh & ~low) | np.arange(n, dtype=np.uint64))
        ranked = vh[order]
        if not (ranked[1:] < ranked[:-1]).any():
            return order
    rank = np.unique(vh, return_inverse=True)[1].reshape(-1)
    if len(rank) and rank.max() < 1 << 16:  # numpy's stable sort of 16-bit keys is a radix sort
        return np.argsort(rank.astype(np.uint16), kind="stable")
    return np.argsort(rank.astype(np.int64) * len(vh) + np.arange(len(vh)))


def row_order(vh: np.ndarray, t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """`np.lexsort((r, t, vh))` (rows by visitor, ts, rank_lines; stable), cheaper: rows usually
    come in (ts, rl) order, and a stable sort by visitor then does; otherwise the (ts, rl) sort
    runs on nearly sorted keys and the visitor sort follows it."""
    if ((t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (r[1:] >= r[:-1]))).all():
        return visitor_order(vh)
    by_time = np.lexsort((r, t))
    return by_time[visitor_order(vh[by_time])]


def select(cols: Cols, which: np.ndarray) -> Cols:
    """The same rows (mask or indices) of every array. A mask is turned into indices once:
    numpy's boolean indexing branches per row (several times slower on mixed masks)."""
    if which.dtype == bool:
        which = np.flatnonzero(which)
    return {name: a[which] for name, a in cols.items()}


def in_order(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positions sorted, and where each of `pos` lands among them. Positions of a push
    lie within the rows held (a span a few times their number): a presence table orders them in
    O(span) instead of a sort."""
    lo = int(pos.min())
    span = int(pos.max()) - lo + 1
    if span > 8 * len(pos) + 1024:
        order = np.argsort(pos)
        at = np.empty(len(pos), np.int64)
        at[order] = np.arange(len(pos))
        return pos[order], at
    present = np.zeros(span, bool)
    present[pos - lo] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present) + lo, rank[pos - lo]


def rank_lines(rank: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(source rank, line) as one int64 that sorts like the pair; -1 (null) sorts first in both.

    Line numbers must stay below 2**47 and there may be at most 65 534 source names."""
    return ((rank + 1) << LINE_BITS) | (line + 1)


def rerank(rl: np.ndarray, remap: np.ndarray) -> np.ndarray:
    """`rank_lines` values with each rank r replaced by remap[r] (remap[-1] must be -1)."""
    return ((remap[(rl >> LINE_BITS) - 1] + 1) << LINE_BITS) | (rl & LINE_MASK)


def pack_keys(vh: np.ndarray, ts: np.ndarray, rl: np.ndarray) -> np.ndarray:
    """(visitor hash, ts, rank_lines) as big-endian bytes that compare in that order."""
    packed = np.empty((len(ts), 3), ">u8")
    packed[:, 0] = vh
    packed[:, 1] = ts.view(np.uint64) ^ SIGN
    packed[:, 2] = rl.view(np.uint64)  # never negative
    return packed.view("S24").ravel()


def merge_sorted(old: Cols, new: Cols) -> Cols:
    """Merge rows sorted by (vh, ts, rl) into sorted rows; a new row goes after equal ones.

    A new row usually belongs after every buffered row of its visitor (logs move forward), which
    a binary search on the visitor hash alone finds; only rows that arrived out of order are
    placed by packed (visitor, ts, rl) keys.
    """
    ovh, nvh = old["vh"], new["vh"]
    if not len(ovh):
        return new
    at = np.searchsorted(ovh, nvh, side="right")
    # Only a new row no later than the latest buffered one can belong before a row of its visitor.
    maybe = np.flatnonzero(new["ts"] <= old["ts"].max())
    if len(maybe):
        last = np.maximum(at[maybe] - 1, 0)
        ots, orl, nts, nrl = old["ts"][last], old["rl"][last], new["ts"][maybe], new["rl"][maybe]
        inside = (at[maybe] > 0) & (ovh[last] == nvh[maybe]) & ((ots > nts) | ((ots == nts) & (orl > nrl)))
        if inside.any():
            rows = maybe[inside]
            keys = pack_keys(ovh, old["ts"], old["rl"])
            at[rows] = np.searchsorted(keys, pack_keys(nvh[rows], nts[inside], nrl[inside]), side="right")
    at += np.arange(len(nvh))
    is_old = np.ones(len(at) + len(ovh), bool)
    is_old[at] = False
    old_at = np.flatnonzero(is_old)  # one index array places the old side in every column
    merged = {}
    for name, a in old.items():
        merged[name] = out = np.empty(len(is_old), a.dtype)
        out[at] = new[name]
        out[old_at] = a
    return merged


def local_days(ts_us: np.ndarray, tz: str) -> np.ndarray:
    """Day numbers (since the epoch) of UTC µs timestamps in time zone `tz`."""
    import pandas as pd  # here: only `mode: ua` needs time zones; other runs need not load pandas

    local = pd.DatetimeIndex(ts_us.astype("datetime64[us]")).tz_localize("UTC").tz_convert(tz)
    return local.tz_localize(None).values.astype("datetime64[D]").astype(np.int64)


def ffill_index(valid: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """For each position, the last valid position at or before it within its group, else -1."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    last = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(last >= group_start, last, -1)


def stitch(valid: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """For each row, the nearest valid row of its session at or before it, else the next valid
    one after it, else -1; `first`/`last` are each row's session bounds."""
    n = len(valid)
    fwd = ffill_index(valid, first)
    rev = ffill_index(valid[::-1], (n - 1 - last)[::-1])[::-1]
    return np.where(fwd >= 0, fwd, np.where(rev >= 0, n - 1 - rev, -1))


def campaign_splits(valid: np.ndarray, code: np.ndarray, brk: np.ndarray) -> np.ndarray:
    """UA mode: rows whose UTM tags (hash `code` where `valid`) differ from the latest ones in
    their session (sessions start where `brk`)."""
    seg_start = np.flatnonzero(brk)[np.cumsum(brk) - 1]
    last = ffill_index(valid, seg_start)
    prev_valid = np.zeros(len(code), bool)
    prev = np.zeros(len(code), np.uint64)
    prev_valid[1:] = last[:-1] >= 0
    prev[1:] = code[np.maximum(last[:-1], 0)]
    return valid & (~prev_valid | (code != prev)) & ~brk


class VisitorCounts:
    """Sessions emitted so far per visitor hash: 16 bytes per visitor, sorted arrays."""

    def __init__(self) -> None:
        self.seen = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)

    def _lookup(self, vhash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.seen, vhash)
        found = pos < len(self.seen)
        inside = np.flatnonzero(found)
        found[inside] = self.seen[pos[inside]] == vhash[inside]
        return pos, found

    def add(self, vhash: np.ndarray) -> np.ndarray:
        """Count one session per entry; return each visitor's count before this call (entries
        sorted by hash, as `Sessionizer._close` passes them, need no sort)."""
        if len(vhash) and not (vhash[1:] < vhash[:-1]).any():  # sorted (as `_close` finds them): no sort
            first = np.ones(len(vhash), bool)
            first[1:] = vhash[1:] != vhash[:-1]
            starts = np.flatnonzero(first)
            uniq, inverse, n = vhash[starts], np.cumsum(first) - 1, np.diff(np.append(starts, len(vhash)))
        else:
            uniq, inverse, n = np.unique(vhash, return_inverse=True, return_counts=True)
        pos, found = self._lookup(uniq)
        hit, miss = np.flatnonzero(found), np.flatnonzero(~found)
        before = np.zeros(len(uniq), np.int64)
        before[hit] = self.counts[pos[hit]]
        self.counts[pos[hit]] += n[hit]
        if len(miss):  # new visitors merged in (np.insert would sort its indices first)
            at = pos[miss] + np.arange(len(miss))
            keep = np.ones(len(self.seen) + len(miss), bool)
            keep[at] = False
            old_at = np.flatnonzero(keep)
            seen, counts = np.empty(len(keep), np.uint64), np.empty(len(keep), np.int64)
            seen[at], seen[old_at] = uniq[miss], self.seen
            counts[at], counts[old_at] = n[miss], self.counts
            self.seen, self.counts = seen, counts
        return before[inverse.reshape(-1)]
