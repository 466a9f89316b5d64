"""Sessionization: hand-computed sessions, stitching, exclusions, streaming invariance."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logtrack.config import Config
from logtrack.enrich import enrich
from logtrack.errors import ConfigError
from logtrack.identity import IdentityConfig, identify
from logtrack.rowstore import RowStore, remap
from logtrack.schema import ENRICHED_REQUESTS, REQUESTS, SESSIONS, conform
from logtrack.sessions import SessionConfig, Sessionizer, parse_duration
from logtrack.sessionstore import hashes, merge_sorted
from logtrack.yamlfile import load_yaml

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SALT = b"test-salt"


def requests(rows: list[dict]) -> pa.Table:
    """A requests table from short dicts; defaults: GET 200 page from one visitor."""
    cols: dict[str, list] = {name: [] for name in REQUESTS.names}
    for i, row in enumerate(rows):
        full = {"client_ip": "192.0.2.10", "user_agent": CHROME, "method": "GET", "status": 200, "path": "/",
                "host": "shop.example", "source": "a.log", "line": i + 1, **row}
        full["ts"] = pd.Timestamp(full["ts"], tz="UTC") if pd.Timestamp(full["ts"]).tzinfo is None else pd.Timestamp(full["ts"])
        for name in REQUESTS.names:
            cols[name].append(full.get(name))
    cols["fields"] = [list(f.items()) if f else None for f in cols["fields"]]
    table = pa.table({name: pa.array(cols[name], REQUESTS.field(name).type) for name in REQUESTS.names})
    return conform(table, REQUESTS)


def nulls(series: pd.Series) -> list:
    """A column as a list with None for missing values (pandas 3 strings use NaN)."""
    return [None if pd.isna(v) else v for v in series]


def prepared(rows: list[dict]) -> pa.Table:
    return identify(enrich(requests(rows)), IdentityConfig(), SALT)


def run(rows: list[dict], **cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = Sessionizer(SessionConfig(**cfg))
    first = s.push(prepared(rows), None)
    assert first.requests.num_rows == 0  # no watermark: nothing is final yet
    out = s.finish()
    assert out.requests.schema.names == ENRICHED_REQUESTS.names
    assert out.sessions.schema.names == SESSIONS.names
    return out.requests.to_pandas(), out.sessions.to_pandas()


def test_29_minute_gap_continues_31_minute_gap_splits():
    req, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/"},
                    {"ts": "2026-03-01 10:29:00", "path": "/a"},
                    {"ts": "2026-03-01 11:00:00", "path": "/b"}])
    assert list(req.session_seq) == [1, 1, 2]
    assert req.session_id[0] == req.session_id[1] != req.session_id[2]
    assert list(ses.requests) == [2, 1]
    assert list(ses.duration_s) == [29 * 60.0, 0.0]
    assert list(ses.landing_path) == ["/", "/b"] and list(ses.exit_path) == ["/a", "/b"]
    assert list(ses.pageviews) == [2, 1]
    assert list(ses.is_bounce) == [False, True] and list(ses.is_engaged) == [True, False]


def test_gap_of_exactly_the_timeout_continues():
    req, ses = run([{"ts": "2026-03-01 10:00:00"}, {"ts": "2026-03-01 10:30:00"}])
    assert len(ses) == 1


def test_midnight_splits_in_ua_mode_in_the_configured_zone():
    # 20-minute gaps. Berlin is UTC+1 on 1 March: 22:50Z = 23:50 local, 23:10Z = 00:10 local (a
    # new day there); 23:50Z → 00:10Z crosses UTC midnight within the same Berlin day.
    rows = [{"ts": "2026-03-01 22:50:00"}, {"ts": "2026-03-01 23:10:00"}, {"ts": "2026-03-01 23:30:00"},
            {"ts": "2026-03-01 23:50:00"}, {"ts": "2026-03-02 00:10:00"}]
    _, ga4 = run(rows, timezone="Europe/Berlin")
    assert len(ga4) == 1 and ga4.requests[0] == 5
    req, ua = run(rows, mode="ua", timezone="Europe/Berlin")
    assert list(req.session_seq) == [1, 2, 2, 2, 2]
    assert list(ua.requests) == [1, 4]
    _, ua_utc = run(rows, mode="ua", timezone="UTC")
    assert list(ua_utc.requests) == [4, 1]


def test_campaign_change_splits_in_ua_mode_only():
    rows = [{"ts": "2026-03-01 10:00:00", "query": "utm_source=news&utm_campaign=spring"},
            {"ts": "2026-03-01 10:05:00", "path": "/p"},  # direct: never splits
            {"ts": "2026-03-01 10:10:00", "query": "utm_source=news&utm_campaign=spring"},  # same: no split
            {"ts": "2026-03-01 10:15:00", "query": "utm_source=ads&utm_campaign=summer"},
            {"ts": "2026-03-01 10:20:00", "path": "/q"}]
    _, ga4 = run(rows)
    assert len(ga4) == 1 and ga4.utm_campaign[0] == "spring"
    req, ua = run(rows, mode="ua")
    assert list(req.session_seq) == [1, 1, 1, 2, 2]
    assert list(ua.utm_campaign) == ["spring", "summer"] and list(ua.requests) == [3, 2]
    assert list(ua.channel) == ["campaign", "campaign"]


def test_login_is_stitched_to_the_same_session_before_and_after():
    req, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/"},
                    {"ts": "2026-03-01 10:05:00", "path": "/login", "remote_user": "alice"},
                    {"ts": "2026-03-01 10:10:00", "path": "/cart"},
                    {"ts": "2026-03-01 12:00:00", "path": "/later"}])  # next session: not stitched
    assert nulls(req.user_id) == ["alice", "alice", "alice", None]
    assert req.anonymous_id.nunique() == 1 and req.anonymous_id.notna().all()  # both ids kept
    assert nulls(ses.user_id) == ["alice", None]


def test_bots_and_static_are_emitted_without_a_session():
    req, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/"},
                    {"ts": "2026-03-01 10:00:01", "path": "/app.css"},
                    {"ts": "2026-03-01 10:00:02", "path": "/", "user_agent": "curl/8.4.0", "client_ip": "198.51.100.7"},
                    {"ts": "2026-03-01 10:00:03", "path": "/", "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}])
    assert len(req) == 4
    assert list(req.session_id.isna()) == [False, True, True, True]
    assert len(ses) == 1 and ses.requests[0] == 1
    _, with_bots = run([{"ts": "2026-03-01 10:00:02", "user_agent": "curl/8.4.0"}], exclude=())
    assert len(with_bots) == 1 and with_bots.pageviews[0] == 0 and with_bots.device[0] == "bot"


def test_two_users_behind_one_nat_with_different_user_agents():
    req, ses = run([{"ts": "2026-03-01 10:00:00", "user_agent": CHROME},
                    {"ts": "2026-03-01 10:01:00", "user_agent": FIREFOX},
                    {"ts": "2026-03-01 10:02:00", "user_agent": CHROME},
                    {"ts": "2026-03-01 10:03:00", "user_agent": FIREFOX}])
    assert req.anonymous_id.nunique() == 2 and len(ses) == 2
    assert sorted(ses.browser) == ["Chrome", "Firefox"] and list(ses.requests) == [2, 2]


def test_clock_going_backwards_between_servers():
    s = Sessionizer(SessionConfig())
    a = prepared([{"ts": "2026-03-01 10:00:05", "source": "a.log", "line": 1, "path": "/a"}])
    b = prepared([{"ts": "2026-03-01 10:00:02", "source": "b.log", "line": 1, "path": "/b"},
                  {"ts": "2026-03-01 10:00:09", "source": "b.log", "line": 2, "path": "/c"}])
    assert s.push(a, pd.Timestamp("2026-03-01 10:00:05", tz="UTC")).requests.num_rows == 0
    assert s.push(b, pd.Timestamp("2026-03-01 10:00:09", tz="UTC")).requests.num_rows == 0
    out = s.finish()
    req, ses = out.requests.to_pandas(), out.sessions.to_pandas()
    assert list(req.path) == ["/b", "/a", "/c"]  # merged by time
    assert req.session_id.nunique() == 1 and len(ses) == 1
    assert ses.start[0] == pd.Timestamp("2026-03-01 10:00:02", tz="UTC") and ses.landing_path[0] == "/b"
    assert s.late_rows == 0


def test_a_session_is_emitted_once_the_watermark_passes_its_timeout():
    s = Sessionizer(SessionConfig())
    t = prepared([{"ts": "2026-03-01 10:00:00"}, {"ts": "2026-03-01 10:10:00"}])
    # cutoff = watermark - 10 min window; the session closes when its last request < cutoff - 30 min
    assert s.push(t, pd.Timestamp("2026-03-01 10:50:00", tz="UTC")).sessions.num_rows == 0
    assert s.buffered_rows == 2
    out = s.push(t.slice(0, 0), pd.Timestamp("2026-03-01 10:50:01", tz="UTC"))
    assert out.sessions.num_rows == 1 and out.requests.num_rows == 2 and s.buffered_rows == 0
    assert s.finish().requests.num_rows == 0


def test_a_late_row_within_the_window_can_still_bridge_two_sessions():
    s = Sessionizer(SessionConfig())
    first = prepared([{"ts": "2026-03-01 10:00:00", "line": 1}, {"ts": "2026-03-01 10:31:00", "line": 3}])
    # cutoff 10:21: the 10:00 session cannot be closed yet, a row at 10:21 or later may still come.
    out = s.push(first, pd.Timestamp("2026-03-01 10:31:00", tz="UTC"))
    assert out.requests.num_rows == 0 and out.sessions.num_rows == 0
    s.push(prepared([{"ts": "2026-03-01 10:25:00", "line": 2}]), pd.Timestamp("2026-03-01 10:31:00", tz="UTC"))
    ses = s.finish().sessions.to_pandas()
    assert len(ses) == 1 and ses.requests[0] == 3


def test_session_ids_are_deterministic():
    rows = [{"ts": "2026-03-01 10:00:00"}, {"ts": "2026-03-01 10:05:00"}]
    assert run(rows)[1].session_id.tolist() == run(rows)[1].session_id.tolist()


def test_consent_denied_rows_get_no_session():
    req, ses = run([{"ts": "2026-03-01 10:00:00", "fields": {"http_sec_gpc": "1"}},
                    {"ts": "2026-03-01 10:01:00"}])
    assert nulls(req.consent) == ["denied", None] and list(req.session_id.isna()) == [True, False]
    assert len(ses) == 1


def test_config_and_durations():
    doc = load_yaml("c.yaml", text="sessions:\n  timeout: 45m\n  mode: ua\n  timezone: Europe/Berlin\n"
                                   "  exclude: [bots]\n  reorder_window: 2m\n")
    cfg = SessionConfig.from_config(Config(doc=doc))
    assert cfg == SessionConfig(timedelta(minutes=45), "ua", "Europe/Berlin", ("bots",), timedelta(minutes=2))
    assert SessionConfig.from_config(Config()) == SessionConfig()
    assert parse_duration("1h30m") == timedelta(minutes=90) and parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("soon") is None
    for bad, where in (("  mode: ga5\n", "c.yaml:2: sessions.mode"), ("  timezone: Mars/Base\n", "c.yaml:2: sessions.timezone"),
                       ("  timout: 5m\n", "c.yaml:2: sessions.timout"), ("  timeout: 0\n", "c.yaml:2: sessions.timeout")):
        with pytest.raises(ConfigError, match=where):
            SessionConfig.from_config(Config(doc=load_yaml("c.yaml", text="sessions:\n" + bad)))


def test_lines_without_a_request_neither_start_nor_extend_sessions():
    # DESIGN §2: `"-"`, `""` or TLS bytes as the request: method/path null, status counted, no visit.
    req, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/"},
                    {"ts": "2026-03-01 10:20:00", "method": None, "path": None, "protocol": None, "status": 400},
                    {"ts": "2026-03-01 10:45:00", "path": "/b"},  # 45 min after "/": a new session
                    {"ts": "2026-03-01 11:00:00", "method": None, "path": None, "status": 400,
                     "client_ip": "203.0.113.9"}])  # another visitor with only such a line: no session
    assert len(req) == 4 and list(req.session_id.isna()) == [False, True, False, True]
    assert list(ses.requests) == [1, 1] and list(ses.landing_path) == ["/", "/b"]
    assert req.anonymous_id.notna().all()  # still identified, just not a visit


def test_api_calls_are_requests_of_the_session_but_not_pageviews():
    _, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/category/shoes"},
                  {"ts": "2026-03-01 10:00:01", "path": "/api/v1/products", "query": "category=shoes&page=1"},
                  {"ts": "2026-03-01 10:00:30", "path": "/graphql", "method": "POST"}])
    assert list(ses.requests) == [3] and list(ses.pageviews) == [1]
    assert list(ses.is_bounce) == [True] and list(ses.exit_path) == ["/category/shoes"]


def test_a_source_seen_later_sorts_by_name_inside_open_sessions():
    s = Sessionizer(SessionConfig())
    s.push(prepared([{"ts": "2026-03-01 10:00:00", "source": "web2.log", "line": 7, "path": "/second"}]), None)
    s.push(prepared([{"ts": "2026-03-01 10:00:00", "source": "web1.log", "line": 9, "path": "/first"},
                     {"ts": "2026-03-01 10:00:00", "source": None, "line": 1, "path": "/nosource"}]), None)
    out = s.finish()
    assert out.requests.column("path").to_pylist() == ["/nosource", "/first", "/second"]  # (ts, source, line)
    ses = out.sessions.to_pandas()
    assert list(ses.landing_path) == ["/nosource"] and list(ses.exit_path) == ["/second"]


def test_memory_follows_open_sessions_not_the_input():
    # One visitor active every 10 min for 20 hours (one long session) among many one-request
    # visitors: the rows held and the pushed tables kept stay bounded while 20 000 rows pass.
    s = Sessionizer(SessionConfig())
    base = pd.Timestamp("2026-03-01 00:00:00", tz="UTC")
    held = []
    for hour in range(20):
        rows = [{"ts": base + pd.Timedelta(hours=hour, minutes=m), "path": "/long"} for m in range(0, 60, 10)]
        rows += [{"ts": base + pd.Timedelta(hours=hour, seconds=i * 3.6), "client_ip": f"10.{i % 200}.{hour}.1",
                  "line": 100 + i} for i in range(1000)]
        s.push(prepared(rows), base + pd.Timedelta(hours=hour + 1))
        held.append((s.buffered_rows, sum(t.num_rows for t in s._rows.tables), len(s._rows.tables)))
    long_rows = 6 * 20
    for buffered, stored, tables in held[3:]:
        assert buffered <= long_rows + 1006 * 2  # the long session + about the last hour and a half
        assert stored <= 4 * buffered + 1006  # compaction: a kept table is at least a quarter alive
        assert tables <= 17
    out = s.finish()
    assert out.sessions.to_pandas().requests.max() == long_rows


# --- streaming invariance ------------------------------------------------------------------------

WINDOW = timedelta(minutes=10)
BASE = pd.Timestamp("2026-03-01 22:00:00", tz="UTC")
VISITORS = [("192.0.2.1", CHROME), ("192.0.2.1", FIREFOX), ("198.51.100.2", CHROME), ("203.0.113.3", "curl/8")]


def _canonical(outputs: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    req = pa.concat_tables([o.requests for o in outputs]).to_pandas()
    ses = pa.concat_tables([o.sessions for o in outputs]).to_pandas()
    req = req.sort_values(["ts", "source", "line"]).reset_index(drop=True)
    ses = ses.sort_values(["session_id"]).reset_index(drop=True)
    return req.drop(columns=["fields"]), ses


@st.composite
def scenarios(draw):
    n = draw(st.integers(5, 40))
    rows, arrival = [], []
    t = 0
    for i in range(n):
        t += draw(st.sampled_from([0, 5, 60, 300, 900, 1790, 1800, 1810, 3600]))  # seconds, near the timeout
        ip, ua = draw(st.sampled_from(VISITORS))
        row = {"ts": BASE + pd.Timedelta(seconds=t), "client_ip": ip, "user_agent": ua,
               "source": draw(st.sampled_from(["a.log", "b.log"])), "line": i + 1,
               "path": draw(st.sampled_from(["/", "/p", "/app.js"])),
               "remote_user": draw(st.sampled_from([None, None, None, "alice"])),
               "query": draw(st.sampled_from([None, None, "utm_campaign=x", "utm_campaign=y"]))}
        rows.append(row)
        arrival.append(t + draw(st.integers(0, int(WINDOW.total_seconds()) - 1)))  # disorder < window
    order = sorted(range(n), key=lambda i: (arrival[i], i))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), max_size=6, unique=True))) if n > 1 else []
    marks = draw(st.lists(st.booleans(), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    return rows, order, cuts, marks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(["ga4", "ua"]))
def test_output_is_identical_whatever_the_batch_split_and_order(scenario, mode):
    rows, order, cuts, marks = scenario
    cfg = dict(mode=mode, timezone="Europe/Berlin", reorder_window=WINDOW)
    whole = Sessionizer(SessionConfig(**cfg))
    expected = _canonical([whole.push(prepared(rows), None), whole.finish()])

    table = prepared([rows[i] for i in order])  # arrival order, out of order within the window
    s = Sessionizer(SessionConfig(**cfg))
    outputs, seen_max = [], None
    for j, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(rows)], strict=True)):
        piece = table.slice(lo, hi - lo)
        top = pd.Timestamp(pa.compute.max(piece.column("ts")).as_py())
        seen_max = top if seen_max is None else max(seen_max, top)
        # The pipeline's watermark: the newest timestamp seen (disorder stays under the window).
        outputs.append(s.push(piece, seen_max if marks[j] else None))
    outputs.append(s.finish())
    got = _canonical(outputs)
    assert s.late_rows == 0
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert len(got[0]) == len(rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_dropped_rows_are_as_if_never_pushed(scenario, data):
    """`push(..., drop)` (the chain's rule exclusions) equals pushing the table without them."""
    rows, order, cuts, marks = scenario
    table = prepared([rows[i] for i in order])
    drop = np.array(data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows))))
    kept, dropped = Sessionizer(SessionConfig(reorder_window=WINDOW)), Sessionizer(SessionConfig(reorder_window=WINDOW))
    out_kept, out_dropped = [], []
    for j, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(rows)], strict=True)):
        piece, mask = table.slice(lo, hi - lo), drop[lo:hi]
        mark = pd.Timestamp(pa.compute.max(table.slice(0, hi).column("ts")).as_py()) if marks[j] else None
        out_kept.append(kept.push(piece.filter(pa.array(~mask)), mark))
        out_dropped.append(dropped.push(piece, mark, mask))
        assert dropped._rows.live.sum() == kept._rows.live.sum()  # dropped rows are not held
    out_kept.append(kept.finish())
    out_dropped.append(dropped.finish())
    for a, b in zip(out_kept, out_dropped, strict=True):  # the same rows, in the same outputs
        assert a.requests.equals(b.requests) and a.sessions.equals(b.sessions)
    assert sum(o.requests.num_rows for o in out_dropped) == int((~drop).sum())
    assert dropped.buffered_rows == 0 and dropped.late_rows == kept.late_rows


# --- output contract and the store --------------------------------------------------------------

def test_a_push_emits_in_pushed_order_with_whole_sessions_and_finish_sorts():
    s = Sessionizer(SessionConfig())
    # Pushed out of time order across two sources (b.log's rows arrive after a.log's later ones).
    first = prepared([{"ts": "2026-03-01 10:00:05", "source": "a.log", "line": 1, "path": "/a1"},
                      {"ts": "2026-03-01 10:00:09", "source": "a.log", "line": 2, "path": "/a2",
                       "client_ip": "198.51.100.2"}])
    second = prepared([{"ts": "2026-03-01 10:00:02", "source": "b.log", "line": 1, "path": "/b1"},
                       {"ts": "2026-03-01 10:00:07", "source": "b.log", "line": 2, "path": "/b2",
                        "client_ip": "198.51.100.2"}])
    assert s.push(first, None).requests.num_rows == 0
    out = s.push(second, pd.Timestamp("2026-03-01 12:00:00", tz="UTC"))  # closes both sessions
    assert out.requests.column("path").to_pylist() == ["/a1", "/a2", "/b1", "/b2"]  # as pushed
    req, ses = out.requests.to_pandas(), out.sessions.to_pandas()
    assert req.groupby("session_id").size().to_dict() == dict(zip(ses.session_id, ses.requests, strict=True))
    assert list(ses.landing_path) == ["/b1", "/b2"]  # sessions by start; landing by time, not push order
    late = Sessionizer(SessionConfig())
    late.push(first, None)
    late.push(second, None)
    assert late.finish().requests.column("path").to_pylist() == ["/b1", "/a1", "/b2", "/a2"]  # (ts, source, line)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([None, "c.log", "b.log", "a.log"]),
                          st.sampled_from([None, 1, 2, 3]), st.sampled_from(VISITORS), st.sampled_from(["/", "/app.js", None])),
                min_size=1, max_size=30),
       st.lists(st.integers(1, 29), max_size=4, unique=True))
@example(rows=[(0, "c.log", 1, VISITORS[3], "/"), (0, "a.log", 1, VISITORS[3], "/")], cuts=[1])  # a name ranked before a held row's
def test_finish_gathers_its_rows_in_ts_source_line_order(rows, cuts):
    """finish orders its rows by the numbers it holds (ts, source rank and line) before gathering
    them: the order of sorting the output itself, nulls first, for rows in sessions and rows
    outside them (static, no path, bots), with source names first seen in later pushes."""
    table = prepared([{"ts": BASE + pd.Timedelta(seconds=t), "source": src, "line": line, "client_ip": ip,
                       "user_agent": ua, "path": path} for t, src, line, (ip, ua), path in rows])
    s = Sessionizer(SessionConfig())
    bounds = [0, *sorted(c for c in cuts if c < len(rows)), len(rows)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        assert s.push(table.slice(lo, hi - lo), None).requests.num_rows == 0
    done = s.finish()
    out = done.requests
    keys = list(zip(out.column("ts").to_pylist(), [(n is not None, n or "") for n in out.column("source").to_pylist()],
                    [-1 if v is None else v for v in out.column("line").to_pylist()], strict=True))
    assert keys == sorted(keys)
    assert sorted(map(str, out.column("path").to_pylist())) == sorted(str(r[4]) for r in rows)
    req = out.to_pandas()  # rows still carry their own sessions
    assert req.groupby("session_id").size().to_dict() == dict(zip(done.sessions.column("session_id").to_pylist(),
                                                                  done.sessions.column("requests").to_pylist(), strict=True))


def test_session_ids_are_blake2b_of_the_visitor_key_and_start():
    req, ses = run([{"ts": "2026-03-01 10:00:00"}, {"ts": "2026-03-01 10:05:00"}])
    anon = req.anonymous_id[0]
    start_us = int(pd.Timestamp("2026-03-01 10:00:00", tz="UTC").value // 1000)
    expected = hashlib.blake2b(f"a:{anon}\x1f{start_us}".encode(), digest_size=16).hexdigest()
    assert list(ses.session_id) == [expected] and set(req.session_id) == {expected}


def test_visitor_hashes_do_not_depend_on_where_a_string_sits():
    digest = "0123456789abcdef" * 2  # 32 bytes: hashed from its words
    alone = hashes(pa.array([digest]), "0123456789123456")
    # Behind an odd-length value (unaligned offset), in a sliced array, beside a null.
    mixed = hashes(pa.array(["x", digest, None, "other"]), "0123456789123456")
    sliced = hashes(pa.array(["abc", digest, "z" * 31]).slice(1), "0123456789123456")
    assert mixed[1] == alone[0] == sliced[0] and mixed[2] == 0
    assert len({*mixed[[0, 1, 3]].tolist(), *sliced.tolist()}) == 4
    assert hashes(pa.array([digest]), "6543210987654321")[0] != alone[0]


def test_row_store_compacts_in_place_and_says_where_rows_went():
    store = RowStore(pa.schema([pa.field("x", pa.int64()), pa.field("s", pa.string())]))
    pos = [store.add(pa.table({"x": list(range(k * 100, k * 100 + 100)), "s": [None] * 100},
                              schema=store.schema)) for k in range(3)]
    assert store.take(pos[1][[3, 5]])["x"].to_pylist() == [103, 105]
    assert store.release(np.empty(0, np.int64)) is None
    # Table 0 all emitted (dropped, nothing moves); table 1 keeps rows 50-59 (compacted in place).
    emitted = np.concatenate([pos[0], pos[1][:50], pos[1][60:]])
    moved = store.release(emitted)
    assert [t.num_rows for t in store.tables] == [10, 100]
    held = np.array([pos[1][55], pos[2][7]])
    new = remap(held, moved)
    assert new[0] != held[0] and new[1] == held[1]  # only the compacted table's rows move
    got = store.take(np.sort(new))
    assert got["x"].to_pylist() == [155, 207]
    assert got["s"].null_count == 2  # a column without values is made, not gathered


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=30))
def test_merging_sorted_rows_keeps_visitor_time_order(old, new):
    def cols(rows, start):
        rows = sorted(rows)  # (visitor, ts, rank_lines): how the sessionizer sorts a push's rows
        a = np.array(rows, np.int64).reshape(-1, 3)
        return {"vh": a[:, 0].astype(np.uint64), "ts": a[:, 1], "rl": a[:, 2], "pos": start + np.arange(len(rows))}
    merged = merge_sorted(cols(old, 0), cols(new, 1000))
    keys = list(zip(merged["vh"].tolist(), merged["ts"].tolist(), merged["rl"].tolist(), strict=True))
    assert keys == sorted(keys)
    for i in range(1, len(keys)):  # equal keys: the buffered row first
        if keys[i] == keys[i - 1]:
            assert merged["pos"][i - 1] < merged["pos"][i]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from([0.0, 0.2, 0.6])), max_size=8), st.integers(0, 2**32 - 1))
def test_stitching_only_sessions_with_a_login_equals_stitching_all(sessions, seed):
    """`_stitched` skips the sessions without a login; the rows' sources are exactly `stitch`'s."""
    from logtrack.sessions import _stitched
    from logtrack.sessionstore import stitch

    rng = np.random.default_rng(seed)
    lengths = np.array([n for n, _ in sessions], np.int64)
    has_user = np.concatenate([rng.random(n) < p for n, p in sessions]) if sessions else np.zeros(0, bool)
    ss = np.cumsum(lengths) - lengths
    group = np.repeat(np.arange(len(lengths)), lengths)
    expected = stitch(has_user, ss[group], (ss + lengths - 1)[group]) if len(has_user) else np.zeros(0, np.int64)
    assert _stitched(has_user, ss, lengths).tolist() == expected.tolist()


@pytest.mark.parametrize(("visitors", "top"), [(1, 2**63), (300, 2**63), (70_000, 2**63), (300, 2**10), (70_000, 2**20)])
def test_visitor_order_is_a_stable_sort_by_visitor_hash(visitors, top):
    """Random hashes (the packed-key sort), and hashes that differ only in the bits the row
    number takes (visitors share top bits: the ranked radix path and the wide one)."""
    from logtrack.sessionstore import visitor_order

    rng = np.random.default_rng(visitors)
    vh = rng.integers(0, top, visitors).astype(np.uint64)[rng.integers(0, visitors, 100_000)]
    assert visitor_order(vh).tolist() == np.argsort(vh, kind="stable").tolist()


def test_row_store_makes_constant_columns_and_gathers_nearly_constant_ones():
    from logtrack.rowstore import _kinds

    schema = pa.schema([pa.field("s", pa.string()), pa.field("i", pa.int16()), pa.field("b", pa.bool_()),
                        pa.field("near", pa.string()), pa.field("split", pa.string())])
    n = 2000
    near = ["GET"] * n
    near[777] = "PUT"  # off every probe row: only the full pass sees it
    split = ["ab"] * n
    split[1000:1002] = ["a", "bab"]  # same bytes and total length, other values
    tables = [pa.table({"s": [s] * n, "i": [200] * n, "b": [flag] * n, "near": near, "split": split}, schema=schema)
              for s, flag in (("HTTP/1.1", True), ("HTTP/2.0", False))]
    assert _kinds(tables[0]) == {"s": ("const", "HTTP/1.1"), "i": ("const", 200), "b": ("const", True)}
    store = RowStore(schema)
    pos = np.concatenate([store.add(t) for t in tables])
    rows = np.array([0, 777, 1000, 1001, 1999, 2000, 2777, 3999])
    got = store.take(pos[rows])
    both = pa.concat_tables(tables).take(pa.array(rows))
    for name in schema.names:
        assert got[name].to_pylist() == both.column(name).to_pylist(), name
        assert got[name].type == schema.field(name).type
    # Every column made (nothing left to gather), empty strings too; compaction keeps the values.
    store = RowStore(pa.schema([pa.field("s", pa.string())]))
    pos = store.add(pa.table({"s": [""] * n}, schema=store.schema))
    assert store.take(pos[[1, 5, 9]])["s"].to_pylist() == ["", "", ""]
    moved = store.release(pos[: n - 10])
    assert store.take(np.sort(remap(pos[n - 3:], moved)))["s"].to_pylist() == ["", "", ""]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(1, 6), max_size=12), min_size=1, max_size=4), st.booleans())
def test_visitor_counts_sorted_and_unsorted_entries_agree(pushes, shuffle):
    """Sorted hashes (as `_close` passes them) skip the sort; the counts are np.unique's."""
    from logtrack.sessionstore import VisitorCounts

    counts, seen = VisitorCounts(), {}
    for push in pushes:
        vh = np.array(push if shuffle else sorted(push), np.uint64)
        expected = []
        for v in vh.tolist():
            expected.append(seen.get(v, 0))
            seen[v] = seen.get(v, 0) + 1
        ranks = {}  # count before this call, not before this entry
        got = counts.add(vh).tolist()
        for v, e in zip(vh.tolist(), expected, strict=True):
            ranks.setdefault(v, e)
        assert got == [ranks[v] for v in vh.tolist()]


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_constant_columns_found_by_the_row_store_give_the_same_pageviews_and_sessions(method):
    from logtrack.sessions import _STORED_SCHEMA, _stored, pageview_mask

    n = 1500  # long enough for the row store to look for constant columns
    rows = [{"ts": f"2026-03-01 10:{i // 60:02d}:{i % 60:02d}", "method": method, "path": ["/", "/a.css", "/p"][i % 3],
             "status": [200, 404, 304][i % 3 if i % 7 else 1], "client_ip": f"192.0.2.{i % 5}"} for i in range(n)]
    table = prepared(rows)
    store = RowStore(_STORED_SCHEMA)
    store.add(_stored(table))
    constants = store.constants()
    assert constants["method"] == method and constants["source"] == "a.log" and "status" not in constants
    expected = pageview_mask(table)
    assert pageview_mask(table, constants=constants).tolist() == expected.tolist()
    assert expected.any() == (method != "POST")
    # Through the sessionizer (constant source and method): the same as two half-size pushes
    # (below the size the row store checks), whose constants are tested per row.
    whole, halves = Sessionizer(SessionConfig()), Sessionizer(SessionConfig())
    whole.push(table, None)
    out = whole.finish()
    halves.push(table.slice(0, n // 2), None)
    halves.push(table.slice(n // 2), None)
    out2 = halves.finish()
    assert out.requests.equals(out2.requests) and out.sessions.equals(out2.sessions)
    assert out.sessions.column("pageviews").to_pylist() == out2.sessions.column("pageviews").to_pylist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 3)), max_size=40), st.booleans())
def test_row_order_is_lexsort_by_visitor_ts_and_line(rows, in_time_order):
    from logtrack.sessionstore import row_order

    if in_time_order:
        rows = sorted(rows, key=lambda row: row[1:])
    a = np.array(rows, np.int64).reshape(-1, 3)
    vh, t, r = a[:, 0].astype(np.uint64) * np.uint64(2**61 + 1), a[:, 1], a[:, 2]
    assert row_order(vh, t, r).tolist() == np.lexsort((r, t, vh)).tolist()


def test_landing_and_exit_are_the_first_and_last_pageview_else_the_first_and_last_request():
    ip2 = {"client_ip": "203.0.113.9"}
    _, ses = run([{"ts": "2026-03-01 10:00:00", "path": "/a.css"}, {"ts": "2026-03-01 10:00:01", "path": "/x"},
                  {"ts": "2026-03-01 10:00:02", "path": "/b.js"}, {"ts": "2026-03-01 10:00:03", "path": "/y"},
                  {"ts": "2026-03-01 10:00:04", "path": "/c.png"},
                  {"ts": "2026-03-01 10:00:05", "path": "/s", "status": 404, **ip2},  # no pageview in this one
                  {"ts": "2026-03-01 10:00:06", "path": "/t", "method": "POST", **ip2},
                  {"ts": "2026-03-01 11:00:00", "path": "/z"}])
    assert list(ses.landing_path) == ["/x", "/s", "/z"] and list(ses.exit_path) == ["/y", "/t", "/z"]
    assert list(ses.pageviews) == [2, 0, 1]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 400), st.sampled_from([1, 1000, 1 << 34, 1 << 40, 1 << 61, 1 << 63]), st.integers(0, 2**32 - 1),
       st.sampled_from([0, 1, 30]))
def test_sessions_sort_by_start_then_word_as_lexsort_whatever_the_span(n, span, seed, tied):
    """SESSIONS rows are ordered by one sort of packed (start offset, word top bits) keys, with
    as many start bits as the push's span needs (sessions open for days included)."""
    from logtrack.sessionemit import _by_start_then_word

    rng = np.random.default_rng(seed)
    start = rng.integers(0, span, n, dtype=np.int64) + 1_740_000_000_000_000 - span // 2
    word = rng.integers(0, 1 << 63, n, dtype=np.int64).astype(np.uint64) << np.uint64(rng.integers(0, 2))
    word[: min(tied, n)] = word[0]  # equal words (and, for small spans, equal starts)
    assert (_by_start_then_word(start, word) == np.lexsort((word, start))).all()


@pytest.mark.parametrize(("values", "constant"), [
    (["/var/log/a.log"] * 3000, True),
    (["ab", "ba"] * 1500, False),  # equal widths, a period of two: every value against the next
    (["ab"] * 1499 + ["ba"] + ["ab"] * 1500, False),  # one value differs, away from the probes
    (["x" * 40] * 2999 + ["x" * 39 + "y"], False),
])
def test_constant_string_columns_compare_every_value(values, constant):
    from logtrack.rowstore import _constant

    assert _constant(pa.array(values)) is constant
    assert _constant(pa.array(["pad", *values]).slice(1)) is constant  # an offset into the buffer
