"""Identity: configured id sources, keyed anonymous hashes, salt handling, consent."""

from __future__ import annotations

import hashlib
import os
import stat

import pandas as pd
import pyarrow as pa
import pytest

from logtrack import identity
from logtrack.config import Config
from logtrack.errors import ConfigError
from logtrack.identity import IdentityConfig, Source, identify, load_or_create_salt
from logtrack.schema import REQUESTS, conform
from logtrack.yamlfile import load_yaml

ISSUE_YAML = """\
identity:
  user_id: [field:remote_user, cookie:uid, query:user_id, header:x-user-id, 'path:/users/{id}']
  anonymous_id: [cookie:_lt_anon, hash]
  salt_env: LOGTRACK_SALT
  rotate: never
  ip_truncate: {ipv4: 24, ipv6: 48}
"""
SALT = b"0123456789abcdef"


def cfg_from(text: str) -> IdentityConfig:
    return IdentityConfig.from_config(Config(doc=load_yaml("c.yaml", text=text)))


def table(n: int, **cols) -> pa.Table:
    cols.setdefault("ts", [pd.Timestamp("2026-03-01 10:00:00", tz="UTC")] * n)
    cols.setdefault("client_ip", ["192.0.2.10"] * n)
    cols.setdefault("user_agent", ["Mozilla/5.0 A"] * n)
    if "fields" in cols:
        cols["fields"] = pa.array([list(f.items()) if f is not None else None for f in cols["fields"]],
                                  REQUESTS.field("fields").type)
    cols["ts"] = pa.array([pd.Timestamp(t) for t in cols["ts"]], REQUESTS.field("ts").type)
    return conform(pa.table(cols), REQUESTS)


@pytest.fixture
def blake2b_calls(monkeypatch) -> list[bytes]:
    """The messages identity hashes from now on (it keeps hashing with hashlib.blake2b)."""
    calls: list[bytes] = []
    real = hashlib.blake2b

    class Counting:  # a message is hashed when given to the constructor or to update()
        def __init__(self, h) -> None:
            self.h = h

        def copy(self) -> Counting:
            return Counting(self.h.copy())

        def update(self, data: bytes) -> None:
            calls.append(data)
            self.h.update(data)

        def hexdigest(self) -> str:
            return self.h.hexdigest()

        def digest(self) -> bytes:
            return self.h.digest()

    def counting(data=b"", **kw):
        if data:
            calls.append(data)
        return Counting(real(data, **kw))

    monkeypatch.setattr(identity.hashlib, "blake2b", counting)
    return calls


def test_config_from_the_issue():
    cfg = cfg_from(ISSUE_YAML)
    assert cfg.user_id == (Source("field", "remote_user"), Source("cookie", "uid"), Source("query", "user_id"),
                           Source("header", "x-user-id"), Source("path", "/users/{id}"))
    assert cfg.anonymous_id == (Source("cookie", "_lt_anon"), Source("hash"))
    assert (cfg.salt_env, cfg.rotate, cfg.ipv4_prefix, cfg.ipv6_prefix) == ("LOGTRACK_SALT", "never", 24, 48)
    assert cfg.consent.mode == "anonymize" and len(cfg.consent.signals) == 3
    assert IdentityConfig.from_config(Config()) == IdentityConfig()


@pytest.mark.parametrize("text,where", [
    ("identity:\n  user_ids: [cookie:uid]\n", r"c.yaml:2: identity.user_ids: unknown key"),
    ("identity:\n  user_id:\n    - cookie:uid\n    - cookies:uid\n", r"c.yaml:4: identity.user_id\[1\]: unknown source"),
    ("identity:\n  user_id: [hash]\n", r"identity.user_id\[0\]: hash is only valid for anonymous_id"),
    ("identity:\n  rotate: weekly\n", r"c.yaml:2: identity.rotate: must be never or daily"),
    ("identity:\n  ip_truncate: {ipv6: 200}\n", r"identity.ip_truncate.ipv6: must be a prefix length"),
    ("identity:\n  user_id: ['path:/users/']\n", r"exactly one \{placeholder\}"),
    ("consent:\n  mode: forget\n", r"c.yaml:2: consent.mode: must be anonymize or drop"),
    ("consent:\n  signals: ['cookie:consent']\n", r"consent.signals\[0\]: must be written kind:name=value"),
])
def test_config_errors_point_at_the_key(text, where):
    with pytest.raises(ConfigError, match=where):
        cfg_from(text)


def test_salt_env_wins_else_generated_once_0600(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_SALT", raising=False)
    first = load_or_create_salt(tmp_path, "TEST_SALT")
    assert len(first) == 64 and load_or_create_salt(tmp_path, "TEST_SALT") == first
    assert stat.S_IMODE(os.stat(tmp_path / "salt").st_mode) == 0o600
    monkeypatch.setenv("TEST_SALT", "from-env")
    assert load_or_create_salt(tmp_path, "TEST_SALT") == b"from-env"
    # The file's text is the salt: copying it into the variable gives the same ids elsewhere.
    monkeypatch.setenv("TEST_SALT", (tmp_path / "salt").read_text().strip())
    assert load_or_create_salt(tmp_path, "TEST_SALT") == first


def test_user_id_sources_in_order():
    cfg = cfg_from(ISSUE_YAML)
    t = table(7,
              remote_user=["alice", "-", None, None, None, None, None],
              query=["user_id=zed", "user_id=bob%20b", None, None, None, None, None],
              path=["/", "/", "/", "/", "/users/42/orders", "/users/", "/"],
              fields=[{"cookie_uid": "c-alice"}, None, {"cookie_uid": "c-carol"}, {"http_x_user_id": "dave"}, None, None,
                      {"http_cookie": "a=1; uid=erin; b=2"}])
    assert identify(t, cfg, SALT).column("user_id").to_pylist() == \
        ["alice", "bob b", "c-carol", "dave", "42", None, "erin"]


def test_email_user_ids_are_hashed_and_redacted_values_are_absent():
    t = table(3, remote_user=["Jo@Example.com", "REDACTED", "jo"])
    got = identify(t, IdentityConfig(), SALT).column("user_id").to_pylist()
    assert got[0].startswith("h:") and "@" not in got[0] and got[1:] == [None, "jo"]
    plain = identify(t, IdentityConfig(hash_emails=False), SALT).column("user_id").to_pylist()
    assert plain[0] == "Jo@Example.com"


def test_anonymous_hash_is_keyed_over_truncated_ip_and_user_agent():
    t = table(4, client_ip=["192.0.2.10", "192.0.2.99", "192.0.3.10", "192.0.2.10"],
              user_agent=["Mozilla/5.0 A", "Mozilla/5.0 A", "Mozilla/5.0 A", "Mozilla/5.0 B"])
    ids = identify(t, IdentityConfig(), SALT).column("anonymous_id").to_pylist()
    expected = hashlib.blake2b(b"192.0.2.0\x1fMozilla/5.0 A", key=SALT, digest_size=16,
                               person=b"logtrack-anon").hexdigest()
    assert ids[0] == ids[1] == expected  # same /24, same user agent
    assert len(set(ids)) == 3
    assert identify(t, IdentityConfig(), b"other salt").column("anonymous_id").to_pylist()[0] != expected


def test_cookie_id_first_then_hash():
    t = table(2, fields=[{"cookie__lt_anon": "cookie-id"}, None])
    ids = identify(t, cfg_from(ISSUE_YAML), SALT).column("anonymous_id").to_pylist()
    assert ids[0] == "cookie-id" and len(ids[1]) == 32


def test_daily_rotation():
    t = table(3, ts=["2026-03-01 23:59:00+00:00", "2026-03-01 00:01:00+00:00", "2026-03-02 00:01:00+00:00"])
    daily = identify(t, IdentityConfig(rotate="daily"), SALT).column("anonymous_id").to_pylist()
    assert daily[0] == daily[1] != daily[2]
    never = identify(t, IdentityConfig(), SALT).column("anonymous_id").to_pylist()
    assert len(set(never)) == 1


def test_hashes_are_computed_once_per_distinct_pair(blake2b_calls):
    calls = blake2b_calls
    t = table(3000, client_ip=["192.0.2.1", "192.0.2.2", "198.51.100.1"] * 1000)
    identify(t, IdentityConfig(), SALT)
    assert len(calls) == 2  # two /24s, one user agent


def test_consent_anonymize_and_drop():
    t = table(5, remote_user=["a", "b", "c", "d", "e"],
              fields=[{"cookie_consent": "no"}, {"http_sec_gpc": "1"}, {"http_dnt": "1"}, {"cookie_consent": "yes"}, None])
    out = identify(t, IdentityConfig(), SALT)
    assert out.column("consent").to_pylist() == ["denied", "denied", "denied", None, None]
    assert out.column("user_id").to_pylist() == [None, None, None, "d", "e"]
    assert out.column("anonymous_id").null_count == 3
    dropped = identify(t, cfg_from("consent:\n  mode: drop\n"), SALT)
    assert dropped.column("user_id").to_pylist() == ["d", "e"]
    custom = cfg_from("consent:\n  signals: ['query:optout=1|true']\n")
    q = identify(table(2, query=["optout=TRUE", "optout=0"], fields=[{"http_dnt": "1"}, None]), custom, SALT)
    assert q.column("consent").to_pylist() == ["denied", None]


def test_hashes_are_remembered_across_batches(blake2b_calls):
    calls = blake2b_calls
    cfg = IdentityConfig()
    first = table(4, client_ip=["192.0.2.1", "198.51.100.1", "192.0.2.2", None], user_agent=["A", "A", "A", None])
    ids = identify(first, cfg, SALT).column("anonymous_id").to_pylist()
    assert len(calls) == 2 and ids[0] == ids[2] and ids[3] is None
    again = table(3, client_ip=["198.51.100.7", "192.0.2.9", "203.0.113.1"], user_agent=["A", "A", "A"])
    later = identify(again, cfg, SALT).column("anonymous_id").to_pylist()
    assert len(calls) == 3  # only the new /24 is hashed
    assert later[:2] == [ids[1], ids[0]]
    assert later == identify(again, IdentityConfig(), SALT).column("anonymous_id").to_pylist()
    assert identify(again, cfg, b"other salt").column("anonymous_id").to_pylist()[0] != later[0]


def test_digest_keys_stay_exact_across_batches_limits_and_number_resets(monkeypatch):
    from logtrack import hashing

    t1 = table(4, client_ip=["192.0.2.1", "::ffff:192.0.2.9", "2001:db8:abcd:12::1", None], user_agent=["A"] * 4)
    t2 = table(4, client_ip=["198.51.100.1", "2001:db8:abcd:99::1", "192.0.2.7", None],
               user_agent=["B", "A", "A", "-"])
    fresh = [identify(t, IdentityConfig(), SALT).column("anonymous_id").to_pylist() for t in (t1, t2)]
    assert fresh[0][0] == fresh[0][1] == fresh[1][2]  # one /24, written as IPv4 or IPv4-mapped IPv6
    assert fresh[0][2] == fresh[1][1] and fresh[1][3] is None
    assert len({*fresh[0], *fresh[1]}) == 5
    for ids_limit, table_limit in ((hashing.ID_LIMIT, 2), (5, 500)):  # tables cleared when full; numbers reset
        monkeypatch.setattr(hashing, "ID_LIMIT", ids_limit)
        cfg = IdentityConfig()
        cfg.hashes.limit = table_limit
        for _ in range(3):
            assert [identify(t, cfg, SALT).column("anonymous_id").to_pylist() for t in (t1, t2)] == fresh


def test_daily_rotation_hash_text_and_missing_parts():
    t = table(3, ts=["2026-03-01 23:59:00+00:00"] * 3, client_ip=["192.0.2.10", None, None],
              user_agent=["Mozilla/5.0 A", " Mozilla/5.0 A ", "-"])
    ids = identify(t, IdentityConfig(rotate="daily"), SALT).column("anonymous_id").to_pylist()

    def h(text):
        return hashlib.blake2b(text.encode(), key=SALT, digest_size=16, person=b"logtrack-anon").hexdigest()

    assert ids == [h("192.0.2.0\x1fMozilla/5.0 A\x1f2026-03-01"), h("\x1fMozilla/5.0 A\x1f2026-03-01"), None]


def test_digest_table_finds_every_key_it_was_given_across_index_merges():
    import numpy as np

    from logtrack.hashing import DigestTable, digest

    rng = np.random.default_rng(7)
    table_, hashed = DigestTable(limit=50_000), []
    key, person = b"k" * 16, b"anon"

    def texts(positions: np.ndarray) -> list[str]:
        hashed.extend(batch[positions].tolist())
        return [str(k) for k in batch[positions].tolist()]

    seen: set[int] = set()
    for _ in range(12):  # ≈3 k new keys a batch: the recent index is merged into the main one
        batch = rng.integers(-(2**40), 2**40, 3000).astype(np.int64)
        batch = np.concatenate([batch, batch[:500], rng.choice(np.array(sorted(seen) or [0], np.int64), 500)])
        hashed.clear()
        got = table_.digests(batch, texts, key, person)
        assert got.tolist() == [digest(str(k), key, person).encode() for k in batch.tolist()]
        assert sorted(hashed) == sorted(set(batch.tolist()) - seen)  # each new key once, known keys never
        seen |= set(batch.tolist())
    assert len(table_) == len(seen) and len(table_.main[0]) > 4096


@pytest.mark.parametrize("hash_emails", [True, False])
def test_single_column_user_id_matches_the_row_by_row_route(hash_emails):
    """The default `field:remote_user` source is cleaned and email-hashed per distinct value;
    it gives what the general route (resolve every source, then hash per distinct user) gives,
    including values that only become equal once cleaned."""
    users = [" jo@example.com", "jo@example.com", "-", None, " ", "REDACTED", "al", "al ", "x%40y.org", "al"]
    t = table(len(users), remote_user=users)
    cfg = IdentityConfig(hash_emails=hash_emails)
    fast = identify(t, cfg, SALT).column("user_id")
    slow = identity.resolve(t, Source("field", "remote_user"))
    if hash_emails:
        slow = identity.hash_emails(slow, SALT, cfg.hashes)
    assert fast.to_pylist() == slow.to_pylist()
    assert fast.to_pylist()[2:8] == [None, None, None, None, "al", "al"]
    assert fast.to_pylist()[0] == fast.to_pylist()[1] and fast.to_pylist()[0].startswith("h:" if hash_emails else "jo@")
    # Two sources: the general route, same answer for rows the first source decides.
    two = IdentityConfig(user_id=(Source("field", "remote_user"), Source("query", "uid")), hash_emails=hash_emails)
    assert identify(t, two, SALT).column("user_id").to_pylist() == fast.to_pylist()
    none = table(3, remote_user=[None, None, None])
    assert identify(none, cfg, SALT).column("user_id").to_pylist() == [None, None, None]


def test_hex_strings_share_the_digest_memory():
    """`hashing.hex_strings`: the digests' bytes become the string data as they are (nulls where
    not valid), for any mix of valid rows."""
    import numpy as np

    from logtrack import hashing

    digests = np.array([bytes([97 + i]) * 32 for i in range(5)], "S32")
    for valid in ([True] * 5, [False, True, False, True, True], [False] * 5):
        got = hashing.hex_strings(digests, np.array(valid))
        got.validate(full=True)
        assert got.to_pylist() == [chr(97 + i) * 32 if v else None for i, v in enumerate(valid)]
    empty = hashing.hex_strings(np.zeros(0, "S32"), np.zeros(0, bool))
    empty.validate(full=True)
    assert len(empty) == 0
