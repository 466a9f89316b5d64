"""Row storage and numeric helpers of the sessionizer (`sessions.Sessionizer`).

`RowStore` keeps pushed tables as they came and addresses rows by position, so the sessionizer's
own state is plain numpy arrays; `pack_keys` packs a row's sort key (visitor hashes, ts, source
rank, line) into fixed-width bytes that numpy sorts and binary-searches as one value.
"""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .schema import ENRICHED_REQUESTS, empty

Cols = dict[str, np.ndarray]  # numeric per-row state, one array per name, all the same length
SIGN = np.uint64(1 << 63)
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], "S2")


def chunk(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array from a (possibly chunked) column."""
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col


def ints(col: pa.ChunkedArray | pa.Array, null: int) -> np.ndarray:
    """An integer (or timestamp) column as int64, nulls replaced."""
    return pc.fill_null(pc.cast(col, pa.int64()), null).to_numpy()


def bools(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean column as numpy, null = False."""
    return pc.fill_null(col, False).to_numpy(zero_copy_only=False)


def hashes(col: pa.ChunkedArray | pa.Array, keys: tuple[str, ...]) -> list[np.ndarray]:
    """64-bit hashes of each string, one array per hash key (SipHash once per distinct value; 0 for null)."""
    enc = pc.dictionary_encode(chunk(col))
    words = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
    idx = pc.fill_null(enc.indices, len(words)).to_numpy()
    return [np.append(pd.util.hash_array(words, hash_key=k, categorize=False), np.uint64(0))[idx] for k in keys]


def session_ids(keys: pa.ChunkedArray | pa.Array, start_us: np.ndarray) -> pa.Array:
    """Each session's id: hex BLAKE2b-128 of `<visitor key>\x1f<start, µs since the epoch>`.

    The messages are built by Arrow and the digests hex-encoded by numpy: only the hash itself
    runs once per session in Python (a formatted string per session cost twice as much).
    """
    text = pc.binary_join_element_wise(keys, pc.cast(pa.array(start_us, pa.int64()), pa.string()), "\x1f")
    blake = partial(hashlib.blake2b, digest_size=16)
    digests = b"".join([h.digest() for h in map(blake, pc.cast(text, pa.binary()).to_pylist())])
    return pa.array(_HEX[np.frombuffer(digests, np.uint8)].view("S32")).cast(pa.string())


def select(cols: Cols, which: np.ndarray) -> Cols:
    """The same rows (mask or indices) of every array."""
    return {name: a[which] for name, a in cols.items()}


def key_field(key: np.ndarray, i: int) -> np.ndarray:
    """Field i of packed sort keys (see `Sessionizer._pack`) as int64."""
    return (key.view(">u8").reshape(-1, 5)[:, i].astype(np.uint64) ^ SIGN).view(np.int64)


def set_key_field(key: np.ndarray, i: int, values: np.ndarray) -> None:
    """Rewrite field i of packed sort keys in place (int64 values)."""
    key.view(">u8").reshape(-1, 5)[:, i] = values.view(np.uint64) ^ SIGN


def merge_sorted(old: Cols, new: Cols) -> Cols:
    """Merge rows sorted by their packed `key` into sorted rows; a new row goes after equal keys."""
    at = np.searchsorted(old["key"], new["key"], side="right") + np.arange(len(new["key"]))
    is_new = np.zeros(len(at) + len(old["key"]), bool)
    is_new[at] = True  # one mask places both sides in every column
    merged = {}
    for name, a in old.items():
        merged[name] = np.empty(len(is_new), a.dtype)
        merged[name][is_new], merged[name][~is_new] = new[name], a
    return merged


def local_days(ts_us: np.ndarray, tz: str) -> np.ndarray:
    """Day numbers (since the epoch) of UTC µs timestamps in time zone `tz`."""
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
        found[found] = self.seen[pos[found]] == vhash[found]
        return pos, found

    def add(self, vhash: np.ndarray) -> np.ndarray:
        """Count one session per entry; return each visitor's count before this call."""
        pos, found = self._lookup(vhash)
        before = np.where(found, self.counts[np.where(found, pos, 0)] if len(self.counts) else 0, 0)
        uniq, n = np.unique(vhash, return_counts=True)
        pos, found = self._lookup(uniq)
        self.counts[pos[found]] += n[found]
        self.seen = np.insert(self.seen, pos[~found], uniq[~found])
        self.counts = np.insert(self.counts, pos[~found], n[~found])
        return before


def pack_keys(vh: np.ndarray, vh2: np.ndarray, ts: np.ndarray, rank: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(visitor hashes, ts, source rank, line) as big-endian bytes that compare in that order."""
    packed = np.empty((len(ts), 5), ">u8")
    packed[:, 0], packed[:, 1] = vh, vh2
    for i, values in enumerate((ts, rank, line), start=2):
        packed[:, i] = values.view(np.uint64) ^ SIGN
    return packed.view("S40").ravel()


class RowStore:
    """The pushed tables whose rows are not all emitted yet; a row is addressed by its position in
    their concatenation.

    A table is dropped once all its rows are emitted and compacted once fewer than a quarter are
    left, so memory stays within a small multiple of the rows held back; `release` says how
    positions moved.
    """

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.alive = np.empty(0, bool)  # per position: not emitted yet
        self._index()  # bounds: first position of each table (and the end); live: rows left per table

    def add(self, table: pa.Table) -> np.ndarray:
        """Keep a table; return its rows' positions."""
        start = len(self.alive)
        self.tables.append(table)
        self.alive = np.concatenate([self.alive, np.ones(table.num_rows, bool)])
        self.bounds = np.append(self.bounds, len(self.alive))
        self.live = np.append(self.live, table.num_rows)
        return np.arange(start, len(self.alive))

    def take(self, pos: np.ndarray, columns: list[str] | None = None) -> pa.Table:
        """Rows by position (-1 gives a row of nulls), all columns or the named ones."""
        tables = self.tables if columns is None else [t.select(columns) for t in self.tables]
        table = pa.concat_tables(tables) if tables else empty(ENRICHED_REQUESTS).select(columns or [])
        return table.take(pa.array(pos, mask=pos < 0) if (pos < 0).any() else pa.array(pos))

    def release(self, pos: np.ndarray) -> np.ndarray | None:
        """Forget emitted rows; when rows moved, return each old position's new one."""
        self.alive[pos] = False
        self.live -= np.bincount(np.searchsorted(self.bounds, pos, side="right") - 1, minlength=len(self.live))
        sizes = np.diff(self.bounds)
        compact = (self.live > 0) & (self.live * 4 < sizes)
        if not (compact.any() or (self.live == 0).any()):
            return None
        kept, tables = self.alive.copy(), []
        for i, table in enumerate(self.tables):
            part = slice(self.bounds[i], self.bounds[i + 1])
            if compact[i]:
                tables.append(table.filter(pa.array(self.alive[part])))
            elif self.live[i]:
                tables.append(table)
                kept[part] = True  # dead rows stay in a table kept as it is
        self.tables = self._merge_small(tables) if len(tables) > 16 else tables
        self.alive = self.alive[kept]
        self._index()
        return np.cumsum(kept) - 1

    @staticmethod
    def _merge_small(tables: list[pa.Table]) -> list[pa.Table]:
        """Join runs of small tables (leftovers of long sessions), keeping the row order."""
        out: list[pa.Table] = []
        run: list[pa.Table] = []
        for table in [*tables, None]:
            if table is not None and table.num_rows < 16384:
                run.append(table)
                continue
            if run:
                out.append(pa.concat_tables(run).combine_chunks() if len(run) > 1 else run[0])
                run = []
            if table is not None:
                out.append(table)
        return out

    def _index(self) -> None:
        self.bounds = np.cumsum([0] + [t.num_rows for t in self.tables])
        self.live = np.add.reduceat(self.alive.astype(np.int64), self.bounds[:-1]) if self.tables else np.empty(0, np.int64)


