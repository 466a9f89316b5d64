"""report.html: one self-contained page (inline CSS and SVG, no script, no network).

Written for someone who has never seen logtrack: plain headings, a short explanation under each
chart, a glossary at the end. Every string that can come from a log (paths, referrers, user
agents, bot and event names, campaign tags, reject reasons, input paths) goes through `esc`.
"""

from __future__ import annotations

import datetime as dt
import os
import string
import uuid
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from .svg import PALETTE, bar_chart, column_chart, esc, fmt, legend, line_chart

STATUS_CLASSES = [("2xx", "#16a34a"), ("3xx", "#2563eb"), ("4xx", "#f59e0b"), ("5xx", "#dc2626"), ("other", "#94a3b8")]

GLOSSARY = [
    ("Request", "One line of the web server's access log: any file fetched, by people or by bots."),
    ("Pageview", "A request for a page (not an image, script or stylesheet) by a person, answered successfully."),
    ("Visitor", "A distinct browser, recognised by a cookie or by a salted hash of its network and browser."),
    ("Session", "A visit: a visitor's requests until 30 minutes pass without activity."),
    ("Bounce", "A session with a single pageview that was not engaged."),
    ("Engaged session", "A session longer than 10 seconds, with two or more pageviews, or with a key event."),
    ("Bot", "An automated client (search engine crawler, monitor, scraper) recognised by its user agent."),
    ("Channel", "How a session arrived: direct, organic or paid search, social, email, referral, campaign."),
    ("Event", "Something the site's rules name, like a signup or an order, found in the log."),
]


def _rows(table: pa.Table | None, limit: int | None = None) -> list[dict[str, Any]]:
    if table is None:
        return []
    return (table if limit is None else table.slice(0, limit)).to_pylist()


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return '<td class="muted">–</td>' if kind != "text" else '<td class="muted">(none)</td>'
    if kind == "pct":
        return f'<td class="num">{value * 100:.1f}%</td>'
    if kind in ("int", "num"):
        return f'<td class="num">{fmt(value)}</td>'
    if kind == "bool":
        return f"<td>{'yes' if value else 'no'}</td>"
    if kind == "ts" and isinstance(value, dt.datetime):
        return f"<td>{esc(value.strftime('%Y-%m-%d %H:%M'))}</td>"
    return f"<td>{esc(value)}</td>"


def html_table(table: pa.Table | None, columns: list[tuple[str, str, str]], limit: int | None = 25,
               table_id: str = "") -> str:
    """An HTML table of `columns` = [(column, header, kind)], kind in text/int/num/pct/date/ts."""
    rows = _rows(table, limit)
    if not rows:
        return '<p class="muted">No data.</p>'
    head = "".join(f'<th class="{"num" if k in ("int", "num", "pct") else ""}">{esc(h)}</th>'
                   for _, h, k in columns)
    body = "".join("<tr>" + "".join(_cell(r.get(c), k) for c, _, k in columns) + "</tr>" for r in rows)
    more = ""
    if table is not None and limit is not None and table.num_rows > limit:
        more = f'<p class="muted">Showing {limit} of {table.num_rows:,} rows; all are in the Parquet report.</p>'
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _sum_by(table: pa.Table | None, key: str, value: str) -> list[tuple[Any, int]]:
    """Totals of `value` per `key`, largest first."""
    if table is None or table.num_rows == 0:
        return []
    out = table.group_by(key).aggregate([(value, "sum")]).sort_by([(f"{value}_sum", "descending")])
    return list(zip(out[key].to_pylist(), out[f"{value}_sum"].to_pylist(), strict=True))


def _traffic_chart(kpis: pa.Table | None) -> str:
    rows = _rows(kpis)
    days = [str(r["date"]) for r in rows]
    series = [(name, [r[col] or 0 for r in rows]) for name, col in
              (("Requests", "requests"), ("Pageviews", "pageviews"), ("Visitors", "visitors"))]
    return line_chart("chart-traffic", "Requests, pageviews and visitors per day", days, series) + legend(
        [s for s, _ in series])


def _hourly_chart(hourly: pa.Table | None) -> str:
    per_hour = dict(_sum_by(hourly, "hour", "requests"))
    hours = [f"{h:02d}" for h in range(24)] if per_hour else []
    values = [per_hour.get(h, 0) for h in range(24)] if per_hour else []
    return column_chart("chart-hourly", "Requests by hour of day", hours, [("requests", values)])


def _status_chart(status: pa.Table | None) -> str:
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in _rows(status):  # days × distinct statuses: a few hundred rows at most
        code = r["status"]
        cls = f"{code // 100}xx" if code is not None and 200 <= code < 600 else "other"
        by_day[str(r["date"])][cls] += r["requests"]
    days = sorted(by_day)
    series = [(cls, [by_day[d][cls] for d in days]) for cls, _ in STATUS_CLASSES]
    colors = [c for _, c in STATUS_CLASSES]
    return (column_chart("chart-status", "Requests per day by status class", days, series, colors)
            + legend([c for c, _ in STATUS_CLASSES], colors))


def _bars(chart_id: str, label: str, pairs: list[tuple[Any, int]], color: str, limit: int = 12) -> str:
    pairs = pairs[:limit]
    return bar_chart(chart_id, label, [p[0] for p in pairs], [p[1] for p in pairs], color)


def _cards(totals: pa.Table | None) -> str:
    t = _rows(totals)[0] if totals is not None and totals.num_rows else {}

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v * 100:.1f}%"

    cards = [("Pageviews", fmt(t.get("pageviews"))), ("Visitors", fmt(t.get("visitors"))),
             ("Sessions", fmt(t.get("sessions"))), ("Bounce rate", pct(t.get("bounce_rate"))),
             ("Events", fmt(t.get("events"))), ("Requests", fmt(t.get("requests"))),
             ("Bot share", pct(t.get("bot_share"))), ("Error rate", pct(t.get("error_rate")))]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{v}</div><div class="k">{esc(k)}</div></div>' for k, v in cards) + "</div>"


def _about(run_info: dict[str, Any]) -> str:
    inputs = run_info.get("inputs") or []
    rows = pa.Table.from_pylist([{"path": i.get("path"), "size": i.get("size"), "lines": i.get("lines")}
                                 for i in inputs]) if inputs else None
    counts = run_info.get("counts") or {}
    count_rows = pa.Table.from_pylist([{"stage": k, "rows": v} for k, v in counts.items()]) if counts else None
    rejects = run_info.get("rejects_by_reason") or {}
    reject_rows = (pa.Table.from_pylist([{"reason": k, "lines": v} for k, v in rejects.items()])
                   if rejects else None)
    glossary = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in GLOSSARY)
    return (
        "<h3>Inputs of the last run</h3>"
        + html_table(rows, [("path", "File", "text"), ("size", "Bytes", "int"), ("lines", "Lines", "int")], 50)
        + "<h3>Rows per stage</h3>" + html_table(count_rows, [("stage", "Stage", "text"), ("rows", "Rows", "int")])
        + "<h3>Rejected lines by reason</h3>"
        + html_table(reject_rows, [("reason", "Reason", "text"), ("lines", "Lines", "int")])
        + f"<h3>Words used in this report</h3><dl>{glossary}</dl>"
    )


def _when(value: Any) -> str:
    """A run time (datetime or ISO string, default now) as `YYYY-MM-DD HH:MM UTC`."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.now(dt.UTC)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _period(kpis: pa.Table | None) -> str:
    if kpis is None or kpis.num_rows == 0:
        return "no data yet"
    first, last = pc.min(kpis["date"]).as_py(), pc.max(kpis["date"]).as_py()
    return f"{first}" if first == last else f"{first} to {last}"


def render_html(out_dir: Path, reports: dict[str, pa.Table], run_info: dict[str, Any]) -> Path:
    """Write `out_dir/report.html` from `build_reports`' tables and the run's info; its path.

    `run_info` is the dict given to `write_run_json` (inputs, counts, rejects_by_reason,
    timezone, finished_at); missing keys are simply left out of the page.
    """
    r = reports.get
    session_cols = [("sessions", "Sessions", "int"), ("visitors", "Visitors", "int"),
                    ("bounce_rate", "Bounce rate", "pct"), ("engaged_sessions", "Engaged", "int")]
    events_total = _sum_by(r("events_by_day"), "event_name", "events")
    events_table = (pa.Table.from_pylist([{"event_name": n, "events": c} for n, c in events_total])
                    if events_total else None)
    top = r("top_pages")
    sections = [
        ("Traffic over time", "How many requests the server answered, how many pages people viewed and "
         "how many distinct visitors came, day by day.",
         _traffic_chart(r("daily_kpis")) + "<h3>Busiest hours (all requests, local time)</h3>" + _hourly_chart(r("hourly_traffic"))),
        ("Where visitors come from", "Sessions by acquisition channel, the sites that referred them and "
         "tagged campaigns (utm_* parameters).",
         _bars("chart-channels", "Sessions by channel", _sum_by(r("channels"), "channel", "sessions"), PALETTE[1])
         + "<h3>Referring sites</h3>" + html_table(r("referrers"), [("referer_host", "Site", "text"), *session_cols])
         + "<h3>Campaigns</h3>" + html_table(r("campaigns"), [("utm_source", "Source", "text"),
                                                              ("utm_medium", "Medium", "text"),
                                                              ("utm_campaign", "Campaign", "text"), *session_cols])),
        ("What they look at", "The most viewed pages, and the pages where visits start and end.",
         _bars("chart-top-pages", "Pageviews by page", list(zip(top["path"].to_pylist(), top["pageviews"].to_pylist(),
                                                                 strict=True)) if top is not None else [], PALETTE[0])
         + html_table(top, [("path", "Page", "text"), ("pageviews", "Pageviews", "int"),
                            ("visitors", "Visitors", "int"), ("share", "Share", "pct")], table_id="table-top-pages")
         + "<h3>Entry pages</h3>" + html_table(r("entry_pages"), [("path", "Page", "text"), *session_cols], 15)
         + "<h3>Exit pages</h3>" + html_table(r("exit_pages"), [("path", "Page", "text"), *session_cols], 15)),
        ("Events", "Actions the site's rules recognise in the log (signups, orders, …), over the whole period.",
         _bars("chart-events", "Events by name", events_total, PALETTE[4])
         + html_table(events_table, [("event_name", "Event", "text"), ("events", "Count", "int")])),
        ("Devices and browsers", "What visitors use, by sessions.",
         _bars("chart-devices", "Sessions by device", _sum_by(r("devices"), "device", "sessions"), PALETTE[5])
         + "<h3>Browsers</h3>" + html_table(r("browsers"), [("browser", "Browser", "text"), *session_cols], 15)
         + "<h3>Operating systems</h3>" + html_table(r("os"), [("os", "System", "text"), *session_cols], 15)),
        ("Server health", "Responses by status class (2xx success, 3xx redirect, 4xx client error, 5xx server "
         "error), the paths that fail, and the bots that crawl the site.",
         _status_chart(r("status_codes_by_day"))
         + "<h3>Not found (404)</h3>" + html_table(r("not_found_paths"), [
             ("path", "Path", "text"), ("requests", "Requests", "int"), ("bot_requests", "From bots", "int"),
             ("last_seen", "Last seen (UTC)", "ts")], 15)
         + "<h3>Server errors (5xx)</h3>" + html_table(r("server_error_paths"), [
             ("path", "Path", "text"), ("status", "Status", "int"), ("requests", "Requests", "int"),
             ("last_seen", "Last seen (UTC)", "ts")], 15)
         + "<h3>Bots</h3>" + html_table(r("bots_by_name"), [
             ("bot_name", "Bot", "text"), ("requests", "Requests", "int"), ("client_ips", "Addresses", "int"),
             ("last_seen", "Last seen (UTC)", "ts")], 15)
         + "<h3>User agents</h3>" + html_table(r("user_agents"), [
             ("user_agent", "User agent", "text"), ("requests", "Requests", "int"), ("is_bot", "Bot", "bool")], 10)
         + "<h3>Day by day</h3>" + html_table(r("daily_kpis"), [
             ("date", "Date", "date"), ("requests", "Requests", "int"), ("pageviews", "Pageviews", "int"),
             ("visitors", "Visitors", "int"), ("sessions", "Sessions", "int"), ("bounce_rate", "Bounce", "pct"),
             ("bot_share", "Bots", "pct"), ("error_rate", "Errors", "pct"),
             ("p50_request_time_ms", "Median ms", "num"), ("p95_request_time_ms", "p95 ms", "num")], 62)),
        ("About this report", "What was read, what was kept, and what the words mean.", _about(run_info)),
    ]
    generated = _when(run_info.get("finished_at"))
    anchors = ["traffic", "acquisition", "pages", "events", "technology", "health", "about"]
    nav = '<nav>' + "".join(f'<a href="#{a}">{esc(title)}</a>' for a, (title, _, _) in zip(anchors, sections,
                                                                                         strict=True)) + "</nav>"
    body = "".join(f'<section id="{a}"><h2>{esc(title)}</h2><p class="lead">{esc(lead)}</p>{content}</section>'
                   for a, (title, lead, content) in zip(anchors, sections, strict=True))
    template = resources.files(__package__).joinpath("template.html").read_text(encoding="utf-8")
    period = esc(_period(r("daily_kpis")))
    header = (f'<h1>Web traffic report</h1><p class="muted">{period} · times in '
              f'{esc(run_info.get("timezone", "UTC"))} · generated {esc(generated)} by logtrack '
              f"{esc(__version__)}</p>{_cards(r('totals'))}{nav}")
    page = string.Template(template).substitute(title=f"Web traffic report · {period}", header=header, main=body)
    path = Path(out_dir) / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".report.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
