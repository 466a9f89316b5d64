"""Session-, event- and reject-based reports (see `specs.py` for their schemas).

The sessions dataset is scanned once (`session_reports`): every batch feeds one `Grouping` per
report — the eight dimensions (entry and exit pages, referrers, channels, campaigns, browsers, os,
devices), the figures per day for `daily_kpis` and the overall ones for `totals` — where each used
to scan the dataset again (ten scans, two thirds of them counting distinct visitors). Events and
rejects are one scan each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .dense import Columns, ints, slots
from .groups import Codebook, Grouping, Interner, dictionary_of
from .scan import DAY_US, PathGrouper, chunks, local_micros, ratio, top
from .specs import finish

# Pre-aggregates of every session report; the mean duration is their sum over their count.
SESSION_AGGS = {"pageviews": ("pageviews", "sum"), "bounces": ("bounce", "sum"),
                "engaged_sessions": ("engaged", "sum"), "duration_sum": ("duration_s", "sum"),
                "duration_n": ("duration_s", "count")}
UTM = ["utm_source", "utm_medium", "utm_campaign"]
# report -> (output key -> source column, the column(s) at least one of which must be set)
DIMENSIONS: dict[str, tuple[dict[str, str], list[str]]] = {
    "entry_pages": ({"path": "landing_path"}, []),
    "exit_pages": ({"path": "exit_path"}, []),
    "referrers": ({"referer_host": "referer_host"}, ["referer_host"]),
    "channels": ({"channel": "channel"}, []),
    "campaigns": ({k: k for k in UTM}, UTM),
    "browsers": ({"browser": "browser"}, []),
    "os": ({"os": "os"}, []),
    "devices": ({"device": "device"}, []),
}
PATHS = ("landing_path", "exit_path")
STRINGS = ["anonymous_id", "user_id", *PATHS, "referer_host", "channel", *UTM, "browser", "os", "device"]


def _finish_sessions(name: str, table: pa.Table, keys: list[str], total_sessions: int,
                     limit: int | None) -> pa.Table:
    """Add the rates to a session group-by, rank it and cast it to the report's schema."""
    table = _with_mean(table)
    table = table.append_column("bounce_rate", ratio(table["bounces"], table["sessions"]))
    table = table.append_column("share", ratio(table["sessions"], pa.array([total_sessions] * table.num_rows,
                                                                            pa.int64())))
    for col in ("pageviews", "engaged_sessions"):
        table = table.set_column(table.schema.get_field_index(col), col, pc.fill_null(table[col], 0))
    return finish(name, top(table, "sessions", keys, limit))


def _with_mean(table: pa.Table) -> pa.Table:
    """`avg_session_duration_s` from the duration's sum and count (null where none is known)."""
    mean = ratio(table["duration_sum"], table["duration_n"])
    return table.drop_columns(["duration_sum", "duration_n"]).append_column("avg_session_duration_s", mean)


class _SessionPass:
    """The groupings of the session reports and the codebooks of their string columns."""

    def __init__(self, grouper: PathGrouper | None, paths: Codebook | None = None,
                 people: dict[str, Interner] | None = None) -> None:
        # Landing and exit pages share their paths' templates (and the requests scan's numbers).
        paths = paths if paths is not None else Codebook(grouper)
        people = people or {}
        self.books = {c: paths if c in PATHS else Codebook(words=people.get(c)) for c in STRINGS}
        books = self.books
        visitors = {"anonymous_id": books["anonymous_id"]}
        self.groupings = {name: Grouping({k: books[src] for k, src in keys.items()}, visitors, SESSION_AGGS)
                          for name, (keys, _) in DIMENSIONS.items()}
        people = {**visitors, "user_id": books["user_id"]}
        self.groupings["daily"] = Grouping({"date": pa.date32()}, people, SESSION_AGGS)
        self.groupings["totals"] = Grouping({}, people, SESSION_AGGS)

    def feed(self, columns: Columns) -> None:
        """One batch of sessions into every grouping: `columns` holds the value columns and the
        dates; the string columns, numbered here, are shared by the groupings as slots."""
        # Landing and exit pages looked up among the known paths at once: one hash table of them.
        paths = self.books[PATHS[0]]
        encoded = [dictionary_of(columns.arrays[name]) for name in PATHS]
        found = np.concatenate([[0], paths.raw_slots(pa.concat_arrays([e.dictionary for e in encoded]))])
        at = 1
        for name, part in zip(PATHS, encoded, strict=True):
            own = np.concatenate([[0], found[at:at + len(part.dictionary)]])
            columns.put("slots", name, paths.mapped_of(own)[slots(part.indices)], columns.rows)
            at += len(part.dictionary)
        for name, book in self.books.items():
            if name not in PATHS:
                columns.put("slots", name, book.slots_of(columns.arrays[name]), columns.rows)
        for name, (keys, _) in DIMENSIONS.items():
            # A source column named as its output key: the report's rows are read as they are.
            if all(k == src for k, src in keys.items()):
                self.groupings[name].add(columns)
                continue
            renamed = _renamed(columns, keys)
            self.groupings[name].add(renamed)
            for memo, value in renamed.memo.items():  # what the copy computed serves the others too
                if memo[0] == "packing":
                    columns.memo.setdefault(memo, value)
        self.groupings["daily"].add(columns)
        self.groupings["totals"].add(columns)


def _renamed(columns: Columns, keys: dict[str, str]) -> Columns:
    """The batch with the source columns of `keys` also under their output names."""
    out = Columns(columns.arrays)
    out.memo, out.rows = dict(columns.memo), columns.rows
    for key, source in keys.items():
        out.put("slots", key, columns.get("slots", source), columns.rows)
    return out


def _required(table: pa.Table, required: list[str]) -> pa.Table:
    """The groups where at least one of the `required` key columns is set (none: every group):
    sessions without a referrer or a campaign are left out of those reports."""
    if not required:
        return table
    mask = table[required[0]].is_valid()
    for other in required[1:]:
        mask = pc.or_(mask, table[other].is_valid())
    return table.filter(mask)


def session_reports(out_dir: Path, timezone: str, grouper: PathGrouper | None, limit: int | None,
                    paths: Codebook | None = None, people: dict[str, Interner] | None = None
                    ) -> tuple[dict[str, pa.Table], pa.Table, dict[str, object]]:
    """One scan of the sessions: the dimension reports (entry_pages, exit_pages, referrers,
    channels, campaigns, browsers, os, devices), the figures per local date of session start for
    `daily_kpis` and the overall ones for `totals` (sessions, visitors, users, bounce rate,
    engaged sessions). `paths`: a codebook of paths (grouped by `grouper`) to number the landing
    and exit pages in, shared with the requests scan; `people`: the numberings of
    `anonymous_id` and `user_id` shared with the other scans."""
    sessions_pass = _SessionPass(grouper, paths, people)
    columns = [*STRINGS, "start", "pageviews", "is_bounce", "is_engaged", "duration_s"]
    for batch in chunks(out_dir, "sessions", columns, STRINGS):
        cols = Columns({c: batch.column(c) for c in (*STRINGS, "pageviews", "duration_s")})
        start, valid = local_micros(batch.column("start"), timezone)
        cols.put("ints", "date", (np.floor_divide(start, DAY_US), valid), batch.num_rows)
        for name, flag in (("bounce", "is_bounce"), ("engaged", "is_engaged")):
            cols.put("ints", name, (ints(batch.column(flag))[0], None), batch.num_rows)  # null: False
        sessions_pass.feed(cols)
    groupings = sessions_pass.groupings
    names = {"anonymous_id": "visitors", "user_id": "users"}
    (row,) = groupings["totals"].result("sessions", names).to_pylist()
    sessions = row["sessions"] or 0
    totals = {
        "sessions": sessions,
        "visitors": row["visitors"] or 0,
        "users": row["users"] or 0,
        "bounce_rate": (row["bounces"] or 0) / sessions if sessions else None,
        "engaged_sessions": row["engaged_sessions"] or 0,
    }
    daily = _with_mean(groupings["daily"].result("sessions", names))
    daily = daily.append_column("bounce_rate", ratio(daily["bounces"], daily["sessions"]))
    daily = daily.drop_columns(["pageviews", "bounces"])
    reports = {name: _finish_sessions(name, _required(groupings[name].result("sessions", names), required),
                                      list(keys), sessions, limit)
               for name, (keys, required) in DIMENSIONS.items()}
    return reports, daily, totals


def events_by_day(out_dir: Path, timezone: str, people: dict[str, Interner] | None = None) -> pa.Table:
    """Events, visitors and users per local date and event name (`people`: the numberings of
    `anonymous_id` and `user_id` shared with the other scans)."""
    strings = ["event_name", "anonymous_id", "user_id"]
    people = {name: (people or {}).get(name) or Interner() for name in ("anonymous_id", "user_id")}
    events = Grouping({"date": pa.date32(), "event_name": pa.string()}, dict(people))
    for batch in chunks(out_dir, "events", ["ts", *strings], strings):
        cols = Columns({c: batch.column(c) for c in strings})
        for name, interner in people.items():
            cols.put("slots", name, interner.slots_of(batch.column(name)), batch.num_rows)
        ts, valid = local_micros(batch.column("ts"), timezone)
        cols.put("ints", "date", (np.floor_divide(ts, DAY_US), valid), batch.num_rows)
        events.add(cols)
    table = events.result("events", {"anonymous_id": "visitors", "user_id": "users"})
    return finish("events_by_day", table.sort_by([("date", "ascending"), ("events", "descending"),
                                                  ("event_name", "ascending")]))


def rejects_by_reason(out_dir: Path) -> pa.Table:
    """Rejected lines per reason."""
    rejects = Grouping({"reason": pa.string()})
    for batch in chunks(out_dir, "rejects", ["reason"], ["reason"]):
        rejects.add({"reason": batch.column("reason")})
    return finish("rejects_by_reason", top(rejects.result("rejects"), "rejects", ["reason"], None))
