"""Streaming scans and group-bys over the datasets, with bounded memory.

A scan reads only the columns a report needs (computed columns are Arrow expressions evaluated
by the scanner, in C++), batch by batch, and feeds an Acero aggregate node: memory holds the
group states (one per distinct key; a distinct count keeps its distinct values, a t-digest a
few hundred centroids), never the dataset.

Long repeated strings (user agents, paths) are read as Parquet stores them, dictionary-encoded,
and `tally` pre-aggregates each batch on the dictionary indices: hashing a 120-byte user agent
once per distinct value instead of once per row made the user-agent report 12× cheaper. Python
touches each batch only for that and for a `path_grouper`, once per distinct path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.acero as ac
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..enrich.static import is_page_path
from .dataset import KIND_SCHEMAS
from .groups import DISTINCT, Partials, dictionary_of  # noqa: F401 - part of this module's API

Expr = pc.Expression
PathGrouper = Callable[[pa.Array], pa.Array]
PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
BATCH_ROWS = 128 * 1024
# Rows read at once by `chunks`: whole row groups, until at least this many.
CHUNK_ROWS = 256 * 1024
SCAN_OPTIONS = ds.ParquetFragmentScanOptions(pre_buffer=False)
DICT = pa.dictionary(pa.int32(), pa.string())
STRING = pa.string()


def open_dataset(out_dir: Path, kind: str, dictionary: Sequence[str] = ()) -> ds.Dataset:
    """The kind's dataset under `out_dir` (every run's parts); an empty one when absent.

    Columns named in `dictionary` are read as dictionary arrays (one dictionary per row group).
    """
    schema = pa.schema([pa.field(f.name, DICT if f.name in dictionary else f.type) for f in KIND_SCHEMAS[kind]]
                       + [("date", pa.string())])
    path = Path(out_dir) / kind
    if not path.is_dir():
        return ds.dataset(schema.empty_table())
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary)))
    # The explicit schema makes parts written before a column existed read it as null.
    return ds.dataset(path, schema=schema, format=fmt, partitioning=PARTITIONING)


def part_files(out_dir: Path, kind: str) -> list[Path]:
    """The kind's part files under `out_dir` (every run's, every date partition's), as a dataset
    discovers them: files below `DIR/<kind>/`, none under a name starting with '.' or '_'."""
    root = Path(out_dir) / kind
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def chunks(out_dir: Path, kind: str, columns: Sequence[str], dictionary: Sequence[str] = (),
           rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """The `columns` of the kind's dataset, a few row groups (about `rows` rows) at a time.

    Read with pyarrow.parquet, one thread: no dataset scanner, no read-ahead threads. Columns in
    `dictionary` arrive dictionary-encoded with ONE dictionary per chunk (the row groups'
    dictionaries unified): per-chunk work per distinct value (numbering, path templates) runs a
    few times per file, not once per row group. A part written before a column existed reads
    it as null, as the explicit dataset schema did.
    """
    types = {f.name: DICT if f.name in dictionary else f.type for f in KIND_SCHEMAS[kind]}
    for path in part_files(out_dir, kind):
        file = pq.ParquetFile(path, read_dictionary=list(dictionary), pre_buffer=False)
        present = [c for c in columns if c in file.schema_arrow.names]
        sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
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


def _conform(table: pa.Table, columns: Sequence[str], types: dict[str, pa.DataType]) -> pa.RecordBatch:
    arrays = []
    for name in columns:
        if name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, types[name]))
            continue
        column = table.column(name)
        if pa.types.is_dictionary(column.type) and column.num_chunks > 1:
            column = column.unify_dictionaries()
        array = column.combine_chunks()
        arrays.append(array if array.type == types[name] else array.cast(types[name]))
    return pa.RecordBatch.from_arrays(arrays, list(columns))


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


def call(function: str, *args: Expr | pa.Scalar) -> Expr:
    """An expression calling any Arrow compute function."""
    return Expr._call(function, [a if isinstance(a, Expr) else pc.scalar(a) for a in args])


def flag(column: str) -> Expr:
    """A boolean column with null read as False."""
    return call("coalesce", pc.field(column), pa.scalar(False))


def as_int(expr: Expr) -> Expr:
    """A boolean expression as 0/1 int64 (null as 0), for summing."""
    return call("coalesce", expr, pa.scalar(False)).cast(pa.int64())


def local_date(column: str, timezone: str) -> Expr:
    """The local calendar date of a UTC timestamp column."""
    local = pc.field(column).cast(pa.timestamp("us", tz=timezone))
    return call("local_timestamp", local).cast(pa.date32())


def local_hour(column: str, timezone: str) -> Expr:
    """The local hour (0–23) of a UTC timestamp column."""
    return call("hour", pc.field(column).cast(pa.timestamp("us", tz=timezone))).cast(pa.int8())


PAGEVIEW_INPUTS = ("status", "method", "path", "is_bot", "is_static")
METHODS = pa.array(["GET", "HEAD"])


def pageviews(batch: pa.RecordBatch, pages: PathMemo | None = None) -> pa.Array:
    """Which rows are pageviews: the sessionizer's definition (`sessions.pageview_mask`, 2xx/304
    GET/HEAD of a page-like, non-static path by a non-bot), so reports and sessions agree.

    Same result (a test checks it on random tables), twice as fast: the path's extension is
    tested once per distinct path of the batch instead of once per row — or, with `pages` (a
    `page_memo()` kept over a scan), once per distinct path of the scan.
    """
    encoded = dictionary_of(batch.column("path"))
    return pageview_mask(batch, (pages or is_page_path)(encoded.dictionary).take(encoded.indices))


def pageview_mask(batch: pa.RecordBatch, page: pa.Array) -> pa.Array:
    """`pageviews` with the page-likeness of every row's path given (`is_page_path`)."""
    status = batch.column("status")
    ok = pc.or_kleene(pc.and_kleene(pc.greater_equal(status, 200), pc.less(status, 300)), pc.equal(status, 304))
    method = batch.column("method")
    if isinstance(method, pa.DictionaryArray):  # once per distinct method
        method = pc.is_in(method.dictionary, value_set=METHODS).take(method.indices)
    else:
        method = pc.is_in(method, value_set=METHODS)
    human = pc.invert(pc.or_(pc.fill_null(batch.column("is_bot"), False), pc.fill_null(batch.column("is_static"), False)))
    return pc.fill_null(pc.and_kleene(pc.and_kleene(ok, method), pc.and_kleene(human, page)), False)


class PathMemo:
    """A path grouper that remembers its answers: each distinct path is grouped once per report
    run instead of once per batch that holds it (the rules' template regexes over every batch's
    distinct paths cost a third of the traffic scan). Holds at most `limit` paths, then starts over.

    Any function of a string array that answers path by path can be memoized (`page_memo`);
    `result_type` is the type of its answers.
    """

    def __init__(self, grouper: PathGrouper, limit: int = 1 << 20, result_type: pa.DataType = STRING) -> None:
        self.grouper, self.limit, self.type = grouper, limit, result_type
        self.known = pa.array([], pa.string())
        self.grouped = pa.array([], result_type)

    def __call__(self, paths: pa.Array) -> pa.Array:
        """The group (template) of every path in `paths` (null stays null)."""
        paths = paths.cast(pa.string())
        where = pc.index_in(paths, value_set=self.known)
        missing = pc.and_(where.is_null(), paths.is_valid())
        if pc.any(missing).as_py():
            new = pc.unique(paths.filter(missing))
            if len(self.known) + len(new) > self.limit:
                # Start over with this batch's paths only (all of them: the ones known before too).
                self.known, self.grouped = pa.array([], pa.string()), pa.array([], self.type)
                new, where = pc.unique(paths.drop_null()), None
            # Only the new paths are hashed again (the known ones were found above).
            found = pc.add(pc.index_in(paths, value_set=new), pa.scalar(len(self.known), pa.int32()))
            where = found if where is None else pc.coalesce(where, found)
            self.known = pa.concat_arrays([self.known, new])
            self.grouped = pa.concat_arrays([self.grouped, pa.array(self.grouper(new)).cast(self.type)])
        return self.grouped.take(where)


def page_memo() -> PathMemo:
    """`is_page_path`, remembered per distinct path over a scan (`pageviews(batch, pages)`):
    a dictionary-encoded column read back has a dictionary per row group, mostly the same paths."""
    return PathMemo(is_page_path, result_type=pa.bool_())


def regroup(encoded: pa.DictionaryArray, mapper: PathGrouper) -> pa.DictionaryArray:
    """`encoded` with its dictionary mapped (once per distinct value) and made distinct again:
    two paths of one template share one code."""
    words = pc.dictionary_encode(pa.array(mapper(encoded.dictionary)).cast(pa.string()))
    return pa.DictionaryArray.from_arrays(words.indices.take(encoded.indices), words.dictionary)


def scan(out_dir: Path, kind: str, columns: dict[str, Expr], where: Expr | None = None,
         transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
         dictionary: Sequence[str] = ()) -> pa.RecordBatchReader:
    """Stream `columns` (name → expression) of the rows matching `where`, batch by batch, through
    `transform`; source columns in `dictionary` arrive dictionary-encoded."""
    dataset = open_dataset(out_dir, kind, dictionary)
    # Modest read-ahead and no whole-file pre-buffering: the defaults (16 batches, 4 files,
    # pre_buffer) cost ~200 MB of RSS per scan for no measurable speed on 2 cores.
    reader = dataset.scanner(columns=columns, filter=where, batch_size=BATCH_ROWS, batch_readahead=4,
                             fragment_readahead=2, fragment_scan_options=SCAN_OPTIONS).to_reader()
    if transform is None:
        return reader
    schema = transform(pa.RecordBatch.from_pylist([], schema=reader.schema)).schema

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield transform(batch)

    return pa.RecordBatchReader.from_batches(schema, batches())


Agg = tuple[str | list[str], str, pc.FunctionOptions | None, str]


def aggregate(reader: pa.RecordBatchReader, aggs: list[Agg], keys: list[str] | None = None) -> pa.Table:
    """Run an Acero aggregate over a stream: `aggs` are (column, function, options, name).

    Functions are named without the `hash_` prefix (`sum`, `count_distinct`, `tdigest`, …);
    with `keys` the grouped variants are used. Without keys the result has one row.
    """
    prefix = "hash_" if keys else ""
    specs = [(col, prefix + fn, opts, name) for col, fn, opts, name in aggs]
    plan = ac.Declaration.from_sequence([
        ac.Declaration("record_batch_reader_source", ac.RecordBatchReaderSourceNodeOptions(reader)),
        ac.Declaration("aggregate", ac.AggregateNodeOptions(specs, keys=keys or None)),
    ])
    return plan.to_table(use_threads=True)


def count_rows(name: str) -> Agg:
    """An aggregate counting rows (nulls included) into column `name`."""
    return ([], "count_all", None, name)


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
