"""Enrichment: append the ENRICHMENT columns of `schema.py` to a requests table (DESIGN §2).

`enrich(requests, EnrichConfig.from_config(config))` adds browser, browser_version, os, device,
is_bot, bot_name (useragent.py, bots.py: once per distinct user agent), is_static (static.py),
utm_*, click_id, referer_host, channel, language (traffic.py). `consent` stays null here;
`identity.identify` sets it.

Config section (all keys optional):

    enrich:
      static_extensions: [css, js, png]   # replaces the built-in list
      bots: ['MyMonitor/\\d']             # extra bot patterns (RE2, case-insensitive)
      not_bots: ['MyApp-Android']         # patterns that are real users despite the lists
      internal_hosts: [shop.example.com]  # referrers that count as internal besides the request host
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ..config import Config
from ..schema import ENRICHMENT, REQUESTS, conform
from . import bots, encoding, static, traffic, useragent

__all__ = ["EnrichConfig", "enrich"]

_KEYS = {"static_extensions", "bots", "not_bots", "internal_hosts"}


@dataclass(frozen=True)
class EnrichConfig:
    """What enrichment can be told (defaults need no config file)."""

    static_extensions: tuple[str, ...] = static.STATIC_EXTENSIONS
    extra_bots: tuple[str, ...] = ()
    not_bots: tuple[str, ...] = ()
    internal_hosts: tuple[str, ...] = ()
    parser: useragent.UAParser | None = field(default=None, compare=False, repr=False)
    # User agent results across batches; not an init argument, so `dataclasses.replace` (other
    # bot lists) starts a new one.
    cache: useragent.UACache = field(default_factory=useragent.UACache, init=False, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> EnrichConfig:
        """Read and validate the `enrich` section; problems raise ConfigError with file and line."""
        section = config.section("enrich", _KEYS)
        lists: dict[str, tuple[str, ...]] = {}
        for key in _KEYS:
            value = section.get(key)
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise config.error(("enrich", key), "must be a list of non-empty strings")
            lists[key] = tuple(value)
        for i, pattern in enumerate(lists.get("bots", ()) + lists.get("not_bots", ())):
            try:
                pc.match_substring_regex(pa.array([""]), pattern)
            except pa.ArrowInvalid as exc:
                key = "bots" if i < len(lists.get("bots", ())) else "not_bots"
                raise config.error(("enrich", key), f"invalid pattern {pattern!r}: {exc}") from exc
        return cls(
            static_extensions=tuple(e.lower().lstrip(".") for e in lists["static_extensions"])
            if "static_extensions" in lists else static.STATIC_EXTENSIONS,
            extra_bots=lists.get("bots", ()),
            not_bots=lists.get("not_bots", ()),
            internal_hosts=lists.get("internal_hosts", ()),
        )


def _column(table: pa.Table, name: str) -> pa.Array:
    return encoding.single(table.column(name))


_UA_COLUMNS = ("browser", "browser_version", "os", "device", "is_bot", "bot_name")


def _parse_new(strings: list[str], cfg: EnrichConfig) -> dict[str, pa.Array]:
    """The user agent columns of strings not seen before: parsed, then bot-checked in one pass."""
    arr = pa.array(strings, pa.string())
    parsed = useragent.parse_distinct(arr, cfg.parser)
    is_bot, bot_name = bots.detect_bots(arr, parsed["spider"], parsed["browser"], cfg.extra_bots, cfg.not_bots)
    device = pc.if_else(is_bot, pa.scalar("bot"), parsed["device"])
    cols = [parsed["browser"], parsed["browser_version"], parsed["os"], device, is_bot, bot_name]
    return {name: col.cast(ENRICHMENT.field(name).type) for name, col in zip(_UA_COLUMNS, cols, strict=True)}


def _user_agent_columns(user_agent: pa.Array, cfg: EnrichConfig) -> dict[str, pa.Array]:
    """The user agent columns per row: each distinct string is looked up in (or added to) the
    config's cache, the batch's rows of each column taken from it (a few hundred), and spread
    to the rows with the batch's dictionary indices: the per-row `take` then reads a small
    array that stays in cache, not the run-wide one."""
    agents = encoding.encode(user_agent)
    positions, columns = cfg.cache.rows(agents.dictionary.to_pylist(), lambda new: _parse_new(new, cfg))
    n = len(agents)
    out = {}
    for name in _UA_COLUMNS:  # rows without a user agent: null index, null value
        out[name] = (pc.take(pc.take(columns[name], positions), agents.indices) if columns
                     else pa.nulls(n, ENRICHMENT.field(name).type))
    out["device"] = pc.fill_null(out["device"], "other")
    out["is_bot"] = pc.fill_null(out["is_bot"], False)
    return out


def enrich(requests: pa.Table, cfg: EnrichConfig | None = None) -> pa.Table:
    """Append the ENRICHMENT columns to a requests table (other columns pass through unchanged).

    Columns of REQUESTS the table lacks are read as nulls; existing ENRICHMENT columns are
    recomputed. The result keeps the input's columns followed by ENRICHMENT's, in schema order.
    Every column is computed on the distinct values of what it depends on (user agents,
    paths, queries, referrers) and spread to the rows with `take`.
    """
    cfg = cfg or EnrichConfig()
    base = requests.drop_columns([c for c in ENRICHMENT.names if c in requests.column_names])
    req = conform(base, REQUESTS)
    n = req.num_rows
    out: dict[str, pa.Array] = _user_agent_columns(_column(req, "user_agent"), cfg)
    fields = _column(req, "fields")
    out["is_static"] = static.is_static(_column(req, "path"), fields, cfg.static_extensions)
    out.update(traffic.traffic_columns(_column(req, "query"), _column(req, "referer"), _column(req, "host"),
                                       cfg.internal_hosts))
    if "http_accept_language" in encoding.field_keys(fields):
        out["language"] = traffic.language(pc.map_lookup(fields, "http_accept_language", "first"))
    else:
        out["language"] = pa.nulls(n, pa.string())
    out["consent"] = pa.nulls(n, pa.string())
    columns = list(base.columns) + [out[name] for name in ENRICHMENT.names]
    return pa.Table.from_arrays(columns, schema=pa.schema(list(base.schema) + list(ENRICHMENT), base.schema.metadata))
