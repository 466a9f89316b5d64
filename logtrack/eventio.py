"""Events as JSON lines: one object per event, properties with their declared types."""

from __future__ import annotations

import json
from typing import TextIO

import pyarrow as pa

_SKIP = {"properties", "properties_json", "user_properties_json"}


def event_records(events: pa.Table) -> list[dict]:
    """Events as plain dicts: ISO timestamps, `properties` typed from properties_json."""
    out = []
    for row in events.to_pylist():
        rec = {k: v for k, v in row.items() if k not in _SKIP and v is not None}
        rec["ts"] = row["ts"].isoformat().replace("+00:00", "Z")
        rec["properties"] = json.loads(row["properties_json"]) if row.get("properties_json") else {}
        if row.get("user_properties_json"):
            rec["user_properties"] = json.loads(row["user_properties_json"])
        out.append(rec)
    return out


def write_json_lines(events: pa.Table, stream: TextIO) -> None:
    """Write events as JSON lines to `stream` (stdout for `logtrack events -o -`)."""
    for rec in event_records(events):
        stream.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    stream.flush()
