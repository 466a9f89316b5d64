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

Rules. A visitor is `anonymous_id`, else `user_id`; rows with neither, opt-out rows, lines whose
request was not `METHOD TARGET PROTOCOL` (null path, DESIGN §2), and bots or static assets per
`exclude` are emitted with a null session_id. A new session starts after more
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
emitted once older than the cutoff. A session's requests all come in the output that carries its
SESSIONS row. A push's output holds its requests in the order they were pushed (an earlier pushed
table's rows first, each table's rows in their own order), which is the order they are stored in:
the push gathers them with one pass over each stored table instead of a gather across all of them
(consumers that need time order sort what they process as a whole, as rules do). `finish()`'s one
output is sorted by (ts, source, line): consumers may cut it into slices (`run.Chain` does), and a
session cut across slices then still shows its earliest request first. Memory holds the rows of
open sessions and the reorder window (pushed tables are compacted in place once less than a
quarter of their rows is held: at most 4x those rows), plus 16 bytes per visitor seen (for
session_seq); the union of all outputs is the same whatever the batch sizes and watermark cadence.
Rows older than an earlier cutoff (later than promised) are still processed and counted in
`late_rows`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .enrich import encoding
from .enrich.static import PAGEVIEW_METHODS, is_page_path, pageview_rows
from .rowstore import RowStore, remap
from .schema import ENRICHED_REQUESTS, SESSIONS, conform, empty
from .sessionconfig import SessionConfig, parse_duration  # noqa: F401  (parse_duration: re-exported)
from .sessionemit import Closed, assemble, inverse
from .sessionstore import (
    HAS_USER,
    PAGEVIEW,
    TAGGED,
    Cols,
    VisitorCounts,
    bools,
    campaign_splits,
    chunk,
    hashes,
    in_order,
    ints,
    local_days,
    merge_sorted,
    rank_lines,
    rerank,
    row_order,
    select,
    stitch,
)

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


_STORED = [n for n in ENRICHED_REQUESTS.names if n not in ("session_id", "session_seq")]
_STORED_SCHEMA = pa.schema([pa.field(n, ENRICHED_REQUESTS.field(n).type) for n in _STORED])
_VISITOR_KEYS = ("0123456789123456", "6543210987654321")  # SipHash keys: anonymous ids, user ids


class SessionOutput(NamedTuple):
    """What a push or finish emits: requests (ENRICHED_REQUESTS) and closed sessions (SESSIONS)."""

    requests: pa.Table
    sessions: pa.Table


_NONE = SessionOutput(empty(ENRICHED_REQUESTS), empty(SESSIONS))  # tables are immutable: one will do


def pageview_mask(table: pa.Table, among: np.ndarray | None = None, memo: dict[str, bool] | None = None,
                  constants: dict[str, object] | None = None) -> np.ndarray:
    """Successful (2xx/304) GET/HEAD requests for page-like, non-static paths from non-bots
    (only rows `among` are tested when given; the others are False). `memo` remembers the
    verdict per path across calls (a run sees the same paths again and again); `constants`
    names columns known to hold one value in every row (`RowStore.constants`): tested once."""
    method = (constants or {}).get("method")
    if method is not None:
        method_ok = np.bool_(method in PAGEVIEW_METHODS)
    else:
        method_ok = bools(pc.is_in(table.column("method"), value_set=pa.array(PAGEVIEW_METHODS)))
    ok = pageview_rows(ints(table.column("status"), 0), method_ok,
                       bools(table.column("is_bot")), bools(table.column("is_static")))
    if among is not None:
        ok &= among
    candidates = np.flatnonzero(ok)  # the path test runs only where it matters, once per distinct path
    # The column's dictionary encoding is the one enrich made of this very array (`encoding.memo`):
    # only the distinct paths of the candidates are looked at.
    enc = encoding.encode(chunk(table.column("path")))
    codes = encoding.codes(enc.indices)[candidates]  # -1: null path, never a page
    present = np.zeros(len(enc.dictionary) + 1, bool)  # the last slot: null paths (code -1)
    present[codes] = True
    needed = np.flatnonzero(present[:-1])
    paths = enc.dictionary.take(pa.array(needed))
    if memo is None:
        page = bools(is_page_path(paths))
    else:
        if len(memo) > 200_000:
            memo.clear()
        texts = paths.to_pylist()
        new = [p for p in texts if p not in memo]
        if new:
            memo.update(zip(new, bools(is_page_path(pa.array(new, pa.string()))).tolist(), strict=True))
        page = np.array([memo[p] for p in texts], bool)
    verdict = np.zeros(len(enc.dictionary) + 1, bool)  # the last slot: null paths (code -1)
    verdict[needed] = page
    ok[candidates] = verdict[codes]
    return ok


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _stitched(has_user: np.ndarray, ss: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`stitch` over rows grouped in whole sessions (first rows `ss`, `lengths`), run only on
    the sessions with a login (the others have no row to stitch from: -1 throughout)."""
    src = np.full(len(has_user), -1, np.int64)
    logged = np.add.reduceat(has_user, ss) > 0 if len(ss) else np.zeros(0, bool)
    if not logged.any():
        return src
    rows = np.flatnonzero(np.repeat(logged, lengths))
    sub_len = lengths[logged]
    sub_ss = np.repeat(np.cumsum(sub_len) - sub_len, sub_len)
    found = stitch(has_user[rows], sub_ss, sub_ss + np.repeat(sub_len, sub_len) - 1)
    src[rows] = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    return src


def _micros(when: datetime) -> int:
    """µs since the epoch of a datetime (a pandas Timestamp is one); naive means UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


@lru_cache(maxsize=16)
def _conforms(schema: pa.Schema) -> bool:
    """Whether a table with `schema` has every stored column with its ENRICHED_REQUESTS type."""
    names = set(schema.names)
    return all(f.name in names and schema.field(f.name).type == f.type for f in _STORED_SCHEMA)


def _stored(table: pa.Table) -> pa.Table:
    """The columns the store keeps, as ENRICHED_REQUESTS types, one chunk each (a gather from a
    column of many chunks would first copy them all into one, at every push that emits a row)."""
    if not _conforms(table.schema):
        table = conform(table, ENRICHED_REQUESTS)
    return pa.Table.from_arrays([chunk(table.column(n)) for n in _STORED], schema=_STORED_SCHEMA)


class Sessionizer:
    """Stateful, vectorized sessionization across pushes (see the module docstring).

    Rows are kept as pushed (`RowStore`); the work is numeric. Rows in sessions are held as arrays
    sorted by (visitor hash, ts, source rank and line), so a push merges its own sorted rows in by
    binary search on the visitor hash (rows that came out of order by packed byte keys): no push
    sorts, copies or re-encodes strings of the whole buffer. The rows a push emits are gathered
    once (`RowStore.take`); stitched user ids, session ids and SESSIONS rows are derived from
    that gather and numbers (`sessionemit`).
    """

    def __init__(self, cfg: SessionConfig | None = None) -> None:
        """Start with no visitors and an empty buffer."""
        self.cfg = cfg or SessionConfig()
        self._rows = RowStore(_STORED_SCHEMA)
        self._open: Cols = {}  # rows in sessions: vh, ts, rl, pos, flags [, utm, day], sorted by (vh, ts, rl)
        self._waiting: Cols = {}  # rows outside sessions (ts, rl, pos) until older than the cutoff
        self._sources: dict[str, int] = {}  # source names seen -> rank by name (in insertion order)
        self._cutoff: int | None = None  # µs since the epoch, UTC
        self._seen = VisitorCounts()  # sessions emitted so far per visitor hash
        self._pages: dict[str, bool] = {}  # path -> page-like (pageview_mask's memo)
        self._timeout = int(self.cfg.timeout / timedelta(microseconds=1))
        self._window = int(self.cfg.reorder_window / timedelta(microseconds=1))
        self.late_rows = 0

    @property
    def buffered_rows(self) -> int:
        """Rows held back (open sessions and the reorder window)."""
        return sum(len(c.get("ts", ())) for c in (self._open, self._waiting))

    def push(self, table: pa.Table, watermark: datetime | None, drop: np.ndarray | None = None) -> SessionOutput:
        """Add enriched, identified requests; emit what the watermark makes final.

        Rows where `drop` is True are discarded as if they had not been pushed (the chain's
        rule exclusions): dropping them here costs nothing, filtering the wide table first
        would copy every other row of it."""
        if table.num_rows:
            self._add(_stored(table), drop if drop is not None and drop.any() else None)
        if watermark is not None:
            cutoff = _micros(watermark) - self._window
            self._cutoff = cutoff if self._cutoff is None else max(self._cutoff, cutoff)
        return self._emit(final=False)

    def finish(self) -> SessionOutput:
        """Close every session and emit everything still buffered."""
        out = self._emit(final=True)
        self._rows, self._open, self._waiting = RowStore(_STORED_SCHEMA), {}, {}
        return out

    def _add(self, batch: pa.Table, drop: np.ndarray | None = None) -> None:
        """Numeric state of a batch's rows: rows in sessions merged into `_open`, others wait
        (rows to `drop` do neither, and their positions are released at once)."""
        ts = ints(batch.column("ts"), 0)
        if self._cutoff is not None:
            late = ts < self._cutoff
            self.late_rows += int((late if drop is None else late & ~drop).sum())
        anon, user = chunk(batch.column("anonymous_id")), chunk(batch.column("user_id"))
        by_anon, by_user = pc.is_valid(anon), pc.is_valid(user)
        ok = pc.or_(by_anon, by_user)
        consent = batch.column("consent")
        if consent.null_count < len(consent):  # usually none: consent signals are rare in logs
            ok = pc.and_(ok, pc.invert(pc.fill_null(pc.equal(consent, "denied"), False)))
        # A line whose request was not METHOD TARGET PROTOCOL (path null) is no visit (DESIGN §2).
        ok = pc.and_(ok, pc.is_valid(batch.column("path")))
        for flag, column in (("bots", "is_bot"), ("static", "is_static")):
            if flag in self.cfg.exclude:
                ok = pc.and_(ok, pc.invert(pc.fill_null(batch.column(column), False)))
        eligible = bools(ok)
        pos = self._rows.add(batch)
        constants = self._rows.constants()
        rl = rank_lines(self._source_ranks(batch.column("source"), constants.get("source")), ints(batch.column("line"), -1))
        waits = ~eligible
        if drop is not None:
            eligible &= ~drop
            waits &= ~drop
            self._rows.forget(pos[drop])
        wait = select({"ts": ts, "rl": rl, "pos": pos}, waits)
        self._waiting = {k: np.concatenate([self._waiting[k], a]) for k, a in wait.items()} if self._waiting else wait
        rows = np.flatnonzero(eligible)
        if not len(rows):
            return
        # The visitor is anonymous_id, else user_id: each hashed once per distinct value, with a
        # key of its own, instead of building `a:…`/`u:…` strings per row.
        anon_rows = bools(by_anon) & eligible  # only the rows in sessions are hashed
        vh = np.where(anon_rows, hashes(anon, _VISITOR_KEYS[0], anon_rows),
                      hashes(user, _VISITOR_KEYS[1], eligible & ~anon_rows))[rows]
        flags = np.where(pageview_mask(batch, eligible, self._pages, constants)[rows], PAGEVIEW, 0).astype(np.uint8)
        flags |= np.where(bools(by_user)[rows], HAS_USER, 0).astype(np.uint8)
        order = row_order(vh, ts[rows], rl[rows])
        rows = rows[order]
        new = {"vh": vh[order], "ts": ts[rows], "rl": rl[rows], "pos": pos[rows], "flags": flags[order]}
        if self.cfg.mode == "ua":
            part = batch.select(_UTM).take(pa.array(rows))
            joined = pc.binary_join_element_wise(*[pc.fill_null(part.column(c), "") for c in _UTM], "\x1f")
            tagged = bools(pc.or_(pc.or_(pc.is_valid(part.column("utm_source")), pc.is_valid(part.column("utm_medium"))),
                                   pc.is_valid(part.column("utm_campaign"))))
            new["flags"] |= np.where(tagged, TAGGED, 0).astype(np.uint8)
            new |= {"utm": hashes(joined, _VISITOR_KEYS[0]), "day": local_days(new["ts"], self.cfg.timezone)}
        self._open = merge_sorted(self._open, new) if self._open else new

    def _source_ranks(self, col: pa.ChunkedArray, constant: object = None) -> np.ndarray:
        """Rank of each row's source name among the names seen (-1 for null); a new name re-ranks
        the buffered rows (order between known names never changes). `constant`: the one name
        every row holds, when the row store found one."""
        col = chunk(col)
        if constant in self._sources:  # one known source: the usual batch
            return np.full(len(col), self._sources[constant], np.int64)
        if col.null_count == 0 and len(col) and (one := col[0].as_py()) in self._sources and pc.all(pc.equal(col, one)).as_py():
            return np.full(len(col), self._sources[one], np.int64)
        enc = pc.dictionary_encode(col)
        names = enc.dictionary.to_pylist()
        if not self._sources.keys() >= set(names):
            old = self._sources
            self._sources = {name: i for i, name in enumerate(sorted(old.keys() | set(names)))}
            remap = np.array([self._sources[n] for n in old] + [-1], np.int64)  # old rank -> new; -1 stays
            for cols in (self._open, self._waiting):
                if cols:
                    cols["rl"] = rerank(cols["rl"], remap)
        ranks = np.array([self._sources[n] for n in names] + [-1], np.int64)
        return ranks[pc.fill_null(enc.indices, len(names)).to_numpy()]

    def _emit(self, final: bool) -> SessionOutput:
        """The rows and sessions nothing can change any more (see the module docstring)."""
        if not self.buffered_rows or (self._cutoff is None and not final):
            return _NONE
        cutoff = np.iinfo(np.int64).max if final else self._cutoff
        pos = np.empty(0, np.int64)
        keys = [self._waiting, self._open]  # finish: every row's (ts, rl), in the order of `pos` below
        if self._waiting:
            ready = self._waiting["ts"] < cutoff
            pos = self._waiting["pos"][np.flatnonzero(ready)]
            self._waiting = select(self._waiting, ~ready)
        done, closed = self._close(cutoff, final)
        n_other = len(pos)
        pos = np.concatenate([pos, done]) if len(done) else pos
        if not len(pos):
            return _NONE
        # A push emits its rows in the order they were pushed, the order they are stored in: the
        # one wide gather of a push reads each stored table once, in order.
        pos, at = in_order(pos)  # at: the output row of each emitted row (others, then done)
        if final:  # finish's one output, which consumers may cut into slices: sorted throughout
            # (ts, source, line) order is known from the numbers the rows are held with (`rl`
            # ranks sources by name, as the output's own names would), so the rows are gathered
            # once, in that order, instead of gathered and then reordered.
            ts, rl = (np.empty(len(pos), np.int64) for _ in range(2))
            ts[at] = np.concatenate([k["ts"] for k in keys if k])
            rl[at] = np.concatenate([k["rl"] for k in keys if k])
            order = np.lexsort((rl, ts))
            table, at = self._rows.take(pos, order), inverse(order)[at]
        else:
            table = self._rows.take(pos)
        requests, sessions = assemble(table, at[n_other:], closed)
        moved = self._rows.release(pos)
        if moved is not None:
            for cols in (self._open, self._waiting):
                if cols:
                    cols["pos"] = remap(cols["pos"], moved)
        return SessionOutput(requests, sessions)

    def _close(self, cutoff: int, final: bool) -> tuple[np.ndarray, Closed | None]:
        """Take the sessions nothing can change any more out of `_open`: their rows' positions,
        grouped by session, and what `sessionemit.assemble` needs to know about them."""
        o = self._open
        if not o or not len(o["ts"]):
            return np.empty(0, np.int64), None
        t, n = o["ts"], len(o["ts"])
        vh = o["vh"]
        new_visitor = np.ones(n, bool)
        new_visitor[1:] = vh[1:] != vh[:-1]
        brk = new_visitor.copy()
        brk[1:] |= (t[1:] - t[:-1]) > self._timeout
        if self.cfg.mode == "ua":
            brk[1:] |= o["day"][1:] != o["day"][:-1]
            brk |= campaign_splits((o["flags"] & TAGGED) != 0, o["utm"], brk)
        starts = np.flatnonzero(brk)
        ends = np.append(starts[1:], n) - 1
        if final:
            done = np.ones(len(starts), bool)
        else:
            next_start = np.append(t[starts[1:]], np.iinfo(np.int64).max)
            same_visitor_next = np.append(~new_visitor[starts[1:]], False)
            done = (t[ends] < cutoff - self._timeout) | (same_visitor_next & (next_start < cutoff))
            if self.cfg.mode == "ua":
                done |= local_days(np.array([cutoff]), self.cfg.timezone)[0] > o["day"][ends]
        if not done.any():
            return np.empty(0, np.int64), None
        # session_seq: per visitor, counting on from what earlier pushes emitted. A visitor's
        # done sessions are always its first ones in the buffer.
        idx = np.arange(len(starts))
        which = np.flatnonzero(done)  # indices, not the mask: numpy's boolean indexing branches per item
        rank = (idx - np.maximum.accumulate(np.where(new_visitor[starts], idx, 0)))[which]
        done_starts, done_ends = starts[which], ends[which]
        seq = self._seen.add(vh[done_starts]) + rank + 1
        row_done = np.repeat(done, ends - starts + 1)
        d = select({k: o[k] for k in ("pos", "flags")}, row_done) if not final else o
        self._open = select(o, ~row_done) if not final else {}
        # From here on, in the done rows' own index space (sessions are whole blocks of it).
        lengths = done_ends - done_starts + 1
        ss = np.cumsum(lengths) - lengths
        se = ss + lengths - 1
        group = np.repeat(np.arange(len(ss)), lengths)
        has_user = (d["flags"] & HAS_USER) != 0
        pv = (d["flags"] & PAGEVIEW) != 0
        pv_cum = np.concatenate([[0], np.cumsum(pv)])
        pageviews = pv_cum[se + 1] - pv_cum[ss]
        # A session's first and last pageview are its entries in the list of pageview rows.
        pv_rows = np.append(np.flatnonzero(pv), -1)  # (the -1 slot: read by sessions without one)
        has_pv = pageviews > 0
        landing = np.where(has_pv, pv_rows[np.where(has_pv, pv_cum[ss], -1)], ss)
        exit_ = np.where(has_pv, pv_rows[np.where(has_pv, pv_cum[se + 1] - 1, -1)], se)
        closed = Closed(group=group, src=_stitched(has_user, ss, lengths), has_user=has_user, ss=ss, se=se,
                        landing=landing, exit=exit_, pageviews=pageviews, seq=seq, start=t[done_starts], end=t[done_ends])
        return d["pos"], closed
