"""Dictionary-encoded columns of a batch (`DictCol`): each distinct value tested once, rows found
by value id (rules/context.py builds them once per batch and column; every rule shares them)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class DictCol:
    """A string source as (values, indices): row i has value `values[indices[i]]`.

    `values` need not be distinct (a query parameter's value per distinct query string);
    null rows point at slot `m == len(values)`, so id-level masks have m + 1 entries.
    `literals`, when known, are every literal the rules compare this source with: one hash
    lookup of the values then serves all of them (see `ids_equal`). `prefixes`, likewise, are
    the literal prefixes of the rules' patterns on this source (see `ids_with_prefix`).
    `lookups` is how many rules may look up rows of all the batch (see `rows_for`).
    """

    # Prefix lookups answered by a scan each before the values are sorted once for all of them.
    PREFIX_SCANS = 8
    # Row lookups answered by a scan over every row before the rows are grouped by value id.
    FULL_SCANS = 16
    # Rows up to which a scan beats grouping them (a rule's subset: one lookup, rarely more).
    SMALL = 4096
    # Known prefixes of one byte length answered by one slice and hash lookup of the values
    # when at least this many share the length (a scan each is cheaper for fewer).
    PREFIX_GROUP = 4

    def __init__(self, values: pa.Array, indices: np.ndarray, literals: tuple[str, ...] | None = None,
                 prefixes: tuple[str, ...] | None = None, lookups: int = 0) -> None:
        self.values = values
        self.indices = indices
        self.m = len(values)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self.literals = literals
        self._literal_pos = {v: i for i, v in enumerate(literals)} if literals else {}
        self._literal_hits: tuple[np.ndarray, np.ndarray] | None = None
        self._prefix_scans = 0
        self._counts: np.ndarray | None = None
        # `lookups`: how many rules are known to look rows up from this source; when they are
        # more than the scans allowed, the rows are grouped by value id at the first lookup.
        self._scans = self.FULL_SCANS if lookups > self.FULL_SCANS else 0
        self._by_id: tuple[np.ndarray, np.ndarray, int] | None = None
        # Byte length -> the known prefixes of that length, when enough share it.
        by_length: dict[int, list[str]] = {}
        for prefix in prefixes or ():
            by_length.setdefault(len(prefix.encode("utf-8", "surrogatepass")), []).append(prefix)
        self._prefix_group = {p: group for group in by_length.values() if len(group) >= self.PREFIX_GROUP
                              for p in group}
        self._prefix_hits: dict[str, np.ndarray] = {}

    def sorted_view(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids ordered by value, those values as a numpy object array), nulls left out.

        Literal values and literal prefixes are then found by binary search, so a rule whose
        path does not occur in a batch costs two `searchsorted` calls and no Arrow kernel.
        """
        if self._sorted is None:
            order = pc.array_sort_indices(self.values, null_placement="at_end")
            valid = self.m - self.values.null_count
            ids = order.to_numpy()[:valid]
            self._sorted = ids, self.values.take(pa.array(ids)).to_numpy(zero_copy_only=False)
        return self._sorted

    def _hits(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids whose value is one of `literals`, the position of that literal), computed once."""
        if self._literal_hits is None:
            self._literal_hits = _found(pc.index_in(self.values, value_set=pa.array(self.literals, pa.string())))
        return self._literal_hits

    def ids_equal(self, literals: tuple[str, ...]) -> np.ndarray:
        """Value ids equal to any of `literals` (in no particular order)."""
        if not len(literals):
            return np.empty(0, np.int64)
        if self._literal_pos and all(v in self._literal_pos for v in literals):
            hits, codes = self._hits()
            return hits[np.isin(codes, [self._literal_pos[v] for v in literals])]
        ids, values = self.sorted_view()
        lo = np.searchsorted(values, literals, side="left")
        hi = np.searchsorted(values, literals, side="right")
        return np.concatenate([ids[a:b] for a, b in zip(lo, hi, strict=True)])

    def ids_with_prefix(self, prefix: str) -> np.ndarray:
        """Value ids starting with `prefix` (in no particular order).

        The first few prefixes are a `starts_with` scan each (a memcmp per value); a batch
        that asks for more sorts the values once and binary-searches (code-point order is
        UTF-8 byte order). A prefix the rules share a byte length with several others is found
        with all of them at once (`_prefix_lookup`).
        """
        if prefix in self._prefix_group:
            if prefix not in self._prefix_hits:
                self._prefix_lookup(self._prefix_group[prefix])
            return self._prefix_hits[prefix]
        if self._sorted is None and self._prefix_scans < self.PREFIX_SCANS:
            self._prefix_scans += 1
            return np.flatnonzero(pc.starts_with(self.values, prefix).fill_null(False).to_numpy(zero_copy_only=False))
        ids, values = self.sorted_view()
        lo = np.searchsorted(values, prefix, side="left")
        hi = np.searchsorted(values, prefix + "\U0010ffff", side="left")
        return ids[lo:hi]

    def _prefix_lookup(self, group: list[str]) -> None:
        """Ids of each of `group` (prefixes of one byte length L): the values cut to their first
        L bytes, looked up in a hash table of the prefixes. Two kernels for the whole group,
        where a scan per prefix or a sort of the values costs more when the rules test many
        prefixes (a path prefix per rule)."""
        width = len(group[0].encode("utf-8", "surrogatepass"))
        heads = pc.binary_slice(self.values.cast(pa.binary()), 0, width)
        wanted = pa.array([p.encode("utf-8", "surrogatepass") for p in group], pa.binary())
        hits, codes = _found(pc.index_in(heads, value_set=wanted))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(group) + 1))
        ids = hits[order]
        for k, prefix in enumerate(group):
            self._prefix_hits[prefix] = ids[bounds[k]:bounds[k + 1]]

    def counts(self) -> np.ndarray:
        """How many rows hold each value id (m + 1 entries, the last for null rows)."""
        if self._counts is None:
            self._counts = np.bincount(self.indices, minlength=self.m + 1)
        return self._counts

    def row_count(self, id_mask: np.ndarray) -> int:
        """How many rows `rows_for(id_mask, None)` would return (without finding them)."""
        return int(self.counts()[id_mask].sum())

    def rows_for(self, id_mask: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Row numbers (a sorted subset of `rows`, or of all rows) whose value id is in the mask."""
        if rows is not None:
            return rows[id_mask[self.indices[rows]]]
        self._scans += 1
        if self._scans <= self.FULL_SCANS or len(self.indices) <= self.SMALL:
            return np.flatnonzero(id_mask[self.indices])
        # Many rules start from this source: group the rows by value id once, then each rule
        # gathers the rows of its ids instead of scanning every row.
        if self._by_id is None:
            self._by_id = self._group()
        order, starts, shift = self._by_id
        ids = np.flatnonzero(id_mask)
        # Buckets of 2**shift consecutive ids (one id each when the ids fit 16 bits).
        buckets = np.unique(ids >> shift) if shift else ids
        begin, length = starts[buckets], starts[buckets + 1] - starts[buckets]
        total = int(length.sum())
        if total == 0:
            return np.empty(0, np.int64)
        if len(buckets) == 1:  # one bucket's rows: in row order already (the grouping is stable)
            found = order[begin[0]:begin[0] + total].astype(np.int64, copy=False)
        else:  # ragged gather: position k of bucket j's slice is begin[j] + k
            offset = np.repeat(begin - (np.cumsum(length) - length), length)
            found = np.sort(order[offset + np.arange(total)]).astype(np.int64, copy=False)
        return found[id_mask[self.indices[found]]] if shift else found

    def _group(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(Row numbers ordered by value-id bucket, each bucket's start, the bucket shift).

        Buckets are ids >> shift, shift the fewest bits that make them fit 16: numpy's stable
        sort of 16-bit integers is one radix pass, O(n), where exact ids past 65535 take two
        (or a comparison sort); a lookup then drops the rows of the bucket's other ids."""
        shift = max(0, (self.m + 1).bit_length() - 16)
        if shift > 4:  # buckets of many ids: exact grouping
            order, shift, counts = _group_order(self.indices, self.m), 0, self.counts()
        else:
            bucket = (self.indices >> shift).astype(np.uint16)
            order = np.argsort(bucket, kind="stable")
            counts = self.counts() if not shift else np.bincount(bucket, minlength=(self.m >> shift) + 1)
        starts = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        return order, starts, shift


def _found(codes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(Positions where `index_in` found a value, the value set index found there), read from
    the validity bitmap and the raw int32 buffer: filling the nulls first copies every entry."""
    if len(codes) == codes.null_count:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    hits = np.flatnonzero(codes.is_valid().to_numpy(zero_copy_only=False))
    raw = np.frombuffer(codes.buffers()[1], np.int32, len(codes), codes.offset * 4)
    return hits, raw[hits].astype(np.int64)


def _group_order(indices: np.ndarray, m: int) -> np.ndarray:
    """Row numbers ordered by value id (0..m): numpy's stable sort of 16-bit integers is a
    radix sort, O(n); more ids take two such passes, low half then high (an int64 sort of
    1 M ids costs three times as much)."""
    if m < 65535:
        return np.argsort(indices.astype(np.uint16), kind="stable")
    if m >= 1 << 32:
        return np.argsort(indices, kind="stable")
    low = np.argsort((indices & 0xFFFF).astype(np.uint16), kind="stable")
    high = np.argsort((indices[low] >> 16).astype(np.uint16), kind="stable")
    return low[high]


def encode(arr: pa.Array | pa.ChunkedArray) -> DictCol:
    """Dictionary-encode a string array into a DictCol."""
    single = _single_value(arr)
    if single is not None:
        return DictCol(single, np.zeros(len(arr), np.int64))
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks > 1 and not pa.types.is_dictionary(arr.type):
        # Encoded chunk by chunk, no combined copy first: the chunks share one dictionary
        # (Arrow's hash table spans them), so their indices simply follow one another.
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        chunks = pc.dictionary_encode(arr).chunks
        values = chunks[0].dictionary
        indices = pa.chunked_array([c.indices for c in chunks]).fill_null(len(values)).to_numpy()
        return DictCol(values, indices.astype(np.int64, copy=False))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if not pa.types.is_dictionary(arr.type):
        if not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    indices = arr.indices.fill_null(len(values)).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return DictCol(values, indices)


def compact(index: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(The distinct values of `index` (each in 0..m) ascending, each entry's position among
    them): `np.unique(index, return_inverse=True)` by a presence table over the m + 1 slots,
    O(len + m) where unique sorts; a sort only when the entries are few for the slots."""
    if len(index) * 16 < m:
        used, where = np.unique(index, return_inverse=True)
        return used, where.reshape(-1)
    present = np.zeros(m + 1, dtype=bool)
    present[index] = True
    position = np.cumsum(present) - 1
    return np.flatnonzero(present), position[index]


def take_rows(col: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """`col` at ascending `rows`, taken chunk by chunk (one Array out)."""
    if isinstance(col, pa.Array):
        return col.take(pa.array(rows))
    if col.num_chunks == 1:
        return col.chunk(0).take(pa.array(rows))
    bounds = np.cumsum([0] + [len(c) for c in col.chunks])
    cuts = np.searchsorted(rows, bounds)
    pieces = [chunk.take(pa.array(rows[a:b] - start))
              for chunk, start, a, b in zip(col.chunks, bounds[:-1], cuts[:-1], cuts[1:], strict=True) if b > a]
    if not pieces:
        return pa.array([], col.type)
    return pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)


SINGLE_CHECK_MIN = 4096  # rows from which `encode` looks for a single value first


def _single_value(arr: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """The one value of a string column without nulls that holds a single value (a batch of
    one log file's `source`), else None: one comparison per row instead of a hash per row."""
    # A small array (a rule's few rows): its hash costs less than the scalars of the checks.
    if len(arr) < SINGLE_CHECK_MIN or arr.null_count or not pa.types.is_string(arr.type):
        return None
    first = arr[0]
    # A few rows first (scalars: a take from a chunked column would copy it whole): a column of
    # many values usually shows two of them there.
    if any(arr[int(i)] != first for i in np.linspace(0, len(arr) - 1, 8)[1:]):
        return None
    if not pc.all(pc.equal(arr, first)).as_py():
        return None
    return pa.array([first.as_py()], pa.string())
