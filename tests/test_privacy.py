"""Privacy: IP truncation, scrubbing of emails and secrets, nothing private left in outputs."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack import ipaddrs, privacy
from logtrack.config import Config
from logtrack.enrich import enrich
from logtrack.errors import ConfigError
from logtrack.identity import IdentityConfig, identify
from logtrack.privacy import PrivacyConfig, scrub_strings, scrub_text, truncate_ips
from logtrack.schema import REJECTS, REQUESTS, conform
from logtrack.sessions import Sessionizer
from logtrack.yamlfile import load_yaml

CFG = PrivacyConfig()
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
AWS = "AKIAIOSFODNN7EXAMPLE"


def test_truncate_ips():
    got = truncate_ips(pa.array(["203.0.113.77", "203.0.113.77", "2001:db8:abcd:12::1", "::ffff:198.51.100.9",
                                 "[2001:db8::1]", "fe80::1%eth0", "10.0.0.1", None, "unknown", "300.1.2.3"]))
    assert got.to_pylist() == ["203.0.113.0", "203.0.113.0", "2001:db8:abcd::", "198.51.100.0", "2001:db8::",
                               "fe80::", "10.0.0.0", None, None, None]
    assert truncate_ips(pa.chunked_array([["203.0.113.77"], ["2001:db8:abcd:12::1"]]), 20, 32).to_pylist() == \
        ["203.0.112.0", "2001:db8::"]
    assert truncate_ips(pa.array([], pa.string())).to_pylist() == []


@pytest.mark.parametrize("text,expected", [
    ("/users/jane.doe@example.com/orders", "/users/REDACTED/orders"),
    ("email=jane.doe%40example.com&x=1", "email=REDACTED&x=1"),
    ("e=JANE%2540EXAMPLE.COM", "e=REDACTED"),
    ("token=abc123&page=2", "token=REDACTED&page=2"),
    ("page=2&password=hunter2", "page=2&password=REDACTED"),
    ("api_key=sk_live_123&apikey=x", "api_key=REDACTED&apikey=REDACTED"),
    ("access_token=ya29.a0Af&refresh_token=1//0g", "access_token=REDACTED&refresh_token=REDACTED"),
    ("client_secret=s3cr3t", "client_secret=REDACTED"),
    ("code=4/0AX4XfWh&state=abc", "code=REDACTED&state=abc"),
    (f"/download/{AWS}/file", "/download/REDACTED/file"),
    (f"/auth/callback#{JWT}", "/auth/callback#REDACTED"),
    ("https://bob:pa55@example.com/x?q=1", "https://example.com/x?q=1"),
    ("https://a.example/cb?next=%2Fdo%3Ftoken%3Dab%2Bc%26y%3D2", "https://a.example/cb?next=%2Fdo%3Ftoken%3DREDACTED%26y%3D2"),
    # Not secrets: left alone.
    ("/img/logo@2x.png?author=me&promo_code=SPRING&keyword=shoes", "/img/logo@2x.png?author=me&promo_code=SPRING&keyword=shoes"),
    ("utm_source=newsletter&page=2", "utm_source=newsletter&page=2"),
])
def test_scrub_strings(text, expected):
    assert scrub_strings(pa.array([text, None]), CFG).to_pylist() == [expected, None]


def test_redact_params_from_config():
    doc = load_yaml("c.yaml", text="privacy:\n  redact_params: [voucher]\n  ip_truncate: {ipv4: 16}\n")
    cfg = PrivacyConfig.from_config(Config(doc=doc))
    assert (cfg.ipv4_prefix, cfg.ipv6_prefix, cfg.keep_ip) == (16, 48, False)
    assert scrub_strings(pa.array(["voucher=X1&a=1"]), cfg).to_pylist() == ["voucher=REDACTED&a=1"]
    assert PrivacyConfig.from_config(Config(doc=doc), keep_ip=True).keep_ip
    ident = load_yaml("c.yaml", text="identity:\n  ip_truncate: {ipv6: 64}\n")
    assert PrivacyConfig.from_config(Config(doc=ident)).ipv6_prefix == 64
    for text, where in (("privacy:\n  keep_ips: true\n", "c.yaml:2: privacy.keep_ips"),
                        ("privacy:\n  ip_truncate: {ipv4: 33}\n", "c.yaml:2: privacy.ip_truncate.ipv4")):
        with pytest.raises(ConfigError, match=where):
            PrivacyConfig.from_config(Config(doc=load_yaml("c.yaml", text=text)))


def test_scrub_text_of_a_rejected_line():
    line = ('192.0.2.77 - bob@example.com [01/Mar/2026:10:00:00 +0000] "GET /a?token=abc&x=1 HTTP/1.1" '
            '200 2 "https://ref.example/?api_key=zzz" "Agent 2001:db8:1:2::77" Bearer abc.def')
    got = scrub_text(pa.array([line]), CFG).to_pylist()[0]
    assert got == ('192.0.2.0 - REDACTED [01/Mar/2026:10:00:00 +0000] "GET /a?token=REDACTED&x=1 HTTP/1.1" '
                   '200 2 "https://ref.example/?api_key=REDACTED" "Agent 2001:db8:1::" Bearer REDACTED')
    kept = scrub_text(pa.array([line]), PrivacyConfig(keep_ip=True)).to_pylist()[0]
    assert kept.startswith("192.0.2.77 - REDACTED") and "2001:db8:1:2::77" in kept
    rejects = conform(pa.table({"text": [line], "line": [7]}), REJECTS)
    assert scrub_text(rejects.column("text"), CFG).to_pylist()[0] == got


def test_apply_truncates_client_ip_and_ip_fields_and_redacts_secret_fields():
    fields = pa.array([[("http_x_forwarded_for", "203.0.113.5, 10.1.2.3"), ("http_authorization", "Bearer x"),
                        ("cookie_uid", "u1"), ("cookie_sessionid", "s3ss"), ("http_x_real_ip", "2001:db8:9:8::7")],
                       None], REQUESTS.field("fields").type)
    table = conform(pa.table({"ts": pa.array([pd.Timestamp("2026-03-01", tz="UTC")] * 2), "client_ip": ["192.0.2.77", None],
                              "fields": fields, "remote_user": ["jo@example.com", "jo"]}), REQUESTS)
    out = privacy.apply(table, CFG).to_pylist()
    assert out[0]["client_ip"] == "192.0.2.0" and out[0]["remote_user"] == "REDACTED" and out[1]["remote_user"] == "jo"
    assert dict(out[0]["fields"]) == {"http_x_forwarded_for": "203.0.113.0, 10.1.2.0", "http_authorization": "REDACTED",
                                      "cookie_uid": "u1", "cookie_sessionid": "REDACTED", "http_x_real_ip": "2001:db8:9::"}
    assert out[1]["fields"] is None
    kept = privacy.apply(table, PrivacyConfig(keep_ip=True)).to_pylist()[0]
    assert kept["client_ip"] == "192.0.2.77" and dict(kept["fields"])["http_x_forwarded_for"] == "203.0.113.5, 10.1.2.3"
    assert dict(kept["fields"])["http_authorization"] == "REDACTED"


def test_apply_takes_sliced_and_many_chunk_tables():
    """A table cut from a bigger one (map slices whose offsets start mid-buffer) is scrubbed as
    the whole would be, row for row."""
    fields = pa.array([[("http_x_forwarded_for", "203.0.113.5")], None, [("http_authorization", "Bearer x")],
                       [("http_x_real_ip", "198.51.100.7"), ("cookie_uid", "u1")]], REQUESTS.field("fields").type)
    table = conform(pa.table({"ts": pa.array([pd.Timestamp("2026-03-01", tz="UTC")] * 4),
                              "client_ip": ["192.0.2.77", None, "192.0.2.1", "192.0.2.2"], "fields": fields}), REQUESTS)
    whole = privacy.apply(table, CFG).to_pylist()
    pieces = pa.concat_tables([table.slice(0, 1), table.slice(1, 3)])
    assert pieces.column("fields").num_chunks == 2 and pieces.column("fields").chunk(1).offset == 1
    assert privacy.apply(pieces, CFG).to_pylist() == whole
    assert privacy.apply(table.slice(1), CFG).to_pylist() == whole[1:]
    assert dict(whole[3]["fields"]) == {"http_x_real_ip": "198.51.100.0", "cookie_uid": "u1"}


def test_no_full_ip_email_or_secret_survives_the_chain():
    secrets = ["192.0.2.77", "198.51.100.23", "2001:db8:abcd:12::1", "jane.doe@example.com", "jane.doe%40example.com",
               "hunter2", "abc123tok", "sk_live_key", AWS, JWT, "s3cr3tv4lue", "203.0.113.99"]
    rows = {
        "ts": pa.array(pd.to_datetime(["2026-03-01 10:00:00", "2026-03-01 10:01:00", "2026-03-01 10:02:00"], utc=True)),
        "client_ip": ["192.0.2.77", "198.51.100.23", "2001:db8:abcd:12::1"],
        "method": ["GET"] * 3, "status": pa.array([200] * 3, pa.int16()), "host": ["shop.example"] * 3,
        "path": ["/users/jane.doe@example.com", f"/k/{AWS}", "/login"],
        "query": ["password=hunter2&token=abc123tok", "api_key=sk_live_key&email=jane.doe%40example.com",
                  f"access_token={JWT}&client_secret=s3cr3tv4lue"],
        "referer": ["https://ref.example/?token=abc123tok", "-", "https://x.example/?e=jane.doe%40example.com"],
        "user_agent": ["Mozilla/5.0 (contact jane.doe@example.com)", "curl/8", "Mozilla/5.0"],
        "remote_user": ["jane.doe@example.com", None, None],
        "fields": pa.array([[("http_x_forwarded_for", "203.0.113.99")], None, None], REQUESTS.field("fields").type),
        "source": ["a.log"] * 3, "line": [1, 2, 3],
    }
    table = conform(pa.table(rows), REQUESTS)
    prepared = privacy.apply(identify(enrich(table), IdentityConfig(), b"salt"), CFG)
    s = Sessionizer()
    outs = [s.push(prepared, None), s.finish()]
    text = json.dumps([o.requests.to_pylist() for o in outs] + [o.sessions.to_pylist() for o in outs], default=str)
    assert outs[1].requests.num_rows == 3
    for secret in secrets:
        assert secret not in text, secret
    assert "192.0.2.0" in text and "2001:db8:abcd::" in text


def _reference_truncation(text, v4, v6):
    """The documented behaviour, one value at a time: dotted IPv4 numerically (leading zeros
    allowed), anything else through `ipaddress` (brackets, zone ids, IPv4-mapped IPv6)."""
    import ipaddress
    import re
    if text is None:
        return None
    m = re.fullmatch(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})", text)
    if m and all(int(g) <= 255 for g in m.groups()):
        value = int.from_bytes(bytes(int(g) for g in m.groups()), "big") >> (32 - v4) << (32 - v4) if v4 else 0
        return str(ipaddress.IPv4Address(value))
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(ipaddress.ip_network(f"{addr}/{v4 if addr.version == 4 else v6}", strict=False).network_address)


octet = st.one_of(st.integers(0, 255).map(str), st.integers(0, 255).map(lambda i: f"{i:03d}"),
                  st.sampled_from(["256", "999", "", "a", "1 "]))
address = st.one_of(
    st.tuples(octet, octet, octet, octet).map(".".join),
    st.ip_addresses(v=6).map(str), st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"), st.sampled_from(["unknown", "-", "", "1.2.3", "1.2.3.4.5", " 1.2.3.4"]),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(address, max_size=30), v4=st.integers(0, 32), v6=st.integers(0, 128))
def test_truncate_ips_agrees_with_a_per_value_reference(values, v4, v6):
    got = truncate_ips(pa.array(values, pa.string()), v4, v6).to_pylist()
    assert got == [_reference_truncation(v, v4, v6) for v in values]


def test_identify_and_apply_truncate_each_batch_once(monkeypatch):
    calls = []
    real = ipaddrs._truncate_distinct
    monkeypatch.setattr(ipaddrs, "_truncate_distinct", lambda *a: calls.append(1) or real(*a))
    table = conform(pa.table({"ts": pa.array([pd.Timestamp("2026-03-01", tz="UTC")] * 3),
                              "client_ip": ["192.0.2.77", "192.0.2.8", "2001:db8:abcd:12::1"],
                              "user_agent": ["A", "A", "B"]}), REQUESTS)
    out = privacy.apply(identify(table, IdentityConfig(), b"salt"), CFG)
    assert out.column("client_ip").to_pylist() == ["192.0.2.0", "192.0.2.0", "2001:db8:abcd::"]
    assert len(calls) == 1  # identity's anonymous hash and privacy share the work
    assert out.column("anonymous_id").to_pylist()[0] == out.column("anonymous_id").to_pylist()[1]


def test_scrubbed_values_are_remembered_across_batches(monkeypatch):
    cfg = PrivacyConfig()
    calls = []
    real = privacy._scrub_flagged
    monkeypatch.setattr(privacy, "_scrub_flagged", lambda sub, *a: calls.append(len(sub)) or real(sub, *a))
    for _ in range(3):
        got = scrub_strings(pa.array(["token=abc", "/a", None, "token=abc", "/api/v1/sessions"]), cfg).to_pylist()
        assert got == ["token=REDACTED", "/a", None, "token=REDACTED", "/api/v1/sessions"]
    assert calls == [2]  # the two distinct flagged values, scrubbed once for the run
    unchanged = pa.array(["/a", "/b"])
    assert scrub_strings(unchanged, cfg) is unchanged  # nothing to scrub: no copy


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(address, max_size=12), min_size=1, max_size=5), v4=st.sampled_from([8, 20, 24, 32]),
       limit=st.integers(1, 20))
def test_address_cache_across_batches_agrees_with_a_per_value_reference(batches, v4, limit):
    """Addresses of earlier batches come from the cache (also when it fills up or a batch is
    mostly new): every batch's truncation is still exactly the per-value reference."""
    cache = ipaddrs.AddressCache(limit)
    for values in batches + batches[::-1]:
        got = truncate_ips(pa.array(values, pa.string()), v4, 48, cache)
        assert got.to_pylist() == [_reference_truncation(v, v4, 48) for v in values]
        t = ipaddrs.truncation(pa.array(values, pa.string()), v4, 48, cache)
        quads = [v is not None and ipaddrs._dotted_quads(pa.array([v]))[1][0] for v in t.encoded.dictionary.to_pylist()]
        assert len(t.v4) == len(t.encoded.dictionary) and ((t.v4 >= 0) == quads).all()


def test_address_cache_parses_only_new_addresses(monkeypatch):
    parsed = []
    real = ipaddrs._truncate_distinct
    monkeypatch.setattr(ipaddrs, "_truncate_distinct", lambda d, *a: parsed.append(len(d)) or real(d, *a))
    cache = ipaddrs.AddressCache()
    first = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::1"]
    assert truncate_ips(pa.array(first), 24, 48, cache).to_pylist() == \
        ["192.0.2.0", "192.0.2.0", "198.51.100.0", "2001:db8::"]
    second = first + ["203.0.113.9"]  # another batch (new arrays): one new address
    assert truncate_ips(pa.array(second), 24, 48, cache).to_pylist()[-1] == "203.0.113.0"
    assert parsed == [4, 1]
