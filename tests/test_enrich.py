"""Enrichment: user agents (once per distinct string), bots, static assets, traffic sources."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
import user_agents
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.config import Config
from logtrack.enrich import EnrichConfig, enrich
from logtrack.enrich.useragent import UAParser
from logtrack.errors import ConfigError
from logtrack.schema import ENRICHMENT, REQUESTS, conform
from logtrack.yamlfile import load_yaml

CHROME_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.2 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
        "Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.6099.144 Mobile Safari/537.36")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/119.0.0.0 Safari/537.36")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.2 Safari/605.1.15")
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HUMANS = [CHROME_WIN, IPHONE, IPAD, ANDROID_PHONE, ANDROID_TABLET, MAC_SAFARI, LINUX_FIREFOX]


def table(**cols) -> pa.Table:
    n = len(next(iter(cols.values())))
    cols.setdefault("ts", [pd.Timestamp("2026-03-01 10:00:00", tz="UTC")] * n)
    cols.setdefault("host", ["shop.example"] * n)
    if "fields" in cols:
        cols["fields"] = pa.array([list(f.items()) if f is not None else None for f in cols["fields"]],
                                  REQUESTS.field("fields").type)
    return conform(pa.table(cols), REQUESTS)


def test_columns_and_types_follow_the_schema():
    out = enrich(table(path=["/"], user_agent=[CHROME_WIN]))
    assert out.schema.names == REQUESTS.names + ENRICHMENT.names
    assert out.select(ENRICHMENT.names).schema.equals(conform(out, ENRICHMENT).schema)
    assert enrich(table(path=pa.array([], pa.string()))).num_rows == 0


def test_browser_os_and_device_class():
    out = enrich(table(user_agent=HUMANS + [None, "-"])).to_pylist()
    got = [(r["browser"], r["os"], r["device"]) for r in out]
    assert got == [("Chrome", "Windows", "desktop"), ("Mobile Safari", "iOS", "mobile"),
                   ("Mobile Safari", "iOS", "tablet"), ("Chrome Mobile", "Android", "mobile"),
                   ("Chrome", "Android", "tablet"), ("Safari", "Mac OS X", "desktop"),
                   ("Firefox", "Linux", "desktop"), (None, None, "other"), (None, None, "other")]
    assert out[0]["browser_version"] == "120.0.0" and not any(r["is_bot"] for r in out)


def test_device_classes_agree_with_user_agents_package():
    out = enrich(table(user_agent=HUMANS)).column("device").to_pylist()
    for ua, device in zip(HUMANS, out, strict=True):
        ref = user_agents.parse(ua)
        expected = "tablet" if ref.is_tablet else "mobile" if ref.is_mobile else "desktop" if ref.is_pc else "other"
        assert device == expected, ua


@pytest.mark.parametrize("ua,name", [
    ("curl/8.4.0", "curl"), ("Wget/1.21.4", "Wget"), ("python-requests/2.31.0", "python-requests"),
    ("Go-http-client/1.1", "Go-http-client"), ("kube-probe/1.29", "kube-probe"),
    ("ELB-HealthChecker/2.0", "ELB-HealthChecker"), ("Datadog Agent/7.50", "Datadog"),
    ("Prometheus/2.48.0", "Prometheus"), ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "UptimeRobot"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
     "HeadlessChrome"),
    (GOOGLEBOT, "Googlebot"), ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "Yandex"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "Semrush"),
])
def test_bots(ua, name):
    row = enrich(table(user_agent=[ua])).to_pylist()[0]
    assert (row["is_bot"], row["device"], row["bot_name"]) == (True, "bot", name)


def test_not_bots_and_config_lists():
    uas = ["okhttp/4.12.0", CHROME_WIN, "MyMonitor/1.0", "Mozilla/5.0 (compatible; YandexSearch/1.0)"]
    assert enrich(table(user_agent=uas)).column("is_bot").to_pylist() == [False, False, False, False]
    doc = load_yaml("c.yaml", text="enrich:\n  bots: ['MyMonitor/\\d']\n  not_bots: [Googlebot]\n")
    cfg = EnrichConfig.from_config(Config(doc=doc))
    out = enrich(table(user_agent=["MyMonitor/1.0", GOOGLEBOT]), cfg).to_pylist()
    assert [(r["is_bot"], r["bot_name"]) for r in out] == [(True, "MyMonitor/1"), (False, None)]


def test_each_distinct_user_agent_is_parsed_once_even_across_batches():
    class Counting(UAParser):
        calls: list[str] = []

        def parse_one(self, ua):
            self.calls.append(ua)
            return super().parse_one(ua)

    parser = Counting()
    cfg = EnrichConfig(parser=parser)
    uas = [CHROME_WIN, IPHONE, GOOGLEBOT] * 1000
    enrich(table(user_agent=uas), cfg)
    enrich(table(user_agent=uas[:10] + [IPAD]), cfg)
    assert sorted(parser.calls) == sorted([CHROME_WIN, IPHONE, GOOGLEBOT, IPAD])


def test_static_by_extension_and_by_content_type():
    out = enrich(table(
        path=["/app.min.JS", "/img/logo.png", "/about", "/index.php", "/avatar/42", "/page.js", "/a.css;jsessionid=1", None],
        fields=[None, None, None, None, {"sent_http_content_type": "image/webp"},
                {"sent_http_content_type": "text/html; charset=utf-8"}, None, None],
    ))
    assert out.column("is_static").to_pylist() == [True, True, False, False, True, False, True, False]


def test_utm_click_ids_and_language():
    out = enrich(table(
        query=["utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&utm_term=a&utm_content=b",
               "gclid=Cj0KCQ&x=1", "x=1&fbclid=IwAR2", "myutm_source=x", None],
        fields=[{"http_accept_language": "de-DE,de;q=0.9,en;q=0.8"}, {"http_accept_language": "*"}, None, {}, None],
    )).to_pylist()
    first = out[0]
    assert [first[c] for c in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")] == \
        ["news letter", "email", "spring sale", "a", "b"]
    assert [r["click_id"] for r in out] == [None, "Cj0KCQ", "IwAR2", None, None]
    assert out[3]["utm_source"] is None  # a parameter name must match exactly
    assert [r["language"] for r in out] == ["de-DE", None, None, None, None]


@pytest.mark.parametrize("referer,query,channel", [
    (None, None, "direct"),
    ("-", None, "direct"),
    ("https://www.google.de/", None, "organic_search"),
    ("https://duckduckgo.com/?q=x", None, "organic_search"),
    ("https://www.google.com/", "gclid=abc", "paid_search"),
    (None, "utm_source=google&utm_medium=cpc", "paid_search"),
    ("https://l.facebook.com/l.php", None, "social"),
    ("https://t.co/xyz", None, "social"),
    (None, "fbclid=IwAR", "social"),
    ("https://mail.google.com/mail/u/0/", None, "email"),
    (None, "utm_source=newsletter&utm_medium=email", "email"),
    ("https://blog.example.org/post", None, "referral"),
    ("https://shop.example/cart", None, "internal"),
    ("https://www.shop.example:8443/cart", None, "internal"),
    ("https://www.google.com/", "utm_source=partner&utm_campaign=x", "campaign"),
])
def test_channels(referer, query, channel):
    row = enrich(table(referer=[referer], query=[query])).to_pylist()[0]
    assert row["channel"] == channel


def test_referer_host():
    out = enrich(table(referer=["https://user:pw@Example.COM:8080/a?b", "android-app://com.google.android.gm/",
                                "not a url", "-", "http://[2001:db8::1]/x"]))
    assert out.column("referer_host").to_pylist() == ["example.com", "com.google.android.gm", None, None,
                                                       "[2001:db8::1]"]


def test_config_validation_points_at_the_line():
    doc = load_yaml("c.yaml", text="enrich:\n  static_extensions: [css]\n  bot: [x]\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3: enrich.bot: unknown key"):
        EnrichConfig.from_config(Config(doc=doc))
    doc = load_yaml("c.yaml", text="enrich:\n  bots: ['(unclosed']\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: enrich.bots: invalid pattern"):
        EnrichConfig.from_config(Config(doc=doc))
    cfg = EnrichConfig.from_config(Config(doc=load_yaml("c.yaml", text="enrich:\n  static_extensions: [.CSS]\n")))
    assert cfg.static_extensions == ("css",)


@pytest.mark.parametrize(("path", "page"), [
    ("/", True), ("/about", True), ("/index.php", True), ("/users/jane.doe", True), ("/products/42", True),
    ("/apiary", True), ("/rapid/x", True), ("/my-api/docs", True),  # "api" only as a whole segment
    ("/api/v1/products", False), ("/api", False), ("/API/v2/x", False), ("/shop/api/v2/cart", False),
    ("/graphql", False), ("/wp-json/wp/v2/posts", False), ("/xmlrpc.php", False),
    ("/api;jsessionid=1", False), ("/feed.xml", False), ("/robots.txt", False), ("/data.json", False),
    ("/static/app.css", False), (None, False),
])
def test_page_paths_exclude_api_endpoints_data_and_static(path, page):
    from logtrack.enrich.static import is_page_path
    assert is_page_path(pa.array([path], pa.string())).to_pylist() == [page]


def _reference_channel(referer, query, host, internal=()):
    """The module docstring's channel rules, one request at a time with Python `re`."""
    import re
    from urllib.parse import unquote_plus

    from logtrack.enrich import traffic as t

    def param(name):
        m = re.search(rf"(?:^|&){name}=([^&#]*)", query or "")
        return (unquote_plus(m.group(1)) or None) if m else None

    def has(pattern, value):
        return value is not None and re.search(pattern, value) is not None

    utm = {name: param(name) for name in t.UTM_PARAMS}
    medium, source = (utm["utm_medium"] or "").lower() or None, (utm["utm_source"] or "").lower() or None
    click = next((name for name in t.CLICK_IDS if param(name)), None)
    rules = [(click in t.SOCIAL_CLICK_IDS, "social"), (click in t.PAID_SEARCH_CLICK_IDS, "paid_search"),
             (any(utm[n] for n in ("utm_source", "utm_medium", "utm_campaign")), "campaign"),
             (medium == "referral", "referral"), (medium == "organic", "organic_search"),
             (has(t._SOCIAL, medium), "social"), (has(t._PAID_SEARCH_MEDIUM, medium), "paid_search"),
             (has(t._PAID_MEDIUM, medium) and has(t._SOCIAL, source), "social"),
             (has(t._EMAIL_MEDIUM, medium) or has(t._EMAIL_MEDIUM, source), "email")]
    for mask, name in reversed(rules):  # the last rule that applies wins
        if mask:
            return name
    m = re.match(t._REFERER_HOST.replace("?P<host>", ""), referer or "")
    ref_host = m.group(1).lower().rstrip(".") if m else None
    if not ref_host:
        return "direct"

    def bare(h):
        return re.sub(r"^www\.", "", h.lower())

    if (host is not None and bare(ref_host) == bare(host)) or bare(ref_host) in [bare(h) for h in internal]:
        return "internal"
    for pattern, name in ((t.EMAIL_HOSTS, "email"), (t.SEARCH_HOSTS, "organic_search"), (t.SOCIAL_HOSTS, "social")):
        if re.search(pattern, ref_host):
            return name
    return "referral"


REFERERS = [None, "-", "https://www.google.de/", "https://l.facebook.com/l.php", "https://t.co/x", "https://mail.google.com/",
            "https://blog.example.org/p", "https://shop.example/cart", "https://www.shop.example:8443/", "not a url",
            "https://SHOP.EXAMPLE./", "android-app://com.google.android.gm/", "https://outlook.live.com/mail"]
QUERIES = [None, "utm_source=google&utm_medium=cpc", "utm_source=facebook&utm_medium=paid", "utm_medium=Referral",
           "utm_medium=organic", "utm_source=newsletter", "utm_source=", "gclid=x&fbclid=y", "fbclid=1", "ttclid=",
           "a=1#&utm_campaign=z", "utm_medium=e-mail", "utm_source=Newsletter&utm_medium=social-network", "myutm_source=x",
           "utm_term=a", "msclkid=1&utm_medium=sm"]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(REFERERS), st.sampled_from(QUERIES),
                               st.sampled_from(["shop.example", "www.shop.example", None])), min_size=1, max_size=40))
def test_channel_agrees_with_a_per_request_reference(rows):
    cfg = EnrichConfig(internal_hosts=("blog.example.org",))
    out = enrich(table(referer=[r[0] for r in rows], query=[r[1] for r in rows], host=[r[2] for r in rows]), cfg)
    assert out.column("channel").to_pylist() == [_reference_channel(*r, internal=("blog.example.org",)) for r in rows]


def test_results_do_not_depend_on_batches_or_caches():
    uas = HUMANS + [GOOGLEBOT, "curl/8.4.0", None, "-", "okhttp/4.12.0"]
    t = table(user_agent=[uas[i % len(uas)] for i in range(60)], path=[f"/p{i % 7}.css" if i % 3 else "/" for i in range(60)],
              query=[QUERIES[i % len(QUERIES)] for i in range(60)], referer=[REFERERS[i % len(REFERERS)] for i in range(60)])
    whole = enrich(t, EnrichConfig())
    cfg = EnrichConfig()
    parts = [enrich(t.slice(i, 13), cfg) for i in range(0, 60, 13)]
    assert pa.concat_tables(parts).equals(whole)


def test_crawler_names_are_crawlerdetect_matches():
    from crawlerdetect import CrawlerDetect

    uas = ["Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "facebookexternalhit/1.1",
           "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot)", "Twitterbot/1.0"]
    names = enrich(table(user_agent=uas)).column("bot_name").to_pylist()
    detector = CrawlerDetect()
    expected = [detector.get_matches() if detector.is_crawler(ua) else None for ua in uas]
    assert names == [e.rstrip("/ ;:(") for e in expected]


def test_crawler_verdicts_agree_between_the_arrow_pass_and_python_searches():
    from pathlib import Path

    from crawlerdetect import CrawlerDetect

    from logtrack.enrich import bots

    listed = Path(__file__).resolve().parent.parent / "benchmarks" / "user_agents.txt"
    uas = [line.rstrip("\n") for line in listed.read_text().splitlines()] + HUMANS + [GOOGLEBOT, "", " ", None]
    assert len(uas) >= bots._VECTOR_MIN  # the Arrow pass
    hits = bots._crawler_hits(pa.array(uas, pa.string()))
    assert hits == [ua is not None and bots._crawler_match(ua) is not None for ua in uas]  # the Python searches
    detector = CrawlerDetect()
    assert hits == [ua is not None and detector.is_crawler(ua) for ua in uas]
    assert 50 < sum(hits) < len(uas) - 50


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=12),
       picks=st.lists(st.integers(-1, 11), max_size=40), as_bool=st.booleans())
def test_spread_is_a_take(values, picks, as_bool):
    """`encoding.spread` (sparse columns laid out by numpy) gives exactly what `take` gives."""
    import numpy as np

    from logtrack.enrich import encoding

    arr = pa.array([None if v is None else bool(len(v) % 2) for v in values], pa.bool_()) if as_bool \
        else pa.array(values, pa.string())
    ix = np.array([p if p < len(values) else -1 for p in picks], dtype=np.int64)
    indices = pa.array(ix, mask=ix < 0, type=pa.int32())
    got = encoding.spread(arr, indices)
    got.validate(full=True)
    assert got.to_pylist() == arr.take(indices).to_pylist()
    assert encoding.spread(arr, ix).to_pylist() == arr.take(indices).to_pylist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 6), st.integers(-1, 3)), max_size=30), st.booleans())
def test_pairs_numbers_each_distinct_pair(rows, wide):
    """`encoding.pairs`: every row's pair number points at its own (a, b) codes, one per pair."""
    import numpy as np

    from logtrack.enrich import encoding

    a = np.array([r[0] for r in rows], dtype=np.int64)
    b = np.array([r[1] for r in rows], dtype=np.int64)
    size_b = 10_000 if wide else 4  # a wide range takes the hash route
    pa_, pb, slot = encoding.pairs(a, 7, b, size_b)
    assert len(set(zip(pa_.tolist(), pb.tolist(), strict=True))) == len(pa_) == len(set(rows))
    assert [(pa_[s], pb[s]) for s in slot.tolist()] == rows


def test_pageview_rows_is_the_definition_by_hand():
    """2xx or 304, GET/HEAD, not a bot, not static — the rule sessions, rules and reports share."""
    import numpy as np

    from logtrack.enrich.static import pageview_rows

    status = np.array([199, 200, 299, 300, 304, 404, 0, 200, 200, 200])
    method_ok = np.array([True] * 8 + [False, True])
    bot = np.array([False] * 9 + [True])
    static_ = np.array([False] * 7 + [True, False, False])
    got = pageview_rows(status, method_ok, bot, static_)
    assert got.tolist() == [False, True, True, False, True, False, False, False, False, False]
    assert pageview_rows(np.array([200.0, np.nan]), np.array([True, True]), np.zeros(2, bool), np.zeros(2, bool)).tolist() == [True, False]


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=12),
       picks=st.lists(st.integers(-1, 11), max_size=40))
def test_sparse_rows_spread_is_a_take(values, picks):
    """`encoding.SparseRows` (one selection shared by several columns) gives what `take` gives."""
    import numpy as np

    from logtrack.enrich import encoding

    arr = pa.array(values, pa.string())
    ix = np.array([p if p < len(values) else -1 for p in picks], dtype=np.int64)
    rows = encoding.SparseRows(ix)
    for column in (arr, arr.slice(0, len(values))):
        got = rows.spread(column)
        got.validate(full=True)
        assert got.to_pylist() == arr.take(pa.array(ix, mask=ix < 0, type=pa.int32())).to_pylist()


@settings(max_examples=60, deadline=None)
@given(usual=st.lists(st.integers(-1, 50), min_size=1, max_size=60),
       odd=st.lists(st.tuples(st.integers(-1, 50), st.integers(-1, 9_999)), max_size=8), seed=st.integers(0, 99))
def test_pairs_of_mostly_one_b_per_a(usual, odd, seed):
    """The wide route numbers most rows by their a (each a with its one usual b) and sorts the
    few others: still one number per distinct pair, and each row's number points at its pair."""
    import random

    import numpy as np

    from logtrack.enrich import encoding

    rows = [(x, (x * 37) % 10_000 if x >= 0 else -1) for x in usual] * 3 + odd
    random.Random(seed).shuffle(rows)
    a = np.array([r[0] for r in rows], dtype=np.int64)
    b = np.array([r[1] for r in rows], dtype=np.int64)
    pa_, pb, slot = encoding.pairs(a, 51, b, 10_000)
    assert len(set(zip(pa_.tolist(), pb.tolist(), strict=True))) == len(pa_) == len(set(rows))
    assert [(pa_[s], pb[s]) for s in slot.tolist()] == rows
