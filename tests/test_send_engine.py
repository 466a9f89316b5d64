"""The delivery engine: batching, retries, 4xx handling, 413 splits, failure rates, JSON building."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite("fakeapis")
from fakeapis import FakeGA4, FakeSegment, ga4_key, make_events, options  # noqa: E402

pytest_plugins = ["fakeapis"]

from logtrack import jsonarrow as J  # noqa: E402
from logtrack.send import deliver  # noqa: E402
from logtrack.send.base import Prepared  # noqa: E402
from logtrack.send.engine import _retry_after, make_batches  # noqa: E402
from logtrack.send.ledger import Ledger  # noqa: E402


def _prep(sizes: list[int], groups: list[int], counts: list[int] | None = None, overhead: int = 0) -> Prepared:
    items = pa.array(["x" * (s - 1) for s in sizes])  # +1 comma per item = s bytes
    n = len(sizes)
    ng = max(groups) + 1 if groups else 0
    return Prepared(event_ids=[str(i) for i in range(n)], items=items,
                    counts=np.array(counts or [1] * n), groups=np.array(groups),
                    envelopes=list(range(ng)), overhead=[overhead] * ng)


def test_batches_respect_count_bytes_and_groups():
    # 7 units of 10 bytes in one group, at most 3 per batch -> 3 + 3 + 1.
    assert make_batches(_prep([10] * 7, [0] * 7), 3, 10_000) == [(0, 0, 3), (0, 3, 6), (0, 6, 7)]
    # Byte limit 35 with 5 bytes of envelope: 30 bytes of items = 3 units of 10.
    assert make_batches(_prep([10] * 5, [0] * 5, overhead=5), 100, 35) == [(0, 0, 3), (0, 3, 5)]
    # A batch never crosses a group boundary.
    assert make_batches(_prep([10] * 4, [0, 0, 1, 1]), 25, 1000) == [(0, 0, 2), (1, 2, 4)]
    # A unit counting 2 calls (identify + track) uses two places of the count limit.
    assert make_batches(_prep([10] * 3, [0] * 3, counts=[2, 1, 2]), 3, 1000) == [(0, 0, 2), (0, 2, 3)]
    # An oversized unit still goes, alone (the API answers 413, the engine reports it).
    assert make_batches(_prep([50, 10], [0, 0]), 10, 20) == [(0, 0, 1), (0, 1, 2)]


def test_retry_after_parses_seconds_and_dates():
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("garbage") is None
    future = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 < _retry_after(future) <= 30


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=8))
def test_quote_round_trips_any_text(values):
    quoted = J.quote(pa.array(values, pa.string())).to_pylist()
    assert [None if q is None else json.loads(q) for q in quoted] == values
    assert quoted == [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]  # json's own text


def test_obj_keeps_rows_where_every_member_is_null():
    a = pa.array([None, "1", None], pa.string())
    b = pa.array([None, None, '"x"'], pa.string())
    assert J.obj(J.member("a", a), J.member("b", b)).to_pylist() == ["{}", '{"a":1}', '{"b":"x"}']
    assert J.obj_or_null(J.member("a", a)).to_pylist() == [None, '{"a":1}', None]


def test_retries_500_429_reset_then_acknowledges(segment_api, tmp_path):
    segment_api.script = [500, 429]
    segment_api.fail_rate, segment_api.faults = 0.0, ("reset",)
    s = deliver([make_events(10)], "segment", options(segment_api, tmp_path))
    assert (s.sent, s.retries, s.requests, s.exit_code) == (10, 2, 3, 0)
    assert len(segment_api.tracks()) == 10


def test_connection_resets_are_retried(segment_api, tmp_path):
    segment_api.fail_rate, segment_api.faults = 0.5, ("reset",)
    s = deliver([make_events(3000)], "segment", options(segment_api, tmp_path, max_attempts=20))
    assert s.sent == 3000 and segment_api.injected["reset"] > 0
    assert len(segment_api.tracks()) == 3000


def test_retry_after_is_honoured(segment_api, tmp_path):
    segment_api.script, segment_api.retry_after = [429], "0.4"
    t0 = time.monotonic()
    s = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert s.sent == 5 and time.monotonic() - t0 >= 0.4


def test_other_4xx_never_retried_and_kept_as_rejected(segment_api, tmp_path):
    segment_api.script = [400]
    s = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert (s.sent, s.requests, s.retries, s.exit_code) == (0, 1, 0, 1)
    assert sum(s.refused.values()) == 5
    ledger = Ledger(tmp_path, "segment")
    assert ledger.counts() == {"delivered": 0, "inflight": 0, "rejected": 5}
    assert all("HTTP 400" in r for r in ledger.rejection_reasons().values())
    # A plain re-run does not resend rejected events; --retry-failed does.
    again = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert (again.sent, again.skipped_rejected, again.requests, again.exit_code) == (0, 5, 0, 0)
    retry = deliver([make_events(5)], "segment", options(segment_api, tmp_path, retry_failed=True))
    assert retry.sent == 5
    assert ledger.counts() == {"delivered": 5, "inflight": 0, "rejected": 0}


def test_413_splits_the_batch(segment_api, tmp_path):
    segment_api.script = [413, 413]  # the whole batch, then its first half
    s = deliver([make_events(8)], "segment", options(segment_api, tmp_path))
    assert (s.sent, s.splits, s.requests) == (8, 2, 5)  # 8 -> 4+4 -> (2+2)+4
    assert len(segment_api.tracks()) == 8


def test_auth_failure_stops_the_run_and_records_nothing(segment_api, tmp_path):
    segment_api.write_keys = {"another-key"}
    s = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert s.exit_code == 1 and s.fatal and "401" in s.fatal
    assert Ledger(tmp_path, "segment").counts() == {"delivered": 0, "inflight": 0, "rejected": 0}


def test_retries_run_out_then_a_plain_rerun_sends(segment_api, tmp_path):
    segment_api.fail_rate, segment_api.faults = 1.0, ("500",)
    s = deliver([make_events(5)], "segment", options(segment_api, tmp_path, max_attempts=3))
    assert (s.sent, s.requests, s.retries) == (0, 3, 2)
    assert s.failed == Counter({"HTTP 500 after 3 attempts": 5}) and s.exit_code == 1
    assert Ledger(tmp_path, "segment").counts() == {"delivered": 0, "inflight": 0, "rejected": 0}
    segment_api.fail_rate = 0.0
    again = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert (again.sent, again.uncertain, again.exit_code) == (5, 0, 0)


@pytest.mark.parametrize("api_cls,name", [(FakeGA4, "ga4"), (FakeSegment, "segment")])
def test_twenty_percent_failures_lose_nothing_and_duplicate_nothing(api_cls, name, tmp_path):
    start = datetime.now(UTC) - timedelta(hours=2)
    start_us = int(start.timestamp() * 1_000_000)
    # Segment batches hold ~1,000 of these events; pad them so there are enough requests to fail.
    n = 3000 if name == "ga4" else 20_000
    pad = {} if name == "ga4" else {"properties_json": [json.dumps({"pad": "x" * 400, "i": i}) for i in range(n)]}
    with api_cls(fail_rate=0.2, seed=7) as api:
        events = make_events(n, users=30, start=start, **pad)
        s = deliver([events], name, options(api, tmp_path, max_attempts=12))
        assert s.requests >= 30 and set(api.injected) == {"500", "429", "reset"}
        assert api.errors == []
        if name == "ga4":
            seen = Counter(ga4_key(ev, start_us) for ev in api.events)
        else:
            seen = Counter(int(k[2:]) for k in api.tracks())
            assert api.deduplicated == 0  # nothing was even resent after a success
    assert (s.sent, s.exit_code) == (n, 0)
    assert set(seen) == set(range(n)) and max(seen.values()) == 1
    assert Ledger(tmp_path, name).counts() == {"delivered": n, "inflight": 0, "rejected": 0}


def test_concurrency_bounds_requests_in_flight(segment_api, tmp_path):
    import threading

    live, peak, lock = [0], [0], threading.Lock()
    original = FakeSegment.handle

    def slow(self, *a):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.02)
        with lock:
            live[0] -= 1
        return original(self, *a)

    segment_api.handle = slow.__get__(segment_api)
    s = deliver([make_events(20_000)], "segment", options(segment_api, tmp_path, concurrency=2))
    assert s.sent == 20_000 and s.requests > 4 and peak[0] == 2
