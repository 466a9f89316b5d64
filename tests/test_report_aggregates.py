"""build_reports over a small two-run dataset, every figure computed by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack import schema
from logtrack.enrich.static import is_page_path
from logtrack.report import REPORT_DESCRIPTIONS, REPORT_SCHEMAS, DatasetWriter, build_reports
from logtrack.report.scan import pageview_flags
from logtrack.sessions import pageview_mask

UTC = dt.UTC
D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
XSS = "<script>alert(1)</script>"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


TS = pa.timestamp("us", tz="UTC")
REQ_COLS = ["ts", "method", "path", "status", "is_bot", "is_static", "bot_name", "anonymous_id",
            "client_ip", "request_time_ms", "user_agent", "bytes_sent"]
# run A: 1 March; run B: 2 March (r11 is 00:30 on 3 March in Paris)
RUN_A = [
    (at(1, 9), "GET", "/products/1", 200, False, False, None, "v1", "1.1.1.0", 10.0, "Firefox UA", 100),
    (at(1, 9, 5), "GET", "/products/2", 200, False, False, None, "v1", "1.1.1.0", 20.0, "Firefox UA", 100),
    (at(1, 10), "GET", "/about", 200, False, False, None, "v2", "2.2.2.0", 30.0, "Chrome UA", 100),
    (at(1, 10, 1), "GET", "/style.css", 200, False, True, None, "v2", "2.2.2.0", 40.0, "Chrome UA", 100),
    (at(1, 11), "GET", "/missing", 404, True, False, "Googlebot", None, "3.3.3.0", 50.0, "Googlebot/2.1", 100),
]
RUN_B = [
    (at(2, 8), "GET", "/products/1", 200, False, False, None, "v3", "4.4.4.0", None, "Chrome Mobile", 10),
    (at(2, 8, 30), "POST", "/api/orders", 201, False, False, None, "v3", "4.4.4.0", None, "Chrome Mobile", 10),
    (at(2, 9), "GET", "/missing", 404, False, False, None, "v3", "4.4.4.0", None, "Chrome Mobile", 10),
    (at(2, 9, 10), "GET", "/boom", 500, False, False, None, "v3", "4.4.4.0", None, "Chrome Mobile", 10),
    (at(2, 9, 20), "GET", "/boom", 503, True, False, "Googlebot", None, "3.3.3.0", None, "Googlebot/2.1", 10),
    (at(2, 23, 30), "GET", "/", 200, False, False, None, "v4", "5.5.5.0", None, XSS, 10),
]
SESSION_COLS = ["session_id", "anonymous_id", "user_id", "start", "duration_s", "pageviews", "landing_path",
                "exit_path", "channel", "referer_host", "utm_source", "utm_medium", "utm_campaign", "browser",
                "os", "device", "is_bounce", "is_engaged"]
SESSIONS_A = [
    ("s1", "v1", None, at(1, 9), 300.0, 2, "/products/1", "/products/2", "organic_search", "www.google.com",
     None, None, None, "Firefox", "Linux", "desktop", False, True),
    ("s2", "v2", None, at(1, 10), 5.0, 1, "/about", "/about", "direct", None, None, None, None, "Chrome",
     "Windows", "desktop", True, False),
]
SESSIONS_B = [
    ("s3", "v3", "u3", at(2, 8), 4200.0, 1, "/products/1", "/boom", "campaign", None, "newsletter", "email",
     "spring", "Chrome", "Android", "mobile", False, True),
    ("s4", "v4", None, at(2, 23, 30), 0.0, 1, "/", "/", "direct", None, None, None, None, "Safari", "iOS",
     "mobile", True, False),
]
EVENTS_A = [("e1", "server_page_view", at(1, 9), "v1", None), ("e2", "server_page_view", at(1, 9, 5), "v1", None)]
EVENTS_B = [("e3", "server_order_placed", at(2, 8, 30), "v3", "u3"), ("e4", "server_page_view", at(2, 8), "v3", "u3")]


def table(rows: list[tuple], columns: list[str], target: pa.Schema) -> pa.Table:
    data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    types = {f.name: f.type for f in target}
    return schema.conform(pa.table({c: pa.array(v, types[c]) for c, v in data.items()}), target)


def write_run(out: Path, key: str, reqs: list, sessions: list, events: list, rejects: int = 0,
              row_group_rows: int = 128 * 1024) -> None:
    with DatasetWriter(out, key, run_date=D1, row_group_rows=row_group_rows) as w:
        w.write("requests", table(reqs, REQ_COLS, schema.ENRICHED_REQUESTS))
        w.write("sessions", table(sessions, SESSION_COLS, schema.SESSIONS))
        w.write("events", table(events, ["event_id", "event_name", "ts", "anonymous_id", "user_id"], schema.EVENTS))
        reasons = ["no match", "no match", "line too long"][:rejects]
        w.write("rejects", schema.conform(pa.table({"reason": reasons}), schema.REJECTS))


def write_two_runs(out: Path, rejects: int = 3, events: bool = True, row_group_rows_b: int = 128 * 1024) -> Path:
    """Runs A and B (the report tests' shared data set) into `out`."""
    write_run(out, "runa", RUN_A, SESSIONS_A, EVENTS_A if events else [], rejects=rejects)
    write_run(out, "runb", RUN_B, SESSIONS_B, EVENTS_B if events else [], row_group_rows=row_group_rows_b)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_runs(tmp_path_factory.mktemp("ds"))


def group_products(paths: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(paths, r"^/products/\d+$", "/products/{product_id}")


@pytest.fixture(scope="module")
def reports(dataset: Path) -> dict[str, pa.Table]:
    return build_reports(dataset, path_grouper=group_products)


def rows(t: pa.Table, *cols: str) -> list[tuple]:
    return [tuple(r[c] for c in cols) for r in t.to_pylist()]


def test_daily_kpis(reports: dict[str, pa.Table]) -> None:
    k = reports["daily_kpis"].to_pylist()
    assert [r["date"] for r in k] == [D1, D2]
    d1, d2 = k
    assert (d1["requests"], d1["pageviews"], d1["bot_requests"], d1["client_errors"], d1["server_errors"]) == (5, 3, 1, 1, 0)
    assert d1["bot_share"] == pytest.approx(0.2) and d1["error_rate"] == pytest.approx(0.2)
    assert (d1["bytes_sent"], d1["client_ips"]) == (500, 3)
    assert (d1["p50_request_time_ms"], d1["p95_request_time_ms"]) == (30.0, 50.0)
    assert (d1["sessions"], d1["visitors"], d1["users"], d1["engaged_sessions"], d1["events"]) == (2, 2, 0, 1, 2)
    assert d1["bounce_rate"] == 0.5 and d1["avg_session_duration_s"] == 152.5
    assert (d2["requests"], d2["pageviews"], d2["bot_requests"], d2["client_errors"], d2["server_errors"]) == (6, 2, 1, 1, 2)
    assert d2["error_rate"] == pytest.approx(0.5)
    assert d2["p50_request_time_ms"] is None and d2["p95_request_time_ms"] is None  # not logged that day
    assert (d2["sessions"], d2["visitors"], d2["users"], d2["avg_session_duration_s"], d2["events"]) == (2, 2, 1, 2100.0, 2)


def test_totals(reports: dict[str, pa.Table]) -> None:
    (t,) = reports["totals"].to_pylist()
    assert (t["first_ts"], t["last_ts"], t["days"]) == (at(1, 9), at(2, 23, 30), 2)
    assert (t["requests"], t["pageviews"], t["bot_requests"], t["client_ips"]) == (11, 5, 2, 5)
    assert t["bot_share"] == pytest.approx(2 / 11) and t["error_rate"] == pytest.approx(4 / 11)
    assert (t["sessions"], t["visitors"], t["users"], t["engaged_sessions"]) == (4, 4, 1, 2)
    assert t["bounce_rate"] == 0.5
    assert (t["events"], t["rejects"]) == (4, 3)


def test_pages_grouped_by_template(reports: dict[str, pa.Table]) -> None:
    assert rows(reports["top_pages"], "path", "pageviews", "visitors", "share") == [
        ("/products/{product_id}", 3, 2, 0.6), ("/", 1, 1, 0.2), ("/about", 1, 1, 0.2)]
    entry = reports["entry_pages"]
    assert rows(entry, "path", "sessions", "visitors", "pageviews", "bounce_rate", "engaged_sessions",
                "avg_session_duration_s", "share") == [
        ("/products/{product_id}", 2, 2, 3, 0.0, 2, 2250.0, 0.5), ("/", 1, 1, 1, 1.0, 0, 0.0, 0.25),
        ("/about", 1, 1, 1, 1.0, 0, 5.0, 0.25)]
    assert rows(reports["exit_pages"], "path", "sessions") == [
        ("/", 1), ("/about", 1), ("/boom", 1), ("/products/{product_id}", 1)]


def test_top_pages_without_grouper(dataset: Path, tmp_path: Path) -> None:
    top = build_reports(dataset, write=False)["top_pages"]
    assert rows(top, "path", "pageviews", "visitors") == [
        ("/products/1", 2, 2), ("/", 1, 1), ("/about", 1, 1), ("/products/2", 1, 1)]
    # With a limit, visitors are counted for the ranked pages only; their figures do not change.
    top2 = build_reports(dataset, write=False, limit=2)["top_pages"]
    assert rows(top2, "path", "pageviews", "visitors", "share") == [("/products/1", 2, 2, 0.4), ("/", 1, 1, 0.2)]


def test_acquisition_and_technology(reports: dict[str, pa.Table]) -> None:
    assert rows(reports["referrers"], "referer_host", "sessions", "share") == [("www.google.com", 1, 0.25)]
    assert rows(reports["channels"], "channel", "sessions", "bounce_rate", "engaged_sessions") == [
        ("direct", 2, 1.0, 0), ("campaign", 1, 0.0, 1), ("organic_search", 1, 0.0, 1)]
    assert rows(reports["campaigns"], "utm_source", "utm_medium", "utm_campaign", "sessions", "visitors") == [
        ("newsletter", "email", "spring", 1, 1)]
    assert rows(reports["browsers"], "browser", "sessions") == [("Chrome", 2), ("Firefox", 1), ("Safari", 1)]
    assert rows(reports["os"], "os", "sessions") == [("Android", 1), ("Linux", 1), ("Windows", 1), ("iOS", 1)]
    assert rows(reports["devices"], "device", "sessions", "visitors", "pageviews") == [
        ("desktop", 2, 2, 3), ("mobile", 2, 2, 2)]


def test_server_side_reports(reports: dict[str, pa.Table]) -> None:
    assert rows(reports["status_codes_by_day"], "date", "status", "requests") == [
        (D1, 200, 4), (D1, 404, 1), (D2, 200, 2), (D2, 201, 1), (D2, 404, 1), (D2, 500, 1), (D2, 503, 1)]
    assert rows(reports["bots_by_name"], "bot_name", "requests", "client_ips", "first_seen", "last_seen") == [
        ("Googlebot", 2, 1, at(1, 11), at(2, 9, 20))]
    assert rows(reports["not_found_paths"], "path", "requests", "bot_requests", "last_seen") == [
        ("/missing", 2, 1, at(2, 9))]
    assert rows(reports["server_error_paths"], "path", "status", "requests") == [("/boom", 500, 1), ("/boom", 503, 1)]
    assert rows(reports["user_agents"], "user_agent", "requests", "is_bot") == [
        ("Chrome Mobile", 4, False), ("Chrome UA", 2, False), ("Firefox UA", 2, False),
        ("Googlebot/2.1", 2, True), (XSS, 1, False)]
    assert rows(reports["rejects_by_reason"], "reason", "rejects") == [("no match", 2), ("line too long", 1)]


def test_events_and_hours(reports: dict[str, pa.Table]) -> None:
    assert rows(reports["events_by_day"], "date", "event_name", "events", "visitors", "users") == [
        (D1, "server_page_view", 2, 1, 0), (D2, "server_order_placed", 1, 1, 1), (D2, "server_page_view", 1, 1, 1)]
    assert rows(reports["hourly_traffic"], "date", "hour", "requests", "pageviews", "bot_requests") == [
        (D1, 9, 2, 2, 0), (D1, 10, 2, 1, 0), (D1, 11, 1, 0, 1), (D2, 8, 2, 1, 0), (D2, 9, 3, 0, 1), (D2, 23, 1, 1, 0)]


def test_timezone_moves_dates_and_hours(dataset: Path) -> None:
    r = build_reports(dataset, timezone="Europe/Paris", write=False)  # UTC+1 in March
    assert rows(r["daily_kpis"], "date", "requests", "sessions") == [(D1, 5, 2), (D2, 5, 1), (D3, 1, 1)]
    assert rows(r["hourly_traffic"], "date", "hour", "requests")[0] == (D1, 10, 2)
    assert rows(r["hourly_traffic"], "date", "hour", "requests")[-1] == (D3, 0, 1)


def test_reports_written_with_documented_schemas(dataset: Path, reports: dict[str, pa.Table]) -> None:
    assert list(reports) == list(REPORT_SCHEMAS) == list(REPORT_DESCRIPTIONS)
    for name, expected in REPORT_SCHEMAS.items():
        assert all((f.metadata or {}).get(b"description") for f in expected), name
        on_disk = pq.read_table(dataset / "reports" / f"{name}.parquet")
        assert on_disk.schema.equals(expected, check_metadata=False), name
        assert on_disk.schema.field(0).metadata[b"description"], name  # self-documenting files
        assert on_disk.equals(reports[name]), name
    assert not [p for p in (dataset / "reports").iterdir() if p.name.startswith(".")]  # no temp left


def test_rerun_of_same_inputs_does_not_double_count(dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    write_run(copy, "runb", RUN_B, SESSIONS_B, EVENTS_B)
    (t,) = build_reports(copy, write=False)["totals"].to_pylist()
    assert (t["requests"], t["sessions"], t["events"]) == (11, 4, 4)


def test_empty_directory_gives_every_report_empty(tmp_path: Path) -> None:
    r = build_reports(tmp_path)
    assert set(r) == set(REPORT_SCHEMAS)
    assert all(r[n].num_rows == 0 for n in r if n != "totals")
    (t,) = r["totals"].to_pylist()
    assert (t["requests"], t["sessions"], t["events"], t["rejects"], t["bot_share"]) == (0, 0, 0, 0, None)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(f"{n}.parquet" for n in REPORT_SCHEMAS)


def test_pageviews_follow_the_sessionizer_definition(tmp_path: Path) -> None:
    reqs = [  # (method, path, status): only the first two are pageviews
        ("GET", "/cached", 304), ("HEAD", "/head", 200), ("GET", "/feed.xml", 200), ("GET", "/moved", 301),
        ("POST", "/form", 200), ("GET", "/logo.png", 200),
    ]
    rows_ = [(at(1, 9), m, p, s, False, False, None, "v1", "1.1.1.0", None, "UA", 1) for m, p, s in reqs]
    with DatasetWriter(tmp_path, "pv", run_date=D1) as w:
        w.write("requests", table(rows_, REQ_COLS, schema.ENRICHED_REQUESTS))
    r = build_reports(tmp_path, write=False)
    assert rows(r["top_pages"], "path", "pageviews") == [("/cached", 1), ("/head", 1)]
    assert r["totals"]["pageviews"].to_pylist() == [2]
    assert rows(r["hourly_traffic"], "hour", "requests", "pageviews") == [(9, 6, 2)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["GET", "HEAD", "POST", None]),
    st.sampled_from(["/", "/a", "/x.json", "/y.CSS", "/feed.xml", "/p.php", "/z.png;jsessionid=1", None]),
    st.sampled_from([200, 204, 299, 300, 301, 304, 404, 500, None]),
    st.sampled_from([True, False, None]), st.sampled_from([True, False, None])), max_size=40))
def test_pageview_definition_matches_the_sessionizer(rows_: list[tuple]) -> None:
    t = schema.conform(pa.table({
        "ts": pa.array([at(1, 9)] * len(rows_), TS), "method": pa.array([r[0] for r in rows_], pa.string()),
        "path": pa.array([r[1] for r in rows_], pa.string()), "status": pa.array([r[2] for r in rows_], pa.int16()),
        "is_bot": pa.array([r[3] for r in rows_], pa.bool_()), "is_static": pa.array([r[4] for r in rows_], pa.bool_()),
    }), schema.ENRICHED_REQUESTS)
    batch = t.combine_chunks().to_batches()[0] if len(rows_) else pa.RecordBatch.from_pylist([], schema=t.schema)
    # The numpy form the traffic scan uses, with the methods dictionary-encoded as they are read,
    # and as they come when the column is plain strings.
    assert pageview_flags(batch, np.array([p is not None and bool(is_page_path(pa.array([p], pa.string()))[0].as_py())
                                           for p in (r[1] for r in rows_)], bool)).tolist() == pageview_mask(t).tolist()
    page = np.array([p is not None and bool(is_page_path(pa.array([p], pa.string()))[0].as_py()) for p in
                     (r[1] for r in rows_)], bool)
    encoded = batch.set_column(batch.schema.get_field_index("method"), "method",
                               pc.dictionary_encode(batch.column("method"))) if len(rows_) else batch
    assert pageview_flags(encoded, page).tolist() == pageview_mask(t).tolist()


def test_reports_do_not_depend_on_row_groups(reports: dict[str, pa.Table], tmp_path: Path) -> None:
    # One row per row group: every batch has its own dictionaries, pre-aggregates merge them.
    for key, reqs, sessions, events, rejects in (("runa", RUN_A, SESSIONS_A, EVENTS_A, 3),
                                                 ("runb", RUN_B, SESSIONS_B, EVENTS_B, 0)):
        for i, req in enumerate(reqs):  # and one write per request
            write_run(tmp_path, f"{key}{i}", [req], sessions if i == 0 else [], events if i == 0 else [],
                      rejects if i == 0 else 0, row_group_rows=1)
    again = build_reports(tmp_path, path_grouper=group_products, write=False)
    for name, expected in reports.items():
        assert again[name].equals(expected), name


def test_partials_merge_as_they_grow_and_sum_exactly() -> None:
    from logtrack.report.scan import Partials

    parts = Partials(pa.schema([("path", pa.string()), ("n", pa.int64()), ("ts", TS)]), ["path"], {"ts": "max"})
    parts.floor = parts.limit = 4  # merge often: after the 5th gathered row, then whenever rows pass twice the merge
    expect: dict[str, tuple[int, dt.datetime]] = {}
    for i in range(40):
        keys = [f"/p{i % 7}", f"/p{i % 3}"]
        times = [at(1, i % 24), at(2, i % 24)]
        parts.add(pa.RecordBatch.from_pydict({"path": keys, "n": [1, 2], "ts": pa.array(times, TS)}))
        for key, n, when in zip(keys, (1, 2), times, strict=True):
            old_n, old_ts = expect.get(key, (0, when))
            expect[key] = (old_n + n, max(old_ts, when))
        assert parts.rows <= 2 * len(expect) + 2 * 4  # bounded by the distinct keys, not the batches
    got = {r["path"]: (r["n"], r["ts"]) for r in parts.result().to_pylist()}
    assert got == expect
    assert parts.result().column_names == ["path", "n", "ts"]
