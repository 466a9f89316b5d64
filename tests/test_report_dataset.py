"""DatasetWriter: hive-partitioned zstd Parquet, atomic per-run replacement, readable as is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logtrack import schema
from logtrack.errors import UsageError
from logtrack.report import DatasetWriter, InputIdentity, run_key_for

UTC = dt.UTC
RUN_DATE = dt.date(2026, 3, 9)


def _ts(*times: dt.datetime) -> pa.Array:
    return pa.array(list(times), pa.timestamp("us", tz="UTC"))


def requests(times: list[dt.datetime], paths: list[str] | None = None) -> pa.Table:
    paths = paths or [f"/p{i}" for i in range(len(times))]
    return schema.conform(pa.table({"ts": _ts(*times), "path": paths, "status": [200] * len(times),
                                    "method": ["GET"] * len(times)}), schema.ENRICHED_REQUESTS)


def files(root: Path) -> list[str]:
    """Every visible file under root, relative (hidden staging files included when present)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


D1 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
D2 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
D3 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_layout_schema_and_compression(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "run1", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1, D2, D1]))
    assert files(tmp_path) == ["requests/date=2026-03-01/part-run1.parquet",
                               "requests/date=2026-03-02/part-run1.parquet"]
    part = tmp_path / "requests/date=2026-03-01/part-run1.parquet"
    # Exactly the schema's columns and types; the date is the partition only.
    assert pq.read_schema(part).remove_metadata() == schema.empty(schema.ENRICHED_REQUESTS).schema
    meta = pq.ParquetFile(part).metadata
    assert meta.num_rows == 2
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_readable_by_pandas_and_duckdb_without_options(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "run1", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1, D2, D2], ["/a", "/b", "/c"]))
        w.write("events", schema.conform(pa.table({"event_id": ["e1"], "event_name": ["x_signup"],
                                                   "ts": _ts(D2)}), schema.EVENTS))
    df = pd.read_parquet(tmp_path / "requests")
    assert len(df) == 3
    assert list(df.columns) == schema.ENRICHED_REQUESTS.names + ["date"]
    assert sorted(df.groupby("date", observed=True).size().to_dict().items()) == [("2026-03-01", 1),
                                                                                  ("2026-03-02", 2)]
    events = pd.read_parquet(tmp_path / "events")
    assert events["event_name"].tolist() == ["x_signup"]
    rows = duckdb.sql(
        f"select date, count(*), min(path) from read_parquet('{tmp_path}/requests/**/*.parquet', "
        "hive_partitioning=true) group by date order by date").fetchall()
    assert rows == [(dt.date(2026, 3, 1), 1, "/a"), (dt.date(2026, 3, 2), 2, "/b")]
    (n,) = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/events/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0]
    assert n == 1


def test_partition_date_follows_timezone(tmp_path: Path) -> None:
    late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 00:30 on 2 March in Paris
    with DatasetWriter(tmp_path, "tz", timezone="Europe/Paris") as w:
        w.write("requests", requests([late]))
        w.write("sessions", schema.conform(pa.table({"session_id": ["s"], "start": _ts(late)}), schema.SESSIONS))
    assert files(tmp_path) == ["requests/date=2026-03-02/part-tz.parquet",
                               "sessions/date=2026-03-02/part-tz.parquet"]


def test_rerun_replaces_only_its_own_parts(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "aaaa", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1, D2, D3]))
    with DatasetWriter(tmp_path, "bbbb", run_date=RUN_DATE) as w:  # another run, same days
        w.write("requests", requests([D1, D2]))
    assert len(pd.read_parquet(tmp_path / "requests")) == 5
    # Re-running the first inputs: now they only produce 1 March (twice); 2 and 3 March lose
    # their aaaa parts, 3 March's partition disappears, bbbb's parts stay as they were.
    before_b = (tmp_path / "requests/date=2026-03-02/part-bbbb.parquet").read_bytes()
    with DatasetWriter(tmp_path, "aaaa", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1, D1]))
    assert files(tmp_path) == ["requests/date=2026-03-01/part-aaaa.parquet",
                               "requests/date=2026-03-01/part-bbbb.parquet",
                               "requests/date=2026-03-02/part-bbbb.parquet"]
    assert (tmp_path / "requests/date=2026-03-02/part-bbbb.parquet").read_bytes() == before_b
    df = pd.read_parquet(tmp_path / "requests")
    assert len(df) == 4
    # Running the same inputs again changes nothing: no duplicates.
    with DatasetWriter(tmp_path, "aaaa", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1, D1]))
    assert len(pd.read_parquet(tmp_path / "requests")) == 4


def test_rerun_without_a_kind_removes_its_old_parts(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "k1", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1]))
        w.write("events", schema.conform(pa.table({"event_id": ["e"], "event_name": ["n"], "ts": _ts(D1)}),
                                         schema.EVENTS))
    with DatasetWriter(tmp_path, "k1", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1]))
    assert files(tmp_path) == ["requests/date=2026-03-01/part-k1.parquet"]


def test_uncommitted_run_is_invisible_and_abort_cleans_up(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "old", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1]))
    published = files(tmp_path)
    # A run that crashes before commit (never committed nor aborted), with a part on disk.
    crashed = DatasetWriter(tmp_path, "old", run_date=RUN_DATE, row_group_rows=1)
    crashed.write("requests", requests([D2, D2]))
    assert any(".tmp-old-" in f for f in files(tmp_path))  # the part exists, written aside
    assert len(pd.read_parquet(tmp_path / "requests")) == 1  # readers do not see it
    (n,) = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/requests/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0]
    assert n == 1
    # abort() removes what a failed run wrote; so does leaving a `with` block by an exception.
    failing = DatasetWriter(tmp_path, "new", run_date=RUN_DATE, row_group_rows=1)
    failing.write("requests", requests([D3]))
    failing.abort()
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path, "new2", run_date=RUN_DATE, row_group_rows=1) as w:
        w.write("requests", requests([D3]))
        raise RuntimeError("boom")
    assert not any(".tmp-new" in f for f in files(tmp_path))
    # The next commit of the crashed run's key cleans its leftovers too.
    with DatasetWriter(tmp_path, "old", run_date=RUN_DATE) as w:
        w.write("requests", requests([D1]))
    assert files(tmp_path) == published


def test_streams_row_groups_to_disk_as_they_fill(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path, "g", run_date=RUN_DATE, row_group_rows=2)
    w.write("requests", requests([D1]))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # one row: still buffered
    w.write("requests", requests([D1]))
    staged = [p for p in tmp_path.rglob("*.parquet") if ".tmp-g-" in str(p)]
    assert len(staged) == 1 and staged[0].stat().st_size > 0  # a full row group went to disk
    for _ in range(3):
        w.write("requests", requests([D1]))
    w.commit()
    meta = pq.ParquetFile(tmp_path / "requests/date=2026-03-01/part-g.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2, 1]


def test_reopens_evicted_partitions_in_new_parts(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path, "s", run_date=RUN_DATE, max_open_files=1)
    for _ in range(3):  # alternating dates with one open file: each switch closes a part
        w.write("requests", requests([D1, D1, D1]))
        w.write("requests", requests([D2]))
    assert w.commit() == {"requests": 12}
    assert files(tmp_path) == [
        "requests/date=2026-03-01/part-s-1.parquet", "requests/date=2026-03-01/part-s-2.parquet",
        "requests/date=2026-03-01/part-s.parquet", "requests/date=2026-03-02/part-s-1.parquet",
        "requests/date=2026-03-02/part-s-2.parquet", "requests/date=2026-03-02/part-s.parquet"]
    assert len(pd.read_parquet(tmp_path / "requests")) == 12
    # A re-run with everything in one part per date removes the -N parts.
    with DatasetWriter(tmp_path, "s", run_date=RUN_DATE) as w2:
        w2.write("requests", requests([D1, D2]))
    assert files(tmp_path) == ["requests/date=2026-03-01/part-s.parquet", "requests/date=2026-03-02/part-s.parquet"]


def test_unsorted_batch_keeps_row_order_within_each_date(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "o", run_date=RUN_DATE) as w:
        w.write("requests", requests([D2, D1, D2, D1], ["/a", "/b", "/c", "/d"]))
    t = pq.read_table(tmp_path / "requests/date=2026-03-02/part-o.parquet")
    assert t["path"].to_pylist() == ["/a", "/c"]


def test_rejects_use_run_date_or_line_time(tmp_path: Path) -> None:
    rejects = pa.table({"source": ["f.log"] * 2, "line": [3, 4], "reason": ["bad"] * 2, "text": ["x", "y"]})
    with DatasetWriter(tmp_path, "r", run_date=RUN_DATE) as w:
        w.write("rejects", rejects)
        w.write("rejects", rejects.append_column("ts", _ts(D1, None)))
    assert files(tmp_path) == ["rejects/date=2026-03-01/part-r.parquet", "rejects/date=2026-03-09/part-r.parquet"]
    assert pq.read_schema(tmp_path / "rejects/date=2026-03-01/part-r.parquet").names == schema.REJECTS.names
    assert len(pd.read_parquet(tmp_path / "rejects")) == 4


def test_kind_with_no_rows_still_has_a_readable_empty_dataset(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, "e", run_date=RUN_DATE) as w:
        w.write("events", schema.empty(schema.EVENTS))
    assert files(tmp_path) == ["events/date=2026-03-09/part-e.parquet"]
    df = pd.read_parquet(tmp_path / "events")
    assert len(df) == 0 and "event_name" in df.columns
    (n,) = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/events/**/*.parquet', "
                      "hive_partitioning=true)").fetchall()[0]
    assert n == 0


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        DatasetWriter(tmp_path, "../evil")
    with pytest.raises(UsageError):
        DatasetWriter(tmp_path, "k", timezone="Mars/Olympus")
    w = DatasetWriter(tmp_path, "k")
    with pytest.raises(ValueError):
        w.write("pageviews", requests([D1]))
    w.abort()


def test_run_key_identity(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"line one\nline two\n")
    b.write_bytes(b"other\n")
    ia, ib = InputIdentity.of(a), InputIdentity.of(b)
    assert ia.size == 18 and ia.path == str(a.resolve()) and ia.start == 0
    key = run_key_for([ia, ib])
    assert len(key) == 16 and key == run_key_for([ib, ia])  # a set: order does not matter
    assert key != run_key_for([ia])
    # The same file grown keeps its key (a re-run replaces instead of duplicating) ...
    with open(a, "ab") as f:
        f.write(b"line three\n")
    assert run_key_for([InputIdentity.of(a), ib]) == key
    # ... a rotated file with new content, or a different start offset, does not.
    a.write_bytes(b"new first line\n")
    assert run_key_for([InputIdentity.of(a), ib]) != key
    assert run_key_for([InputIdentity.of(b, start=6), ia]) != run_key_for([ib, ia])


def test_two_runs_at_once_do_not_interfere(tmp_path: Path) -> None:
    a = DatasetWriter(tmp_path, "one", run_date=RUN_DATE)
    b = DatasetWriter(tmp_path, "two", run_date=RUN_DATE)
    a.write("requests", requests([D1]))
    b.write("requests", requests([D1, D2]).to_batches()[0])  # a record batch is accepted too
    b.commit()
    a.commit()
    assert files(tmp_path) == ["requests/date=2026-03-01/part-one.parquet",
                               "requests/date=2026-03-01/part-two.parquet",
                               "requests/date=2026-03-02/part-two.parquet"]


def _row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_byte_budget_flushes_the_largest_buffer_first(tmp_path: Path) -> None:
    big, small = requests([D1] * 2000), requests([D2] * 10)
    w = DatasetWriter(tmp_path, "b", run_date=RUN_DATE, row_group_rows=10**6, buffer_bytes=big.nbytes)
    w.write("requests", small)
    w.write("requests", big)  # over budget: the 2000 rows of D1 flush, D2's 10 stay buffered
    w.write("requests", small)
    w.write("requests", big)
    w.commit()
    assert _row_groups(tmp_path / "requests/date=2026-03-01/part-b.parquet") == [2000, 2000]
    assert _row_groups(tmp_path / "requests/date=2026-03-02/part-b.parquet") == [20]
    # Without the budget the same writes make one row group per part.
    with DatasetWriter(tmp_path, "u", run_date=RUN_DATE, row_group_rows=10**6) as w2:
        for table in (small, big, small, big):
            w2.write("requests", table)
    assert _row_groups(tmp_path / "requests/date=2026-03-01/part-u.parquet") == [4000]


def test_straggler_rows_do_not_pin_the_whole_batch(tmp_path: Path) -> None:
    table = requests([D1] * 20000 + [D2] * 3)
    w = DatasetWriter(tmp_path, "p", run_date=RUN_DATE)
    w.write("requests", table)
    buffered = w._open[("requests", "2026-03-02")].buffer[0]
    assert buffered.num_rows == 3
    assert buffered.get_total_buffer_size() < table.get_total_buffer_size() / 100  # a copy, not a slice
    w.commit()
    assert pd.read_parquet(tmp_path / "requests")["path"].tolist() == [f"/p{i}" for i in range(20003)]


@pytest.mark.parametrize("runs", [3, 300])  # few date runs: slices; many: one stable sort
def test_date_runs_keep_row_order_within_each_date(tmp_path: Path, runs: int) -> None:
    times = [D1 if (i // (600 // runs)) % 2 == 0 else D2 for i in range(600)]
    with DatasetWriter(tmp_path, f"r{runs}", run_date=RUN_DATE) as w:
        w.write("requests", requests(times))
    df = pd.read_parquet(tmp_path / "requests")
    for day, when in (("2026-03-01", D1), ("2026-03-02", D2)):
        expect = [f"/p{i}" for i, t in enumerate(times) if t == when]
        assert df[df["date"] == day]["path"].tolist() == expect
