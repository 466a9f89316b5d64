"""The log generator (benchmarks/generate.py) and the committed sample_logs/.

The shop truth is re-derived here with an independent, deliberately simple parser (Python `re`
per line, crawlerdetect for bots, file extensions for static assets), not with the generator's
own labels.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crawlerdetect import CrawlerDetect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import combined_pools  # noqa: E402
import generate  # noqa: E402
import logpools  # noqa: E402

LINE = re.compile(
    rb'^(\S+) - (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$'
)
REQUEST = re.compile(r"^([A-Z]+) (\S+) HTTP/[\d.]+$")
STATIC = re.compile(r"\.(css|js|png|ico)$")
CRAWLERS = CrawlerDetect()
SAMPLE = ROOT / "sample_logs"


def parse_shop(data: bytes) -> dict:
    """Count what the truth claims, from the raw bytes of a shop log."""
    rows, malformed, unparsable = [], 0, 0
    for raw in data.split(b"\n")[:-1]:
        m = LINE.match(raw)
        try:
            ts = datetime.strptime(m.group(3).decode(), "%d/%b/%Y:%H:%M:%S %z") if m else None
        except ValueError:
            ts = None
        if ts is None:
            malformed += 1
            continue
        req = REQUEST.match(m.group(4).decode("utf-8", "replace"))
        if not req:
            unparsable += 1
            continue
        ua = m.group(8).decode().replace("\\x22", '"')
        path = req.group(2).split("?")[0]
        rows.append((m.group(1).decode(), ua, int(ts.timestamp()), req.group(1), path, int(m.group(5))))
    people = [r for r in rows if not CRAWLERS.isCrawler(r[1]) and r[1] not in ("-", "") and not STATIC.search(r[4])]
    by_visitor = defaultdict(list)
    for ip, ua, ts, *_ in people:
        by_visitor[(ip, ua)].append(ts)
    starts = []
    for times in by_visitor.values():
        times.sort()
        starts += [b for a, b in zip([None, *times], times, strict=False) if a is None or b - a > 1800]
    calls = Counter((r[3], r[4], r[5]) for r in people)
    days = Counter(datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%d") for s in starts)
    return {
        "visitors": len(by_visitor),
        "sessions": len(starts),
        "pageviews": sum(1 for r in people if r[3] == "GET" and r[5] == 200 and not r[4].startswith("/api/")),
        "orders": calls["POST", "/api/v1/orders", 201],
        "signups": calls["POST", "/api/v1/users", 201],
        "logins": calls["POST", "/api/v1/sessions", 200],
        "cart_adds": calls["POST", "/api/v1/cart/items", 201],
        "malformed_lines": malformed,
        "unparsable_request_lines": unparsable,
        "sessions_by_day": dict(days),
    }


def combined_bytes(lines: int, seed: int, **kw) -> tuple[bytes, dict]:
    summary: dict = {}
    return b"".join(generate.generate_combined(lines, seed, summary=summary, **kw)), summary


def test_combined_is_deterministic_and_exact() -> None:
    a, _ = combined_bytes(3_001, 7)
    b, _ = combined_bytes(3_001, 7)
    c, _ = combined_bytes(3_001, 8)
    assert a == b
    assert a != c
    assert a.count(b"\n") == 3_001 and a.endswith(b"\n")


def test_combined_content_is_realistic_and_quirky() -> None:
    data, summary = combined_bytes(20_000, 3, utc_offset="-0700")
    assert set(summary["quirky_lines"]) == set(combined_pools.QUIRKS)
    assert 14 <= sum(summary["quirky_lines"].values()) <= 26  # ~0.1%
    for needle in (b'"-" 400', b'"" 400', rb'"\x16\x03\x01', rb"Alba 10\x22 Build", rb'\"Nutch\"', b"/caf\xe9/men\xfc",
                   "größe".encode(), b'"GET /" 200', b"OPTIONS * HTTP/1.1", b"utm_source=", b"gclid=", b"fbclid=",
                   b"Googlebot", b"bingbot", b"AhrefsBot", b"kube-probe", b"curl/", b"python-requests", b"-0700]"):
        assert needle in data, needle
    lines = data.split(b"\n")[:-1]
    assert max(len(x) for x in lines) > 2_000
    assert sum(1 for x in lines if not x.endswith(b'"')) == summary["quirky_lines"]["unterminated_ua"]
    parsed = [m for m in map(LINE.match, lines) if m]
    assert len(parsed) >= 19_950
    ips = {m.group(1) for m in parsed}
    assert len(ips) > 2_000 and any(b":" in ip for ip in ips)
    assert len({m.group(8) for m in parsed}) > 300
    assert {m.group(5)[:1] for m in parsed} == {b"1", b"2", b"3", b"4", b"5"}
    assert any(m.group(6) == b"-" for m in parsed) and any(m.group(2) != b"-" for m in parsed)
    times = [datetime.strptime(m.group(3).decode(), "%d/%b/%Y:%H:%M:%S %z") for m in parsed]
    assert (times[-1] - times[0]).days >= 2
    assert summary["out_of_order_lines"] == 20
    assert sum(1 for a, b in zip(times, times[1:], strict=False) if b < a) >= 3  # logged a few seconds late


def test_user_agent_file_is_classified_and_varied() -> None:
    uas = logpools.load_user_agents()
    kinds = Counter(u.kind for u in uas)
    assert len(uas) >= 500 and kinds["bot"] >= 50 and kinds["tool"] >= 20 and kinds["feed"] >= 10
    text = "\n".join(u.ua for u in uas)
    for name in ("Googlebot", "bingbot", "AhrefsBot", "SemrushBot", "YandexBot", "Baiduspider", "DuckDuckBot",
                 "facebookexternalhit", "Twitterbot", "curl/", "Wget/", "python-requests", "Go-http-client",
                 "kube-probe", "ELB-HealthChecker", "Feedly", "iPad", "iPhone", "Android", "Edg/", "Firefox/"):
        assert name in text, name
    people = logpools.user_agents(logpools.HUMAN_KINDS, "modern")
    assert not [u.ua for u in people if CRAWLERS.isCrawler(u.ua)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shop") / "access.log"
    truth = generate.write_shop(out, 2_500, seed=11, rotate=3)
    return out, truth


def test_shop_rotated_set_is_continuous_and_exact(shop: tuple[Path, dict]) -> None:
    out, truth = shop
    parts = [gzip.decompress(out.with_name("access.log.2.gz").read_bytes()),
             out.with_name("access.log.1").read_bytes(), out.read_bytes()]
    whole = generate.shopsim.simulate(2_500, 11)
    assert b"".join(parts) == b"".join(whole.lines)
    assert [p.count(b"\n") for p in parts] == list(truth["files"].values())[::-1]
    assert sum(p.count(b"\n") for p in parts) == 2_500
    assert all(len(p) > 0 for p in parts)
    again = out.with_name("again.log")
    generate.write_shop(again, 2_500, seed=11, rotate=3)
    assert again.with_name("again.log.2.gz").read_bytes() == out.with_name("access.log.2.gz").read_bytes()


def test_shop_truth_matches_an_independent_count(shop: tuple[Path, dict]) -> None:
    out, truth = shop
    data = b"".join([gzip.decompress(out.with_name("access.log.2.gz").read_bytes()),
                     out.with_name("access.log.1").read_bytes(), out.read_bytes()])
    got = parse_shop(data)
    for key in ("visitors", "sessions", "pageviews", "orders", "signups", "logins", "cart_adds", "malformed_lines",
                "unparsable_request_lines"):
        assert got[key] == truth[key], key
    assert got["sessions_by_day"] == {d: v["sessions"] for d, v in truth["by_day"].items() if v["sessions"]}
    assert truth["sessions"] > truth["visitors"] > 20 and truth["orders"] > 0 and truth["signups"] > 0
    assert truth["logins"] > 0 and truth["cart_adds"] > 0
    assert 0 < truth["malformed_lines"] / truth["lines"] <= 0.005


def test_shop_non_people_are_flagged_and_people_are_not() -> None:
    log = generate.shopsim.simulate(1_200, 5)
    people = {r.ua for r in log.records if r.actor >= 0}
    others = {r.ua for r in log.records if r.actor < 0 and r.raw is None}
    assert not [ua for ua in people if CRAWLERS.isCrawler(ua.replace("\\x22", '"'))]
    assert not [ua for ua in others if ua != "-" and not CRAWLERS.isCrawler(ua)]
    assert {r.user for r in log.records if r.actor >= 0} - {"-"}  # logged-in users carry $remote_user


def test_cli_writes_logs_and_truth(tmp_path: Path) -> None:
    assert generate.main(["--lines", "500", "--seed", "2", "-o", str(tmp_path / "c.log"),
                          "--truth", str(tmp_path / "c.json"), "--utc-offset", "+0530"]) == 0
    assert (tmp_path / "c.log").read_bytes().count(b"\n") == 500
    assert json.loads((tmp_path / "c.json").read_text())["utc_offset"] == "+0530"
    assert generate.main(["--format", "shop", "--lines", "800", "--seed", "2", "-o", str(tmp_path / "s.log"),
                          "--truth", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.log").read_bytes().count(b"\n") == 800
    assert json.loads((tmp_path / "s.json").read_text())["lines"] == 800


def test_committed_sample_logs_are_reproducible_and_documented(tmp_path: Path) -> None:
    readme = (SAMPLE / "README.md").read_text()
    args = re.search(r"python benchmarks/generate.py (.+?)\n", readme).group(1).split()
    args[args.index("-o") + 1] = str(tmp_path / "shop-access.log")
    truth_file = tmp_path / "truth.json"
    assert generate.main([*args, "--truth", str(truth_file)]) == 0
    for name in ("shop-access.log", "shop-access.log.1", "shop-access.log.2.gz"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
    truth = json.loads(truth_file.read_text())
    documented = json.loads(re.search(r"```json\n(.+?)```", readme, re.S).group(1))
    assert documented == {k: truth[k] for k in documented}
