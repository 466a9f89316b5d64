"""Events as JSON lines: one object per event, properties with their declared types.

Built column-wise with `jsonarrow` (as destination payloads are): no Python loop per event.
"""

from __future__ import annotations

from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from . import jsonarrow as J
from .schema import EVENTS, conform

_STRUCTURED = {"ts", "properties", "properties_json", "user_properties_json"}
_NUMBERS = {"line"}


def json_lines(events: pa.Table) -> pa.Array:
    """One JSON object per event: its columns (nulls left out), `ts` as ISO 8601 UTC, and
    `properties` / `user_properties` with the types the rules declared."""
    t = conform(events, EVENTS).combine_chunks()
    members = []
    for name in EVENTS.names:
        if name == "ts":
            # Arrow writes microseconds with %S; whole seconds read as Python's isoformat does.
            ts = pc.replace_substring_regex(pc.strftime(t["ts"], format="%Y-%m-%dT%H:%M:%S"), r"\.0+$", "")
            members.append(J.member("ts", J.quote(pc.binary_join_element_wise(ts, "Z", ""))))
        elif name == "properties_json":
            members.append(J.member("properties", pc.fill_null(t[name], "{}")))
        elif name == "user_properties_json":
            members.append(J.member("user_properties", t[name]))
        elif name not in _STRUCTURED:
            values = J.number(t[name]) if name in _NUMBERS else J.quote(t[name])
            members.append(J.member(name, values))
    return J.obj(*members, n=t.num_rows)


def write_json_lines(events: pa.Table, stream: TextIO) -> None:
    """Write events as JSON lines to `stream` (stdout for `logtrack events -o -`)."""
    if events.num_rows:
        stream.write("\n".join(json_lines(events).to_pylist()) + "\n")
    stream.flush()
