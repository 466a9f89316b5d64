"""`logtrack send` (click layer) over Parquet events: inputs, selection, output, exit codes."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite("fakeapis")
from fakeapis import ENV, GA4_SECRET, SEGMENT_KEY, make_events  # noqa: E402

from logtrack.commands.send import events_dataset, parse_when, send  # noqa: E402
from logtrack.errors import UsageError  # noqa: E402
from logtrack.send.ledger import SenderLock  # noqa: E402

pytest_plugins = ["fakeapis"]


def _run(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(send, args, env={**ENV, **(env or {})}, catch_exceptions=False)


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "events.parquet"
    pq.write_table(make_events(40, users=4), path)
    return path


def test_parse_when():
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert parse_when("70h", now) == now - timedelta(hours=70)
    assert parse_when("2d", now) == now - timedelta(days=2)
    assert parse_when("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_when("2026-03-01T10:00:00+01:00") == datetime(2026, 3, 1, 9, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_when("yesterday")


def test_events_inputs_are_recognised(tmp_path, parquet):
    report = tmp_path / "report"
    (report / "events" / "date=2026-03-01").mkdir(parents=True)
    assert events_dataset([str(parquet)]) == [str(parquet)]
    assert events_dataset([str(report)]) == [str(report / "events")]
    assert events_dataset([str(tmp_path)]) == [str(tmp_path)]  # a directory holding Parquet files
    log = tmp_path / "access.log"
    log.write_text("x\n")
    assert events_dataset([str(log)]) is None
    with pytest.raises(UsageError, match="not both"):
        events_dataset([str(log), str(parquet)])


def test_send_to_segment_prints_summary_and_exits_0(segment_api, tmp_path, parquet):
    r = _run([str(parquet), "--to", "segment", "--endpoint", segment_api.url, "--state", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "segment: 40 selected, sent 40" in r.output and "events/s" in r.output
    again = _run([str(parquet), "--to", "segment", "--endpoint", segment_api.url, "--state", str(tmp_path / "s")])
    assert again.exit_code == 0 and "sent 0, skipped 40 (already delivered)" in again.output


def test_hive_partitioned_dataset_and_since_selection(ga4_api, tmp_path):
    start = datetime.now(UTC) - timedelta(hours=5)
    events = make_events(10, start=start)
    out = tmp_path / "report" / "events" / f"date={start:%Y-%m-%d}"
    out.mkdir(parents=True)
    pq.write_table(events, out / "part-0.parquet")
    since = (start + timedelta(milliseconds=4)).isoformat()  # events are 1 ms apart: 6 remain
    r = _run([str(tmp_path / "report"), "--to", "ga4", "--endpoint", ga4_api.url,
              "--state", str(tmp_path / "s"), "--since", since])
    assert r.exit_code == 0, r.output
    assert "6 selected, sent 6" in r.output and len(ga4_api.events) == 6


def test_dry_run_prints_redacted_payloads(segment_api, tmp_path, parquet):
    r = _run([str(parquet), "--to", "ga4", "--dry-run", "--state", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "POST https://www.google-analytics.com/mp/collect?measurement_id=G-TEST123&api_secret=***" in r.output
    assert '"events":[' in r.output and "would send 40" in r.output
    assert GA4_SECRET not in r.output
    seg = _run([str(parquet), "--to", "segment", "--dry-run", "--state", str(tmp_path / "s")])
    assert "Basic ***" in seg.output and SEGMENT_KEY not in seg.output


def test_exit_codes(segment_api, tmp_path, parquet):
    state = tmp_path / "s"
    with SenderLock(state, "segment"):
        locked = _run([str(parquet), "--to", "segment", "--endpoint", segment_api.url, "--state", str(state)])
    assert locked.exit_code == 75 and "another `logtrack send --to segment`" in locked.output
    usage = _run([str(parquet), "--to", "segment", "--validate", "--state", str(state)])
    assert usage.exit_code == 2 and "no validation endpoint" in usage.output
    nocreds = CliRunner().invoke(send, [str(parquet), "--to", "ga4", "--state", str(state)],
                                 env={k: "" for k in ENV})
    assert nocreds.exit_code == 2 and "LOGTRACK_GA4_MEASUREMENT_ID" in nocreds.output
    segment_api.script = [400]
    rejected = _run([str(parquet), "--to", "segment", "--endpoint", segment_api.url, "--state", str(state)])
    assert rejected.exit_code == 1 and "refused 40: rejected by the API: HTTP 400" in rejected.output


def test_config_tunes_the_sender(segment_api, tmp_path, parquet):
    cfg = tmp_path / "logtrack.yaml"
    cfg.write_text("send: {concurrency: one}\n")
    r = _run([str(parquet), "--to", "segment", "--endpoint", segment_api.url, "--state", str(tmp_path / "s"),
              "--config", str(cfg)])
    assert r.exit_code == 2 and "send.concurrency: must be a number" in r.output
