"""RuleSet: the compiled rules of one or more files, evaluated batch by batch (DESIGN §2, §5).

`evaluate(table)` turns enriched, sessionized requests into the EVENTS table. It is stateful
only for `once_per` and `first_in_session` (both need to know what earlier batches saw), so
results are identical whatever the batch size, as long as batches arrive in time order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from .context import BatchContext, DictCol, encode
from .emit import PropertyCollector, event_ids
from .exclude import exclude_mask
from .gather import gather
from .match import pattern_mask, select
from .model import And, Equals, FirstInSession, Node, Not, Or, Pattern, RuleFile, StrCond
from .tally import Tally

CONTEXT_COLUMNS = ("ts", "user_id", "anonymous_id", "session_id", "host", "client_ip", "user_agent",
                   "path", "query", "referer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                   "utm_content", "consent", "source", "line")


class RuleSet:
    """Compiled rules (in file order, each file's built-ins after its rules) and their state."""

    def __init__(self, files: list[RuleFile]) -> None:
        self.files = files
        self.rules = [rule for f in files for rule in f.rules]
        self.exclude_nodes = [node for f in files for node in f.exclude]
        self._needs_first = any(_uses_first(rule.when) for rule in self.rules)
        self._literals = _literals([rule.when for rule in self.rules])
        self._prefixes = _literals([rule.when for rule in self.rules], prefixes=True)
        self._lookups = _lookups([rule.when for rule in self.rules])
        self.reset()

    def reset(self) -> None:
        """Forget cross-batch state (`once_per` keys seen, sessions already started)."""
        self._once: dict[str, SeenKeys] = {r.name: SeenKeys() for r in self.rules if r.once_per}
        self._per_session = [r.name for r in self.rules if r.once_per == "session"]
        self._sessions = SeenKeys()

    def state(self) -> dict[str, Any]:
        """Cross-batch state as plain JSON-able data (to persist `once_per: user` across runs)."""
        return {"once_per": {k: v.sorted() for k, v in self._once.items()}, "sessions": self._sessions.sorted()}

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what `state()` returned (unknown rule names are ignored)."""
        for name, keys in state.get("once_per", {}).items():
            if name in self._once:
                self._once[name] = SeenKeys(keys)
        self._sessions = SeenKeys(state.get("sessions", []))

    def close_sessions(self, session_ids: pa.Array | pa.ChunkedArray) -> None:
        """Forget sessions that ended (the sessionizer emitted their SESSIONS row after all their
        requests): none of their requests comes later, so `first_in_session` and `once_per:
        session` need not remember them, and that state stays as small as the open sessions."""
        if len(session_ids):
            self._sessions.discard(session_ids)
            for name in self._per_session:
                self._once[name].discard(session_ids)

    @property
    def event_names(self) -> list[str]:
        """Every event name the rules can emit, built-ins included."""
        return [rule.name for rule in self.rules]

    # ---- exclusion -------------------------------------------------------------------------

    def excluded(self, table: pa.Table) -> pa.BooleanArray:
        """True for requests any file's `exclude:` entry matches (request + enrichment columns)."""
        return pa.array(exclude_mask(self.exclude_nodes, table), pa.bool_())

    # ---- evaluation ------------------------------------------------------------------------

    def evaluate(self, table: pa.Table) -> pa.Table:
        """Events (exactly `schema.EVENTS`) for a batch of enriched, sessionized requests."""
        return self.evaluate_tallied(table)[0]

    def evaluate_tallied(self, table: pa.Table) -> tuple[pa.Table, Tally]:
        """`evaluate`, and the events counted by rule and session id on integer codes."""
        n = table.num_rows
        if n == 0 or not self.rules:
            return schema.empty(schema.EVENTS), Tally.empty(self.event_names)
        # A bound method, not a closure over `ctx`: a closure stored in the context it refers to
        # is a reference cycle, which kept every cached column alive until the GC ran.
        ctx = BatchContext(table, first_in_session=self._first_in_session, literals=self._literals,
                           prefixes=self._prefixes, lookups=self._lookups)
        if self._needs_first:
            ctx.first_in_session()  # advance the sessions-seen state exactly once per batch
        stopped = np.zeros(n, dtype=bool)
        rows_out, rule_out, has_user = [], [], []
        props, user_props = PropertyCollector(), PropertyCollector()
        for index, rule in enumerate(self.rules):
            rows = select(rule.when, ctx)
            if not rule.builtin:
                rows = rows[~stopped[rows]]
                if rule.stop:
                    stopped[rows] = True
            if rule.once_per and len(rows):
                rows = self._once_filter(rule.name, rule.once_per, ctx, rows)
            if not len(rows):
                continue
            props.add(rule.properties, rule, ctx, rows)
            user_props.add(rule.user_properties, rule, ctx, rows)
            rows_out.append(rows)
            rule_out.append(np.full(len(rows), index, dtype=np.int64))
            has_user.append(np.full(len(rows), rule.user_properties is not None))
        if not rows_out:
            return schema.empty(schema.EVENTS), Tally.empty(self.event_names)
        rows = np.concatenate(rows_out)
        rule_idx = np.concatenate(rule_out)
        order = np.lexsort((rule_idx, rows))  # input order, then rule order within a request
        rows, rule_idx = rows[order], rule_idx[order]
        # Each emitting rule's first output position (its block's smallest), for the tally.
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        starts = np.cumsum([0] + [len(r) for r in rows_out[:-1]])
        first = np.full(len(self.rules), len(order), np.int64)
        first[[int(r[0]) for r in rule_out]] = np.minimum.reduceat(position, starts)
        # Properties are assembled straight in output order (no take of the built arrays).
        mapping, as_json = props.build(order)
        has = np.concatenate(has_user)[order]
        if has.any():
            users = pc.if_else(pa.array(has), user_props.build(order)[1], pa.scalar(None, pa.string()))
        else:  # no emitted event has user properties (most batches): nothing to build
            users = pa.nulls(len(rows), pa.string())
        # The context columns, each gathered as its nulls and values allow (see gather.py); the
        # source's encoding serves its column and the event ids.
        source = ctx.strings(("col", "source"))
        columns: dict[str, Any] = {
            name: gather(table.column(name), rows, source if name == "source" else None)
            if name in table.column_names else None for name in CONTEXT_COLUMNS
        }
        names = self.event_names
        columns["event_name"] = pa.array(names, pa.string()).take(pa.array(rule_idx))
        line = columns["line"] if columns["line"] is not None else pa.nulls(len(rows), pa.int64())
        columns["event_id"] = event_ids(DictCol(source.values, source.indices[rows]), line, names, rule_idx)
        columns["properties"] = mapping
        columns["properties_json"] = as_json
        columns["user_properties_json"] = users
        present = {k: v for k, v in columns.items() if v is not None}
        events = schema.conform(pa.table(present), schema.EVENTS)
        # Session codes from the batch's encoding when a condition made it (first_in_session,
        # once_per: session), else the events' own ids.
        encoded = ctx.cached_strings(("col", "session_id"))
        sessions = DictCol(encoded.values, encoded.indices[rows]) if encoded is not None \
            else events.column("session_id")
        return events, Tally(names, rule_idx, first, sessions)

    def _once_filter(self, name: str, per: str, ctx: BatchContext, rows: np.ndarray) -> np.ndarray:
        """Keep each key's earliest row not seen in earlier batches; rows without a key stay."""
        if per == "session":
            sessions = ctx.strings(("col", "session_id"))  # the batch's encoding, shared
            keys = DictCol(sessions.values, sessions.indices[rows])
        else:
            known = ctx.user_known()[rows]
            user = ctx.column("user_id").take(pa.array(rows))
            anon = ctx.column("anonymous_id").take(pa.array(rows))
            keys = encode(pc.if_else(pa.array(known), user, anon))
        first = _first_per_key(keys, ctx, rows, self._once[name])
        return rows[first]

    def _first_in_session(self, ctx: BatchContext) -> np.ndarray:
        """Rows that are the earliest of a session id this RuleSet has not seen before."""
        rows = np.arange(ctx.n, dtype=np.int64)
        out = np.zeros(ctx.n, dtype=bool)
        out[_first_per_key(ctx.strings(("col", "session_id")), ctx, rows, self._sessions, keep_null=False)] = True
        return out

    # ---- path grouping ---------------------------------------------------------------------

    @property
    def path_templates(self) -> list[str]:
        """Display forms of the rules' path templates (`/products/{product_id}`), in rule order."""
        return list(dict.fromkeys(p.template for p in self._template_patterns()))

    def _template_patterns(self) -> list[Pattern]:
        out: list[Pattern] = []
        for rule in self.rules:
            out.extend(_patterns(rule.when))
        return out

    def group_paths(self, paths: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Map each concrete path to the first rule template it matches; other paths stay as they are."""
        strings = encode(paths)
        grouped = strings.values
        free = np.ones(strings.m, dtype=bool)
        for pattern in self._template_patterns():
            hit = pattern_mask(strings.values, pattern) & free
            if hit.any():
                grouped = pc.replace_with_mask(grouped, pa.array(hit),
                                               pa.repeat(pa.scalar(pattern.template), int(hit.sum())))
                free &= ~hit
        grouped = pa.concat_arrays([grouped, pa.nulls(1, pa.string())])
        return grouped.take(pa.array(strings.indices))


class SeenKeys:
    """A set of strings kept as one Arrow array of distinct values: membership of a batch's keys
    is one `is_in` kernel, and no Python object is made per key (a run sees ~250k sessions)."""

    def __init__(self, keys: list[str] | None = None) -> None:
        """The set of `keys` (empty by default)."""
        self.values = pc.unique(pa.array(keys or [], pa.string()))

    def __len__(self) -> int:
        return len(self.values)

    def contains(self, keys: pa.Array) -> np.ndarray:
        """Which of `keys` are in the set."""
        if not len(self.values):
            return np.zeros(len(keys), dtype=bool)
        return pc.is_in(keys, value_set=self.values).fill_null(False).to_numpy(zero_copy_only=False)

    def add_new(self, keys: pa.Array) -> None:
        """Add distinct keys none of which is in the set yet."""
        if len(keys):
            self.values = pa.concat_arrays([self.values, keys.cast(pa.string())])

    def discard(self, keys: pa.Array | pa.ChunkedArray) -> None:
        """Remove `keys` (those absent are ignored)."""
        if len(self.values) and len(keys):
            gone = pc.is_in(self.values, value_set=keys)  # duplicates in a value set are fine
            self.values = self.values.filter(pc.invert(gone))

    def sorted(self) -> list[str]:
        """The keys in order, as Python strings."""
        return sorted(self.values.to_pylist())


def _first_per_key(keys: DictCol, ctx: BatchContext, rows: np.ndarray, seen: SeenKeys,
                   keep_null: bool = True) -> np.ndarray:
    """Positions (into `rows`) of each key's earliest row by (ts, source, line) whose key is not in
    `seen`; `seen` is updated. `keys` holds the key of each of `rows` (`keys.indices` aligned with
    them). Null keys are kept (`keep_null`) or dropped."""
    ts = ctx.memo(("ts_int",), lambda: _ints(ctx.table, "ts", 0))[rows]
    ids = keys.indices
    # Each key's earliest ts (a scatter-min, O(n), where sorting every row by (ts, source, line)
    # costs n log n); the rows at that ts are the candidates, usually one per key.
    earliest = np.full(keys.m + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, ids, ts)
    cand = np.flatnonzero((ts == earliest[ids]) & (ids < keys.m))
    per_key = np.bincount(ids[cand], minlength=keys.m)
    tied = per_key[ids[cand]] > 1
    if tied.any():
        # Ties at a key's earliest ts: source rank, then line, then the row order decide.
        line = ctx.memo(("line_int",), lambda: _ints(ctx.table, "line", -1))
        source = ctx.memo(("source_rank",), lambda: _ranks(ctx.strings(("col", "source"))))
        ties = cand[tied]
        at = rows[ties]
        ties = ties[np.lexsort((ties, line[at], source[at], ids[ties]))]
        head = np.ones(len(ties), dtype=bool)
        head[1:] = ids[ties[1:]] != ids[ties[:-1]]
        cand = np.concatenate([cand[~tied], ties[head]])
    # One row per key now: keys in ascending id order by a scatter (no sort).
    first = np.full(keys.m, -1, dtype=np.int64)
    first[ids[cand]] = cand
    present = np.flatnonzero(first >= 0)
    picked = first[present]
    first_keys = keys.values.take(pa.array(present))
    # Drop keys earlier batches already used; the others are seen from now on.
    old = seen.contains(first_keys)
    seen.add_new(first_keys.filter(pa.array(~old)))
    keep = np.zeros(len(rows), dtype=bool)
    keep[picked[~old]] = True
    if keep_null:
        keep |= ids == keys.m
    return np.flatnonzero(keep)


def _ints(table: pa.Table, name: str, null: int) -> np.ndarray:
    """An integer (or timestamp) column as int64 numpy, nulls replaced (no combined copy)."""
    col = table.column(name) if name in table.column_names else pa.nulls(table.num_rows, pa.int64())
    return col.cast(pa.int64()).fill_null(null).to_numpy()


def _ranks(col: DictCol) -> np.ndarray:
    """Each row's rank of its value in name order (nulls last): the source tie-break of the
    (ts, source, line) order, which the sessionizer no longer hands over sorted."""
    by_name = pc.array_sort_indices(col.values, null_placement="at_end").to_numpy()
    rank = np.empty(col.m + 1, dtype=np.int64)
    rank[by_name] = np.arange(col.m, dtype=np.int64)
    rank[col.m] = col.m
    return rank[col.indices]


def _uses_first(node: Node) -> bool:
    if isinstance(node, FirstInSession):
        return True
    if isinstance(node, And | Or):
        return any(_uses_first(c) for c in node.children)
    return isinstance(node, Not) and _uses_first(node.child)


def _literals(nodes: list[Node], prefixes: bool = False) -> dict[tuple[tuple[str, str], str | None], tuple[str, ...]]:
    """Every literal string conditions compare each (source, fold) with, in first-seen order;
    with `prefixes`, every literal prefix of their patterns instead."""
    found: dict[tuple[tuple[str, str], str | None], dict[str, None]] = {}

    def walk(node: Node) -> None:
        if isinstance(node, StrCond):
            for item in node.items:
                if isinstance(item, Equals) and not prefixes:
                    found.setdefault((node.source, node.fold), {}).update(dict.fromkeys(item.values))
                elif isinstance(item, Pattern) and item.prefix and prefixes:
                    found.setdefault((node.source, node.fold), {})[item.prefix] = None
        elif isinstance(node, And | Or):
            for child in node.children:
                walk(child)
        elif isinstance(node, Not):
            walk(node.child)

    for node in nodes:
        walk(node)
    return {key: tuple(values) for key, values in found.items()}


def _lookups(nodes: list[Node]) -> dict[tuple[tuple[str, str], str | None], int]:
    """How many of the rules test each (source, fold) at their top level (alone or in an `And`):
    each may look up that source's rows over the whole batch (`DictCol.rows_for`)."""
    counts: dict[tuple[tuple[str, str], str | None], int] = {}
    for node in nodes:
        for child in node.children if isinstance(node, And) else (node,):
            if isinstance(child, StrCond):
                key = (child.source, child.fold)
                counts[key] = counts.get(key, 0) + 1
    return counts


def _patterns(node: Node) -> list[Pattern]:
    if isinstance(node, StrCond) and node.source == ("col", "path"):
        return [i for i in node.items if isinstance(i, Pattern) and i.template]
    if isinstance(node, And | Or):
        return [p for c in node.children for p in _patterns(c)]
    return _patterns(node.child) if isinstance(node, Not) else []
