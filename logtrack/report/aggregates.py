"""Aggregate reports over the whole dataset in DIR (DESIGN §6): `build_reports`.

Reports aggregate every run's parts, so a dataset built by several runs (other files of the same
days, other days) reports as one. Memory stays bounded: reports are streaming scans of the few
columns they need (`scan.py`). The requests are scanned once (plus a scan of request times when
the log has them): grouped by (date, hour, status) in Acero — the hourly, status and daily
figures are rolled up from that small table — while the same batches feed the pre-aggregates of
pages, user agents, errors, client addresses, bots and page visitors (`groups.py`). The sessions
are scanned once for all their reports (`dimensions.py`), the events and rejects once each.
Schemas and definitions: `specs.py` (`REPORT_SCHEMAS`, `REPORT_DESCRIPTIONS`).
"""

from __future__ import annotations

import os
import uuid
import zoneinfo
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import UsageError
from .dimensions import events_by_day, rejects_by_reason, session_reports
from .groups import Grouping
from .scan import (
    DISTINCT,
    PAGEVIEW_INPUTS,
    Partials,
    PathGrouper,
    PathMemo,
    aggregate,
    as_int,
    count_rows,
    dictionary_of,
    flag,
    local_date,
    local_hour,
    page_memo,
    pageviews,
    ratio,
    regroup,
    scan,
    tally,
    top,
    zero_fill,
)
from .specs import REPORT_DESCRIPTIONS, REPORT_SCHEMAS, finish

__all__ = ["build_reports", "REPORT_DESCRIPTIONS", "REPORT_SCHEMAS"]

F = pc.field
S = pa.string()
# (page, visitor) pairs the traffic scan may hold to count each page's visitors (~100 bytes each);
# a site with a longer tail gets a second scan restricted to the ranked pages.
PAGE_VISITOR_PAIRS = 2_000_000
COUNTS = ["requests", "pageviews", "bot_requests", "client_errors", "server_errors", "bytes_sent",
          "client_ips", "sessions", "visitors", "users", "engaged_sessions", "events"]


def _traffic(out_dir: Path, timezone: str, grouper: PathGrouper | None) -> tuple[pa.Table, dict[str, pa.Table], dict[str, Grouping | None]]:
    """Requests, pageviews, bot requests and bytes by (date, hour, status): the one full scan.

    The same scan tallies what other reports would each scan the requests for: pageviews per
    page (or path template) for `top_pages`, requests per user agent, 404s per path and 5xx per
    (path, status) — once per distinct value of a batch (`tally`), merged in `Partials` — and
    feeds the groupings with distinct counts (`Grouping`): client addresses per day (and over
    all), bots by name, and the visitors of each page while their (page, visitor) pairs stay
    under PAGE_VISITOR_PAIRS (beyond, `top_pages` counts them in a second scan of ranked pages).
    """
    strings = ["path", "user_agent", "client_ip", "bot_name", "anonymous_id"]
    cols = {"date": local_date("ts", timezone), "hour": local_hour("ts", timezone), "status": F("status"),
            "bot": as_int(flag("is_bot")), "bytes_sent": F("bytes_sent"), "ts": F("ts"),
            **{c: F(c) for c in strings}, **{c: F(c) for c in PAGEVIEW_INPUTS if c not in ("status", "path")}}
    ts_type = pa.timestamp("us", tz="UTC")
    partials = {
        "pages": Partials(pa.schema([("path", pa.string()), ("n", pa.int64())]), ["path"]),
        "agents": Partials(pa.schema([("user_agent", pa.string()), ("n", pa.int64()), ("bot", pa.bool_())]),
                           ["user_agent"], {"bot": "max"}),
        "not_found": Partials(pa.schema([("path", pa.string()), ("n", pa.int64()), ("bot", pa.int64()),
                                         ("ts", ts_type)]), ["path"], {"bot": "sum", "ts": "max"}),
        "server": Partials(pa.schema([("path", pa.string()), ("status", pa.int16()), ("n", pa.int64()),
                                      ("ts", ts_type)]), ["path", "status"], {"ts": "max"}),
    }
    # Requests are many batches, each with most of the client addresses and visitors again:
    # their strings are gathered per batch (dictionary indices) rather than numbered in Python.
    groups: dict[str, Grouping | None] = {
        "ips": Grouping({"date": pa.date32()}, {"client_ip": S}),
        "bots": Grouping({"bot_name": S}, {"client_ip": S}, {"first_seen": ("ts", "min"), "last_seen": ("ts", "max")}),
        "page_visitors": Grouping({"path": S}, {"anonymous_id": S}),
    }

    page_paths = page_memo()

    def with_pageviews(batch: pa.RecordBatch) -> pa.RecordBatch:
        pv = pageviews(batch, page_paths)
        pages = batch.column("path").filter(pv)
        if grouper is not None:
            pages = regroup(pages, grouper)
        visitors = groups["page_visitors"]
        if visitors is None:
            partials["pages"].add(tally(pages, "path"))
        else:
            # Its row counts are the pageviews per page: no tally while it lasts.
            visitors.add({"path": pages, "anonymous_id": batch.column("anonymous_id").filter(pv)})
            if visitors.rows > PAGE_VISITOR_PAIRS:
                # Too many pairs to hold: pageviews tallied from here on (starting from its
                # counts), visitors counted by a second scan of the ranked pages.
                partials["pages"].add(visitors.result().select(["path", "n"]).combine_chunks().to_batches()[0])
                groups["page_visitors"] = None
        bot = batch.column("bot")
        partials["agents"].add(tally(batch.column("user_agent"), "user_agent",
                                     {"bot": (pc.cast(bot, pa.bool_()), "max")}))
        ip = batch.column("client_ip")
        groups["ips"].add({"date": batch.column("date"), "client_ip": ip})  # type: ignore[union-attr]
        is_bot = pc.cast(bot, pa.bool_())
        if pc.any(is_bot).as_py():
            groups["bots"].add({  # type: ignore[union-attr]
                "bot_name": batch.column("bot_name").filter(is_bot),
                "client_ip": ip.filter(is_bot), "ts": batch.column("ts").filter(is_bot)})
        status = batch.column("status")
        for name, rows in (("not_found", pc.equal(status, 404)),
                           ("server", pc.and_(pc.greater_equal(status, 500), pc.less(status, 600)))):
            rows = pc.fill_null(rows, False)
            if not pc.any(rows).as_py():
                continue
            some = batch.filter(rows)
            if name == "not_found":
                partials[name].add(tally(some.column("path"), "path", {"bot": (some.column("bot"), "sum"),
                                                                       "ts": (some.column("ts"), "max")}))
            else:  # few rows: added as they are, one row each
                path = some.column("path")
                path = path.cast(pa.string()) if isinstance(path, pa.DictionaryArray) else path
                partials[name].add(pa.RecordBatch.from_arrays(
                    [path, some.column("status"), pa.array(np.ones(some.num_rows, dtype=np.int64)),
                     some.column("ts")], ["path", "status", "n", "ts"]))
        keep = ["date", "hour", "status", "bot", "bytes_sent", "ts"]
        return pa.RecordBatch.from_arrays([batch.column(c) for c in keep] + [pv.cast(pa.int64())], keep + ["pv"])

    aggs = [count_rows("requests"), ("pv", "sum", None, "pageviews"), ("bot", "sum", None, "bot_requests"),
            ("bytes_sent", "sum", None, "bytes_sent"), ("ts", "min", None, "first_ts"), ("ts", "max", None, "last_ts")]
    table = aggregate(scan(out_dir, "requests", cols, transform=with_pageviews, dictionary=strings),
                      aggs, keys=["date", "hour", "status"])
    status = table["status"]
    is_4xx = pc.and_kleene(pc.greater_equal(status, 400), pc.less(status, 500))
    is_5xx = pc.and_kleene(pc.greater_equal(status, 500), pc.less(status, 600))
    zero = pa.scalar(0, pa.int64())
    table = table.append_column("client_errors", pc.if_else(pc.fill_null(is_4xx, False), table["requests"], zero))
    table = table.append_column("server_errors", pc.if_else(pc.fill_null(is_5xx, False), table["requests"], zero))
    tallied = {name: p.result() for name, p in partials.items()}
    if groups["page_visitors"] is not None:
        tallied["pages"] = groups["page_visitors"].result().select(["path", "n"])
    tallied["pages"] = tallied["pages"].rename_columns(["path", "pageviews"])
    tallied["agents"] = tallied["agents"].rename_columns(["user_agent", "requests", "is_bot"])
    tallied["not_found"] = tallied["not_found"].rename_columns(["path", "requests", "bot_requests", "last_seen"])
    tallied["server"] = tallied["server"].rename_columns(["path", "status", "requests", "last_seen"])
    return table, tallied, groups


def _rollup(table: pa.Table, keys: list[str], columns: list[str]) -> pa.Table:
    """Sum `columns` of a finer group-by over `keys` (names kept)."""
    out = table.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in columns])
    return out.rename_columns([n.removesuffix("_sum") for n in out.column_names])


def _request_daily(out_dir: Path, traffic: pa.Table, ips: Grouping, timezone: str) -> pa.Table:
    """Per date: the traffic roll-up, distinct client IPs and request-time percentiles."""
    daily = _rollup(traffic, ["date"], ["requests", "pageviews", "bot_requests", "bytes_sent",
                                        "client_errors", "server_errors"])
    daily = daily.join(ips.result().select(["date", "client_ip"]).rename_columns(["date", "client_ips"]), "date",
                       join_type="full outer")
    # Only rows with a request time feed the digests: logs without one (combined) cost no more
    # than reading an all-null column; a date without any keeps null percentiles.
    cols = {"date": local_date("ts", timezone), "ms": F("request_time_ms")}
    digest = pc.TDigestOptions(q=[0.5, 0.95], skip_nulls=True)
    extra = aggregate(scan(out_dir, "requests", cols, where=F("request_time_ms").is_valid()),
                      [("ms", "tdigest", digest, "q")], keys=["date"])
    q = extra["q"]
    extra = extra.drop_columns(["q"])
    for i, name in enumerate(["p50_request_time_ms", "p95_request_time_ms"]):
        values = pc.list_element(q, i)
        extra = extra.append_column(name, pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values))
    return daily.join(extra, "date", join_type="full outer")


def daily_kpis(out_dir: Path, traffic: pa.Table, ips: Grouping, sessions: pa.Table, events: pa.Table,
               timezone: str) -> pa.Table:
    """One row per local date joining request, session and event figures."""
    table = _request_daily(out_dir, traffic, ips, timezone)
    table = table.join(sessions, "date", join_type="full outer")
    table = table.join(_rollup(events.select(["date", "events"]), ["date"], ["events"]), "date",
                       join_type="full outer")
    table = zero_fill(table, COUNTS)
    errors = pc.add(table["client_errors"], table["server_errors"])
    table = table.append_column("bot_share", ratio(table["bot_requests"], table["requests"]))
    table = table.append_column("error_rate", ratio(errors, table["requests"]))
    return finish("daily_kpis", table.sort_by("date"))


def top_pages(out_dir: Path, counts: pa.Table, visitors: Grouping | None, grouper: PathGrouper | None,
              limit: int | None) -> pa.Table:
    """Pageviews and visitors per page (or per path template), ranked.

    `counts` (pageviews per page) and, unless there were too many (page, visitor) pairs to hold,
    `visitors` come from the traffic scan; otherwise one more scan counts distinct visitors for
    the ranked pages only. Pages are matched to the ranking once per distinct path of a batch and
    grouped by their rank, an integer, not by the path string.
    """
    total = pc.sum(counts["pageviews"]).as_py() or 0
    ranked = top(counts, "pageviews", ["path"], limit)
    keep = ranked["path"].combine_chunks()
    if visitors is not None:
        found = visitors.result()
        at = pc.index_in(keep, value_set=found["path"].combine_chunks(), skip_nulls=True)
        by_rank = pc.fill_null(found["anonymous_id"].combine_chunks().take(at), 0)
    else:
        by_rank = pa.array(_visitors_by_rank(out_dir, keep, grouper))
    table = ranked.append_column("visitors", by_rank)
    table = table.append_column("share", ratio(table["pageviews"], pa.array([total] * table.num_rows, pa.int64())))
    return finish("top_pages", table)


def _visitors_by_rank(out_dir: Path, keep: pa.Array, grouper: PathGrouper | None) -> np.ndarray:
    """Distinct visitors of each ranked page (`keep`, in rank order), by a scan of the pageviews."""

    pages = page_memo()

    def ranked_only(batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = batch.filter(pageviews(batch, pages))
        encoded = dictionary_of(batch.column("path"))
        words = encoded.dictionary if grouper is None else pa.array(grouper(encoded.dictionary)).cast(pa.string())
        rank = pc.index_in(words, value_set=keep, skip_nulls=True).take(encoded.indices)
        return pa.RecordBatch.from_arrays([rank, batch.column("anonymous_id")], ["rank", "anonymous_id"]) \
            .filter(rank.is_valid())

    cols = {**{c: F(c) for c in PAGEVIEW_INPUTS}, "anonymous_id": F("anonymous_id")}
    reader = scan(out_dir, "requests", cols, transform=ranked_only, dictionary=["path"])
    visitors = aggregate(reader, [("anonymous_id", "count_distinct", DISTINCT, "visitors")], keys=["rank"])
    by_rank = np.zeros(len(keep), dtype=np.int64)
    by_rank[visitors["rank"].to_numpy()] = visitors["visitors"].to_numpy()
    return by_rank


def request_reports(tallied: dict[str, pa.Table], bots: Grouping, limit: int | None) -> dict[str, pa.Table]:
    """bots_by_name, not_found_paths, server_error_paths and user_agents (from the traffic scan)."""
    bots_table = bots.result("requests", {"client_ip": "client_ips"})
    return {
        "bots_by_name": finish("bots_by_name", top(bots_table, "requests", ["bot_name"], limit)),
        "not_found_paths": finish("not_found_paths", top(tallied["not_found"], "requests", ["path"], limit)),
        "server_error_paths": finish("server_error_paths",
                                     top(tallied["server"], "requests", ["path", "status"], limit)),
        "user_agents": finish("user_agents", top(tallied["agents"], "requests", ["user_agent"], limit)),
    }


def _totals(traffic: pa.Table, ips: Grouping, sessions: dict[str, object], events: pa.Table,
            rejects: pa.Table) -> pa.Table:
    """The one-row `totals` report."""
    sums = {c: pc.sum(traffic[c]).as_py() or 0
            for c in ("requests", "pageviews", "bot_requests", "client_errors", "server_errors")}
    row = {
        "client_ips": ips.distinct_total("client_ip"),
        "first_ts": pc.min(traffic["first_ts"]).as_py(),
        "last_ts": pc.max(traffic["last_ts"]).as_py(),
        **sums,
        "days": len(pc.unique(traffic["date"])),
        "bot_share": sums["bot_requests"] / sums["requests"] if sums["requests"] else None,
        "error_rate": (sums["client_errors"] + sums["server_errors"]) / sums["requests"] if sums["requests"] else None,
        **sessions,
        "events": pc.sum(events["events"]).as_py() or 0,
        "rejects": pc.sum(rejects["rejects"]).as_py() or 0,
    }
    return finish("totals", pa.Table.from_pylist([row]))


def build_reports(out_dir: Path, path_grouper: PathGrouper | None = None, timezone: str = "UTC", *,
                  limit: int | None = 1000, write: bool = True) -> dict[str, pa.Table]:
    """Aggregate every dataset in `out_dir` into the reports of `REPORT_SCHEMAS`.

    `path_grouper` maps an array of concrete paths to path templates (`/products/{product_id}`);
    it groups top, entry and exit pages. Ranked reports keep their first `limit` rows (None:
    all). With `write`, each report is also written (atomically) to `out_dir/reports/<name>.parquet`.
    Returns the reports by name, every name present (empty tables when there is no data).
    """
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise UsageError(f"unknown time zone {timezone!r}") from e
    out_dir = Path(out_dir)
    grouper = PathMemo(path_grouper) if path_grouper is not None else None
    traffic, tallied, groups = _traffic(out_dir, timezone, grouper)
    ips, bots = groups["ips"], groups["bots"]
    assert ips is not None and bots is not None
    dimensions, sessions_by_day, session_totals = session_reports(out_dir, timezone, grouper, limit)
    events = events_by_day(out_dir, timezone)
    rejects = rejects_by_reason(out_dir)
    reports: dict[str, pa.Table] = {
        "daily_kpis": daily_kpis(out_dir, traffic, ips, sessions_by_day, events, timezone),
        "totals": _totals(traffic, ips, session_totals, events, rejects),
        "top_pages": top_pages(out_dir, tallied["pages"], groups["page_visitors"], grouper, limit),
        **dimensions,
        "status_codes_by_day": finish("status_codes_by_day", _rollup(traffic, ["date", "status"], ["requests"])
                                      .sort_by([("date", "ascending"), ("status", "ascending")])),
        **request_reports(tallied, bots, limit),
        "events_by_day": events,
        "hourly_traffic": finish("hourly_traffic", _rollup(traffic, ["date", "hour"],
                                                           ["requests", "pageviews", "bot_requests"])
                                 .sort_by([("date", "ascending"), ("hour", "ascending")])),
        "rejects_by_reason": rejects,
    }
    reports = {name: reports[name] for name in REPORT_SCHEMAS}
    if write:
        write_reports(out_dir, reports)
    return reports


def write_reports(out_dir: Path, reports: dict[str, pa.Table]) -> list[Path]:
    """Write each report to `out_dir/reports/<name>.parquet`, atomically (aside, then rename)."""
    folder = Path(out_dir) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in reports.items():
        path = folder / f"{name}.parquet"
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        paths.append(path)
    return paths
