"""The whole chain over parsed batches: enrich → exclude → identify → privacy → sessions → rules.

`Chain` holds the configured stages and their state; `Chain.run(batches)` yields a `StageOutput`
per RULES_BATCH rows or so of sessionized requests (the sessionizer's last flush in slices of
that size). Sinks — datasets, event files, destinations — consume the outputs; nothing here
writes. A consumer should drop each output before asking for the next (`del step` at the end of
the loop body), or it stays alive while the next one is computed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import privacy
from .config import Config
from .enrich import EnrichConfig, enrich
from .errors import UsageError
from .identity import IdentityConfig, identify, load_or_create_salt
from .pipeline import ParsedBatch, ParseOptions, RunStats, iter_parsed
from .privacy import PrivacyConfig
from .rules import RuleSet, load_rules
from .rules.tally import Tally
from .schema import ENRICHED_REQUESTS, EVENTS, REJECTS, SESSIONS, conform, empty
from .sessions import SessionConfig, Sessionizer
from .sources import Input

PAGE_VIEW = "page_view"
RULES_BATCH = 64 * 1024
# Parsed blocks (≈20 k lines of 4 MB) are joined to at least this many rows before the stages
# run: each stage costs a fixed amount per batch (dictionary encodings, user-agent and path
# lookups, the sessionizer's gathers from its held tables and its passes over the open rows).
# Measured on 1 M lines, enrich through sessions: 1.21 CPU-s at 32 k rows, 1.06 at 64 k; the
# sessionizer then holds bigger tables: `report` peaks ≈110 MB higher (≈680 MB).
CHAIN_BATCH = 64 * 1024
_EXCLUDED = "__excluded_by_rules"


def fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`conform(table, schema)`, returning a table that has the conformed schema already as it is.

    Most tables between stages come out of a stage in their schema's shape; `conform` would
    rebuild each (a name lookup per column, a new schema): 0.1 CPU-s per 1 M lines, for nothing.
    """
    known = _CONFORMED.get(id(schema))
    if known is None or known[0] is not schema:
        known = _CONFORMED[id(schema)] = (schema, empty(schema).schema)
    return table if table.schema.equals(known[1], check_metadata=True) else conform(table, schema)


_CONFORMED: dict[int, tuple[pa.Schema, pa.Schema]] = {}  # id(schema) -> (schema, conformed schema)


@dataclass
class StageOutput:
    """What one step of the chain produced (each may be empty)."""

    requests: pa.Table
    sessions: pa.Table
    events: pa.Table
    rejects: pa.Table


@dataclass
class ChainCounts:
    """Counts and timings per stage, for summaries and run.json."""

    requests: int = 0
    excluded: int = 0
    bots: int = 0
    sessions: int = 0
    events: int = 0
    events_by_name: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        """Plain data for run.json."""
        return {
            "requests": self.requests, "excluded_by_rules": self.excluded, "bot_requests": self.bots,
            "sessions": self.sessions, "events": self.events, "events_by_name": dict(self.events_by_name),
            "seconds_by_stage": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def grouped(batches: Iterable[ParsedBatch], min_rows: int = CHAIN_BATCH) -> Iterator[ParsedBatch]:
    """The parsed batches joined, in order, into batches of at least `min_rows` requests (the
    last may be smaller). A joined batch's watermark is the newest of its parts': a watermark is
    a promise about every later row, so the newest one holds for what follows the whole group."""
    parts: list[ParsedBatch] = []
    rows = 0
    for batch in batches:
        parts.append(batch)
        rows += batch.requests.num_rows
        if rows >= min_rows:
            yield _joined(parts)
            parts, rows = [], 0
    if parts:
        yield _joined(parts)


def _joined(parts: list[ParsedBatch]) -> ParsedBatch:
    if len(parts) == 1:
        return parts[0]
    marks = [p.watermark for p in parts if p.watermark is not None]
    return ParsedBatch(pa.concat_tables([p.requests for p in parts]), pa.concat_tables([p.rejects for p in parts]),
                       max(marks) if marks else None)


class Chain:
    """The configured stages of one run."""

    def __init__(self, config: Config, state: Path, keep_ip: bool = False,
                 rules_paths: list[str] | None = None) -> None:
        self.enrich_cfg = EnrichConfig.from_config(config)
        self.identity_cfg = IdentityConfig.from_config(config)
        self.privacy_cfg = PrivacyConfig.from_config(config, keep_ip=keep_ip)
        self.session_cfg = SessionConfig.from_config(config)
        self.ruleset: RuleSet | None = load_rules(list(rules_paths)) if rules_paths else None
        self.salt = load_or_create_salt(state, self.identity_cfg.salt_env)
        self.sessionizer = Sessionizer(self.session_cfg)
        self.counts = ChainCounts()
        # Key events counted per session id until the session row comes out: Arrow tables of
        # (session_id, n), merged and looked up by hash kernels when sessions come out (a pandas
        # Series with a string index cost 0.2 CPU-s per 1 M lines in `drop` alone).
        self._events_per_session: list[pa.Table] = []

    def _timed(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.counts.seconds[stage] += now - start
        return now

    def run(self, batches: Iterable[ParsedBatch]) -> Iterator[StageOutput]:
        """Run every batch through the stages; the last output flushes the open sessions.

        Parsed blocks are joined to at least CHAIN_BATCH rows first (`grouped`). Sessionizer outputs are gathered to at least RULES_BATCH rows before rules run: a rule
        costs a fixed amount per batch, so 200 rules over small batches would cost several times
        what they cost over large ones (measured in benchmarks/bench_rules.py).
        """
        pending: list[tuple[pa.Table, pa.Table, pa.Table]] = []
        rows = 0
        for batch in grouped(batches):
            t = time.perf_counter()
            # One contiguous chunk per column: a parsed block may arrive as zero-copy slices.
            table = enrich(batch.requests.combine_chunks(), self.enrich_cfg)
            t = self._timed("enrich", t)
            # Exclusions are decided on the enriched rows but applied after identity and privacy:
            # those stages reuse the dictionary encodings enrich made of these very arrays, which
            # a filter would throw away for the few health checks it drops.
            # (The mask rides along as a column: identity may drop opted-out rows in between.)
            if self.ruleset is not None and table.num_rows:
                table = table.append_column(_EXCLUDED, pc.fill_null(self.ruleset.excluded(table), False))
            t = self._timed("exclude", t)
            table = privacy.apply(identify(table, self.identity_cfg, self.salt), self.privacy_cfg)
            t = self._timed("identify", t)
            drop = None
            if _EXCLUDED in table.column_names:
                # The sessionizer drops these rows itself: a filter here would copy all the others.
                drop = table.column(_EXCLUDED).to_numpy(zero_copy_only=False)
                table = table.drop_columns([_EXCLUDED])
                self.counts.excluded += int(drop.sum())
            out = self.sessionizer.push(table, batch.watermark, drop)
            self._timed("sessions", t)
            pending.append((out.requests, out.sessions, self._rejects(batch.rejects)))
            rows += out.requests.num_rows
            if rows >= RULES_BATCH:
                step, pending, rows = self._flush(pending), [], 0
                # Hold nothing of this step or batch while the consumer writes it and while the
                # next batch is parsed: each would otherwise stay alive for another step.
                del batch, table, out
                yield step
                del step
        out = self.sessionizer.finish()
        pending.append((out.requests, out.sessions, empty(REJECTS)))
        requests, sessions, rejects = self._concat(pending)
        del pending, out
        # The last output holds every session still open (twice a step on a 1 M-line log): rules
        # over RULES_BATCH slices keep each step and its events as small as the others. The
        # sessions come with the last slice, once their key events have all been counted.
        while requests.num_rows > RULES_BATCH:
            yield self._finish_step(requests.slice(0, RULES_BATCH), empty(SESSIONS), empty(REJECTS))
            requests = requests.slice(RULES_BATCH)
        yield self._finish_step(requests, sessions, rejects)

    def _flush(self, pending: list[tuple[pa.Table, pa.Table, pa.Table]]) -> StageOutput:
        return self._finish_step(*self._concat(pending))

    @staticmethod
    def _concat(pending: list[tuple[pa.Table, pa.Table, pa.Table]]) -> tuple[pa.Table, pa.Table, pa.Table]:
        requests, sessions, rejects = (
            pa.concat_tables([fit(p[i], schema) for p in pending])
            for i, schema in enumerate((ENRICHED_REQUESTS, SESSIONS, REJECTS))
        )
        return requests, sessions, rejects

    def _rejects(self, rejects: pa.Table) -> pa.Table:
        if rejects.num_rows == 0:
            return rejects
        text = privacy.scrub_text(rejects.column("text"), self.privacy_cfg)
        return rejects.set_column(rejects.schema.get_field_index("text"), "text", text)

    def _finish_step(self, requests: pa.Table, sessions: pa.Table, rejects: pa.Table) -> StageOutput:
        t = time.perf_counter()
        requests = fit(requests, ENRICHED_REQUESTS)
        events = empty(EVENTS)
        tally = None
        if self.ruleset is not None:
            if requests.num_rows:
                events, tally = self.ruleset.evaluate_tallied(requests)
            # These sessions' requests have all been through the rules now (a session comes out
            # of the sessionizer with all its requests, in this step or the last slice's).
            self.ruleset.close_sessions(sessions["session_id"])
        events = fit(events, EVENTS)
        self._timed("rules", t)
        if tally is not None:
            self._count_events(tally)
        sessions = self._with_event_counts(fit(sessions, SESSIONS))
        c = self.counts
        c.requests += requests.num_rows
        c.bots += int(pc.sum(pc.cast(pc.fill_null(requests["is_bot"], False), pa.int64())).as_py() or 0)
        c.sessions += sessions.num_rows
        c.events += events.num_rows
        return StageOutput(requests, sessions, events, rejects)

    def _count_events(self, tally: Tally) -> None:
        """Events per name, and key events (not page views) per session id until the session
        comes out: counted on the rules' integer codes (`Tally`), not the events' strings."""
        self.counts.events_by_name.update(tally.by_name())
        per_session = tally.per_session(_is_key_event)
        if per_session is not None:
            self._events_per_session.append(per_session)

    def _with_event_counts(self, sessions: pa.Table) -> pa.Table:
        """Fill `events` (key events, i.e. not page views) and let a key event engage a session."""
        if sessions.num_rows == 0 or not self._events_per_session:
            return sessions
        # One hash lookup: each pending (session id, n) row's position among the sessions coming
        # out (their ids are distinct: one row per session). Rows of one session from several
        # steps add up in the scatter, so the pending rows need no group-by first.
        pending = pa.concat_tables(self._events_per_session).combine_chunks()
        at = pc.index_in(pending["session_id"], value_set=sessions["session_id"])
        at = at.fill_null(-1).to_numpy(zero_copy_only=False)
        done = at >= 0
        n = np.zeros(sessions.num_rows, np.int64)
        np.add.at(n, at[done], pending["n"].to_numpy()[done])
        counts = pa.array(n)
        # Those sessions are complete: their counts are dropped.
        rest = pending.filter(pa.array(~done))
        self._events_per_session = [rest] if rest.num_rows else []
        engaged = pc.or_(pc.fill_null(sessions["is_engaged"], False), pc.greater(counts, 0))
        sessions = sessions.set_column(sessions.schema.get_field_index("events"), "events", counts)
        return sessions.set_column(sessions.schema.get_field_index("is_engaged"), "is_engaged", engaged)


def _is_key_event(name: str) -> bool:
    """A key event engages its session and counts in its `events`: any event but a page view."""
    return not name.endswith(PAGE_VIEW)


def iter_events(inputs: list[Input], config: Config, parse: ParseOptions, state: Path, rules: list[str],
                keep_ip: bool = False, stats: RunStats | None = None) -> Iterator[pa.Table]:
    """Events of the rules over log inputs, batch by batch (for `logtrack send LOGS`)."""
    if not rules:
        raise UsageError("reading logs needs --rules (or `rules:` in the config file) to make events")
    chain = Chain(config, state, keep_ip=keep_ip, rules_paths=rules)
    for step in chain.run(iter_parsed(inputs, parse, stats if stats is not None else RunStats())):
        if step.events.num_rows:
            yield step.events
