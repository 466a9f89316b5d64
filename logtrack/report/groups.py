"""Group-bys fed batch by batch: several group-bys with exact distinct counts fed by one scan
(`Grouping`, `Codebook`, `Interner`).

Acero's `hash_count_distinct` runs inside its own plan, so every report that counts visitors or
client addresses used to scan the dataset again (ten scans of the sessions, each hashing every
row's visitor string). Here one scan feeds any number of `Grouping`s, on integers only: strings
are numbered once per distinct value of a batch (`Interner`, `Codebook`, shared by every
grouping), rows reduce to their key's number by `np.bincount` (`dense.py`), and the distinct
(key, value) pairs are kept in a `PairSet`: a table of booleans for small key sets, else sorted
64-bit pairs (about two per distinct pair, as Acero's distinct count holds one).

This module imports nothing of logtrack: `scan` (and through it `enrich`, whose user-agent
tables build thousands of objects at import) is imported one level shallower that way. Python
3.11 frees its frame-stack chunk whenever a call returns across a chunk boundary; one level
deeper, those imports thrashed it: 60,000 page faults, 0.5 s of system time per run (measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .dense import Columns, FloatSum, IntBook, KeyBook, Packing, distinct_sorted, from_ints, grow, slots

CODE = pa.int32()
GATHER_ROWS = 256 * 1024  # distinct pairs gathered before their first merge
DENSE_CELLS = 1 << 23  # (key, value) pairs marked in a table of booleans up to this many cells


def dictionary_of(values: pa.Array) -> pa.DictionaryArray:
    """`values` dictionary-encoded (as is when it already is)."""
    return values if isinstance(values, pa.DictionaryArray) else pc.dictionary_encode(values)


class Interner:
    """Numbers for the distinct strings of a scan (0, 1, … in order of first sight), found by
    hash kernels: each batch's dictionary (its distinct values) is looked up among the strings
    numbered so far and only the new ones are appended. Nothing per string runs in Python."""

    def __init__(self) -> None:
        self.known = pa.array([], pa.string())

    def __len__(self) -> int:
        return len(self.known)

    def dictionary_slots(self, words: pa.Array) -> np.ndarray:
        """The slot (number + 1, 0 for null) of every string of `words` (a dictionary: mostly
        distinct strings): one hash lookup among the known strings, one encoding of the new ones."""
        words = words.cast(pa.string())
        if len(self.known):
            out = slots(pc.index_in(words, value_set=self.known))
            missing = out == 0
        else:
            out, missing = np.zeros(len(words), np.int64), np.ones(len(words), bool)
        if words.null_count:
            missing &= words.is_valid().to_numpy(zero_copy_only=False)
        if missing.any():
            new = pc.dictionary_encode(words.filter(pa.array(missing)))  # numbered in order of first sight
            out[missing] = new.indices.to_numpy(zero_copy_only=False) + (len(self.known) + 1)
            self.known = pa.concat_arrays([self.known, new.dictionary])
        return out

    def dictionary_codes(self, words: pa.Array) -> pa.Array:
        """The number of every string of `words` (distinct strings; null stays null), as int32."""
        found = self.dictionary_slots(words)
        return pa.array(found - 1, CODE, mask=found == 0)

    def encode(self, values: pa.Array) -> pa.Array:
        """The number of every value (null stays null), as int32."""
        encoded = dictionary_of(values)
        return self.dictionary_codes(encoded.dictionary).take(encoded.indices)

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The strings of `codes`."""
        return self.known.take(codes)

    def slots_of(self, values: pa.Array) -> np.ndarray:
        """The slot of every value (its number + 1, 0 for null) in numpy: the dictionary's numbers
        gathered by the indices, no Arrow array per row."""
        encoded = dictionary_of(values)
        return np.concatenate([[0], self.dictionary_slots(encoded.dictionary)])[slots(encoded.indices)]


class Codebook:
    """Numbers for the distinct strings of one column over a scan (in order of first sight).

    `mapper`, when given, maps an array of distinct strings to the strings to number instead (a
    path grouper: the paths of one template share its number); it is called once per string.
    """

    def __init__(self, mapper: Callable[[pa.Array], pa.Array] | None = None, words: Interner | None = None) -> None:
        self.mapper = mapper
        self.words = words if words is not None else Interner()  # the strings numbered (mapped); may be shared
        self.raw = Interner()  # with a mapper: each string seen …
        self.mapped = pa.array([], CODE)  # … and its mapped number, by the string's own number
        self.mapped_slots = np.zeros(1, np.int64)  # the mapped slot by the string's slot

    def encode(self, values: pa.Array) -> pa.Array:
        """The number of every value (null stays null), as int32."""
        found = self.slots_of(values)
        return pa.array(found - 1, CODE, mask=found == 0)

    @property
    def seen(self) -> Interner:
        """The strings seen, numbered as `raw_slots` numbers them (the mapped ones without a mapper)."""
        return self.words if self.mapper is None else self.raw

    def raw_slots(self, words: pa.Array) -> np.ndarray:
        """The slot of every string of `words` (a dictionary) among the strings seen (`seen`),
        mapping the new ones: `mapped_of` turns them into the slots `slots_of` gives."""
        if self.mapper is None:
            return self.words.dictionary_slots(words)
        before = len(self.raw)
        raw = self.raw.dictionary_slots(words)
        if len(self.raw) > before:  # the new strings mapped, once each
            grouped = pa.array(self.mapper(self.raw.known.slice(before))).cast(pa.string())
            self.mapped = pa.concat_arrays([self.mapped, self.words.dictionary_codes(grouped)])
            self.mapped_slots = np.concatenate([self.mapped_slots, slots(self.mapped.slice(before))])
        return raw

    def mapped_of(self, raw: np.ndarray) -> np.ndarray:
        """The slots (of the mapped strings) of slots of strings seen (`raw_slots`)."""
        return raw if self.mapper is None else self.mapped_slots[raw]

    def slots_of(self, values: pa.Array) -> np.ndarray:
        """The slot of every value (its number + 1, 0 for null) in numpy."""
        if self.mapper is None:
            return self.words.slots_of(values)
        encoded = dictionary_of(values)
        raw = self.raw_slots(encoded.dictionary)
        return self.mapped_slots[np.concatenate([[0], raw])[slots(encoded.indices)]]

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The strings of `codes`."""
        return self.words.decode(codes)


class PairSet:
    """The distinct (key, value) pairs of one distinct column.

    While keys × values stay under DENSE_CELLS (days, channels, browsers … by visitor), a table
    of booleans marks the pairs seen: one scatter per batch. Beyond, the pairs are sorted int64
    `key << 32 | value`, each batch's deduplicated by a sort (no hash per row) and merged when
    they outgrow twice the last merge (and GATHER_ROWS): about two per distinct pair.
    """

    def __init__(self) -> None:
        self.seen: np.ndarray | None = np.zeros((0, 0), bool)  # the dense table (None: sorted pairs)
        self.merged = np.zeros(0, np.int64)
        self.parts: list[np.ndarray] = []
        self.rows = 0  # pairs held (the table's cells / 8 while dense: its bytes as int64 pairs)

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add pairs: key numbers and value numbers (both below 2**31)."""
        if not len(keys):
            return
        if self.seen is not None:
            rows, cols = self.seen.shape
            need_rows, need_cols = int(keys.max()) + 1, int(values.max()) + 1
            if need_rows > rows or need_cols > cols:
                # Only the side that overflows grows (doubling both made a table of days by
                # visitors four times the cells it needed, and sparse long before it had to).
                rows = max(need_rows, 2 * rows, 8) if need_rows > rows else rows
                cols = max(need_cols, 2 * cols, 64) if need_cols > cols else cols
                if rows * cols > DENSE_CELLS:
                    self._sparse()
                else:
                    table = np.zeros((rows, cols), bool)
                    table[:self.seen.shape[0], :self.seen.shape[1]] = self.seen
                    self.seen, self.rows = table, rows * cols // 8
        if self.seen is not None:
            self.seen.ravel()[keys * self.seen.shape[1] + values] = True
            return
        part = distinct_sorted((keys << 32) | values)
        self.parts.append(part)
        self.rows += len(part)
        if self.rows > max(GATHER_ROWS, 2 * len(self.merged)):
            self._merge()

    def _sparse(self) -> None:
        assert self.seen is not None
        # Flat positions are sorted as (key, value) pairs are: the pairs come out merged.
        flat = np.flatnonzero(self.seen)
        keys, values = np.divmod(flat, self.seen.shape[1])
        self.seen, self.merged = None, (keys << 32) | values
        self.rows = len(self.merged)

    def _merge(self) -> None:
        if self.parts:
            self.merged = distinct_sorted(np.concatenate([self.merged, *self.parts]))
            self.parts, self.rows = [], len(self.merged)

    def counts(self, size: int) -> np.ndarray:
        """Distinct values per key number (0 … size - 1)."""
        if self.seen is not None:
            return grow(np.count_nonzero(self.seen, axis=1), size)[:size]
        self._merge()
        return np.bincount(self.merged >> 32, minlength=size)[:size]

    def total(self) -> int:
        """Distinct values over all keys."""
        if self.seen is not None:
            return int(np.count_nonzero(self.seen.any(axis=0)))
        self._merge()
        return len(distinct_sorted(self.merged & 0xFFFFFFFF))


class Grouping:
    """One streaming group-by: rows per key, `aggs` of value columns, distinct counts.

    `keys` and `distinct` map column names to the `Codebook` (or `Interner`, shared by several
    groupings) their codes come from, or to the type of a column taken as it is: strings (plain
    or dictionary-encoded, as scanned) are numbered by the grouping's own `Interner` (a hash
    lookup per distinct value of a batch), other types (a date, a status) by an `IntBook`.
    `aggs` maps an output name to (input column, function) with functions `sum`, `count`
    (non-null values), `min`, `max` (integer-like columns) and `sum` of float64 (`FloatSum`).
    `add` takes a batch's columns by name (a dict, or `Columns` shared by several groupings),
    codebook columns as codes; `result()` has the keys (decoded), the row count, the aggs and
    one column per distinct column counting its distinct non-null values per key.

    Everything runs on integers in numpy (`dense.py`): keys become dense numbers, rows reduce by
    `np.bincount` into arrays by key number, distinct values are (key, value) pairs (`PairSet`).
    """

    def __init__(self, keys: dict[str, Codebook | Interner | pa.DataType],
                 distinct: dict[str, Codebook | Interner | pa.DataType] | None = None,
                 aggs: dict[str, tuple[str, str]] | None = None) -> None:
        self.keys, self.distinct, self.aggs = dict(keys), dict(distinct or {}), dict(aggs or {})
        self.books: dict[str, Codebook | Interner | IntBook] = {}
        self.own: set[str] = set()  # string columns numbered by this grouping
        for name, spec in {**self.keys, **self.distinct}.items():
            if isinstance(spec, Codebook | Interner):
                self.books[name] = spec
            elif _stringy(spec):
                self.books[name], _ = Interner(), self.own.add(name)
            else:
                self.books[name] = IntBook(spec)
        self.keybook = KeyBook(len(self.keys)) if len(self.keys) > 1 else None
        self.size = 0 if self.keys else 1  # key numbers in use (one key, 0, without keys)
        self.n = np.zeros(self.size, np.int64)
        self.valid = {name: np.zeros(self.size, np.int64) for name in self.aggs}  # non-null inputs
        self.values: dict[str, np.ndarray | FloatSum] = {}
        self.types: dict[str, pa.DataType] = {}
        self.pairs = {name: PairSet() for name in self.distinct}
        self.gather = True  # rows reduce batch by batch, pairs gather until GATHER_ROWS

    @property
    def rows(self) -> int:
        """Distinct pairs held now (about two per distinct (key, value) pair), or keys."""
        return sum(p.rows for p in self.pairs.values()) if self.pairs else self.size

    def add(self, columns: Mapping[str, pa.Array] | Columns) -> None:
        """Take one batch: `columns` holds every key, distinct and agg input column."""
        cols = columns if isinstance(columns, Columns) else Columns(columns)
        if cols.rows == 0:
            return
        keys = self._key_numbers(cols)
        size = self.size
        sums = self._sums(cols, keys, size)
        self.n = grow(self.n, size)
        counts = sums[("n", "")]
        self.n[:size] += counts
        for name, (source, fn) in self.aggs.items():
            self._aggregate(name, source, fn, cols, keys, counts, sums)
        for name, pairs in self.pairs.items():
            values = self._slots(cols, name)
            seen = values > 0
            pairs.add(keys[seen], values[seen] - 1)

    def _sums(self, cols: Columns, keys: np.ndarray, size: int) -> dict[tuple[str, str], np.ndarray]:
        """Rows, non-null inputs and integer (or whole µs) sums per key, by one `Packing` of the
        batch shared by every grouping that sums the same columns: one bincount per few columns."""
        specs: list[tuple[str, str]] = [("n", "")]
        for name, (source, fn) in self.aggs.items():
            floating = self._floating(cols, source)
            if cols.get("floats" if floating else "ints", source)[1] is not None:  # type: ignore[index]
                specs.append(("valid", source))
            state = self.values.get(name)
            if fn == "sum" and not floating:
                specs.append(("ints", source))
            elif fn == "sum" and (state is None or state.exact) and cols.get("micros", source)[0] is not None:  # type: ignore[union-attr,index]
                specs.append(("micros", source))
        specs = list(dict.fromkeys(specs))
        memo = ("packing", tuple(specs))
        packing = cols.memo.get(memo)
        if packing is None:
            packing = cols.memo[memo] = Packing([self._summed(cols, kind, source) for kind, source in specs], cols.rows)
        return dict(zip(specs, packing.sums(keys if self.keys else None, size), strict=True))  # type: ignore[attr-defined]

    @staticmethod
    def _floating(cols: Columns, source: str) -> bool:
        array = cols.arrays.get(source)
        return array is not None and pa.types.is_floating(array.type)

    @staticmethod
    def _summed(cols: Columns, kind: str, source: str) -> np.ndarray | None:
        if kind == "n":
            return None
        if kind == "micros":
            return cols.get("micros", source)[0]  # type: ignore[index]
        values, valid = cols.get("floats" if Grouping._floating(cols, source) else "ints", source)  # type: ignore[misc]
        return valid.astype(np.int64) if kind == "valid" else values

    def _aggregate(self, name: str, source: str, fn: str, cols: Columns, keys: np.ndarray,
                   counts: np.ndarray, sums: dict[tuple[str, str], np.ndarray]) -> None:
        size = self.size
        array = cols.arrays.get(source)
        floating = self._floating(cols, source)
        values, valid = cols.get("floats" if floating else "ints", source)  # type: ignore[misc]
        self.types.setdefault(name, array.type if array is not None else pa.int64())
        self.valid[name] = grow(self.valid[name], size)
        self.valid[name][:size] += counts if valid is None else sums[("valid", source)]
        if fn == "count":
            return
        if fn == "sum" and floating:
            total = self.values.setdefault(name, FloatSum())
            assert isinstance(total, FloatSum)
            if ("micros", source) in sums:
                total.add_micros(sums[("micros", source)], size)
            else:
                total.add(keys, values, size, cols.get("micros", source))  # type: ignore[arg-type]
            return
        if fn == "sum":
            state = self.values[name] = grow(self.values.get(name, np.zeros(0, np.int64)), size)  # type: ignore[arg-type]
            state[:size] += sums[("ints", source)]
            return
        extreme = np.iinfo(np.int64).max if fn == "min" else np.iinfo(np.int64).min
        state = self.values[name] = grow(self.values.get(name, np.zeros(0, np.int64)), size, extreme)  # type: ignore[arg-type]
        at = (np.minimum if fn == "min" else np.maximum).at
        at(state, keys if valid is None else keys[valid], values if valid is None else values[valid])

    def _slots(self, cols: Columns, name: str) -> np.ndarray:
        """A group column's slots: 0 for null, the value's number + 1."""
        book = self.books[name]
        if isinstance(book, IntBook):
            values, valid = cols.get("ints", name)  # type: ignore[misc]
            return book.slots(values, valid)
        if name in self.own:
            return book.slots_of(cols.arrays[name])  # type: ignore[union-attr]
        return cols.get("slots", name)  # type: ignore[return-value]

    def _key_numbers(self, cols: Columns) -> np.ndarray:
        if not self.keys:
            return np.zeros(cols.rows, np.int64)
        columns = [self._slots(cols, k) for k in self.keys]
        if self.keybook is None:  # one key column: its slot is the key's number
            self.size = max(self.size, int(columns[0].max()) + 1)
            return columns[0]
        numbers = self.keybook.encode(columns)
        self.size = len(self.keybook)
        return numbers

    def distinct_total(self, column: str) -> int:
        """Distinct non-null values of a distinct column over all keys together."""
        return self.pairs[column].total()

    def result(self, count_name: str = "n", distinct_names: dict[str, str] | None = None) -> pa.Table:
        """One row per key (one row in all without keys): `count_name`, the aggs, distinct counts."""
        names = {d: d for d in self.distinct} | dict(distinct_names or {})
        size = self.size
        n = grow(self.n, size)[:size]
        at = np.flatnonzero(n > 0) if self.keys else np.zeros(1, np.int64)
        columns: dict[str, pa.Array] = {}
        for i, key in enumerate(self.keys):
            key_slots = at if self.keybook is None else self.keybook.slots(i)[at]
            columns[key] = self._decode(key, key_slots)
        columns[count_name] = pa.array(n[at], pa.int64())
        for name, (_, fn) in self.aggs.items():
            found = grow(self.valid[name], size)[:size][at]
            valid = (found > 0) & (n[at] > 0)
            state = self.values.get(name)
            if fn == "count":
                columns[name] = pa.array(found, pa.int64(), mask=n[at] == 0)
            elif state is None:  # nothing added
                columns[name] = pa.nulls(len(at), pa.int64())
            elif isinstance(state, FloatSum):
                columns[name] = pa.array(state.result(size)[at], pa.float64(), mask=~valid)
            elif fn == "sum":
                columns[name] = pa.array(grow(state, size)[:size][at], pa.int64(), mask=~valid)
            else:
                columns[name] = from_ints(grow(state, size)[:size][at], valid, self.types[name])
        for name, pairs in self.pairs.items():
            columns[names[name]] = pa.array(pairs.counts(size)[at], pa.int64())
        return pa.table(columns)

    def _decode(self, name: str, key_slots: np.ndarray) -> pa.Array:
        book = self.books[name]
        if isinstance(book, IntBook):
            return book.decode(key_slots)
        return book.decode(pa.array(key_slots - 1, CODE, mask=key_slots == 0))


def _stringy(type_: pa.DataType) -> bool:
    """A string column, plain or dictionary-encoded."""
    return pa.types.is_string(type_) or (pa.types.is_dictionary(type_) and pa.types.is_string(type_.value_type))
