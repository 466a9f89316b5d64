"""The delivery ledger and the sender lock; re-runs; in-flight batches after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite("fakeapis")
from fakeapis import make_events, options  # noqa: E402

pytest_plugins = ["fakeapis"]

from logtrack.errors import LockedError  # noqa: E402
from logtrack.send import deliver  # noqa: E402
from logtrack.send.ledger import Ledger, SenderLock  # noqa: E402


def test_classify_delivered_rejected_and_inflight(tmp_path):
    a = Ledger(tmp_path, "ga4")
    a.begin("b1", ["e1", "e2", "e3"])
    a.ack(["e1"])
    a.reject(["e2"], ["bad name"])
    m = a.classify(["e0", "e1", "e2", "e3"])
    assert m["delivered"].tolist() == [False, True, False, False]
    assert m["rejected"].tolist() == [False, False, True, False]
    assert m["current"].tolist() == [False, False, False, True]  # in flight in this very run
    assert not m["crashed"].any()
    a.close()
    b = Ledger(tmp_path, "ga4")  # a later run sees e3 as left in flight by a crash
    assert b.classify(["e3", "e4"])["crashed"].tolist() == [True, False]
    assert b.rejection_reasons() == {"e2": "bad name"}
    # Destinations are independent: segment has seen nothing.
    assert not Ledger(tmp_path, "segment").classify(["e1"])["delivered"].any()
    b.release(["e3"])
    assert b.counts() == {"delivered": 1, "inflight": 0, "rejected": 1}


def test_ack_clears_rejection_and_inflight(tmp_path):
    led = Ledger(tmp_path, "segment")
    led.reject(["e1"], ["HTTP 400"])
    led.begin("b", ["e1"])
    led.ack(["e1"])
    assert led.counts() == {"delivered": 1, "inflight": 0, "rejected": 0}


def test_second_sender_is_locked_out_with_exit_75(tmp_path):
    with SenderLock(tmp_path, "ga4"):
        with pytest.raises(LockedError) as err:
            SenderLock(tmp_path, "ga4")
        assert err.value.exit_code == 75
        SenderLock(tmp_path, "segment").release()  # other destinations are free
    SenderLock(tmp_path, "ga4").release()  # released with its holder


def test_lock_dies_with_its_process(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from logtrack.send.ledger import SenderLock
        lock = SenderLock({str(tmp_path)!r}, "ga4")
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError):
            SenderLock(tmp_path, "ga4")
    finally:
        holder.kill()
        holder.wait()
    SenderLock(tmp_path, "ga4").release()


def test_deliver_raises_locked_while_another_sender_runs(segment_api, tmp_path):
    with SenderLock(tmp_path, "segment"), pytest.raises(LockedError):
        deliver([make_events(3)], "segment", options(segment_api, tmp_path))


def test_rerun_sends_nothing_already_acknowledged(segment_api, tmp_path):
    first = deliver([make_events(50)], "segment", options(segment_api, tmp_path))
    requests = segment_api.requests
    again = deliver([make_events(60)], "segment", options(segment_api, tmp_path))
    assert (first.sent, again.sent, again.skipped) == (50, 10, 50)
    assert segment_api.requests == requests + 1 and segment_api.deduplicated == 0


def test_duplicate_event_ids_in_the_input_are_sent_once(segment_api, tmp_path):
    events = make_events(10)
    s = deliver([events, events], "segment", options(segment_api, tmp_path, chunk_rows=5))
    assert (s.selected, s.sent, s.skipped) == (20, 10, 10)
    assert segment_api.deduplicated == 0


def test_crashed_batches_are_uncertain_resent_by_default(ga4_api, tmp_path):
    crashed = Ledger(tmp_path, "ga4")
    crashed.begin("b-old", ["ev0", "ev1"])  # a run that died with this batch in flight
    crashed.close()
    s = deliver([make_events(5)], "ga4", options(ga4_api, tmp_path))
    assert (s.sent, s.uncertain, s.skipped_uncertain, s.exit_code) == (5, 2, 0, 0)
    assert "in flight when an earlier run stopped" in s.render()


def test_skip_uncertain_skips_them_and_remembers(ga4_api, tmp_path):
    crashed = Ledger(tmp_path, "ga4")
    crashed.begin("b-old", ["ev0", "ev1"])
    crashed.close()
    s = deliver([make_events(5)], "ga4", options(ga4_api, tmp_path, skip_uncertain=True))
    assert (s.sent, s.uncertain, s.skipped_uncertain, s.exit_code) == (3, 2, 2, 0)
    assert len(ga4_api.events) == 3
    again = deliver([make_events(5)], "ga4", options(ga4_api, tmp_path))
    assert (again.sent, again.skipped, again.uncertain) == (0, 5, 0)


def test_segment_resends_uncertain_even_with_skip_uncertain(segment_api, tmp_path):
    crashed = Ledger(tmp_path, "segment")
    crashed.begin("b-old", ["ev0"])
    crashed.close()
    s = deliver([make_events(3)], "segment", options(segment_api, tmp_path, skip_uncertain=True))
    assert (s.sent, s.uncertain, s.skipped_uncertain) == (3, 1, 0)  # messageId dedup: harmless
