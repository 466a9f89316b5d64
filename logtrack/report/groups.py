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


class Codebook:
    """Numbers for the distinct strings of one column over a scan (in order of first sight).

    `mapper`, when given, maps an array of distinct strings to the strings to number instead (a
    path grouper: the paths of one template share its number); it is called once per string.
    """

    def __init__(self, mapper: Callable[[pa.Array], pa.Array] | None = None) -> None:
        self.mapper = mapper
        self.index: dict[str, int] = {}  # the string numbered (mapped) -> its number
        self.raw: dict[str, int] = {}  # with a mapper: each string seen -> its mapped number
        self._values: pa.Array | None = None

    def encode(self, values: pa.Array) -> pa.Array:
        """The number of every value (null stays null), as int32."""
        encoded = dictionary_of(values)
        words = encoded.dictionary.to_pylist()
        if self.mapper is None:
            codes = self._number(words)
        else:
            new = [w for w in words if w not in self.raw]
            if new:
                grouped = pa.array(self.mapper(pa.array(new, pa.string()))).cast(pa.string())
                mapped = self._number(grouped.to_pylist())
                self.raw.update(zip(new, mapped, strict=True))
            raw = self.raw
            codes = [raw[w] for w in words]
        return pa.array(codes, CODE).take(encoded.indices)

    def _number(self, words: list[str | None]) -> list[int | None]:
        index = self.index
        before = len(index)
        # A mapper may map a string to null: null, as a null value is.
        codes = [None if w is None else index.setdefault(w, len(index)) for w in words]
        if len(index) != before:
            self._values = None
        return codes

    def decode(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The strings of `codes`."""
        if self._values is None:
            self._values = pa.array(list(self.index), pa.string())
        return self._values.take(codes)


class Grouping:
    """One streaming group-by: rows per key, `aggs` of value columns, distinct counts.

    `keys` and `distinct` map column names to the `Codebook` their codes come from, or to the
    type of a column taken as it is: strings (plain or dictionary-encoded, as scanned) are
    pre-aggregated on the batch's dictionary indices and gathered as strings, other types (a
    date, a status) as they are. `aggs` maps an output name to (input column, function) with
    functions `sum`, `count` (non-null values), `min`, `max`. `add` takes a batch's columns by
    name, codebook columns as codes; `result()` has the keys (decoded), the row count, the aggs
    and one column per distinct column counting its distinct non-null values per key.
    """

    def __init__(self, keys: dict[str, Codebook | pa.DataType],
                 distinct: dict[str, Codebook | pa.DataType] | None = None,
                 aggs: dict[str, tuple[str, str]] | None = None) -> None:
        self.keys, self.distinct, self.aggs = dict(keys), dict(distinct or {}), dict(aggs or {})
        self.specs = {**self.keys, **self.distinct}
        self.group_cols = list(self.specs)
        self.types = {c: CODE if isinstance(k, Codebook) else k for c, k in self.specs.items()}
        self.partials: Partials | None = None
        self.pre_aggregates = 0
        # Without string columns, rows are comparable across batches: gather them as they come
        # and pre-aggregate many batches at once (one group-by per GATHER_ROWS, not per batch).
        self.gather = not any(pa.types.is_string(t) for t in self.types.values())
        self.gathered: list[pa.Table] = []
        self.gathered_rows = 0

    @property
    def rows(self) -> int:
        """Rows held now: gathered ones and pre-aggregates (about two per distinct tuple)."""
        return self.gathered_rows + (self.partials.rows if self.partials is not None else 0)

    def add(self, columns: dict[str, pa.Array]) -> None:
        """Take one batch: `columns` holds every key, distinct and agg input column."""
        inputs = sorted({source for source, _ in self.aggs.values()})
        table = pa.table({**{c: columns[c] for c in self.group_cols}, **{f"v_{c}": columns[c] for c in inputs}})
        if not self.gather:
            self._pre_aggregate(table)
            return
        self.gathered.append(table)
        self.gathered_rows += table.num_rows
        if self.gathered_rows >= GATHER_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.gathered:
            table = pa.concat_tables(self.gathered)
            self.gathered, self.gathered_rows = [], 0
            self._pre_aggregate(table)

    def _pre_aggregate(self, columns: pa.Table) -> None:
        """Group rows by the keys and distinct columns into the pre-aggregates."""
        codes, dictionaries = {}, {}
        for name in self.group_cols:
            if pa.types.is_string(self.types[name]):
                encoded = dictionary_of(columns[name].combine_chunks())
                codes[name], dictionaries[name] = encoded.indices, encoded.dictionary
            else:
                codes[name] = columns[name]
        table = pa.table({**codes, **{c: columns[c] for c in columns.column_names if c.startswith("v_")}})
        specs = [([], "count_all")] + [(f"v_{source}", fn) for source, fn in self.aggs.values()]
        grouped = table.group_by(self.group_cols, use_threads=False).aggregate(specs)
        arrays = []
        for name in self.group_cols:
            col = grouped[name].combine_chunks()
            if name in dictionaries:
                col = dictionaries[name].take(col)
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
        specs += [(d, "count_distinct", DISTINCT) for d in self.distinct]
        out = self._merged().group_by(list(self.keys), use_threads=False).aggregate(specs)
        rename = {"n_sum": count_name} | {f"{name}_{MERGE[fn]}": name for name, (_, fn) in self.aggs.items()} \
            | {f"{d}_count_distinct": names[d] for d in self.distinct}
        out = out.rename_columns([rename.get(c, c) for c in out.column_names])
        for key, book in self.keys.items():
            if isinstance(book, Codebook):
                out = out.set_column(out.schema.get_field_index(key), key, book.decode(out[key]))
        # Null sums of no rows at all (a scalar group-by without rows) become 0 rows.
        return out.set_column(out.schema.get_field_index(count_name), count_name, pc.fill_null(out[count_name], 0))
