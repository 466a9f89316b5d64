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
from . import bots, static, traffic, useragent

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
    cache: useragent.UACache = field(default_factory=useragent.UACache, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> EnrichConfig:
        """Read and validate the `enrich` section; problems raise ConfigError with file and line."""
        section = config.section("enrich")
        for key in section:
            if key not in _KEYS:
                raise config.error(("enrich", key), f"unknown key {key!r} (known: {', '.join(sorted(_KEYS))})")
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
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks else pa.array([], col.type)


_UA_COLUMNS = ("browser", "browser_version", "os", "device", "is_bot", "bot_name")


def _user_agent_columns(distinct: pa.Array, cfg: EnrichConfig) -> dict[str, pa.Array]:
    """The user agent columns for each distinct string; new strings are parsed and bot-checked
    (in one vectorized pass), known ones come from the config's cache."""
    strings = distinct.to_pylist()
    new = cfg.cache.missing(strings)
    if new:
        arr = pa.array(new, pa.string())
        parsed = useragent.parse_distinct(arr, cfg.parser)
        is_bot, bot_name = bots.detect_bots(arr, parsed["spider"], parsed["browser"], cfg.extra_bots, cfg.not_bots)
        device = pc.if_else(is_bot, pa.scalar("bot"), parsed["device"])
        cols = [parsed["browser"], parsed["browser_version"], parsed["os"], device, is_bot, bot_name]
        cfg.cache.add(new, list(zip(*(c.to_pylist() for c in cols), strict=True)))
    rows = cfg.cache.rows
    found = [rows.get(s) for s in strings]
    if any(r is None for r in found):  # evicted while adding: parse without the cache
        return _user_agent_columns(distinct, EnrichConfig(cfg.static_extensions, cfg.extra_bots, cfg.not_bots,
                                                          cfg.internal_hosts, cfg.parser,
                                                          useragent.UACache(len(strings) + 1)))
    columns = list(zip(*found, strict=True)) if found else [()] * len(_UA_COLUMNS)
    return {name: pa.array(list(values), ENRICHMENT.field(name).type)
            for name, values in zip(_UA_COLUMNS, columns, strict=True)}


def enrich(requests: pa.Table, cfg: EnrichConfig | None = None) -> pa.Table:
    """Append the ENRICHMENT columns to a requests table (other columns pass through unchanged).

    Columns of REQUESTS the table lacks are read as nulls; existing ENRICHMENT columns are
    recomputed. The result keeps the input's columns followed by ENRICHMENT's, in schema order.
    """
    cfg = cfg or EnrichConfig()
    base = requests.drop_columns([c for c in ENRICHMENT.names if c in requests.column_names])
    req = conform(base, REQUESTS)
    n = req.num_rows
    out: dict[str, pa.Array] = {}

    # User agents: per distinct string (the dictionary), then `take` per row.
    distinct, indices = useragent.distinct_user_agents(_column(req, "user_agent"))
    for name, values in _user_agent_columns(distinct, cfg).items():
        out[name] = pc.take(values, indices)
    out["device"] = pc.fill_null(out["device"], "other")
    out["is_bot"] = pc.fill_null(out["is_bot"], False)

    path, fields, query = _column(req, "path"), _column(req, "fields"), _column(req, "query")
    out["is_static"] = static.is_static(path, fields, cfg.static_extensions)

    utm = traffic.query_params(query, traffic.UTM_PARAMS)
    out.update(utm)
    out["click_id"], click_kind = traffic.click_ids(query)
    out["referer_host"] = traffic.referer_host(_column(req, "referer"))
    out["channel"] = traffic.channel(utm, click_kind, out["referer_host"], _column(req, "host"),
                                     cfg.internal_hosts)
    if n and fields.null_count < n:
        out["language"] = traffic.language(pc.map_lookup(fields, "http_accept_language", "first"))
    else:
        out["language"] = pa.nulls(n, pa.string())

    extra = conform(pa.table(out), ENRICHMENT)
    result = base
    for name in ENRICHMENT.names:
        result = result.append_column(ENRICHMENT.field(name), extra.column(name))
    return result
