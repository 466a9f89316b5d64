"""GA4 Measurement Protocol: payloads, validation before sending, age window, --validate, routing."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

sys.path.insert(0, os.path.dirname(__file__))
pytest.register_assert_rewrite("fakeapis")
from fakeapis import GA4_MID, GA4_SECRET, ga4_key, make_events, options  # noqa: E402

from logtrack.config import Config  # noqa: E402
from logtrack.errors import ConfigError, UsageError  # noqa: E402
from logtrack.send import deliver  # noqa: E402
from logtrack.send import ga4 as ga4mod  # noqa: E402
from logtrack.send.ga4 import check_name, client_id, user_properties  # noqa: E402
from logtrack.send.ledger import Ledger  # noqa: E402
from logtrack.yamlfile import load_yaml  # noqa: E402

pytest_plugins = ["fakeapis"]


def _config(tmp_path, text: str) -> Config:
    p = tmp_path / "logtrack.yaml"
    p.write_text(text)
    return Config(doc=load_yaml(p))


def test_name_rules():
    assert check_name("server_order_placed", "event") is None
    assert "longer than 40" in check_name("e" * 41, "event")
    assert check_name("e" * 40, "event") is None
    assert "start with a letter" in check_name("1abc", "event")
    assert "start with a letter" in check_name("a-b", "param")
    assert "reserved" in check_name("page_view", "event")
    assert "reserved" in check_name("session_id", "param")
    assert "prefix" in check_name("google_thing", "param")
    assert "prefix" in check_name("firebase_x", "event")


def test_user_properties_become_value_objects_and_are_checked():
    assert user_properties('{"plan": "pro"}') == ('{"plan":{"value":"pro"}}', None)
    assert user_properties(None) == (None, None)
    assert "reserved" in user_properties('{"first_open_time": "1"}')[1]
    assert "longer than 36" in user_properties(json.dumps({"plan": "p" * 37}))[1]
    assert "invalid" in user_properties(json.dumps({"p" * 25: "x"}))[1]


def test_client_id_is_stable_and_shaped_like_ga():
    cid = client_id("anon-1")
    assert cid == client_id("anon-1") != client_id("anon-2")
    a, b = cid.split(".")
    assert len(a) == len(b) == 10 and a.isdigit() and b.isdigit()


def test_payload_fields(ga4_api, tmp_path):
    start = datetime.now(UTC) - timedelta(hours=2)
    start_us = int(start.timestamp() * 1_000_000)
    n = 60
    events = make_events(n, users=2, start=start,
                         user_id=[None if i % 2 else f"user{i % 4}" for i in range(n)],
                         consent=["denied" if i == 1 else None for i in range(n)],
                         user_properties_json=['{"plan":"pro"}' if i == 0 else None for i in range(n)])
    s = deliver([events], "ga4", options(ga4_api, tmp_path))
    assert (s.sent, s.exit_code) == (n, 0) and ga4_api.errors == []
    got = {ga4_key(ev, start_us): ev for ev in ga4_api.events}
    assert sorted(got) == list(range(n))
    e0, e1, e2 = got[0], got[1], got[2]
    assert e0["name"] == "server_order_placed"
    assert e0["timestamp_micros"] == start_us
    assert e0["params"]["coupon"] == "X" and e0["params"]["total_cents"] == 0  # typed from properties_json
    assert e0["params"]["engagement_time_msec"] == 100 and isinstance(e0["params"]["session_id"], int)
    assert e0["user_id"] == "user0" and e1["user_id"] is None
    assert e0["user_properties"] == {"plan": {"value": "pro"}}
    assert e1["consent"] == {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}
    assert e0["consent"] is None
    assert e0["ip_override"] == "192.0.2.0" and e0["user_agent"].startswith("Mozilla/5.0")
    assert e0["client_id"] == e2["client_id"] == client_id("anon0")  # same visitor, same id
    assert e0["measurement_id"] == GA4_MID
    # ≤ 25 events per request, one user per request.
    for body in ga4_api.bodies:
        doc = json.loads(body)
        assert 1 <= len(doc["events"]) <= 25


def test_invalid_events_are_refused_with_reasons_before_sending(ga4_api, tmp_path):
    n = 6
    props = [[("coupon", "X")], [("coupon", "x" * 101)], [(f"p{k}", "1") for k in range(24)],
             [("ga_thing", "1")], [("coupon", "X")], [("coupon", "X")]]
    events = make_events(n, event_name=["ok_event", "ok_event", "ok_event", "ok_event", "page_view", "e" * 41],
                         properties=pa.array(props, pa.map_(pa.string(), pa.string())),
                         properties_json=["{}"] * n)
    s = deliver([events], "ga4", options(ga4_api, tmp_path))
    assert (s.sent, sum(s.refused.values()), s.exit_code) == (1, 5, 1)
    reasons = Ledger(tmp_path, "ga4").rejection_reasons()
    assert "value longer than 100" in reasons["ev1"]
    assert "more than 25 params" in reasons["ev2"]
    assert "prefix reserved" in reasons["ev3"]
    assert "reserved by GA4" in reasons["ev4"]
    assert "longer than 40" in reasons["ev5"]
    assert len(ga4_api.events) == 1 and ga4_api.errors == []


def test_events_older_than_the_window_are_refused_and_explained(ga4_api, tmp_path):
    now = datetime.now(UTC)
    ts = [now - timedelta(hours=h) for h in (1, 70.5, 71.5, 100)]
    events = make_events(4, ts=pa.array(ts, pa.timestamp("us", tz="UTC")))
    s = deliver([events], "ga4", options(ga4_api, tmp_path, now=now))
    assert s.sent == 2 and sum(s.refused.values()) == 2 and s.exit_code == 1
    assert any(r.startswith("too old") for r in s.refused)
    text = s.render()
    assert "Mixpanel" in text and "--since" in text and "events dataset" in text


def test_age_window_configurable_down_never_up(ga4_api, tmp_path):
    now = datetime.now(UTC)
    events = make_events(2, ts=pa.array([now - timedelta(hours=h) for h in (1, 30)], pa.timestamp("us", tz="UTC")))
    cfg = _config(tmp_path, "destinations:\n  ga4:\n    max_age_hours: 24\n")
    s = deliver([events], "ga4", options(ga4_api, tmp_path / "s", config=cfg, now=now))
    assert (s.sent, sum(s.refused.values())) == (1, 1)
    with pytest.raises(ConfigError, match="max_age_hours"):
        deliver([events], "ga4", options(ga4_api, tmp_path / "s2",
                                         config=_config(tmp_path, "destinations: {ga4: {max_age_hours: 80}}\n")))


def test_validate_uses_the_debug_endpoint_and_shows_messages(ga4_api, tmp_path, monkeypatch):
    # Let a reserved name through our own checks so the validation server flags it.
    monkeypatch.setattr(ga4mod, "RESERVED_EVENT_NAMES", frozenset())
    lines: list[str] = []
    events = make_events(3, event_name=["ok_event", "page_view", "ok_event"], users=1)
    s = deliver([events], "ga4", options(ga4_api, tmp_path, validate=True, output=lines.append))
    assert all(u.startswith("/debug/mp/collect?") for u in ga4_api.urls)
    assert ga4_api.events == []  # validated, not collected
    assert s.messages == 1 and s.exit_code == 1
    assert lines == ["ev1: VALUE_INVALID at events: Event at index: [1] has invalid name [page_view]."]
    assert Ledger(tmp_path, "ga4").counts() == {"delivered": 0, "inflight": 0, "rejected": 0}


def test_validate_is_refused_where_there_is_no_validation_endpoint(tmp_path):
    with pytest.raises(UsageError, match="no validation endpoint"):
        deliver([make_events(1)], "segment", options(None, tmp_path, validate=True))


def test_routing_by_host_to_measurement_ids(ga4_api, tmp_path):
    ga4_api.credentials["G-BLOG"] = "blog-secret-123"
    cfg = _config(tmp_path, "destinations:\n  ga4:\n    hosts:\n      blog.example.com:\n"
                            "        measurement_id: G-BLOG\n        api_secret_env: BLOG_SECRET\n")
    events = make_events(4, host="shop.example.com")
    blog = make_events(4, host="blog.example.com").set_column(
        0, "event_id", pa.array([f"ev{i}" for i in range(4, 8)]))
    opts = options(ga4_api, tmp_path, config=cfg)
    opts.env = {**opts.env, "BLOG_SECRET": "blog-secret-123"}
    s = deliver([pa.concat_tables([events, blog])], "ga4", opts)
    assert s.sent == 8 and ga4_api.errors == []
    assert sorted(e["measurement_id"] for e in ga4_api.events) == ["G-BLOG"] * 4 + [GA4_MID] * 4


def test_unknown_destination_keys_point_at_the_line(tmp_path):
    cfg = _config(tmp_path, "destinations:\n  ga4:\n    measurement_id: G-1\n    api_secrt: x\n")
    with pytest.raises(ConfigError, match=r"logtrack.yaml:4: destinations.ga4.api_secrt: unknown key"):
        deliver([make_events(1)], "ga4", options(None, tmp_path, config=cfg))


def test_missing_credentials_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="LOGTRACK_GA4_API_SECRET"):
        deliver([make_events(1)], "ga4", options(None, tmp_path, env={}))


def test_no_secret_in_dry_run_summary_logs_or_ledger(ga4_api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    dry = deliver([make_events(30)], "ga4", options(ga4_api, tmp_path, dry_run=True, output=lines.append))
    assert dry.sent == 30 and ga4_api.requests == 0
    assert any("api_secret=***" in line for line in lines)
    ga4_api.script = [500]
    real = deliver([make_events(30)], "ga4", options(ga4_api, tmp_path))
    assert real.sent == 30
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx logged its URLs
    ledger_bytes = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    everything = "\n".join(lines + [dry.render(), real.render()] + [r.getMessage() for r in caplog.records])
    assert GA4_SECRET not in everything and GA4_SECRET.encode() not in ledger_bytes
