"""Session-, event- and reject-based reports (see `specs.py` for their schemas).

Each report is one streaming scan of the columns it needs followed by an Acero group-by; the
daily and overall session figures feed `daily_kpis` and `totals` in `aggregates.py`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .scan import (
    DISTINCT,
    Expr,
    PathGrouper,
    aggregate,
    as_int,
    count_rows,
    local_date,
    map_paths,
    ratio,
    scan,
    top,
)
from .specs import finish

SESSION_AGGS = [
    count_rows("sessions"),
    ("anonymous_id", "count_distinct", DISTINCT, "visitors"),
    ("pageviews", "sum", None, "pageviews"),
    ("bounce", "sum", None, "bounces"),
    ("engaged", "sum", None, "engaged_sessions"),
    ("duration_s", "mean", None, "avg_session_duration_s"),
]


def _session_columns(extra: dict[str, Expr]) -> dict[str, Expr]:
    return {
        **extra,
        "anonymous_id": pc.field("anonymous_id"),
        "pageviews": pc.field("pageviews"),
        "bounce": as_int(pc.field("is_bounce")),
        "engaged": as_int(pc.field("is_engaged")),
        "duration_s": pc.field("duration_s"),
    }


def _finish_sessions(name: str, table: pa.Table, keys: list[str], total_sessions: int,
                     limit: int | None) -> pa.Table:
    """Add the rates to a session group-by, rank it and cast it to the report's schema."""
    table = table.append_column("bounce_rate", ratio(table["bounces"], table["sessions"]))
    table = table.append_column("share", ratio(table["sessions"], pa.array([total_sessions] * table.num_rows,
                                                                            pa.int64())))
    for col in ("pageviews", "engaged_sessions"):
        table = table.set_column(table.schema.get_field_index(col), col, pc.fill_null(table[col], 0))
    return finish(name, top(table, "sessions", keys, limit))


def session_dimension(out_dir: Path, name: str, keys: dict[str, Expr], total_sessions: int,
                      where: Expr | None = None, grouper: PathGrouper | None = None,
                      limit: int | None = 1000) -> pa.Table:
    """Sessions, visitors, pageviews, bounce rate, engagement and share by `keys`."""
    transform = map_paths("path", grouper) if "path" in keys and grouper is not None else None
    reader = scan(out_dir, "sessions", _session_columns(keys), where, transform)
    table = aggregate(reader, SESSION_AGGS, keys=list(keys))
    return _finish_sessions(name, table, list(keys), total_sessions, limit)


def session_reports(out_dir: Path, total_sessions: int, grouper: PathGrouper | None,
                    limit: int | None) -> dict[str, pa.Table]:
    """entry_pages, exit_pages, referrers, channels, campaigns, browsers, os, devices."""
    f = pc.field
    utm = ["utm_source", "utm_medium", "utm_campaign"]
    specs: dict[str, tuple[dict[str, Expr], Expr | None]] = {
        "entry_pages": ({"path": f("landing_path")}, None),
        "exit_pages": ({"path": f("exit_path")}, None),
        "referrers": ({"referer_host": f("referer_host")}, f("referer_host").is_valid()),
        "channels": ({"channel": f("channel")}, None),
        "campaigns": ({k: f(k) for k in utm},
                      f("utm_source").is_valid() | f("utm_medium").is_valid() | f("utm_campaign").is_valid()),
        "browsers": ({"browser": f("browser")}, None),
        "os": ({"os": f("os")}, None),
        "devices": ({"device": f("device")}, None),
    }
    return {name: session_dimension(out_dir, name, keys, total_sessions, where, grouper, limit)
            for name, (keys, where) in specs.items()}


def sessions_daily(out_dir: Path, timezone: str) -> pa.Table:
    """Per local date of session start: sessions, visitors, users, bounces, engagement."""
    cols = _session_columns({"date": local_date("start", timezone)})
    cols["user_id"] = pc.field("user_id")
    aggs = SESSION_AGGS + [("user_id", "count_distinct", DISTINCT, "users")]
    table = aggregate(scan(out_dir, "sessions", cols), aggs, keys=["date"])
    table = table.append_column("bounce_rate", ratio(table["bounces"], table["sessions"]))
    return table.drop_columns(["pageviews", "bounces"])


def sessions_totals(out_dir: Path) -> dict[str, object]:
    """Overall sessions, visitors, users, bounce rate and engaged sessions."""
    cols = _session_columns({})
    cols["user_id"] = pc.field("user_id")
    aggs = SESSION_AGGS + [("user_id", "count_distinct", DISTINCT, "users")]
    row = aggregate(scan(out_dir, "sessions", cols), aggs).to_pylist()[0]
    sessions = row["sessions"] or 0
    return {
        "sessions": sessions,
        "visitors": row["visitors"] or 0,
        "users": row["users"] or 0,
        "bounce_rate": (row["bounces"] or 0) / sessions if sessions else None,
        "engaged_sessions": row["engaged_sessions"] or 0,
    }


def events_by_day(out_dir: Path, timezone: str) -> pa.Table:
    """Events, visitors and users per local date and event name."""
    cols = {"date": local_date("ts", timezone), "event_name": pc.field("event_name"),
            "anonymous_id": pc.field("anonymous_id"), "user_id": pc.field("user_id")}
    aggs = [count_rows("events"), ("anonymous_id", "count_distinct", DISTINCT, "visitors"),
            ("user_id", "count_distinct", DISTINCT, "users")]
    table = aggregate(scan(out_dir, "events", cols), aggs, keys=["date", "event_name"])
    return finish("events_by_day", table.sort_by([("date", "ascending"), ("events", "descending"),
                                                  ("event_name", "ascending")]))


def rejects_by_reason(out_dir: Path) -> pa.Table:
    """Rejected lines per reason."""
    table = aggregate(scan(out_dir, "rejects", {"reason": pc.field("reason")}),
                      [count_rows("rejects")], keys=["reason"])
    return finish("rejects_by_reason", top(table, "rejects", ["reason"], None))
