"""Bot detection over distinct user agents: crawler list, self-declared tools, ua-parser spiders.

`user_agents.is_bot` only knows ua-parser's "Spider" family; curl, python-requests, kube-probe or
ELB-HealthChecker are not bots to it (DESIGN §8). We combine three verdicts:

1. self-declared tools and monitors (our list below: HTTP libraries, probes, uptime monitors,
   headless browsers), whose matched token becomes `bot_name`;
2. the crawler list the `crawlerdetect` package maintains (1,400+ patterns), compiled once into
   one RE2 alternation (google-re2) and searched in each new distinct string (its own `re` loop
   costs about 180 µs per string); the Python matcher only runs on the few distinct strings that
   matched, to name the bot;
3. ua-parser's device family "Spider".

A short allow-list (`NOT_BOTS`: mobile-app HTTP stacks such as okhttp and CFNetwork, which carry
real users' API calls in server-side tracking) overrides 1 and 2; `EnrichConfig` can extend both.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import re2
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as _CRAWLERS
from crawlerdetect.providers.exclusions import data as _EXCLUSIONS

# Tokens of tools that say what they are. Matched case-insensitively as RE2 alternatives; the
# matched text is reported as bot_name. Keep each a plain token (no groups).
SELF_DECLARED = (
    r"curl", r"wget", r"python-requests", r"python-urllib", r"python-httpx", r"aiohttp",
    r"urllib3", r"go-http-client", r"kube-probe", r"elb-healthchecker", r"googlehc",
    r"googlestackdrivermonitoring", r"prometheus", r"blackbox[ -]exporter", r"datadog",
    r"newrelicpinger", r"pingdom", r"uptimerobot", r"statuscake", r"site24x7", r"zabbix",
    r"nagios", r"check_http", r"consul health check", r"hetrixtools", r"better ?uptime",
    r"headlesschrome", r"phantomjs", r"puppeteer", r"playwright", r"selenium", r"lighthouse",
    r"libwww-perl", r"apache-httpclient", r"java/", r"node-fetch", r"axios", r"undici",
    r"scrapy", r"httpie", r"postmanruntime", r"insomnia", r"guzzlehttp", r"faraday",
    r"powershell", r"winhttp", r"httpclient",
)

# Mobile-app networking stacks: real users in server-side tracking, although crawlerdetect lists
# some of them (okhttp).
NOT_BOTS = (r"okhttp", r"cfnetwork", r"dalvik", r"alamofire")

# crawlerdetect's one lookahead (RE2 has none): "Yandex(?!Search)". We drop "YandexSearch" with
# the exclusions first, then match "Yandex": the same verdict.
_LOOKAHEAD_FIXES = {"Yandex(?!Search)": "Yandex"}


def _alternation(patterns: tuple[str, ...] | list[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@lru_cache(maxsize=1)
def _crawler_patterns() -> tuple[str, str]:
    crawlers = [_LOOKAHEAD_FIXES.get(p, p) for p in _CRAWLERS]
    exclusions = list(_EXCLUSIONS) + ["YandexSearch"]
    return _alternation(crawlers), _alternation(exclusions)


@lru_cache(maxsize=1)
def _crawler_regexes() -> tuple[re2._Regexp, re2._Regexp]:
    # Compiled once per process: pyarrow compiles a pattern on every call, and for this
    # 1,400-way alternation that (with the lazy DFA it rebuilds) costs milliseconds per batch
    # that brings new user agents, while a search here costs microseconds per string.
    crawlers, exclusions = _crawler_patterns()
    return re2.compile("(?i)" + crawlers), re2.compile("(?i)" + exclusions)


def _is_crawler(ua: str | None) -> bool:
    if not ua:
        return False
    crawlers, exclusions = _crawler_regexes()
    if exclusions.search(ua):  # `sub` is slow in the binding: only when there is something to drop
        ua = exclusions.sub("", ua)
    return crawlers.search(ua) is not None


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()


def _token_regex(tokens: tuple[str, ...]) -> str:
    return r"(?i)(?P<bot>" + "|".join(tokens) + ")"


def detect_bots(
    distinct: pa.Array,
    spider: pa.Array,
    browser: pa.Array,
    extra_bots: tuple[str, ...] = (),
    not_bots: tuple[str, ...] = (),
) -> tuple[pa.Array, pa.Array]:
    """(is_bot, bot_name) for each distinct user agent, aligned with `distinct`.

    `spider` and `browser` come from `useragent.parse_distinct` on the same strings.
    `extra_bots` / `not_bots` are extra RE2 patterns (case-insensitive) from the config.
    """
    n = len(distinct)
    if n == 0:
        return pa.array([], pa.bool_()), pa.array([], pa.string())
    ua = distinct.cast(pa.string())
    # 1. Self-declared tools: the matched token names the bot.
    declared = pc.struct_field(pc.extract_regex(ua, _token_regex(SELF_DECLARED)), [0])
    # 2. crawlerdetect's list (RE2, compiled once) on the distinct strings.
    strings = ua.to_pylist()
    crawler = pa.array([_is_crawler(s) for s in strings], pa.bool_())
    # 3. ua-parser spiders.
    spider = pc.fill_null(spider, False)
    extra = (pc.fill_null(pc.match_substring_regex(ua, _alternation(tuple(extra_bots)), ignore_case=True),
                          False) if extra_bots else pa.repeat(False, n))
    is_bot = pc.or_(pc.or_(pc.is_valid(declared), crawler), spider)
    allow = pc.fill_null(pc.match_substring_regex(ua, _alternation(NOT_BOTS + tuple(not_bots)),
                                                  ignore_case=True), False)
    # The config's own bots win over the allow-list; the built-in lists do not.
    is_bot = pc.or_(pc.and_(is_bot, pc.invert(allow)), extra)
    names = declared.to_pylist()
    crawler_list = crawler.to_pylist()
    extra_list = extra.to_pylist()
    bot_list = is_bot.to_pylist()
    browsers = browser.to_pylist()
    for i in range(n):  # per distinct bot string only
        if not bot_list[i]:
            names[i] = None
        elif names[i] is None:
            name = _crawler_name(strings[i]) if crawler_list[i] else None
            if name is None and extra_list[i]:
                name = _pattern_name(strings[i], extra_bots)
            names[i] = name or browsers[i] or "bot"
    return is_bot, pa.array(names, pa.string())


def _pattern_name(ua: str, patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        found = re.search(pattern, ua, re.IGNORECASE)
        if found:
            return found.group(0)
    return None


def _crawler_name(ua: str) -> str | None:
    detector = _crawler_detect()
    if detector.is_crawler(ua):
        name = detector.get_matches()
        return re.sub(r"[/\s;:(]+$", "", name) if name else None
    return None
