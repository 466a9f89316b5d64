"""The aggregate reports' schemas: one Parquet file per question under `DIR/reports/`.

Every field carries a `description` in its Arrow metadata (so the Parquet files document
themselves) and `REPORT_DESCRIPTIONS` says what each report answers. Definitions used throughout:

- a *pageview* is what the sessionizer counts (`sessions.pageview_mask`): a GET or HEAD answered
  2xx or 304, for a page-like path (no static or data extension), not static, not from a bot;
- *visitors* are distinct `anonymous_id`s, *users* distinct `user_id`s (logged-in), both counted
  over sessions (a visitor counts on the day, page or channel where a session of theirs started);
- dates and hours are local to the `timezone` given to `build_reports` (UTC by default);
- session-based reports (entry/exit pages, referrers, channels, campaigns, browsers, os,
  devices) exclude bots, as sessions do; request-based ones (status codes, bots, 404s, 5xx, hourly
  traffic, user agents) count every request, bots included.
"""

from __future__ import annotations

import pyarrow as pa

I8, I16, I64, F64, S, D, B = pa.int8(), pa.int16(), pa.int64(), pa.float64(), pa.string(), pa.date32(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    return pa.field(name, type_, metadata={"description": doc})


def _schema(*fields: pa.Field) -> pa.Schema:
    return pa.schema(list(fields))


SESSION_METRICS = [
    _f("sessions", I64, "sessions"),
    _f("visitors", I64, "distinct anonymous ids among those sessions"),
    _f("pageviews", I64, "pageviews in those sessions"),
    _f("bounce_rate", F64, "share of those sessions that bounced (one pageview, not engaged)"),
    _f("engaged_sessions", I64, "sessions over 10 s, with 2+ pageviews or a key event (GA4)"),
    _f("avg_session_duration_s", F64, "mean session duration in seconds"),
    _f("share", F64, "share of all sessions"),
]

REPORT_SCHEMAS: dict[str, pa.Schema] = {
    "daily_kpis": _schema(
        _f("date", D, "local date"),
        _f("requests", I64, "requests (every parsed line, bots and static files included)"),
        _f("pageviews", I64, "pageviews"),
        _f("bot_requests", I64, "requests from bots"),
        _f("bot_share", F64, "bot_requests / requests"),
        _f("client_errors", I64, "requests with status 4xx"),
        _f("server_errors", I64, "requests with status 5xx"),
        _f("error_rate", F64, "(client_errors + server_errors) / requests"),
        _f("bytes_sent", I64, "response bytes sent"),
        _f("p50_request_time_ms", F64, "median request time in ms (t-digest; null when not logged)"),
        _f("p95_request_time_ms", F64, "95th percentile request time in ms (t-digest; null when not logged)"),
        _f("client_ips", I64, "distinct client addresses (truncated unless --keep-ip)"),
        _f("sessions", I64, "sessions started that day"),
        _f("visitors", I64, "distinct anonymous ids with a session started that day"),
        _f("users", I64, "distinct user ids with a session started that day"),
        _f("bounce_rate", F64, "share of those sessions that bounced"),
        _f("engaged_sessions", I64, "engaged sessions (GA4 definition)"),
        _f("avg_session_duration_s", F64, "mean session duration in seconds"),
        _f("events", I64, "events emitted by the rules"),
    ),
    "totals": _schema(
        _f("first_ts", TS, "earliest request"),
        _f("last_ts", TS, "latest request"),
        _f("days", I64, "days with requests"),
        _f("requests", I64, "requests"),
        _f("pageviews", I64, "pageviews"),
        _f("bot_requests", I64, "requests from bots"),
        _f("bot_share", F64, "bot_requests / requests"),
        _f("error_rate", F64, "share of requests with status 4xx or 5xx"),
        _f("client_ips", I64, "distinct client addresses over the whole dataset"),
        _f("sessions", I64, "sessions"),
        _f("visitors", I64, "distinct anonymous ids over the whole dataset"),
        _f("users", I64, "distinct user ids over the whole dataset"),
        _f("bounce_rate", F64, "share of sessions that bounced"),
        _f("engaged_sessions", I64, "engaged sessions"),
        _f("events", I64, "events"),
        _f("rejects", I64, "rejected lines"),
    ),
    "top_pages": _schema(
        _f("path", S, "page path, or the rules' path template when paths are grouped"),
        _f("pageviews", I64, "pageviews"),
        _f("visitors", I64, "distinct anonymous ids that viewed it"),
        _f("share", F64, "share of all pageviews"),
    ),
    "entry_pages": _schema(_f("path", S, "first page of the session (grouped like top_pages)"), *SESSION_METRICS),
    "exit_pages": _schema(_f("path", S, "last page of the session (grouped like top_pages)"), *SESSION_METRICS),
    "referrers": _schema(_f("referer_host", S, "host of the session's external referrer"), *SESSION_METRICS),
    "channels": _schema(_f("channel", S, "acquisition channel (direct, organic_search, …)"), *SESSION_METRICS),
    "campaigns": _schema(
        _f("utm_source", S, "utm_source"),
        _f("utm_medium", S, "utm_medium"),
        _f("utm_campaign", S, "utm_campaign"),
        *SESSION_METRICS,
    ),
    "browsers": _schema(_f("browser", S, "browser family"), *SESSION_METRICS),
    "os": _schema(_f("os", S, "operating system family"), *SESSION_METRICS),
    "devices": _schema(_f("device", S, "desktop, mobile, tablet or other"), *SESSION_METRICS),
    "status_codes_by_day": _schema(
        _f("date", D, "local date"),
        _f("status", I16, "HTTP status (null when the format has none)"),
        _f("requests", I64, "requests"),
    ),
    "bots_by_name": _schema(
        _f("bot_name", S, "bot name from the user agent (null when unnamed)"),
        _f("requests", I64, "requests"),
        _f("client_ips", I64, "distinct client addresses"),
        _f("first_seen", TS, "first request"),
        _f("last_seen", TS, "last request"),
    ),
    "not_found_paths": _schema(
        _f("path", S, "requested path"),
        _f("requests", I64, "404 responses"),
        _f("bot_requests", I64, "of which from bots"),
        _f("last_seen", TS, "last 404 for this path"),
    ),
    "server_error_paths": _schema(
        _f("path", S, "requested path"),
        _f("status", I16, "5xx status"),
        _f("requests", I64, "responses with that status"),
        _f("last_seen", TS, "last occurrence"),
    ),
    "events_by_day": _schema(
        _f("date", D, "local date"),
        _f("event_name", S, "event name"),
        _f("events", I64, "events"),
        _f("visitors", I64, "distinct anonymous ids"),
        _f("users", I64, "distinct user ids"),
    ),
    "hourly_traffic": _schema(
        _f("date", D, "local date"),
        _f("hour", I8, "local hour 0–23"),
        _f("requests", I64, "requests"),
        _f("pageviews", I64, "pageviews"),
        _f("bot_requests", I64, "requests from bots"),
    ),
    "user_agents": _schema(
        _f("user_agent", S, "user agent string as logged"),
        _f("requests", I64, "requests"),
        _f("is_bot", B, "flagged as a bot"),
    ),
    "rejects_by_reason": _schema(
        _f("reason", S, "why the line was rejected"),
        _f("rejects", I64, "rejected lines"),
    ),
}

REPORT_DESCRIPTIONS: dict[str, str] = {
    "daily_kpis": "One row per day: traffic, audience, engagement, bots, errors and latency.",
    "totals": "One row: the whole dataset at a glance.",
    "top_pages": "Most viewed pages (grouped by the rules' path templates when given).",
    "entry_pages": "Pages where sessions start, with their bounce rate.",
    "exit_pages": "Pages where sessions end.",
    "referrers": "External sites that sent sessions.",
    "channels": "Sessions by acquisition channel.",
    "campaigns": "Sessions by UTM source, medium and campaign.",
    "browsers": "Sessions by browser.",
    "os": "Sessions by operating system.",
    "devices": "Sessions by device type.",
    "status_codes_by_day": "Requests per HTTP status per day (bots included).",
    "bots_by_name": "Bot traffic by bot.",
    "not_found_paths": "Paths answered with 404 Not Found.",
    "server_error_paths": "Paths answered with a 5xx server error.",
    "events_by_day": "Events emitted by the rules, per name per day.",
    "hourly_traffic": "Requests and pageviews per local hour.",
    "user_agents": "Most frequent user agents.",
    "rejects_by_reason": "Lines that did not parse, by reason.",
}


def finish(name: str, table: pa.Table) -> pa.Table:
    """Cast `table` to the report's schema: its columns, in order, typed, documented."""
    schema = REPORT_SCHEMAS[name]
    n = table.num_rows
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            arrays.append(table.column(f.name).cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
