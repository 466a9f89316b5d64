"""Group-bys fed batch by batch: `Partials` (pre-aggregates merged as they grow), and several
group-bys with exact distinct counts fed by one scan (`Grouping`, `Codebook`).

Acero's `hash_count_distinct` runs inside its own plan, so every report that counts visitors or
client addresses used to scan the dataset again (ten scans of the sessions, each hashing every
row's visitor string). Here one scan feeds any number of `Grouping`s. Each pre-aggregates its
rows by (keys, distinct columns) on integers — a `Codebook`'s numbers (strings numbered once per
distinct value of a batch, shared by every grouping) or a batch's dictionary indices — and only
the distinct tuples are kept, in `Partials`: memory holds about two rows per distinct tuple, as
Acero's distinct count holds one per distinct pair. `result()` groups them by the keys: sums and
exact distinct counts.

This module imports nothing of logtrack: `scan` (and through it `enrich`, whose user-agent
tables build thousands of objects at import) is imported one level shallower that way. Python
3.11 frees its frame-stack chunk whenever a call returns across a chunk boundary; one level
deeper, those imports thrashed it: 60,000 page faults, 0.5 s of system time per run (measured).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

# How each aggregate of rows merges with the pre-aggregates: a count becomes a sum of counts.
MERGE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}
CODE = pa.int32()
DISTINCT = pc.CountOptions(mode="only_valid")
PARTIAL_ROWS = 128 * 1024  # pre-aggregated rows gathered before the first merge
GATHER_ROWS = 256 * 1024


def dictionary_of(values: pa.Array) -> pa.DictionaryArray:
    """`values` dictionary-encoded (as is when it already is)."""
    return values if isinstance(values, pa.DictionaryArray) else pc.dictionary_encode(values)


class Partials:
    """Per-batch pre-aggregates (`tally` outputs) gathered beside a scan, merged at the end.

    Lets one scan feed several reports: a transform tallies what another report needs and
    `add`s it here instead of that report scanning the dataset again. Memory stays bounded: when
    the gathered rows outgrow twice the last merge they are merged (`n` summed, other columns by
    `aggs`), so about two rows per distinct key are held.
    """

    def __init__(self, schema: pa.Schema, keys: list[str], aggs: dict[str, str] | None = None) -> None:
        self.keys, self.aggs = keys, {"n": "sum", **(aggs or {})}
        self.tables: list[pa.Table] = [schema.empty_table()]
        self.rows = 0
        self.floor = self.limit = PARTIAL_ROWS  # rows gathered before the first merge

    def add(self, batch: pa.RecordBatch) -> None:
        """Gather one batch's pre-aggregate (columns: the keys, `n`, the `aggs` columns)."""
        self.tables.append(pa.Table.from_batches([batch]))
        self.rows += batch.num_rows
        if self.rows > self.limit:
            merged = self.result()
            self.tables, self.rows = [merged], merged.num_rows
            self.limit = max(self.floor, 2 * merged.num_rows)

    def result(self) -> pa.Table:
        """The merged pre-aggregates: one row per distinct key, columns named as gathered."""
        table = pa.concat_tables(self.tables)
        out = table.group_by(self.keys, use_threads=False).aggregate(list(self.aggs.items()))
        names = {f"{c}_{fn}": c for c, fn in self.aggs.items()}
        return out.rename_columns([names.get(n, n) for n in out.column_names]).select(table.column_names)


class Interner:
    """Numbers for the distinct strings of a scan (0, 1, … in order of first sight), found by
    hash kernels: each batch's dictionary (its distinct values) is looked up among the strings
    numbered so far and only the new ones are appended. Nothing per string runs in Python."""

    def __init__(self) -> None:
        self.known = pa.array([], pa.string())

    def __len__(self) -> int:
        return len(self.known)

    def dictionary_codes(self, words: pa.Array) -> pa.Array:
        """The number of every string of `words` (distinct strings; null stays null), as int32."""
        words = words.cast(pa.string())
        where = pc.index_in(words, value_set=self.known)
        missing = pc.and_(where.is_null(), words.is_valid())
        if pc.any(missing).as_py():
            new = pc.unique(words.filter(missing))
            found = pc.add(pc.index_in(words, value_set=new), pa.scalar(len(self.known), CODE))
            where = pc.coalesce(where, found)
            self.known = pa.concat_arrays([self.known, new])
        return where

    def encode(self, values: pa.Array) -> pa.Array:
        """The number of every value (null stays null), as int32."""
        encoded = dictionary_of(values)
        return self.dictionary_codes(encoded.dictionary).take(encoded.indices)

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The strings of `codes`."""
        return self.known.take(codes)


class Codebook:
    """Numbers for the distinct strings of one column over a scan (in order of first sight).

    `mapper`, when given, maps an array of distinct strings to the strings to number instead (a
    path grouper: the paths of one template share its number); it is called once per string.
    """

    def __init__(self, mapper: Callable[[pa.Array], pa.Array] | None = None) -> None:
        self.mapper = mapper
        self.words = Interner()  # the strings numbered (mapped)
        self.raw = Interner()  # with a mapper: each string seen …
        self.mapped = pa.array([], CODE)  # … and its mapped number, by the string's own number

    def encode(self, values: pa.Array) -> pa.Array:
        """The number of every value (null stays null), as int32."""
        if self.mapper is None:
            return self.words.encode(values)
        encoded = dictionary_of(values)
        before = len(self.raw)
        raw = self.raw.dictionary_codes(encoded.dictionary)
        if len(self.raw) > before:
            new = self.raw.known.slice(before)
            grouped = pa.array(self.mapper(new)).cast(pa.string())
            self.mapped = pa.concat_arrays([self.mapped, self.words.dictionary_codes(grouped)])
        return self.mapped.take(raw).take(encoded.indices)

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The strings of `codes`."""
        return self.words.decode(codes)


class Grouping:
    """One streaming group-by: rows per key, `aggs` of value columns, distinct counts.

    `keys` and `distinct` map column names to the `Codebook` (or `Interner`, shared by several
    groupings) their codes come from, or to the
    type of a column taken as it is: strings (plain or dictionary-encoded, as scanned) are
    numbered by the grouping's own `Interner` (a hash lookup per distinct value of a batch), other
    types (a date, a status) are taken as they are. `aggs` maps an output name to (input column,
    function) with functions `sum`, `count` (non-null values), `min`, `max`. `add` takes a
    batch's columns by name, codebook columns as codes; `result()` has the keys (decoded), the
    row count, the aggs and one column per distinct column counting its distinct non-null values
    per key.
    """

    def __init__(self, keys: dict[str, Codebook | Interner | pa.DataType],
                 distinct: dict[str, Codebook | Interner | pa.DataType] | None = None,
                 aggs: dict[str, tuple[str, str]] | None = None) -> None:
        self.keys, self.distinct, self.aggs = dict(keys), dict(distinct or {}), dict(aggs or {})
        self.specs = {**self.keys, **self.distinct}
        self.group_cols = list(self.specs)
        # Strings become numbers as they come: every group column is then an integer (or a date),
        # comparable across batches, so rows are gathered and pre-aggregated many batches at once.
        self.books = {c: Interner() for c, k in self.specs.items() if isinstance(k, pa.DataType) and _stringy(k)}
        self.types = {c: CODE if isinstance(k, Codebook | Interner) or c in self.books else k
                      for c, k in self.specs.items()}
        self.inputs = sorted({source for source, _ in self.aggs.values()})
        self.partials: Partials | None = None
        self.pre_aggregates = 0
        self.gather = True
        self.gathered: list[pa.Table] = []
        self.gathered_rows = 0

    @property
    def rows(self) -> int:
        """Rows held now: gathered ones and pre-aggregates (about two per distinct tuple)."""
        return self.gathered_rows + (self.partials.rows if self.partials is not None else 0)

    def add(self, columns: dict[str, pa.Array]) -> None:
        """Take one batch: `columns` holds every key, distinct and agg input column."""
        group = {c: self.books[c].encode(columns[c]) if c in self.books else columns[c] for c in self.group_cols}
        table = pa.table({**group, **{f"v_{c}": columns[c] for c in self.inputs}})
        self.gathered.append(table)
        self.gathered_rows += table.num_rows
        if self.gathered_rows >= GATHER_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.gathered:
            table = pa.concat_tables(self.gathered)
            self.gathered, self.gathered_rows = [], 0
            self._pre_aggregate(table)

    def _pre_aggregate(self, table: pa.Table) -> None:
        """Group rows by the keys and distinct columns into the pre-aggregates."""
        specs = [([], "count_all")] + [(f"v_{source}", fn) for source, fn in self.aggs.values()]
        grouped = table.group_by(self.group_cols, use_threads=False).aggregate(specs)
        arrays = []
        for name in self.group_cols:
            col = grouped[name].combine_chunks()
            arrays.append(col if col.type == self.types[name] else col.cast(self.types[name]))
        arrays.append(grouped["count_all"].combine_chunks())
        values = [grouped[f"v_{source}_{fn}"].combine_chunks() for source, fn in self.aggs.values()]
        if self.partials is None:
            # The pre-aggregates' types are known from the first batch (a sum of int64 is int64).
            schema = pa.schema([*self.types.items(), ("n", pa.int64()),
                                *((name, v.type) for name, v in zip(self.aggs, values, strict=True))])
            self.partials = Partials(schema, self.group_cols, {name: MERGE[fn] for name, (_, fn) in self.aggs.items()})
        self.partials.add(pa.RecordBatch.from_arrays(arrays + values, [*self.group_cols, "n", *self.aggs]))
        self.pre_aggregates += 1

    def _merged(self) -> pa.Table:
        self._flush()
        if self.partials is None:
            return pa.schema([*self.types.items(), ("n", pa.int64()),
                              *((name, pa.int64()) for name in self.aggs)]).empty_table()
        if self.pre_aggregates == 1:
            # One pre-aggregate (a dataset that fits GATHER_ROWS) is merged already.
            return self.partials.tables[-1]
        return self.partials.result()

    def distinct_total(self, column: str) -> int:
        """Distinct non-null values of a distinct column over all keys together."""
        return pc.count_distinct(self._merged()[column], mode="only_valid").as_py()

    def result(self, count_name: str = "n", distinct_names: dict[str, str] | None = None) -> pa.Table:
        """One row per key (one row in all without keys): `count_name`, the aggs, distinct counts."""
        names = {d: d for d in self.distinct} | dict(distinct_names or {})
        specs = [("n", "sum")] + [(name, MERGE[fn]) for name, (_, fn) in self.aggs.items()]
        # The merged rows are distinct (keys, distinct columns) tuples: with one distinct column,
        # its distinct values per key are its non-null rows per key — a count, no hash set per key.
        counting = "count" if len(self.distinct) == 1 else "count_distinct"
        specs += [(d, counting, DISTINCT) for d in self.distinct]
        out = self._merged().group_by(list(self.keys), use_threads=False).aggregate(specs)
        rename = {"n_sum": count_name} | {f"{name}_{MERGE[fn]}": name for name, (_, fn) in self.aggs.items()} \
            | {f"{d}_{counting}": names[d] for d in self.distinct}
        out = out.rename_columns([rename.get(c, c) for c in out.column_names])
        for key, book in self.keys.items():
            book = self.books.get(key, book)
            if isinstance(book, Codebook | Interner):
                out = out.set_column(out.schema.get_field_index(key), key, book.decode(out[key]))
        # Null sums of no rows at all (a scalar group-by without rows) become 0 rows.
        return out.set_column(out.schema.get_field_index(count_name), count_name, pc.fill_null(out[count_name], 0))


def _stringy(type_: pa.DataType) -> bool:
    """A string column, plain or dictionary-encoded."""
    return pa.types.is_string(type_) or (pa.types.is_dictionary(type_) and pa.types.is_string(type_.value_type))
