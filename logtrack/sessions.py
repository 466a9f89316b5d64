"""Sessions: group each visitor's requests into visits, stitch logins, emit SESSIONS rows (DESIGN §4).

Usage, the whole chain over `pipeline.iter_parsed` batches (identify before privacy.apply, so an
email user id is hashed instead of becoming `REDACTED`; identify truncates IPs before hashing):

    config = load_config(path)
    ecfg, icfg = EnrichConfig.from_config(config), IdentityConfig.from_config(config)
    pcfg, scfg = PrivacyConfig.from_config(config, keep_ip=keep_ip), SessionConfig.from_config(config)
    salt = load_or_create_salt(state_dir(state_option), icfg.salt_env)
    sessionizer = Sessionizer(scfg)
    for batch in iter_parsed(inputs, options, stats):
        table = privacy.apply(identify(enrich(batch.requests, ecfg), icfg, salt), pcfg)
        out = sessionizer.push(table, batch.watermark)   # SessionOutput(requests, sessions)
        write(out.requests, out.sessions)
    write(*sessionizer.finish())

Rules. A visitor is `anonymous_id`, else `user_id`; rows with neither, opt-out rows, and bots or
static assets per `exclude` are emitted with a null session_id. A new session starts after more
than `timeout` of inactivity (exactly `timeout` continues); `mode: ua` also splits at midnight in
`timezone` and when a request carries UTM tags other than the session's latest (direct requests
never split). `session_id` hashes the visitor key and the session's first timestamp; `session_seq`
is the visitor's session number (1-based, within the run). A login is carried to the session's
requests before and after it (`user_id` stitched, `anonymous_id` kept). SESSIONS rows: landing and
exit path, referrer, channel and UTM of the first pageview (else first request), device of the
first request; pageviews = 2xx/304 GET/HEAD non-static non-bot page-like paths; is_bounce = one
pageview; is_engaged = over 10 s or ≥ 2 pageviews; `events` stays 0 (rules count events later).

Streaming. `push(table, watermark)` promises that later pushes hold no row older than `watermark -
reorder_window` (the cutoff). A session is emitted (its requests and its SESSIONS row) once nothing
can change it: its last request is more than `timeout` before the cutoff, the visitor's next
session started before the cutoff, or (ua mode) the cutoff is on a later local day; other rows are
emitted once older than the cutoff. Each output's requests are sorted by (ts, source, line). Memory
holds open sessions and the reorder window, plus 16 bytes per visitor seen (for session_seq); the
union of all outputs is the same whatever the batch sizes and watermark cadence. Rows older than an
earlier cutoff (later than promised) are still processed and counted in `late_rows`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import Config
from .enrich.static import is_page_path
from .schema import ENRICHED_REQUESTS, SESSIONS, conform, empty

_KEYS = {"timeout", "mode", "timezone", "exclude", "reorder_window"}
_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$")
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_US = 1_000_000


def parse_duration(value: object) -> timedelta | None:
    """`30m`, `1h30m`, `90s`, `10 min` or a number of seconds; None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(hours=h, minutes=mi, seconds=s)


@dataclass(frozen=True)
class SessionConfig:
    """Sessionization settings (defaults: GA4, 30 min, UTC, bots and static excluded, 10 min window)."""

    timeout: timedelta = timedelta(minutes=30)
    mode: str = "ga4"
    timezone: str = "UTC"
    exclude: tuple[str, ...] = ("bots", "static")
    reorder_window: timedelta = timedelta(minutes=10)

    @classmethod
    def from_config(cls, config: Config) -> SessionConfig:
        """Read and validate the `sessions` section (timezone falls back to the top-level key)."""
        sec = config.section("sessions")
        for key in sec:
            if key not in _KEYS:
                raise config.error(("sessions", key), f"unknown key {key!r} (known: {', '.join(sorted(_KEYS))})")
        kw: dict = {}
        for key in ("timeout", "reorder_window"):
            if key in sec:
                d = parse_duration(sec[key])
                if d is None or (key == "timeout" and d <= timedelta(0)):
                    raise config.error(("sessions", key), f"must be a duration like 30m, 1h or 90s, not {sec[key]!r}")
                kw[key] = d
        if "mode" in sec:
            if sec["mode"] not in ("ga4", "ua"):
                raise config.error(("sessions", "mode"), f"must be ga4 or ua, not {sec['mode']!r}")
            kw["mode"] = sec["mode"]
        tz, where = (sec["timezone"], ("sessions", "timezone")) if "timezone" in sec else (config.get("timezone"), ("timezone",))
        if tz is not None:
            try:
                ZoneInfo(str(tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise config.error(where, f"unknown time zone {tz!r} (use an IANA name like Europe/Berlin)") from None
            kw["timezone"] = str(tz)
        if "exclude" in sec:
            ex = sec["exclude"] or []
            if not isinstance(ex, list) or any(v not in ("bots", "static") for v in ex):
                raise config.error(("sessions", "exclude"), "must be a list of: bots, static")
            kw["exclude"] = tuple(ex)
        return cls(**kw)


class SessionOutput(NamedTuple):
    """What a push or finish emits: requests (ENRICHED_REQUESTS) and closed sessions (SESSIONS)."""

    requests: pa.Table
    sessions: pa.Table


# Internal columns the buffer carries next to ENRICHED_REQUESTS, computed once per row at push:
# visitor key, whether the row takes part in sessions, pageview flag, UTM tag set (ua mode).
_INTERNAL = pa.schema([("_key", pa.string()), ("_eligible", pa.bool_()), ("_pv", pa.bool_()), ("_utm", pa.string())])
_BUFFER = pa.schema([pa.field(f.name, f.type) for f in [*ENRICHED_REQUESTS, *_INTERNAL]])  # all nullable


def _chunk(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    return col


def _ints(col: pa.ChunkedArray | pa.Array, null: int) -> np.ndarray:
    return pc.fill_null(pc.cast(col, pa.int64()), null).to_numpy()


def _bools(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.fill_null(col, False).to_numpy(zero_copy_only=False)


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Integer codes (-1 for null) and the dictionary of a string column."""
    enc = pc.dictionary_encode(_chunk(col))
    return pc.fill_null(enc.indices, -1).to_numpy().astype(np.int64), enc.dictionary


def _local_days(ts_us: np.ndarray, tz: str) -> np.ndarray:
    local = pd.DatetimeIndex(ts_us.astype("datetime64[us]")).tz_localize("UTC").tz_convert(tz)
    return local.tz_localize(None).values.astype("datetime64[D]").astype(np.int64)


def _ffill_index(valid: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """For each position, the last valid position at or before it within its group, else -1."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    last = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(last >= group_start, last, -1)


def pageview_mask(table: pa.Table) -> np.ndarray:
    """Successful (2xx/304) GET/HEAD requests for page-like, non-static paths from non-bots."""
    status = _ints(table.column("status"), 0)
    ok = ((status >= 200) & (status < 300)) | (status == 304)
    ok &= _bools(pc.is_in(table.column("method"), pa.array(["GET", "HEAD"])))
    ok &= ~_bools(table.column("is_bot")) & ~_bools(table.column("is_static"))
    candidates = np.flatnonzero(ok)  # the path regex only runs where it can matter
    ok[candidates] = _bools(is_page_path(_chunk(table.column("path")).take(pa.array(candidates))))
    return ok


class Sessionizer:
    """Stateful, vectorized sessionization across pushes (see the module docstring)."""

    def __init__(self, cfg: SessionConfig | None = None) -> None:
        """Start with no visitors and an empty buffer."""
        self.cfg = cfg or SessionConfig()
        self._pending = empty(_BUFFER)
        self._cutoff: int | None = None  # µs since the epoch, UTC
        self._seen = np.empty(0, np.uint64)  # sorted visitor hashes …
        self._counts = np.empty(0, np.int64)  # … and their sessions emitted so far
        self._timeout = int(self.cfg.timeout / timedelta(microseconds=1))
        self._window = int(self.cfg.reorder_window / timedelta(microseconds=1))
        self.late_rows = 0

    @property
    def buffered_rows(self) -> int:
        """Rows held back (open sessions and the reorder window)."""
        return self._pending.num_rows

    def push(self, table: pa.Table, watermark: pd.Timestamp | None) -> SessionOutput:
        """Add enriched, identified requests; emit what the watermark makes final."""
        batch = conform(table, ENRICHED_REQUESTS)
        if self._cutoff is not None and batch.num_rows:
            self.late_rows += int((_ints(batch.column("ts"), 0) < self._cutoff).sum())
        if batch.num_rows:
            self._pending = pa.concat_tables([self._pending, self._derive(batch)])
        if watermark is not None:
            w = pd.Timestamp(watermark)
            w = w.tz_localize("UTC") if w.tzinfo is None else w.tz_convert("UTC")
            cutoff = (w - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1) - self._window
            self._cutoff = cutoff if self._cutoff is None else max(self._cutoff, cutoff)
        return self._emit(final=False)

    def finish(self) -> SessionOutput:
        """Close every session and emit everything still buffered."""
        out = self._emit(final=True)
        self._pending = empty(_BUFFER)
        return out

    def _derive(self, batch: pa.Table) -> pa.Table:  # the batch plus the internal columns
        anon, user = batch.column("anonymous_id"), batch.column("user_id")
        key = pc.coalesce(pc.binary_join_element_wise("a:", anon, ""), pc.binary_join_element_wise("u:", user, ""))
        ok = pc.and_(pc.is_valid(key), pc.invert(pc.fill_null(pc.equal(batch.column("consent"), "denied"), False)))
        if "bots" in self.cfg.exclude:
            ok = pc.and_(ok, pc.invert(pc.fill_null(batch.column("is_bot"), False)))
        if "static" in self.cfg.exclude:
            ok = pc.and_(ok, pc.invert(pc.fill_null(batch.column("is_static"), False)))
        utm = pa.nulls(batch.num_rows, pa.string())
        if self.cfg.mode == "ua":
            joined = pc.binary_join_element_wise(*[pc.fill_null(batch.column(c), "") for c in _UTM], "\x1f")
            tagged = pc.or_(pc.or_(pc.is_valid(batch.column("utm_source")), pc.is_valid(batch.column("utm_medium"))),
                            pc.is_valid(batch.column("utm_campaign")))
            utm = pc.if_else(tagged, joined, pa.scalar(None, pa.string()))
        derived = {"_key": key, "_eligible": ok, "_pv": pa.array(pageview_mask(batch)), "_utm": utm}
        return pa.Table.from_arrays([*batch.columns, *derived.values()], schema=_BUFFER)

    def _emit(self, final: bool) -> SessionOutput:
        p = self._pending
        if p.num_rows == 0 or (self._cutoff is None and not final):
            return SessionOutput(empty(ENRICHED_REQUESTS), empty(SESSIONS))
        ts = _ints(p.column("ts"), 0)
        # Output order is (ts, source, line), nulls first; sources ranked by name.
        scode, sdict = _codes(p.column("source"))
        rank_of = np.argsort(np.argsort(np.array(sdict.to_pylist(), dtype=object))) if len(sdict) else np.zeros(1, np.int64)
        srank = np.where(scode >= 0, rank_of[np.maximum(scode, 0)], -1)
        line = _ints(p.column("line"), -1)
        cutoff = np.iinfo(np.int64).max if final else self._cutoff
        eligible = _bools(p.column("_eligible"))
        out_other = np.flatnonzero(~eligible & (ts < cutoff))
        sess_rows, sessions, cols = self._sessionize(p, np.flatnonzero(eligible), ts, srank, line, cutoff, final)
        emitted = np.concatenate([out_other, sess_rows])
        keep = np.ones(p.num_rows, bool)
        keep[emitted] = False
        self._pending = p.filter(keep)
        if self._pending.column("ts").num_chunks > 8:  # takes over many small chunks get slow
            self._pending = self._pending.combine_chunks()
        order = np.lexsort((line[emitted], srank[emitted], ts[emitted]))
        requests = p.select(ENRICHED_REQUESTS.names).take(emitted[order])  # one wide take per push
        # Rows outside sessions keep their user_id and get null session columns.
        before = {"session_id": pa.nulls(len(out_other), pa.string()), "session_seq": pa.nulls(len(out_other), pa.int32()),
                  "user_id": _chunk(p.column("user_id").take(out_other))}
        for name, head in before.items():
            values = pa.concat_arrays([head, cols.get(name, pa.array([], head.type))])
            requests = requests.set_column(requests.column_names.index(name), ENRICHED_REQUESTS.field(name),
                                           pc.take(values, order))
        return SessionOutput(requests, sessions)

    def _sessionize(self, p: pa.Table, rows: np.ndarray, ts_all: np.ndarray, srank: np.ndarray,
                    line: np.ndarray, cutoff: int, final: bool) -> tuple[np.ndarray, pa.Table, dict[str, pa.Array]]:
        """Sessions over the eligible rows: (rows emitted, SESSIONS table, new column values).

        Everything runs on integer codes in "sorted space" (eligible rows sorted by visitor, ts,
        source, line); `rows` maps it back to buffer positions, so strings are only gathered
        for the rows and sessions that are emitted.
        """
        nothing = (np.empty(0, np.int64), empty(SESSIONS), {})
        if len(rows) == 0:
            return nothing
        kcode_all, kdict = _codes(p.column("_key"))
        order = np.lexsort((line[rows], srank[rows], ts_all[rows], kcode_all[rows]))
        rows = rows[order]
        k, t = kcode_all[rows], ts_all[rows]
        n = len(rows)
        new_visitor = np.ones(n, bool)
        new_visitor[1:] = k[1:] != k[:-1]
        brk = new_visitor.copy()
        brk[1:] |= (t[1:] - t[:-1]) > self._timeout
        if self.cfg.mode == "ua":
            days = _local_days(t, self.cfg.timezone)
            brk[1:] |= days[1:] != days[:-1]
            brk |= self._campaign_splits(_codes(p.column("_utm"))[0][rows], brk)
        starts = np.flatnonzero(brk)
        ends = np.append(starts[1:], n) - 1
        group = np.cumsum(brk) - 1
        # Which sessions nothing can change any more (see the module docstring).
        if final:
            done = np.ones(len(starts), bool)
        else:
            next_start = np.append(t[starts[1:]], np.iinfo(np.int64).max)
            same_visitor_next = np.append(~new_visitor[starts[1:]], False)
            done = (t[ends] < cutoff - self._timeout) | (same_visitor_next & (next_start < cutoff))
            if self.cfg.mode == "ua":
                done |= _local_days(np.array([cutoff]), self.cfg.timezone)[0] > _local_days(t[ends], self.cfg.timezone)
        if not done.any():
            return nothing
        # session_seq: per visitor, counting on from what earlier pushes emitted. Only the
        # visitors of done sessions are hashed (64-bit, pandas' vectorized SipHash).
        svis = k[starts]
        first_of_visitor = np.ones(len(starts), bool)
        first_of_visitor[1:] = svis[1:] != svis[:-1]
        rank = np.arange(len(starts)) - np.maximum.accumulate(np.where(first_of_visitor, np.arange(len(starts)), 0))
        done_vis, inverse = np.unique(svis[done], return_inverse=True)
        vkeys = kdict.take(pa.array(done_vis)).to_pylist()
        vhash = pd.util.hash_array(np.array(vkeys, dtype=object))[inverse]
        seq = np.zeros(len(starts), np.int64)
        seq[done] = self._base_counts(vhash) + rank[done] + 1
        self._add_counts(vhash)
        # Stitch user ids within each session: forward, then backward.
        ucode_all, udict = _codes(p.column("user_id"))
        ucode = ucode_all[rows]
        valid = ucode >= 0
        fwd = _ffill_index(valid, starts[group])
        rev = _ffill_index(valid[::-1], (n - 1 - ends[group])[::-1])[::-1]
        bwd = np.where(rev >= 0, n - 1 - rev, -1)
        src = np.where(fwd >= 0, fwd, bwd)
        stitched = np.where(src >= 0, ucode[np.maximum(src, 0)], -1)
        # Keep only rows of sessions that are done.
        row_done = done[group]
        sel = np.flatnonzero(row_done)
        ids = [hashlib.blake2b(f"{vkeys[v]}\x1f{s}".encode(), digest_size=16).hexdigest()
               for v, s in zip(inverse.tolist(), t[starts[done]].tolist(), strict=True)]  # once per session
        sid_of = np.full(len(starts), -1, np.int64)
        sid_of[done] = np.arange(int(done.sum()))
        sid_arr = pa.array(ids, pa.string())
        cols = {
            "session_id": pc.take(sid_arr, pa.array(sid_of[group[sel]])),
            "session_seq": pa.array(seq[group[sel]].astype(np.int32)),
            "user_id": pc.take(udict, pa.array(stitched[sel], mask=stitched[sel] < 0)),
        }
        pv = _bools(p.column("_pv"))[rows]
        sessions = self._session_rows(p, rows, pv, starts, ends, done, sid_arr, cols["user_id"], sel, t)
        return rows[sel], sessions, cols

    def _campaign_splits(self, code: np.ndarray, brk: np.ndarray) -> np.ndarray:
        """UA mode: a request whose UTM tags (code, -1 = none) differ from the latest ones in its session."""
        seg_start = np.flatnonzero(brk)[np.cumsum(brk) - 1]
        last = _ffill_index(code >= 0, seg_start)
        prev = np.full(len(code), -1)
        prev[1:] = np.where(last[:-1] >= 0, code[np.maximum(last[:-1], 0)], -1)
        split = (code >= 0) & (code != prev)
        return split & ~brk

    def _lookup(self, vhash: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self._seen, vhash)
        found = pos < len(self._seen)
        found[found] = self._seen[pos[found]] == vhash[found]
        return pos, found

    def _base_counts(self, vhash: np.ndarray) -> np.ndarray:
        pos, found = self._lookup(vhash)
        return np.where(found, self._counts[np.where(found, pos, 0)] if len(self._counts) else 0, 0)

    def _add_counts(self, vhash: np.ndarray) -> None:
        uniq, n = np.unique(vhash, return_counts=True)
        pos, found = self._lookup(uniq)
        self._counts[pos[found]] += n[found]
        self._seen = np.insert(self._seen, pos[~found], uniq[~found])
        self._counts = np.insert(self._counts, pos[~found], n[~found])

    def _session_rows(self, p: pa.Table, rows: np.ndarray, pv: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      done: np.ndarray, sid: pa.Array, stitched: pa.Array, sel: np.ndarray, t: np.ndarray) -> pa.Table:
        """One SESSIONS row per done session; starts/ends (all sessions) index sorted space."""
        n = len(t)
        pv_cum = np.concatenate([[0], np.cumsum(pv)])
        pageviews = pv_cum[ends + 1] - pv_cum[starts]
        first_pv = np.minimum.reduceat(np.where(pv, np.arange(n), n), starts)
        last_pv = np.maximum.reduceat(np.where(pv, np.arange(n), -1), starts)
        landing = np.where(pageviews > 0, first_pv, starts)[done]
        exit_ = np.where(pageviews > 0, last_pv, ends)[done]
        starts, ends, pageviews = starts[done], ends[done], pageviews[done]
        duration = (t[ends] - t[starts]) / _US
        first, last, land, exit_rows = (pa.array(rows[i]) for i in (starts, ends, landing, exit_))
        cols: dict[str, pa.Array] = {
            "session_id": sid,
            # The stitched user of the session's first request (its first login).
            "user_id": pc.take(stitched, pa.array(np.searchsorted(sel, starts))),
            "anonymous_id": pc.take(p.column("anonymous_id"), first),
            "start": pc.take(p.column("ts"), first),
            "end": pc.take(p.column("ts"), last),
            "duration_s": pa.array(duration),
            "requests": pa.array(ends - starts + 1),
            "pageviews": pa.array(pageviews),
            "events": pa.array(np.zeros(len(starts), np.int64)),
            "landing_path": pc.take(p.column("path"), land),
            "exit_path": pc.take(p.column("path"), exit_rows),
            "is_bounce": pa.array(pageviews == 1),
            "is_engaged": pa.array((duration > 10) | (pageviews >= 2)),
        }
        for name in ("referer_host", "channel") + _UTM:
            cols[name] = pc.take(p.column(name), land)
        for name in ("browser", "os", "device", "host"):
            cols[name] = pc.take(p.column(name), first)
        table = conform(pa.table(cols), SESSIONS)
        return table.take(pc.sort_indices(table, [("start", "ascending"), ("session_id", "ascending")]))
