"""User agent → browser, browser version, OS, device class; each distinct string parsed once.

Why not `user_agents.parse`: it calls ua-parser's legacy API, which scans plain `re` patterns at
about 420 µs per string and keeps a 200-entry cache that is cleared when full (DESIGN §8). We keep
`user-agents`' device-class rules (`is_tablet`, `is_mobile`, `is_pc`: the knowledge worth
keeping) but feed its `UserAgent` class from ua-parser 1.x's best resolver (ua-parser-rs when
installed, else re2, else the pure-Python matcher), called directly without ua-parser's own cache:
we parse each distinct string once per batch (dictionary-encode, parse the dictionary, `take`),
and `UACache` (held by `EnrichConfig`) remembers the results across batches.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import NamedTuple

import pyarrow as pa
import ua_parser
from ua_parser import Domain


def _defer_legacy_api() -> None:
    """Load ua-parser's legacy module on first use instead of at import.

    `user_agents.parsers` imports it at the top, and importing it compiles its 1,000+ patterns
    with Python's `re` (about 0.1 CPU-s), although we never call it (we only borrow
    `user_agents`' device rules, fed from ua-parser 1.x below). A lazy module keeps
    `user_agents.parse` working for whoever calls it: the module loads then.
    """
    name = "ua_parser.user_agent_parser"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    # Also as the package attribute: `from ua_parser import user_agent_parser` then finds it
    # there, where the import system would otherwise read its `__spec__` (which loads it).
    ua_parser.user_agent_parser = module  # type: ignore[attr-defined]


_defer_legacy_api()

from user_agents.parsers import (  # noqa: E402 - after the legacy module is made lazy
    UserAgent,
    parse_browser,
    parse_device,
    parse_operating_system,
)

# Strings servers log for "no user agent".
EMPTY_UA = ("", "-")
_CACHE_LIMIT = 200_000


class ParsedUA(NamedTuple):
    """What enrichment keeps of one user agent string."""

    browser: str | None
    browser_version: str | None
    os: str | None
    device: str  # desktop | mobile | tablet | other (bots are decided in bots.py)
    spider: bool  # ua-parser's own verdict (device family "Spider")


class _ResolvedUserAgent(UserAgent):
    """`user_agents.UserAgent` built from a ua-parser 1.x result instead of its legacy API.

    Only `__init__` differs; every rule (`is_tablet`, `is_mobile`, `is_pc`, `is_bot`) is inherited
    unchanged, so device classes match `user_agents.parse` (tests/test_enrich.py checks that).
    """

    def __init__(self, ua_string: str, result: ua_parser.PartialResult) -> None:
        # Deliberately no super().__init__(): it would parse again with the legacy API.
        self.ua_string = ua_string
        # A failed lookup is None in 1.x; the legacy API said "Other" (what the rules expect).
        ua = result.user_agent or ua_parser.UserAgent()
        os_ = result.os or ua_parser.OS()
        dev = result.device or ua_parser.Device()
        self.browser = parse_browser(ua.family, ua.major, ua.minor, ua.patch)
        self.os = parse_operating_system(os_.family, os_.major, os_.minor, os_.patch, os_.patch_minor)
        self.device = parse_device(dev.family, dev.brand, dev.model)


class UAParser:
    """Parse user agents with ua-parser 1.x's fastest resolver (no cache: see UACache)."""

    def __init__(self) -> None:
        """Build the resolver (ua-parser-rs, re2 or basic, whichever is installed)."""
        if ua_parser.BestAvailableResolver is ua_parser.BasicResolver:
            matchers = ua_parser.load_builtins()
        else:
            matchers = ua_parser.load_lazy_builtins()
        self._resolve = ua_parser.BestAvailableResolver(matchers)
        self.resolver_name = f"{type(self._resolve).__module__}.{type(self._resolve).__name__}"

    def parse_one(self, ua: str) -> ParsedUA:
        """Parse one user agent string (no cache)."""
        result = self._resolve(ua, Domain.ALL)
        agent = _ResolvedUserAgent(ua, result)
        if agent.is_tablet:
            device = "tablet"
        elif agent.is_mobile:
            device = "mobile"
        elif agent.is_pc:
            device = "desktop"
        else:
            device = "other"
        return ParsedUA(
            browser=agent.browser.family,
            browser_version=agent.browser.version_string or None,
            os=agent.os.family,
            device=device,
            spider=agent.is_bot,
        )

    def parse_many(self, distinct: list[str | None]) -> list[ParsedUA | None]:
        """Parse a list of distinct strings (None, empty and "-" give None)."""
        # One iteration per distinct string, never per row.
        return [None if ua is None or ua.strip() in EMPTY_UA else self.parse_one(ua) for ua in distinct]


class UACache:
    """Enrichment columns per user agent string, kept across batches, bounded.

    Results live in Arrow arrays (one per column) with a position per string, so a batch turns
    its distinct strings into positions (a dict lookup each) and `take`s every column at once,
    without building Python values per batch. When full, everything but the current batch's
    strings is dropped.
    """

    def __init__(self, limit: int = _CACHE_LIMIT) -> None:
        """An empty cache holding at most `limit` strings."""
        self.positions: dict[str, int] = {}
        self.columns: dict[str, pa.Array] = {}
        self.limit = limit
        self._lock = threading.Lock()

    def rows(self, strings: list[str], compute: Callable[[list[str]], dict[str, pa.Array]]
             ) -> tuple[pa.Array, dict[str, pa.Array]]:
        """(position of each of the distinct `strings`, the cached columns), computing the
        columns of unknown strings with `compute(new strings) -> {column: array}`."""
        with self._lock:
            get = self.positions.get
            found = [get(s) for s in strings]
            new = [s for s, p in zip(strings, found, strict=True) if p is None]
            if new:
                if len(self.positions) + len(new) > self.limit:
                    self._keep([s for s, p in zip(strings, found, strict=True) if p is not None])
                self._append(new, compute(new))
                found = [self.positions[s] for s in strings]
            return pa.array(found, pa.int32()), self.columns

    def _keep(self, strings: list[str]) -> None:
        where = pa.array([self.positions[s] for s in strings], pa.int32())
        self.columns = {name: col.take(where) for name, col in self.columns.items()}
        self.positions = {s: i for i, s in enumerate(strings)}

    def _append(self, strings: list[str], columns: dict[str, pa.Array]) -> None:
        start = len(self.positions)
        self.positions.update((s, start + i) for i, s in enumerate(strings))
        if not self.columns:
            self.columns = dict(columns)
        else:
            self.columns = {name: pa.concat_arrays([col, columns[name]]) for name, col in self.columns.items()}


_default: UAParser | None = None
_default_lock = threading.Lock()


def default_parser() -> UAParser:
    """The process-wide parser (built lazily: loading the matchers takes a moment)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = UAParser()
        return _default


def parse_distinct(distinct: pa.Array, parser: UAParser | None = None) -> dict[str, pa.Array]:
    """Parse each distinct user agent once: arrays aligned with `distinct`.

    Keys: browser, browser_version, os, device, spider. Empty or "-" user agents give nulls,
    device "other", spider False.
    """
    parsed = (parser or default_parser()).parse_many(distinct.to_pylist())
    return {
        "browser": pa.array([p.browser if p else None for p in parsed], pa.string()),
        "browser_version": pa.array([p.browser_version if p else None for p in parsed], pa.string()),
        "os": pa.array([p.os if p else None for p in parsed], pa.string()),
        "device": pa.array([p.device if p else "other" for p in parsed], pa.string()),
        "spider": pa.array([bool(p and p.spider) for p in parsed], pa.bool_()),
    }
