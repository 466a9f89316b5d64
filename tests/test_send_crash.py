"""`kill -9` halfway through a send, then a re-run: none lost, duplicates only from in-flight batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakeapis import ENV, FakeGA4, FakeSegment, ga4_key, make_events, options  # noqa: E402

from logtrack.send import deliver  # noqa: E402
from logtrack.send.ledger import Ledger  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SENDER = """
import sys
{prologue}
from logtrack.commands.send import send
send.main(sys.argv[1:])
"""
# In the child only: Segment's real limits would send 2,000 small events in one request; smaller
# batches make the kill land between batches, as it does on big inputs.
PROLOGUE = {"ga4": "", "segment": "import logtrack.send.segment as s; s.Segment.max_batch_events = 25"}


def _index(event_id: str) -> int:
    return int(event_id[2:])


@pytest.mark.parametrize("api_cls,name", [(FakeGA4, "ga4"), (FakeSegment, "segment")])
def test_kill_9_halfway_then_rerun(api_cls, name, tmp_path):
    n = 2000
    start = datetime.now(UTC) - timedelta(hours=3)
    start_us = int(start.timestamp() * 1_000_000)
    events = make_events(n, users=20, start=start)
    pq.write_table(events, tmp_path / "events.parquet")
    state = tmp_path / "state"
    cfg = tmp_path / "logtrack.yaml"
    cfg.write_text("send: {concurrency: 4, backoff_base: 0.001}\n")

    def received() -> Counter[int]:
        if name == "ga4":
            return Counter(ga4_key(ev, start_us) for ev in api.events)
        return Counter(_index(k) for k in api.tracks())

    with api_cls(delay=0.01) as api:
        env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-c", SENDER.format(prologue=PROLOGUE[name]), str(tmp_path / "events.parquet"),
             "--to", name, "--endpoint", api.url, "--state", str(state), "--config", str(cfg)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sum(received().values()) < n // 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = sum(received().values())
        assert before < n  # it really died halfway

        ledger = Ledger(state, name)
        inflight = {_index(e) for e in ledger.ids("inflight")}
        delivered = {_index(e) for e in ledger.ids("delivered")}
        ledger.close()
        assert inflight and not inflight & delivered

        summary = deliver([events], name, options(api, state))
        seen = received()
        assert summary.exit_code == 0
        assert summary.uncertain == len(inflight)
        assert summary.skipped == len(delivered)
        assert set(seen) == set(range(n))  # none lost
        twice = {k for k, c in seen.items() if c > 1}
        assert twice <= inflight  # duplicates only from the batches in flight at the kill
        if name == "segment":
            assert not twice  # messageId deduplication: exactly once
            assert api.deduplicated <= len(inflight)
        assert api.errors == []
        assert Ledger(state, name).counts() == {"delivered": n, "inflight": 0, "rejected": 0}
