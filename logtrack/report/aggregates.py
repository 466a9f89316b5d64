"""Aggregate reports over the whole dataset in DIR (DESIGN §6): `build_reports`.

Reports aggregate every run's parts, so a dataset built by several runs (other files of the same
days, other days) reports as one. Memory stays bounded: reports are streaming reads of the few
columns they need (`scan.chunks`). The requests are read once (plus a read of request times when
the log has them): grouped by (date, hour, status) — the hourly, status and daily figures are
rolled up from that small table — while the same chunks feed the pre-aggregates of pages, user
agents, errors, client addresses, bots and page visitors (`groups.py`). The sessions are read
once for all their reports (`dimensions.py`), the events and rejects once each.
Schemas and definitions: `specs.py` (`REPORT_SCHEMAS`, `REPORT_DESCRIPTIONS`).
"""

from __future__ import annotations

import os
import uuid
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..enrich.static import is_page_path
from ..errors import UsageError
from .dataset import KIND_SCHEMAS
from .dense import Columns, ints, slots
from .dimensions import events_by_day, rejects_by_reason, session_reports
from .groups import CODE, Codebook, Grouping, Interner
from .scan import (
    DAY_US,
    PAGEVIEW_INPUTS,
    TRAFFIC,
    Partials,
    PathGrouper,
    agent_tally,
    aggregate,
    chunks,
    hourly,
    local_dates,
    local_micros,
    pageview_flags,
    ratio,
    tally,
    top,
    zero_fill,
)
from .specs import REPORT_DESCRIPTIONS, REPORT_SCHEMAS, finish

__all__ = ["build_reports", "REPORT_DESCRIPTIONS", "REPORT_SCHEMAS"]

S = pa.string()
# (page, visitor) pairs the traffic scan may hold to count each page's visitors (~100 bytes each);
# a site with a longer tail gets a second scan restricted to the ranked pages.
PAGE_VISITOR_PAIRS = 2_000_000
COUNTS = ["requests", "pageviews", "bot_requests", "client_errors", "server_errors", "bytes_sent",
          "client_ips", "sessions", "visitors", "users", "engaged_sessions", "events"]


class _Paths:
    """The paths of a scan, numbered, with what the reports need of a path computed once per
    distinct path: whether it is page-like and (with a grouper) its template's number.

    The numbers live in a `Codebook` (`book`): the session scan numbers its landing and exit
    pages in the same one, so a path seen in the requests is neither hashed among new strings
    nor grouped again there."""

    def __init__(self, grouper: PathGrouper | None) -> None:
        self.codebook = Codebook(grouper)
        self.book = self.codebook.words  # numbers of the page keys (templates with a grouper)
        self.is_page = np.zeros(1, bool)  # by path slot (0: null, not a page)

    def encode(self, paths: pa.DictionaryArray) -> np.ndarray:
        """The slot of every path (its number + 1, 0 for null)."""
        found = self.codebook.raw_slots(paths.dictionary)
        seen = self.codebook.seen
        if len(seen) >= len(self.is_page):  # paths new to the book (whoever numbered them)
            new = seen.known.slice(len(self.is_page) - 1)
            self.is_page = np.concatenate([self.is_page, is_page_path(new).to_numpy(zero_copy_only=False)])
        return np.concatenate([[0], found])[slots(paths.indices)]

    def keys(self, path_slots: np.ndarray) -> np.ndarray:
        """The page key slot (the path's, or its template's) of every path slot."""
        return self.codebook.mapped_of(path_slots)


def _traffic(out_dir: Path, timezone: str, paths: _Paths, visitors: Interner
             ) -> tuple[pa.Table, dict[str, pa.Table], dict[str, Grouping | None], tuple[int, int] | None]:
    """Requests, pageviews, bot requests and bytes by (date, hour, status): the one full scan.

    The same scan tallies what other reports would each scan the requests for: pageviews per
    page (or path template) for `top_pages`, requests per user agent, 404s per path and 5xx per
    (path, status) — once per distinct value of a chunk (`tally`), merged in `Partials` — and
    feeds the groupings with distinct counts (`Grouping`): client addresses per day (and over
    all), bots by name, and the visitors of each page while their (page, visitor) pairs stay
    under PAGE_VISITOR_PAIRS (beyond, `top_pages` counts them in a second scan of ranked pages).
    Strings are numbered once per distinct value of a chunk (`Interner`), shared by the
    groupings that need them; everything per row runs in numpy on those numbers. Also returns
    the first and last request time (µs), None without requests.
    """
    strings = ["path", "user_agent", "client_ip", "bot_name", "anonymous_id", "method"]
    columns = ["ts", "status", "bytes_sent", "is_bot", "is_static", *strings]
    ts_type = pa.timestamp("us", tz="UTC")
    partials = {
        "traffic": Partials(TRAFFIC, ["date", "hour", "status"],
                            {"pageviews": "sum", "bot_requests": "sum", "bytes_sent": "sum"}),
        "agents": Partials(pa.schema([("user_agent", pa.string()), ("n", pa.int64()), ("bot", pa.bool_())]),
                           ["user_agent"], {"bot": "max"}),
        "not_found": Partials(pa.schema([("path", pa.string()), ("n", pa.int64()), ("bot", pa.int64()),
                                         ("ts", ts_type)]), ["path"], {"bot": "sum", "ts": "max"}),
        "server": Partials(pa.schema([("path", pa.string()), ("status", pa.int16()), ("n", pa.int64()),
                                      ("ts", ts_type)]), ["path", "status"], {"ts": "max"}),
    }
    ips = Interner()
    pages = Grouping({"path": paths.book})
    groups: dict[str, Grouping | None] = {
        "ips": Grouping({"date": pa.date32()}, {"client_ip": ips}),
        "bots": Grouping({"bot_name": S}, {"client_ip": ips}, {"first_seen": ("ts", "min"), "last_seen": ("ts", "max")}),
        "page_visitors": Grouping({"path": paths.book}, {"anonymous_id": visitors}),
    }
    span: tuple[int, int] | None = None
    for batch in chunks(out_dir, "requests", columns, strings):
        rows = batch.num_rows
        path_slots = paths.encode(batch.column("path"))
        pv = pageview_flags(batch, paths.is_page[path_slots])
        page_slots = paths.keys(path_slots)[pv]
        viewed = Columns()
        viewed.put("slots", "path", page_slots, len(page_slots))
        pages.add(viewed)
        if (page_visitors := groups["page_visitors"]) is not None:
            viewed.put("slots", "anonymous_id", visitors.slots_of(batch.column("anonymous_id"))[pv], len(page_slots))
            page_visitors.add(viewed)
            if page_visitors.rows > PAGE_VISITOR_PAIRS:
                # Too many pairs to hold: visitors counted by a second scan of the ranked pages.
                groups["page_visitors"] = None
        bot = ints(batch.column("is_bot"))[0] != 0
        ts, timed = ints(batch.column("ts"))
        if rows and (timed is None or timed.any()):
            some = ts if timed is None else ts[timed]
            first, last = int(some.min()), int(some.max())
            span = (first, last) if span is None else (min(span[0], first), max(span[1], last))
        local = local_micros(batch.column("ts"), timezone)[0] if timezone != "UTC" else ts
        status, known = ints(batch.column("status"))
        if rows:
            partials["traffic"].add(hourly(local, timed, status, known, pv, bot, ints(batch.column("bytes_sent"))[0]))
        partials["agents"].add(agent_tally(batch.column("user_agent"), bot))
        ip_slots = ips.slots_of(batch.column("client_ip"))
        by_day = Columns()
        by_day.put("ints", "date", (np.floor_divide(local, DAY_US), timed), rows)
        by_day.put("slots", "client_ip", ip_slots, rows)
        groups["ips"].add(by_day)  # type: ignore[union-attr]
        if bot.any():
            mask = pa.array(bot)
            bots = Columns({"bot_name": batch.column("bot_name").filter(mask), "ts": batch.column("ts").filter(mask)})
            bots.put("slots", "client_ip", ip_slots[bot], int(bot.sum()))
            groups["bots"].add(bots)  # type: ignore[union-attr]
        is_5xx = (status >= 500) & (status < 600)
        for name, flags in (("not_found", status == 404), ("server", is_5xx)):
            if known is not None:
                flags &= known
            if not flags.any():
                continue
            some = batch.select(["path", "ts", "status"]).filter(pa.array(flags))  # not every column
            if name == "not_found":
                partials[name].add(tally(some.column("path"), "path", {"bot": (pa.array(bot[flags].astype(np.int64)), "sum"),
                                                                       "ts": (some.column("ts"), "max")}))
            else:  # few rows: added as they are, one row each
                partials[name].add(pa.RecordBatch.from_arrays(
                    [some.column("path").cast(pa.string()), some.column("status"),
                     pa.array(np.ones(some.num_rows, dtype=np.int64)), some.column("ts")],
                    ["path", "status", "n", "ts"]))
    table = partials["traffic"].result().rename_columns(["date", "hour", "status", "requests", "pageviews",
                                                         "bot_requests", "bytes_sent"])
    status = table["status"]
    is_4xx = pc.and_kleene(pc.greater_equal(status, 400), pc.less(status, 500))
    is_5xx = pc.and_kleene(pc.greater_equal(status, 500), pc.less(status, 600))
    zero = pa.scalar(0, pa.int64())
    table = table.append_column("client_errors", pc.if_else(pc.fill_null(is_4xx, False), table["requests"], zero))
    table = table.append_column("server_errors", pc.if_else(pc.fill_null(is_5xx, False), table["requests"], zero))
    tallied = {name: p.result() for name, p in partials.items() if name != "traffic"}
    tallied["pages"] = pages.result().select(["path", "n"]).rename_columns(["path", "pageviews"])
    tallied["agents"] = tallied["agents"].rename_columns(["user_agent", "requests", "is_bot"])
    tallied["not_found"] = tallied["not_found"].rename_columns(["path", "requests", "bot_requests", "last_seen"])
    tallied["server"] = tallied["server"].rename_columns(["path", "status", "requests", "last_seen"])
    return table, tallied, groups, span


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
    def timed() -> Iterator[pa.RecordBatch]:
        for batch in chunks(out_dir, "requests", ["ts", "request_time_ms"], valued="request_time_ms"):
            if batch.column(1).null_count < batch.num_rows:
                batch = batch.filter(batch.column(1).is_valid())
                yield pa.RecordBatch.from_arrays([local_dates(batch.column(0), timezone), batch.column(1)], ["date", "ms"])

    schema = pa.schema([("date", pa.date32()), ("ms", KIND_SCHEMAS["requests"].field("request_time_ms").type)])
    digest = pc.TDigestOptions(q=[0.5, 0.95], skip_nulls=True)
    extra = aggregate(pa.RecordBatchReader.from_batches(schema, timed()), [("ms", "tdigest", digest, "q")], keys=["date"])
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

    paths = _Paths(grouper)
    ranked = Grouping({"rank": CODE}, {"anonymous_id": S})
    for batch in chunks(out_dir, "requests", [*PAGEVIEW_INPUTS, "anonymous_id"], ["path", "method", "anonymous_id"]):
        path_slots = paths.encode(batch.column("path"))
        pv = pageview_flags(batch, paths.is_page[path_slots])
        # Each page key's rank (+ 1), once per distinct key: 0 for the pages not ranked.
        rank_of = slots(pc.index_in(paths.book.known, value_set=keep, skip_nulls=True))
        rank = np.concatenate([[0], rank_of])[paths.keys(path_slots)[pv]]
        found = rank > 0
        rows = Columns({"anonymous_id": batch.column("anonymous_id").filter(pa.array(pv)).filter(pa.array(found))})
        rows.put("ints", "rank", (rank[found] - 1, None), int(found.sum()))
        ranked.add(rows)
    visitors = ranked.result("n", {"anonymous_id": "visitors"})
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


def _totals(traffic: pa.Table, span: tuple[int, int] | None, ips: Grouping, sessions: dict[str, object],
            events: pa.Table, rejects: pa.Table) -> pa.Table:
    """The one-row `totals` report (`span`: the first and last request time in µs)."""
    first, last = pa.array(span or [None, None], pa.int64()).view(pa.timestamp("us", tz="UTC")).to_pylist()
    sums = {c: pc.sum(traffic[c]).as_py() or 0
            for c in ("requests", "pageviews", "bot_requests", "client_errors", "server_errors")}
    row = {
        "client_ips": ips.distinct_total("client_ip"),
        "first_ts": first,
        "last_ts": last,
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
    # No memo around the grouper: the scans number their paths (`_Paths`, `Codebook`) and group
    # each distinct path once when first seen.
    grouper = path_grouper
    paths = _Paths(grouper)
    # One numbering of visitors and users for the requests, sessions and events scans: a visitor
    # met again in a later scan is found among the known, not hashed among the new.
    people = {"anonymous_id": Interner(), "user_id": Interner()}
    traffic, tallied, groups, span = _traffic(out_dir, timezone, paths, people["anonymous_id"])
    ips, bots = groups["ips"], groups["bots"]
    assert ips is not None and bots is not None
    dimensions, sessions_by_day, session_totals = session_reports(out_dir, timezone, grouper, limit,
                                                                    paths.codebook, people)
    events = events_by_day(out_dir, timezone, people)
    rejects = rejects_by_reason(out_dir)
    reports: dict[str, pa.Table] = {
        "daily_kpis": daily_kpis(out_dir, traffic, ips, sessions_by_day, events, timezone),
        "totals": _totals(traffic, span, ips, session_totals, events, rejects),
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
