"""The datasets' Parquet layout per column: encodings that pay, values and types unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from logtrack import schema
from logtrack.report import DatasetWriter

UTC = dt.UTC
D1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
BIG = 2**62


def _encodings(path: Path) -> dict[str, tuple[str, ...]]:
    rg = pq.ParquetFile(path).metadata.row_group(0)
    return {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}


def _stats(path: Path) -> dict[str, bool]:
    rg = pq.ParquetFile(path).metadata.row_group(0)
    return {rg.column(i).path_in_schema: rg.column(i).is_stats_set for i in range(rg.num_columns)}


def _requests(n: int) -> pa.Table:
    times = [D1 + dt.timedelta(seconds=i) for i in range(n)]
    return schema.conform(pa.table({
        "ts": pa.array(times, schema.TS),
        "path": [f"/p{i % 7}" for i in range(n)],
        "status": pa.array([200, 404, None, -1] * (n // 4), pa.int16()),
        "bytes_sent": pa.array([0, BIG, None, -BIG] * (n // 4), pa.int64()),
        "line": pa.array(range(n), pa.int64()),
        "session_id": [f"s{i // 3}" for i in range(n)],
        "request_id": [f"r{i}" for i in range(n)],
    }), schema.ENRICHED_REQUESTS)


def test_columns_are_encoded_by_what_they_hold(tmp_path: Path) -> None:
    events = schema.conform(pa.table({
        "event_id": [f"e{i:04d}" for i in range(400)],
        "event_name": ["view"] * 400,
        "ts": pa.array([D1] * 400, schema.TS),
        "properties": pa.array([[("path", f"/p{i % 3}")] for i in range(400)], schema.STR_MAP),
    }), schema.EVENTS)
    with DatasetWriter(tmp_path, "enc") as w:
        w.write("requests", _requests(400))
        w.write("events", events)
    req = _encodings(tmp_path / "requests/date=2026-03-01/part-enc.parquet")
    assert "DELTA_BINARY_PACKED" in req["ts"] and "DELTA_BINARY_PACKED" in req["line"]
    assert "DELTA_BINARY_PACKED" in req["bytes_sent"] and "DELTA_BINARY_PACKED" in req["status"]
    assert "RLE_DICTIONARY" in req["path"]  # repeated strings: a dictionary
    assert "RLE_DICTIONARY" not in req["session_id"]  # ids: no dictionary to fill and drop
    assert "DELTA_LENGTH_BYTE_ARRAY" in req["request_id"]  # the dataset's own key
    ev = _encodings(tmp_path / "events/date=2026-03-01/part-enc.parquet")
    assert "DELTA_LENGTH_BYTE_ARRAY" in ev["event_id"]
    assert "RLE_DICTIONARY" in ev["properties.key_value.key"]
    assert "RLE_DICTIONARY" in ev["properties.key_value.value"]
    stats = _stats(tmp_path / "requests/date=2026-03-01/part-enc.parquet")
    assert stats["ts"] and stats["status"] and not stats["path"] and not stats["user_agent"]
    for meta in (pq.ParquetFile(p).metadata for p in tmp_path.rglob("*.parquet")):
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}


def test_delta_encoded_values_read_back_exactly(tmp_path: Path) -> None:
    table = _requests(400)
    with DatasetWriter(tmp_path, "rt") as w:
        w.write("requests", table)
    part = tmp_path / "requests/date=2026-03-01/part-rt.parquet"
    back = pq.read_table(part)
    assert back.schema.remove_metadata() == schema.empty(schema.ENRICHED_REQUESTS).schema
    assert back.equals(table)
    rows = duckdb.sql(
        f"select min(bytes_sent), max(bytes_sent), count(status), min(status), max(line), "
        f"count(distinct session_id), min(ts) from read_parquet('{tmp_path}/requests/**/*.parquet', "
        "hive_partitioning=true)").fetchall()
    assert rows == [(-BIG, BIG, 300, -1, 399, 134, D1)]


def test_straggler_copy_spans_chunks(tmp_path: Path) -> None:
    # A step's table arrives in many chunks; the few rows of another date are copied from their
    # own slice (here across a chunk boundary), in order, without copying the rest of the table.
    d2 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    def late(names: list[str]) -> pa.Table:
        return schema.conform(pa.table({"ts": pa.array([d2] * len(names), schema.TS), "path": names}),
                              schema.ENRICHED_REQUESTS)

    table = pa.concat_tables([_requests(20000), late(["/a", "/b"]), late(["/c", "/d", "/e"])])
    w = DatasetWriter(tmp_path, "c")
    w.write("requests", table)
    buffered = w._open[("requests", "2026-03-02")].buffer[0]
    assert buffered.num_rows == 5
    assert buffered.get_total_buffer_size() < table.get_total_buffer_size() / 100
    w.commit()
    df = pd.read_parquet(tmp_path / "requests")
    assert df[df["date"] == "2026-03-02"]["path"].tolist() == ["/a", "/b", "/c", "/d", "/e"]
    assert df[df["date"] == "2026-03-01"]["line"].tolist() == list(range(20000))
