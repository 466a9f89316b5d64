"""The data model: the single source of truth for every table logtrack reads or writes.

DESIGN §2. Every stage produces exactly these columns in this order; `conform` fills in what a
stage did not compute (as nulls) and casts to the declared types, so tables from different
formats, batches and runs concatenate without surprises.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR_MAP = pa.map_(pa.string(), pa.string())

# requests: one row per log line that parsed, exactly as logged (the raw layer of `parse`).
REQUESTS = pa.schema(
    [
        pa.field("ts", TS, nullable=False),
        pa.field("client_ip", pa.string()),
        pa.field("method", pa.string()),
        pa.field("scheme", pa.string()),
        pa.field("host", pa.string()),
        pa.field("path", pa.string()),
        pa.field("query", pa.string()),
        pa.field("protocol", pa.string()),
        pa.field("status", pa.int16()),
        pa.field("bytes_sent", pa.int64()),
        pa.field("referer", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("request_time_ms", pa.float64()),
        pa.field("upstream_time_ms", pa.float64()),
        pa.field("remote_user", pa.string()),
        pa.field("request_id", pa.string()),
        pa.field("fields", STR_MAP),
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
    ]
)

# Columns enrichment adds to requests.
ENRICHMENT = pa.schema(
    [
        pa.field("browser", pa.string()),
        pa.field("browser_version", pa.string()),
        pa.field("os", pa.string()),
        pa.field("device", pa.string()),  # desktop | mobile | tablet | bot | other
        pa.field("is_bot", pa.bool_()),
        pa.field("bot_name", pa.string()),
        pa.field("is_static", pa.bool_()),
        pa.field("utm_source", pa.string()),
        pa.field("utm_medium", pa.string()),
        pa.field("utm_campaign", pa.string()),
        pa.field("utm_term", pa.string()),
        pa.field("utm_content", pa.string()),
        pa.field("click_id", pa.string()),  # gclid / fbclid / msclkid when present
        pa.field("referer_host", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("language", pa.string()),
        pa.field("consent", pa.string()),  # null = no signal; "denied" when an opt-out was seen
    ]
)

# Columns identity and sessionization add.
IDENTITY = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("session_seq", pa.int32()),
    ]
)

ENRICHED_REQUESTS = pa.schema(list(REQUESTS) + list(ENRICHMENT) + list(IDENTITY))

CHANNELS = (
    "direct",
    "organic_search",
    "paid_search",
    "social",
    "email",
    "referral",
    "internal",
    "campaign",
)

SESSIONS = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("start", TS),
        pa.field("end", TS),
        pa.field("duration_s", pa.float64()),
        pa.field("requests", pa.int64()),
        pa.field("pageviews", pa.int64()),
        pa.field("events", pa.int64()),
        pa.field("landing_path", pa.string()),
        pa.field("exit_path", pa.string()),
        pa.field("referer_host", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("utm_source", pa.string()),
        pa.field("utm_medium", pa.string()),
        pa.field("utm_campaign", pa.string()),
        pa.field("utm_term", pa.string()),
        pa.field("utm_content", pa.string()),
        pa.field("browser", pa.string()),
        pa.field("os", pa.string()),
        pa.field("device", pa.string()),
        pa.field("host", pa.string()),
        pa.field("is_bounce", pa.bool_()),
        pa.field("is_engaged", pa.bool_()),
    ]
)

EVENTS = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_name", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("properties", STR_MAP),
        pa.field("properties_json", pa.string()),
        pa.field("user_properties_json", pa.string()),
        pa.field("host", pa.string()),
        pa.field("client_ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("path", pa.string()),
        pa.field("query", pa.string()),
        pa.field("referer", pa.string()),
        pa.field("utm_source", pa.string()),
        pa.field("utm_medium", pa.string()),
        pa.field("utm_campaign", pa.string()),
        pa.field("utm_term", pa.string()),
        pa.field("utm_content", pa.string()),
        pa.field("consent", pa.string()),  # null = no signal; "denied" when an opt-out was seen
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
    ]
)

REJECTS = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("text", pa.string()),
    ]
)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return `table` with exactly `schema`'s columns, in order, cast to its types.

    Columns the table lacks become nulls; columns the schema does not name are dropped.
    """
    n = table.num_rows
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.type != field.type:
                col = col.cast(field.type)
            arrays.append(col)
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=_nullable(schema))


def _nullable(schema: pa.Schema) -> pa.Schema:
    # Nullability flags are documentation; enforcing them in every cast costs more than it
    # protects, and Parquet readers treat both the same.
    return pa.schema([pa.field(f.name, f.type) for f in schema], metadata=schema.metadata)


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table with `schema`'s columns."""
    return _nullable(schema).empty_table()
