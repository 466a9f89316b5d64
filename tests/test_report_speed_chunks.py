"""The report's reader (`scan.chunks`) and string numbering (`groups.Interner`): the chunks hold
the same rows as a pyarrow dataset of DIR would, whatever their size; reports do not depend on it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from test_report_aggregates import group_products, write_two_runs

from logtrack.report import build_reports, scan
from logtrack.report.groups import Codebook, Interner
from logtrack.report.scan import chunks, part_files


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_two_runs(tmp_path_factory.mktemp("chunks"))
    for path in out.rglob("*.parquet"):  # rewritten with a row group per row: several per file
        pq.write_table(pq.read_table(path), path, row_group_size=1)
    return out


def _rows(table: pa.Table | pa.RecordBatch, columns: list[str]) -> list[tuple]:
    decoded = [table.column(c).cast(pa.string()) if pa.types.is_dictionary(table.column(c).type) else table.column(c)
               for c in columns]
    return sorted(zip(*(c.to_pylist() for c in decoded), strict=True), key=repr)


@pytest.mark.parametrize("rows", [1, 3, 1 << 20])
def test_chunks_hold_the_rows_a_dataset_reads(dataset: Path, rows: int) -> None:
    columns = ["ts", "path", "status", "anonymous_id"]
    expected = ds.dataset(dataset / "requests", format="parquet", partitioning="hive").to_table(columns=columns)
    got = list(chunks(dataset, "requests", columns, ["path", "anonymous_id"], rows=rows))
    assert sum(b.num_rows for b in got) == expected.num_rows > 0
    assert all(b.schema.names == columns and pa.types.is_dictionary(b.column("path").type) for b in got)
    if rows == 1 << 20:  # several row groups per chunk: one (unified) dictionary each
        assert len(got) == len(part_files(dataset, "requests")) < sum(
            pq.ParquetFile(p).metadata.num_row_groups for p in part_files(dataset, "requests"))
    assert _rows(pa.Table.from_batches(got).combine_chunks() if got else expected, columns) == _rows(expected, columns)


def test_chunks_skip_hidden_files_and_read_missing_columns_as_null(tmp_path: Path) -> None:
    part = tmp_path / "rejects" / "date=2026-03-01"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"reason": ["no match"]}), part / "part-old.parquet")  # an older schema: one column
    pq.write_table(pa.table({"reason": ["hidden"]}), part / ".part-tmp.parquet")
    (tmp_path / "rejects" / "_staging").mkdir()
    pq.write_table(pa.table({"reason": ["staged"]}), tmp_path / "rejects" / "_staging" / "part.parquet")
    (batch,) = chunks(tmp_path, "rejects", ["reason", "line"], ["reason"])
    assert batch.column("reason").cast(pa.string()).to_pylist() == ["no match"]
    assert batch.column("line").to_pylist() == [None]
    assert list(chunks(tmp_path, "events", ["ts"])) == []  # no such dataset: no rows


def test_interner_numbers_strings_in_order_of_first_sight_across_batches() -> None:
    book = Interner()
    assert book.encode(pa.array(["b", None, "a", "b"])).to_pylist() == [0, None, 1, 0]
    again = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, None, 1], pa.int32()), pa.array(["c", "a", "c"]))
    assert book.encode(again).to_pylist() == [2, 1, 2, None, 1]  # a duplicated dictionary value: one number
    assert book.decode(pa.array([2, 0, None], pa.int32())).to_pylist() == ["c", "b", None]
    assert len(book) == 3


def test_codebook_maps_only_new_strings() -> None:
    seen: list[list[str]] = []

    def upper(values: pa.Array) -> pa.Array:
        seen.append(values.to_pylist())
        return pa.array([v.upper() for v in values.to_pylist()])

    book = Codebook(upper)
    assert book.encode(pa.array(["a", "A", None])).to_pylist() == [0, 0, None]
    assert book.encode(pa.array(["b", "a"])).to_pylist() == [1, 0]
    assert seen == [["a", "A"], ["b"]]


def test_reports_do_not_depend_on_chunk_size(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = build_reports(dataset, path_grouper=group_products, write=False)
    assert expected["top_pages"].num_rows and expected["events_by_day"].num_rows
    monkeypatch.setattr(scan, "CHUNK_ROWS", 1)  # one row group per chunk: each with its own dictionaries
    again = build_reports(dataset, path_grouper=group_products, write=False)
    for name, table in expected.items():
        assert again[name].equals(table), name


def test_chunks_with_valued_skip_row_groups_whose_statistics_hold_only_nulls(tmp_path: Path) -> None:
    part = tmp_path / "requests" / "date=2026-03-01"
    part.mkdir(parents=True)
    ms = [None, None, 5.0, None, None, None]
    ts = pa.array(range(6), pa.int64()).view(pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"ts": ts, "request_time_ms": pa.array(ms, pa.float64())}), part / "a.parquet",
                   row_group_size=2)
    pq.write_table(pa.table({"ts": ts}), part / "b.parquet")  # written before the column existed
    got = list(chunks(tmp_path, "requests", ["ts", "request_time_ms"], rows=1, valued="request_time_ms"))
    assert [b.column("request_time_ms").to_pylist() for b in got] == [[5.0, None]]  # the one row group with a value
    every = list(chunks(tmp_path, "requests", ["ts", "request_time_ms"], rows=1))
    assert sum(b.num_rows for b in every) == 12
