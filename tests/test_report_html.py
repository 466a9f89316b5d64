"""report.html (escaping, self-contained, charts, headless Chromium), run.json and the summary."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console

from logtrack import __version__, schema
from logtrack.report import (
    DatasetWriter,
    InputIdentity,
    build_reports,
    render_html,
    summary_lines,
    summary_renderable,
    write_run_json,
)

CHROMIUM = Path("/usr/bin/chromium")
XSS = "<script>console.error('xss-ran')</script>"
XSS_IMG = '<img src=x onerror="console.error(\'xss-img\')">'
CHART_IDS = ["chart-traffic", "chart-hourly", "chart-channels", "chart-top-pages", "chart-events",
             "chart-devices", "chart-status"]
TS = pa.timestamp("us", tz="UTC")


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset whose every log-derived string is a script injection attempt."""
    out = tmp_path_factory.mktemp("html")
    n = 6
    requests = pa.table({
        "ts": pa.array([at(1 + i % 3, 8 + i) for i in range(n)], TS),
        "method": ["GET"] * n,
        "path": ["/", "/a", f"/{XSS}", "/a", "/b", XSS_IMG],
        "status": pa.array([200, 200, 200, 404, 500, 200], pa.int16()),
        "is_bot": [False, False, False, True, False, False],
        "bot_name": [None, None, None, XSS, None, None],
        "anonymous_id": ["v1", "v1", "v2", None, "v3", "v3"],
        "user_agent": [XSS, "Firefox", "Firefox", XSS_IMG, "Chrome", "Chrome"],
        "client_ip": ["1.1.1.0"] * n,
    })
    sessions = pa.table({
        "session_id": ["s1", "s2", "s3"], "anonymous_id": ["v1", "v2", "v3"],
        "start": pa.array([at(1, 8), at(3, 10), at(2, 12)], TS), "pageviews": [2, 1, 1],
        "landing_path": ["/", XSS, "/b"], "exit_path": ["/a", XSS, XSS_IMG],
        "channel": ["direct", "referral", "campaign"], "referer_host": [None, XSS, None],
        "utm_source": [None, None, XSS], "utm_campaign": [None, None, XSS_IMG],
        "browser": [XSS, "Firefox", "Chrome"], "os": ["Linux", XSS, "Windows"],
        "device": ["desktop", "mobile", XSS], "is_bounce": [False, True, True], "duration_s": [60.0, 0.0, 0.0],
    })
    events = pa.table({"event_id": ["e1", "e2"], "event_name": ["server_signup", XSS],
                       "ts": pa.array([at(1, 9), at(2, 9)], TS), "anonymous_id": ["v1", "v3"]})
    with DatasetWriter(out, "xss", run_date=dt.date(2026, 3, 3)) as w:
        w.write("requests", schema.conform(requests, schema.ENRICHED_REQUESTS))
        w.write("sessions", schema.conform(sessions, schema.SESSIONS))
        w.write("events", schema.conform(events, schema.EVENTS))
        w.write("rejects", schema.conform(pa.table({"reason": [XSS]}), schema.REJECTS))
    return out


RUN_INFO = {
    "run_key": "abc123", "timezone": "UTC", "finished_at": "2026-03-04T01:02:03.456789+01:00",
    "inputs": [{"path": f"/logs/{XSS}.log", "size": 1234, "lines": 7}],
    "counts": {"lines": 7, "parsed": 6, "rejected": 1, "requests": 6, "sessions": 3, "events": 2},
    "rejects_by_reason": {XSS: 1},
}


@pytest.fixture(scope="module")
def page(out: Path) -> Path:
    return render_html(out, build_reports(out), RUN_INFO)


def test_every_log_string_is_escaped(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text  # the page itself has neither
    assert "&lt;script&gt;console.error(&#x27;xss-ran&#x27;)&lt;/script&gt;" in text
    assert "onerror=&quot;" in text


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, never fetched
    assert not re.search(r"<link|<iframe|<object|@import|url\(|\bsrc=\"", text)


def test_charts_tables_and_summary_cards(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for chart in CHART_IDS:
        assert f'<svg id="{chart}"' in text
    assert 'id="table-top-pages"' in text
    assert "Web traffic report" in text and "2026-03-01 to 2026-03-03" in text
    assert "generated 2026-03-04 00:02 UTC" in text
    assert "Words used in this report" in text  # a glossary for readers new to the tool


def test_empty_reports_still_render(tmp_path: Path) -> None:
    text = render_html(tmp_path, build_reports(tmp_path), {}).read_text(encoding="utf-8")
    for chart in CHART_IDS:
        assert f'<svg id="{chart}"' in text
    assert "No data" in text and "no data yet" in text


def chromium(url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Load `url` headless; return the DOM after load and the console messages logged."""
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_chromium_loads_page_without_console_errors(page: Path, tmp_path: Path) -> None:
    # Control: the console capture works here, so an empty list below means something.
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><body><script>console.error('control-marker')</script></body>")
    _, messages = chromium(control.as_uri(), tmp_path)
    assert any("control-marker" in m for m in messages), "console capture does not work in this chromium"

    dom, messages = chromium(page.as_uri(), tmp_path)
    assert messages == []  # no errors, and no injected script ran (it would log xss-ran / xss-img)
    for chart in CHART_IDS:
        assert re.search(rf'<svg id="{chart}"[^>]*>.*?<(rect|polyline|circle)', dom, re.S), chart
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;console.error('xss-ran')&lt;/script&gt;" in dom  # shown as text


def test_run_json_redacts_secrets(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("x\n")
    info = {
        "run_key": "0123abcd", "started_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        "inputs": [{"path": log, "size": 2, "lines": 1}], "identity": InputIdentity.of(log),
        "counts": {"lines": 1, "parsed": 1, "rejected": 0}, "rejects_by_reason": {},
        "timings": {"parse": 0.25},
        "config": {"destinations": {"ga4": {"api_secret": "s3cr3t", "measurement_id": "G-1",
                                            "endpoint": "https://x.test/mp?api_secret=s3cr3t&v=2"}},
                   "identity": {"salt": "pepper", "cookie": "uid"}, "Authorization": "Bearer tok",
                   "segment": {"write_key": "wk"}, "password": "", "hosts": ["a.example"]},
    }
    path = write_run_json(tmp_path, info)
    text = path.read_text()
    for secret in ("s3cr3t", "pepper", "Bearer tok", '"wk"'):
        assert secret not in text
    data = json.loads(text)
    assert data["logtrack_version"] == __version__ and data["run_key"] == "0123abcd"
    ga4 = data["config"]["destinations"]["ga4"]
    assert ga4 == {"api_secret": "***", "measurement_id": "G-1", "endpoint": "https://x.test/mp?api_secret=***&v=2"}
    assert data["config"]["identity"] == {"salt": "***", "cookie": "uid"}
    assert data["config"]["hosts"] == ["a.example"] and data["config"]["password"] == ""
    assert data["inputs"][0] == {"path": str(log), "size": 2, "lines": 1}
    assert data["started_at"] == "2026-03-01T00:00:00+00:00" and data["timings"] == {"parse": 0.25}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_summary_lines_and_rich(out: Path) -> None:
    reports = build_reports(out, write=False)
    lines = summary_lines(reports, RUN_INFO, limit=3)
    assert lines[:3] == [f"{'lines':<10} {'7':>14}", f"{'parsed':<10} {'6':>14}",
                         f"{'rejected':<10} {'1 (14.29%)':>14}"]
    assert f"{'requests':<10} {'6':>14}" in lines and f"{'sessions':<10} {'3':>14}" in lines
    assert f"{'bot share':<10} {'16.7%':>14}" in lines
    i = lines.index("top pages:")  # one pageview each: ties ranked by path
    assert lines[i + 1:] == [f"  {'1':>12}  /", f"  {'1':>12}  /{XSS}", f"  {'1':>12}  /a"]
    console = Console(record=True, width=100, color_system=None)
    console.print(summary_renderable(reports, RUN_INFO))
    shown = console.export_text()
    assert "Events by name" in shown and "server_signup" in shown
    assert XSS in shown  # printed literally, not read as rich markup
