"""Segment HTTP Tracking API: track/identify calls, limits, auth, gzip, routing, secrets."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pytest

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite("fakeapis")
from fakeapis import SEGMENT_KEY, make_events, options  # noqa: E402

from logtrack.config import Config  # noqa: E402
from logtrack.send import deliver  # noqa: E402
from logtrack.send.base import basic_auth  # noqa: E402
from logtrack.send.ledger import Ledger  # noqa: E402
from logtrack.yamlfile import load_yaml  # noqa: E402

pytest_plugins = ["fakeapis"]


def test_track_calls_carry_ids_properties_and_context(segment_api, tmp_path):
    start = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)  # Segment takes history: no age window
    events = make_events(3, start=start, user_id=["u1", None, None],
                         anonymous_id=["a1", "a2", None], referer=["https://google.com/", None, None],
                         query=["coupon=X&utm_source=news", None, None], utm_source=["news", None, None],
                         utm_campaign=["spring", None, None])
    s = deliver([events], "segment", options(segment_api, tmp_path))
    assert (s.sent, s.exit_code) == (3, 0) and segment_api.errors == []
    t = segment_api.tracks()
    assert sorted(t) == ["ev0", "ev1", "ev2"]  # messageId = event_id
    e0 = t["ev0"]
    assert (e0["event"], e0["userId"], e0["anonymousId"]) == ("server_order_placed", "u1", "a1")
    assert e0["timestamp"] == "2026-03-01T10:00:00.000000Z"
    assert e0["properties"] == {"coupon": "X", "total_cents": 0}
    ctx = e0["context"]
    assert ctx["ip"] == "192.0.2.0" and ctx["userAgent"].startswith("Mozilla/5.0")
    assert ctx["page"] == {"path": "/api/v1/orders", "referrer": "https://google.com/",
                           "search": "?coupon=X&utm_source=news"}
    assert ctx["campaign"] == {"source": "news", "name": "spring"}
    assert "userId" not in t["ev1"] and t["ev1"]["anonymousId"] == "a2" and "campaign" not in t["ev1"]["context"]
    # No identifier at all (consent denied): the event's own id stands in.
    assert t["ev2"]["anonymousId"] == "ev2"


def test_identify_travels_with_the_first_track_of_each_identity(segment_api, tmp_path):
    events = make_events(4, users=1, user_id=["u1"] * 4,
                         user_properties_json=['{"plan":"pro"}', '{"plan":"pro"}', None, '{"plan":"team"}'])
    s = deliver([events], "segment", options(segment_api, tmp_path))
    assert s.sent == 4
    idents = [m for m in segment_api.messages.values() if m["type"] == "identify"]
    assert sorted(m["traits"]["plan"] for m in idents) == ["pro", "team"]
    assert all(m["userId"] == "u1" for m in idents)
    batch = json.loads(segment_api.bodies[0])["batch"]
    assert [c["type"] for c in batch][:2] == ["identify", "track"]


def test_basic_auth_gzip_and_path(segment_api, tmp_path):
    captured = {}
    original = segment_api.handle

    def spy(path, query, headers, body):
        captured.update(path=path, auth=headers.get("Authorization"), enc=headers.get("Content-Encoding"))
        return original(path, query, headers, body)

    segment_api.handle = spy
    deliver([make_events(2)], "segment", options(segment_api, tmp_path))
    assert captured == {"path": "/v1/batch", "auth": basic_auth(SEGMENT_KEY), "enc": "gzip"}
    assert basic_auth("abc123") == "Basic YWJjMTIzOg=="  # the documented example


def test_batches_stay_within_500_kb_and_2500_calls(segment_api, tmp_path):
    # 6,000 small events: the count limit cuts them 2500 + 2500 + 1000 (bytes allow more).
    n = 6000
    small = make_events(n, properties_json=["{}"] * n, user_agent=[None] * n, path=[None] * n,
                        client_ip=[None] * n, event_name=["e"] * n)
    s = deliver([small], "segment", options(segment_api, tmp_path / "a"))
    assert s.requests == 3  # (concurrent: they may arrive in any order)
    assert sorted(len(json.loads(b)["batch"]) for b in segment_api.bodies) == [1000, 2500, 2500]
    # ~20 KB events: the byte limit cuts them, every body under 500 KB.
    segment_api.bodies.clear()
    big = make_events(60, properties_json=[json.dumps({"blob": "x" * 20_000})] * 60)
    s = deliver([big], "segment", options(segment_api, tmp_path / "b"))
    sizes = [len(b) for b in segment_api.bodies]
    assert s.sent == 60 and max(sizes) <= 500_000 and len(sizes) == 3  # 24 + 24 + 12
    assert segment_api.errors == []


def test_events_over_32_kb_are_dropped_and_reported(segment_api, tmp_path):
    props = ['{"a":1}', json.dumps({"blob": "x" * 40_000}), '{"b":2}']
    s = deliver([make_events(3, properties_json=props)], "segment", options(segment_api, tmp_path))
    assert (s.sent, sum(s.refused.values()), s.exit_code) == (2, 1, 1)
    (reason,) = s.refused
    assert "larger than 32 KB" in reason and "~40 KB" in reason
    assert sorted(segment_api.tracks()) == ["ev0", "ev2"]
    assert list(Ledger(tmp_path, "segment").rejection_reasons()) == ["ev1"]


def test_routing_by_host_to_write_keys(segment_api, tmp_path):
    segment_api.write_keys.add("blog-write-key")
    p = tmp_path / "cfg.yaml"
    p.write_text("destinations:\n  segment:\n    hosts:\n      '*.blog.example.com': {write_key: blog-write-key}\n")
    events = make_events(4, host=None)
    events = events.set_column(events.schema.get_field_index("host"), "host",
                               pa.array(["shop.example.com", "en.blog.example.com"] * 2))
    s = deliver([events], "segment", options(segment_api, tmp_path, config=Config(doc=load_yaml(p))))
    assert s.sent == 4
    keys = {k: m["write_key"] for k, m in segment_api.tracks().items()}
    assert keys == {"ev0": SEGMENT_KEY, "ev1": "blog-write-key", "ev2": SEGMENT_KEY, "ev3": "blog-write-key"}


def test_no_write_key_in_dry_run_errors_or_logs(segment_api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    dry = deliver([make_events(5)], "segment", options(segment_api, tmp_path, dry_run=True, output=lines.append))
    assert dry.sent == 5 and segment_api.requests == 0
    assert any("Basic ***" in line for line in lines)
    segment_api.write_keys = {"other"}  # a 401: the error text must not leak the key either
    failed = deliver([make_events(5)], "segment", options(segment_api, tmp_path))
    assert failed.fatal
    b64 = basic_auth(SEGMENT_KEY).split()[1]
    text = "\n".join(lines + [dry.render(), failed.render()] + [r.getMessage() for r in caplog.records])
    assert SEGMENT_KEY not in text and b64 not in text
