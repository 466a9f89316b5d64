"""Streaming reads and per-batch helpers over the datasets, with bounded memory.

`chunks` reads only the columns a report needs, a few row groups at a time, with pyarrow.parquet
on the calling thread (no dataset scanner, no Acero plan, no read-ahead threads): memory holds a
chunk and the group states (`groups.py`), never the dataset.

Long repeated strings (user agents, paths, visitors) are read as Parquet stores them,
dictionary-encoded, one dictionary array per chunk (its row groups' dictionaries end to end,
`concat_dictionaries`), and everything per string runs once per dictionary entry of a chunk: `tally` pre-aggregates on the dictionary indices (hashing a 120-byte user agent
once per distinct value instead of once per row made the user-agent report 12× cheaper), an
`Interner` numbers them for the group-bys, a `path_grouper` sees each distinct path once.
`Partials` gathers such per-chunk pre-aggregates and merges them as they grow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..enrich.static import PAGEVIEW_METHODS, pageview_rows
from .dataset import KIND_SCHEMAS
from .dense import compact, from_ints, int_sums, ints, slots
from .groups import dictionary_of

PathGrouper = Callable[[pa.Array], pa.Array]
# Rows read at once by `chunks`: whole row groups, until at least this many.
CHUNK_ROWS = 256 * 1024
DICT = pa.dictionary(pa.int32(), pa.string())
PARTIAL_ROWS = 128 * 1024  # pre-aggregated rows gathered before the first merge


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



def part_files(out_dir: Path, kind: str) -> list[Path]:
    """The kind's part files under `out_dir` (every run's, every date partition's), as a dataset
    discovers them: files below `DIR/<kind>/`, none under a name starting with '.' or '_'."""
    root = Path(out_dir) / kind
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def chunks(out_dir: Path, kind: str, columns: Sequence[str], dictionary: Sequence[str] = (),
           rows: int | None = None, valued: str | None = None) -> Iterator[pa.RecordBatch]:
    """The `columns` of the kind's dataset, a few row groups (about `rows` rows) at a time.

    Read with pyarrow.parquet, one thread: no dataset scanner, no read-ahead threads. Columns in
    `dictionary` arrive dictionary-encoded with ONE dictionary array per chunk (the row groups'
    dictionaries end to end, not unified: a value may repeat in it, `concat_dictionaries`):
    per-chunk work per dictionary entry (numbering, path templates) runs in one call per
    chunk, not once per row group. A part written before a column existed reads
    it as null, as the explicit dataset schema did. With `valued`, only row groups where that
    column may have a value are read: the others' statistics count only nulls (request times
    of a log without them cost no read).
    """
    rows = rows or CHUNK_ROWS
    types = {f.name: DICT if f.name in dictionary else f.type for f in KIND_SCHEMAS[kind]}
    for path in part_files(out_dir, kind):
        file = pq.ParquetFile(path, read_dictionary=list(dictionary), pre_buffer=False)
        names = set(file.schema_arrow.names)  # converted from the Parquet schema on every access
        present = [c for c in columns if c in names]
        sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
        if valued is not None:
            sizes = [n if _may_have_values(file, g, valued) else 0 for g, n in enumerate(sizes)]
        # Chunks of about equal size (a file of 1.1 × `rows` is one chunk, not a big and a small one).
        target = sum(sizes) / max(1, round(sum(sizes) / rows))
        run: list[int] = []
        run_rows = 0
        for group, n in enumerate(sizes):
            if n:
                run.append(group)
                run_rows += n
            if run and (run_rows >= target or group == len(sizes) - 1):
                table = file.read_row_groups(run, columns=present, use_threads=False)
                yield _conform(table, columns, types)
                run, run_rows = [], 0


def _may_have_values(file: pq.ParquetFile, group: int, column: str) -> bool:
    """Whether a row group may hold a non-null value of `column` (by its statistics)."""
    meta = file.metadata.row_group(group)
    for leaf in range(meta.num_columns):  # the column's leaf (map columns have two before later ones)
        chunk = meta.column(leaf)
        if chunk.path_in_schema == column:
            stats = chunk.statistics
            return stats is None or not stats.has_null_count or stats.null_count < meta.num_rows
    return False  # a part written before the column existed: all null


def _conform(table: pa.Table, columns: Sequence[str], types: dict[str, pa.DataType]) -> pa.RecordBatch:
    arrays = []
    for name in columns:
        if name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, types[name]))
            continue
        column = table.column(name)
        if pa.types.is_dictionary(column.type) and column.num_chunks > 1:
            array = concat_dictionaries(column)
        else:
            array = column.combine_chunks()
        arrays.append(array if array.type == types[name] else array.cast(types[name]))
    return pa.RecordBatch.from_arrays(arrays, list(columns))


def concat_dictionaries(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """The row groups' dictionary chunks as one array whose dictionary is theirs end to end
    (a value may repeat in it), each chunk's indices offset to its part.

    Unifying them would hash every row group's dictionary once more only for the consumers
    (`Interner`, `tally`) to hash the unified one again: they all work per dictionary entry and
    take a repeated value as the same string, so one hashing, theirs, is enough. Values are
    numbered in the order unifying would give (order of first sight)."""
    indices, dictionaries, offset = [], [], 0
    for chunk in column.chunks:
        indices.append(pc.add(chunk.indices, pa.scalar(offset, chunk.indices.type)) if offset else chunk.indices)
        dictionaries.append(chunk.dictionary)
        offset += len(chunk.dictionary)
    return pa.DictionaryArray.from_arrays(pa.concat_arrays(indices), pa.concat_arrays(dictionaries))


HOUR_US, DAY_US = 3_600_000_000, 86_400_000_000


def local_micros(ts: pa.Array, timezone: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Local wall-clock µs since the epoch of every UTC timestamp (0 where null) and their
    validity: floor-divided by DAY_US they are `local_dates`, by HOUR_US (mod 24) `local_hours`."""
    if timezone != "UTC":
        ts = pc.local_timestamp(ts.cast(pa.timestamp("us", tz=timezone)))
    return ints(ts)


def local_dates(ts: pa.Array, timezone: str) -> pa.Array:
    """The local calendar date of every UTC timestamp (as `local_date`, on an array)."""
    return pc.local_timestamp(ts.cast(pa.timestamp("us", tz=timezone))).cast(pa.date32())


def local_hours(ts: pa.Array, timezone: str) -> pa.Array:
    """The local hour (0–23) of every UTC timestamp (as `local_hour`, on an array)."""
    return pc.hour(ts.cast(pa.timestamp("us", tz=timezone))).cast(pa.int8())


def tally(keys: pa.Array, name: str, values: dict[str, tuple[pa.Array, str]] | None = None,
          mapper: PathGrouper | None = None) -> pa.RecordBatch:
    """Pre-aggregate one batch by a string column: rows `(name, n, *values)`, one per distinct key.

    `values` maps an output name to (array, "sum" | "max" | "min"); `mapper` (a path grouper)
    is applied to the distinct keys. Merge the batches with an aggregate summing `n`.
    """
    values = values or {}
    encoded = dictionary_of(keys)
    table = pa.table({"i": encoded.indices, **{k: a for k, (a, _) in values.items()}})
    grouped = table.group_by("i", use_threads=False).aggregate(
        [([], "count_all")] + [(k, fn) for k, (_, fn) in values.items()])
    words = encoded.dictionary if mapper is None else pa.array(mapper(encoded.dictionary)).cast(pa.string())
    arrays = [words.take(grouped["i"].combine_chunks()), grouped["count_all"].combine_chunks()]
    arrays += [grouped[f"{k}_{fn}"].combine_chunks() for k, (_, fn) in values.items()]
    return pa.RecordBatch.from_arrays(arrays, [name, "n", *values])


PAGEVIEW_INPUTS = ("status", "method", "path", "is_bot", "is_static")
METHODS = pa.array(PAGEVIEW_METHODS)


def pageview_flags(batch: pa.RecordBatch, page: np.ndarray) -> np.ndarray:
    """Which rows are pageviews, by the sessionizer's definition (`static.pageview_rows`), so
    reports and sessions agree; `page` says whether each row's path is page-like (False for
    null), answered once per distinct path by the caller."""
    status, valid = ints(batch.column("status"))
    method = batch.column("method")
    if isinstance(method, pa.DictionaryArray):  # once per distinct method
        allowed = np.concatenate([[False], pc.is_in(method.dictionary, value_set=METHODS).to_numpy(zero_copy_only=False)])
        method_ok = allowed[slots(method.indices)]
    else:
        method_ok = pc.fill_null(pc.is_in(method, value_set=METHODS), False).to_numpy(zero_copy_only=False)
    ok = pageview_rows(status, method_ok, ints(batch.column("is_bot"))[0] != 0, ints(batch.column("is_static"))[0] != 0)
    if valid is not None:
        ok &= valid
    return ok & page


TRAFFIC = pa.schema([("date", pa.date32()), ("hour", pa.int8()), ("status", pa.int16()), ("n", pa.int64()),
                     ("pageviews", pa.int64()), ("bot_requests", pa.int64()), ("bytes_sent", pa.int64())])
HOURLY_CELLS = 1 << 22  # (hour, status) cells of the table `hourly` counts in, at most


def hourly(local: np.ndarray, timed: np.ndarray | None, status: np.ndarray, known: np.ndarray | None,
            pv: np.ndarray, bot: np.ndarray, sent: np.ndarray) -> pa.RecordBatch:
    """One chunk's requests, pageviews, bot requests and bytes by (local date, hour, status): the
    local hour since the epoch and the status, each offset by its least value (0: null), index a
    table of their ranges' product; rows, pageviews and bot requests counted by one bincount."""
    hours = local // HOUR_US
    some = hours if timed is None else hours[timed]
    base = int(some.min()) - 1 if len(some) else 0
    hour_of = hours - base if timed is None else np.where(timed, hours - base, 0)
    seen = status if known is None else status[known]
    low = int(seen.min()) - 1 if len(seen) else 0
    status_of = status - low if known is None else np.where(known, status - low, 0)
    width = int(status_of.max()) + 1
    size = (int(hour_of.max()) + 1) * width
    if size > HOURLY_CELLS:  # sparse: keys numbered by their distinct values
        hour_slots, hour_of = compact(hour_of)
        status_slots, status_of = compact(status_of)
        width, size = len(status_slots), len(hour_slots) * len(status_slots)
    else:
        hour_slots, status_slots = np.arange(size // width), np.arange(width)
    # The two flags join the key (4 cells per (hour, status)): one count gives rows, pageviews
    # and bot requests, with no weight array; bytes are the one weighted sum.
    keys = hour_of * width + status_of
    cells = np.bincount((keys << 2) | (np.asarray(pv, bool).view(np.int8) << 1) | np.asarray(bot, bool).view(np.int8), minlength=4 * size).reshape(size, 4)
    n = cells.sum(axis=1)
    pv_sum, bot_sum = cells[:, 2] + cells[:, 3], cells[:, 1] + cells[:, 3]
    sent_sum = int_sums(keys, sent, size)
    found = np.flatnonzero(n)
    hour = hour_slots[found // width]
    hour_valid = hour > 0
    hour = hour + base
    stat = status_slots[found % width]
    return pa.RecordBatch.from_arrays([
        from_ints(hour // 24, hour_valid, pa.date32()), from_ints(hour % 24, hour_valid, pa.int8()),
        from_ints(stat + low, stat > 0, pa.int16()), pa.array(n[found]), pa.array(pv_sum[found]),
        pa.array(bot_sum[found]), pa.array(sent_sum[found])], schema=TRAFFIC)


def agent_tally(agents: pa.DictionaryArray, bot: np.ndarray) -> pa.RecordBatch:
    """Requests per user agent of one chunk and whether any was flagged a bot: counted on the
    dictionary indices (a 120-byte string hashed once per distinct value, not per row)."""
    encoded = dictionary_of(agents)
    at = slots(encoded.indices)
    size = len(encoded.dictionary) + 1
    n = np.bincount(at, minlength=size)
    flagged = np.bincount(at, weights=bot, minlength=size) > 0
    found = np.flatnonzero(n)
    words = pa.concat_arrays([pa.nulls(1, pa.string()), encoded.dictionary.cast(pa.string())])
    return pa.RecordBatch.from_arrays([words.take(pa.array(found)), pa.array(n[found]), pa.array(flagged[found])],
                                      ["user_agent", "n", "bot"])


Agg = tuple[str | list[str], str, pc.FunctionOptions | None, str]


def aggregate(reader: pa.RecordBatchReader, aggs: list[Agg], keys: list[str] | None = None) -> pa.Table:
    """Run an Acero aggregate over a stream: `aggs` are (column, function, options, name).

    Functions are named without the `hash_` prefix (`sum`, `count_distinct`, `tdigest`, …);
    with `keys` the grouped variants are used. Without keys the result has one row.
    """
    import pyarrow.acero as ac  # only logs with request times get here

    prefix = "hash_" if keys else ""
    specs = [(col, prefix + fn, opts, name) for col, fn, opts, name in aggs]
    plan = ac.Declaration.from_sequence([
        ac.Declaration("record_batch_reader_source", ac.RecordBatchReaderSourceNodeOptions(reader)),
        ac.Declaration("aggregate", ac.AggregateNodeOptions(specs, keys=keys or None)),
    ])
    return plan.to_table(use_threads=True)


def ratio(num: pa.Array | pa.ChunkedArray, den: pa.Array | pa.ChunkedArray) -> pa.Array:
    """num / den as float64, null where den is 0 or null."""
    den_f = pc.cast(den, pa.float64())
    quotient = pc.divide(pc.cast(num, pa.float64()), den_f)
    return pc.if_else(pc.equal(den_f, 0.0), pa.scalar(None, pa.float64()), quotient)


def top(table: pa.Table, metric: str, keys: list[str], limit: int | None) -> pa.Table:
    """Rows sorted by `metric` descending (ties by key), the first `limit` of them."""
    order = [(metric, "descending")] + [(k, "ascending") for k in keys]
    table = table.sort_by(order)
    return table if limit is None else table.slice(0, limit)


def zero_fill(table: pa.Table, columns: list[str]) -> pa.Table:
    """Replace nulls by 0 in count columns (a day with requests but no session has 0 sessions)."""
    for name in columns:
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, pc.fill_null(table.column(name), 0))
    return table
