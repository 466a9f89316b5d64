"""The delivery engine shared by every destination (DESIGN §6 "Destinations").

Per chunk of events: select by time, drop duplicates, ask the ledger what was delivered, refused
or left in flight by a crash, let the destination validate and encode (vectorized), cut batches
within the API's count and byte limits, and send them with at most `concurrency` requests in
flight over one pooled httpx client. Each batch is committed to the ledger as in flight before it
is sent and as acknowledged when the answer arrives (in the main thread: one SQLite writer).
Retries: connection errors, timeouts, 408, 429 (Retry-After honoured) and 5xx, with exponential
backoff and jitter; other 4xx are never retried; 413 splits the batch in halves.
"""

from __future__ import annotations

import email.utils
import gzip
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import EVENTS, conform
from ..state import state_dir
from .base import Destination, Prepared, Redactor
from .ledger import LEDGER_FILE, Ledger, SenderLock
from .summary import SendOptions, SendSummary

RETRY_STATUSES = frozenset({408, 429})  # plus every 5xx
FATAL_STATUSES = frozenset({401, 403, 404})  # credentials or endpoint wrong: stop the run
INVALID_STATUSES = frozenset({400, 422})  # the payload was refused: kept as rejected


def make_batches(prep: Prepared, max_events: int, max_bytes: int) -> list[tuple[int, int, int]]:
    """Cut units into `(group, start, end)` batches: one envelope each, at most `max_events` API
    calls and `max_bytes` of body. A loop per batch over cumulative sums (not per event)."""
    n = len(prep.event_ids)
    if not n:
        return []
    sizes = np.asarray(pc.fill_null(pc.binary_length(prep.items), 0), dtype=np.int64) + 1  # comma
    csize = np.concatenate([[0], np.cumsum(sizes)])
    ccount = np.concatenate([[0], np.cumsum(prep.counts)])
    bounds = np.flatnonzero(np.diff(prep.groups)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    out = []
    for gs, ge in zip(starts.tolist(), ends.tolist(), strict=True):
        group = int(prep.groups[gs])
        room = max_bytes - prep.overhead[group]
        s = gs
        while s < ge:
            e_count = int(np.searchsorted(ccount, ccount[s] + max_events, side="right")) - 1
            e_size = int(np.searchsorted(csize, csize[s] + room, side="right")) - 1
            e = max(s + 1, min(ge, e_count, e_size))  # an oversized unit still goes alone (413)
            out.append((group, s, e))
            s = e
    return out


@dataclass
class Outcome:
    """What happened to one batch (filled by a worker thread, recorded by the main thread)."""

    event_ids: list[str]
    acked: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    fatal: str | None = None
    requests: int = 0
    retries: int = 0
    splits: int = 0


class Sender:
    """Sends batches of one destination with retries (thread-safe: workers share the client)."""

    def __init__(self, dest: Destination, opts: SendOptions, redact: Redactor) -> None:
        self.dest, self.opts, self.redact = dest, opts, redact
        limits = httpx.Limits(max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency)
        self.client = httpx.Client(limits=limits, timeout=httpx.Timeout(opts.timeout, connect=10.0))
        self.rng = random.Random()

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()

    def send(self, envelope: Any, items: list[str], ids: list[str]) -> Outcome:
        """Deliver one batch; 413 splits it; returns per-event results, never raises for HTTP."""
        out = Outcome(event_ids=ids)
        stack = [(0, len(items))]
        while stack:
            s, e = stack.pop()
            if out.fatal:
                out.failed.extend((i, out.fatal) for i in ids[s:e])
                continue
            result = self._post(envelope, items[s:e], out)
            if isinstance(result, str):
                out.failed.extend((i, result) for i in ids[s:e])
                continue
            code = result.status_code
            if 200 <= code < 300:
                verdict = self.dest.read_response(code, result.content, e - s, self.opts.validate)
                for idx, text in verdict.messages:
                    where = ids[s + idx] if idx is not None else f"batch of {e - s} from {ids[s]}"
                    out.messages.append(f"{where}: {text}")
                for k in range(s, e):
                    reason = verdict.rejected.get(k - s)
                    if reason is None:
                        out.acked.append(ids[k])
                    else:
                        out.rejected.append((ids[k], reason))
            elif code == 413:
                if e - s > 1:
                    mid = (s + e) // 2
                    stack += [(mid, e), (s, mid)]
                    out.splits += 1
                else:
                    out.rejected.append((ids[s], "rejected by the API as too large (HTTP 413)"))
            elif code in FATAL_STATUSES:
                out.fatal = f"HTTP {code} from {self.dest.name}: {self._snippet(result)} (check credentials and --endpoint)"
                out.failed.extend((i, f"HTTP {code}") for i in ids[s:e])
            elif code in INVALID_STATUSES:
                reason = f"rejected by the API: HTTP {code} {self._snippet(result)}"
                out.rejected.extend((i, reason) for i in ids[s:e])
            else:
                out.failed.extend((i, f"HTTP {code}") for i in ids[s:e])
        return out

    def _post(self, envelope: Any, items: list[str], out: Outcome) -> httpx.Response | str:
        req = self.dest.build_request(envelope, items, self.opts.validate)
        headers = {"Content-Type": "application/json", **req.headers}
        body = req.body
        if self.dest.gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        attempts = max(1, self.opts.max_attempts)
        for attempt in range(attempts):
            out.requests += 1
            delay = self._backoff(attempt)
            try:
                resp = self.client.post(req.url, content=body, headers=headers)
            except httpx.TimeoutException:
                reason = "timeout"
            except httpx.TransportError as exc:
                reason = f"connection error ({type(exc).__name__})"
            else:
                code = resp.status_code
                if code not in RETRY_STATUSES and code < 500:
                    return resp
                reason = f"HTTP {code} after {attempts} attempts"
                after = _retry_after(resp.headers.get("Retry-After"))
                if after is not None:
                    delay = min(after, self.opts.retry_after_max)
            if attempt + 1 < attempts:
                out.retries += 1
                time.sleep(delay)
        return self.redact(reason)

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": half fixed, half random, so retries spread out.
        d = min(self.opts.backoff_max, self.opts.backoff_base * (2 ** attempt))
        return d / 2 + self.rng.uniform(0, d / 2)

    def _snippet(self, resp: httpx.Response) -> str:
        text = resp.text[:200].replace("\n", " ").strip()
        return self.redact(text)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def rechunk(tables: Iterable[pa.Table | pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """EVENTS tables of at least `rows` rows (the last may be smaller)."""
    buf: list[pa.Table] = []
    count = 0
    for t in tables:
        if isinstance(t, pa.RecordBatch):
            t = pa.Table.from_batches([t])
        if not t.num_rows:
            continue
        buf.append(conform(t, EVENTS))
        count += t.num_rows
        if count >= rows:
            yield pa.concat_tables(buf)
            buf, count = [], 0
    if buf:
        yield pa.concat_tables(buf)


def select_time(table: pa.Table, since: datetime | None, until: datetime | None) -> pa.Table:
    """Rows with since <= ts < until (naive datetimes are UTC)."""
    mask = None
    for bound, op in ((since, pc.greater_equal), (until, pc.less)):
        if bound is None:
            continue
        b = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
        m = op(table["ts"], pa.scalar(b, EVENTS.field("ts").type))
        mask = m if mask is None else pc.and_(mask, m)
    return table if mask is None else table.filter(pc.fill_null(mask, False))


def run(dest: Destination, tables: Iterable[pa.Table], opts: SendOptions) -> SendSummary:
    """Deliver `tables` to `dest` under `opts`; see the module docstring."""
    t0 = time.monotonic()
    summary = SendSummary(destination=dest.name, dry_run=opts.dry_run, validate=opts.validate)
    redact = Redactor(dest.secrets())
    writes = not (opts.dry_run or opts.validate)
    state = state_dir(opts.state)
    lock = SenderLock(state, dest.name) if writes else None
    ledger: Ledger | None = None
    sender: Sender | None = None
    try:
        if writes:
            ledger = Ledger(state, dest.name)
        elif opts.dry_run and (state / LEDGER_FILE).exists():
            ledger = Ledger(state, dest.name, readonly=True)
        if not opts.dry_run:
            sender = Sender(dest, opts, redact)
        with redact.on_loggers("httpx", "httpcore"):
            _loop(dest, tables, opts, summary, redact, ledger if writes or opts.dry_run else None,
                  sender, writes)
    finally:
        if sender:
            sender.close()
        if ledger:
            ledger.close()
        if lock:
            lock.release()
        summary.elapsed = time.monotonic() - t0
    return summary


def _loop(dest: Destination, tables: Iterable[pa.Table], opts: SendOptions, summary: SendSummary,
          redact: Redactor, ledger: Ledger | None, sender: Sender | None, writes: bool) -> None:
    pending: dict[Future[Outcome], None] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, opts.concurrency), thread_name_prefix="send")
    out = opts.output or (lambda _line: None)
    ledger_run = ledger.run if ledger else "dry"

    seq = iter(range(1 << 62))

    def record(outcomes: list[Outcome], begin: tuple[str, list[str]] | None = None) -> None:
        # One transaction for the answers that arrived and the next batch's in-flight mark.
        if writes and ledger and (outcomes or begin):
            ledger.apply(acked=[i for o in outcomes for i in o.acked],
                         rejected=[r for o in outcomes for r in o.rejected],
                         released=[i for o in outcomes for i, _ in o.failed], begin=begin)
        for o in outcomes:
            summary.sent += len(o.acked)
            summary.refused.update(r for _, r in o.rejected)
            summary.failed.update(r for _, r in o.failed)
            summary.requests += o.requests
            summary.retries += o.retries
            summary.splits += o.splits
            summary.messages += len(o.messages)
            for m in o.messages:
                out(redact(m))
            if o.fatal and not summary.fatal:
                summary.fatal = redact(o.fatal)
        if outcomes and opts.progress:
            opts.progress(summary)

    def drain(block_until: int) -> list[Outcome]:
        got = []
        while pending:
            done = [f for f in pending if f.done()]
            if not done and len(pending) <= block_until:
                break
            if not done:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for f in done:
                del pending[f]
                got.append(f.result())
        return got

    try:
        for chunk in rechunk(tables, opts.chunk_rows):
            if summary.fatal:
                break
            prep = _select(dest, chunk, opts, summary, ledger, writes)
            if prep is None:
                continue
            items = prep.items
            for group, s, e in make_batches(prep, dest.max_batch_events, dest.max_batch_bytes):
                if summary.fatal:
                    break
                ids = prep.event_ids[s:e]
                texts = items.slice(s, e - s).to_pylist()
                if opts.dry_run:
                    req = dest.build_request(prep.envelopes[group], texts, opts.validate)
                    out(redact(f"POST {req.url} {req.headers}"))
                    out(redact(req.body.decode()))
                    summary.sent += len(ids)
                    summary.requests += 1
                    continue
                record(drain(max(0, opts.concurrency - 1)), (f"{ledger_run}-{next(seq)}", ids))
                assert sender is not None
                pending[pool.submit(sender.send, prep.envelopes[group], texts, ids)] = None
        record(drain(0))
    finally:
        # On an interrupt, wait for requests already sent and record their answers; batches
        # never answered stay in flight in the ledger (uncertain at the next run).
        pool.shutdown(wait=True, cancel_futures=True)
        record([f.result() for f in pending if f.done() and not f.cancelled() and f.exception() is None])


def _select(dest: Destination, chunk: pa.Table, opts: SendOptions, summary: SendSummary,
            ledger: Ledger | None, writes: bool) -> Prepared | None:
    """Time selection, duplicates, ledger classification and the destination's preparation."""
    chunk = select_time(chunk, opts.since, opts.until)
    summary.selected += chunk.num_rows
    missing = pc.is_null(chunk["event_id"])
    if pc.any(missing).as_py():
        n = pc.sum(missing).as_py()
        summary.refused["no event_id"] += n
        chunk = chunk.filter(pc.invert(missing))
    if not chunk.num_rows:
        return None
    ids = chunk["event_id"].to_pylist()
    dup = pd.Series(ids, dtype=object).duplicated().to_numpy()
    keep = ~dup
    summary.skipped += int(dup.sum())
    if ledger is not None:
        m = ledger.classify(ids)
        done = (m["delivered"] | m["current"]) & keep
        summary.skipped += int(done.sum())
        keep &= ~done
        rejected = m["rejected"] & keep
        if not opts.retry_failed:
            summary.skipped_rejected += int(rejected.sum())
            keep &= ~rejected
        crashed = m["crashed"] & keep
        summary.uncertain += int(crashed.sum())
        if opts.skip_uncertain and not dest.dedups and crashed.any():
            summary.skipped_uncertain += int(crashed.sum())
            if writes:
                ledger.ack([ids[i] for i in np.flatnonzero(crashed)], uncertain=True)
            keep &= ~crashed
    if not keep.all():
        chunk = chunk.filter(pa.array(keep))
    if not chunk.num_rows:
        return None
    now = opts.now or datetime.now(UTC)
    prep = dest.prepare(chunk, int(now.timestamp() * 1_000_000))
    if prep.refused_ids:
        if writes and ledger:
            ledger.reject(prep.refused_ids, prep.refused_reasons)
        summary.refused.update(prep.refused_reasons)
        hint = getattr(dest, "refusal_hint", None)
        if hint and hint not in summary.hints and any(r.startswith("too old") for r in prep.refused_reasons):
            summary.hints.append(hint)
    return prep
