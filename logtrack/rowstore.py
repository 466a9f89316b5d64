"""The sessionizer's store of pushed tables (`sessions.Sessionizer`): rows addressed by position.

The sessionizer's own state is plain numpy arrays; the wide rows stay in the tables as they were
pushed until they are emitted, and a push gathers the rows it emits once (`RowStore.take`).
Gathering costs per value, so the store avoids gathering what it can make: each table gathers
only its own rows (Arrow's take over several tables would first copy all of them into one), and
columns without values of their own in a table — all null, or empty maps, as many columns of a log
format are, or one value throughout, as `source` and often `protocol` — are made at the right length
instead (Arrow's take is slowest on nulls, and costs per value even when all values are equal).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Kind = str | tuple  # "null", "empty", or ("const", value): how a column without its own values is made
_MADE: dict[tuple[Kind, pa.DataType], pa.Array] = {}  # the longest made so far: shorter ones are slices
_CONST_MIN = 1024  # tables shorter than this are not checked for constant columns (gathering them is cheap)


def _made(kind: Kind, n: int, typ: pa.DataType) -> pa.Array:
    """n nulls, n empty maps or n times one value: zero-copy slices of one array, made once.
    A value is held at most 65 536 times, for at most 16 short values (≤ 32 MB); longer values
    and longer runs are repeated anew (still far cheaper than a gather)."""
    found = _MADE.get((kind, typ))
    if found is None or len(found) < n:
        size = max(n, 65536, 2 * len(found) if found is not None else 0)
        if isinstance(kind, tuple):
            value = pa.scalar(kind[1], typ)
            if n > 65536 or (isinstance(kind[1], str) and len(kind[1].encode()) > 32):
                return pa.repeat(value, n)
            if sum(isinstance(k, tuple) for k, _ in _MADE) >= 16:  # values come and go: keep a few
                for key in [key for key in _MADE if isinstance(key[0], tuple)]:
                    del _MADE[key]
            found = pa.repeat(value, 65536)
        elif kind == "null":
            found = pa.nulls(size, typ)
        else:
            none = pa.array([], typ.key_type)
            found = pa.MapArray.from_arrays(pa.array(np.zeros(size + 1, np.int32)), none, none.cast(typ.item_type), type=typ)
        _MADE[(kind, typ)] = found
    return found.slice(0, n)


def _constant(col: pa.Array) -> bool:
    """Whether every row holds the first row's value (no nulls; strings, integers and booleans).
    Most columns fail the O(1) probes (total byte length, a few rows) before any full pass."""
    n = len(col)
    if n < _CONST_MIN or col.null_count:
        return False
    typ = col.type
    if pa.types.is_boolean(typ):
        return pc.sum(col).as_py() in (0, n)
    probe = [0, n // 3, 2 * n // 3, n - 1]
    if pa.types.is_integer(typ):
        a = col.to_numpy(zero_copy_only=True)
        return bool((a[probe] == a[0]).all() and (a == a[0]).all())
    if not pa.types.is_string(typ):
        return False
    buffers = col.buffers()
    offsets = np.frombuffer(buffers[1], np.int32, n + 1, col.offset * 4)
    width = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != n * width or not (offsets[probe[1:]] - offsets[0] == np.array(probe[1:]) * width).all():
        return False
    if width == 0:  # offsets never decrease: every value is ""
        return True
    data = buffers[2]
    first = data.slice(int(offsets[0]), width).to_pybytes()
    if any(data.slice(int(offsets[p]), width).to_pybytes() != first for p in probe[1:]):
        return False
    if not (np.diff(offsets) == width).all():
        return False
    # Every value equals the next one: the values but the last against the values but the first,
    # one memcmp of two slices of the buffer (no n-fold copy of the first value to compare with).
    start = int(offsets[0])
    return data.slice(start, (n - 1) * width).equals(data.slice(start + width, (n - 1) * width))


def _kinds(table: pa.Table) -> dict[str, Kind]:
    """Columns of a table without values of their own: `null` (all null), `empty` (maps, all
    empty) or `("const", value)` (one value throughout, as `source` or `protocol` often are)."""
    out: dict[str, Kind] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if col.null_count == len(col):
            out[name] = "null"
        elif pa.types.is_map(col.type) and col.null_count == 0 and all(
                c.offsets[-1].as_py() == c.offsets[0].as_py() for c in col.chunks):
            out[name] = "empty"
        elif col.num_chunks == 1 and _constant(col.chunk(0)):
            out[name] = ("const", col.chunk(0)[0].as_py())
    return out


def _body(table: pa.Table, trivial: dict[str, Kind]) -> pa.Table:
    """The columns of a table that a gather takes from (those with values; zero-copy)."""
    return table.select([n for n in table.column_names if n not in trivial]) if trivial else table


class RowStore:
    """The pushed tables whose rows are not all emitted yet; a row is addressed by a position,
    `base` of its table + its row in that table.

    A table is dropped once all its rows are emitted (no other row moves) and compacted in place
    once fewer than a quarter are left (its rows keep its base, in order; runs of small tables
    are joined the same way), so memory stays within a small multiple of the rows held back and
    the rows a push gathers are not spread thinly over many tables. Positions only move when a
    table is compacted; `release` says which.
    """

    def __init__(self, schema: pa.Schema) -> None:
        """An empty store of tables with `schema`."""
        self.schema = schema
        self.tables: list[pa.Table] = []
        self._trivial: list[dict[str, Kind]] = []  # per table: its columns without values (`_kinds`)
        self._bodies: list[pa.Table] = []  # per table: its other columns (what a gather takes from)
        self._alive: list[np.ndarray] = []  # per table, per row: not emitted yet
        self.base = np.empty(0, np.int64)  # first position of each table (ascending)
        self.live = np.empty(0, np.int64)  # rows not emitted yet, per table
        self._next = 0  # the next table's base

    def add(self, table: pa.Table) -> np.ndarray:
        """Keep a table (with the store's schema); return its rows' positions."""
        start = self._next
        self._next += table.num_rows
        self.tables.append(table)
        self._trivial.append(_kinds(table))
        self._bodies.append(_body(table, self._trivial[-1]))
        self._alive.append(np.ones(table.num_rows, bool))
        self.base = np.append(self.base, start)
        self.live = np.append(self.live, table.num_rows)
        return np.arange(start, self._next)

    def constants(self) -> dict[str, object]:
        """The columns of the newest table that hold one value throughout (not null), by value:
        found once when it was added, so callers can test a value once instead of every row."""
        kinds = self._trivial[-1] if self._trivial else {}
        return {name: kind[1] for name, kind in kinds.items() if isinstance(kind, tuple)}

    def forget(self, pos: np.ndarray) -> None:
        """Mark rows of the newest table (ascending positions) as never to be emitted; the
        table is compacted or dropped by a later `release` like any other."""
        if len(pos):
            self._alive[-1][pos - self.base[-1]] = False
            self.live[-1] -= len(pos)

    def _groups(self, pos: np.ndarray) -> list[tuple[int, int, int]]:
        """(table, lo, hi) for runs of ascending positions that fall in one table."""
        which = np.searchsorted(self.base, pos, side="right") - 1
        cuts = np.flatnonzero(which[1:] != which[:-1]) + 1
        los, his = np.concatenate([[0], cuts]), np.concatenate([cuts, [len(pos)]])
        return [(int(which[lo]), int(lo), int(hi)) for lo, hi in zip(los, his, strict=True)] if len(pos) else []

    def take(self, pos: np.ndarray, order: np.ndarray | None = None) -> dict[str, pa.Array | pa.ChunkedArray]:
        """Rows at ascending positions, every column (by name): in that order (one chunk per
        stored table they come from), or, given `order`, rows `pos[order]`.

        The reordered gather takes once from the tables involved joined: joining copies buffers
        whole, far cheaper than gathering every value a second time to reorder them."""
        groups = self._groups(pos)
        if not groups:
            return dict(zip(self.schema.names, self.schema.empty_table().columns, strict=True))
        kinds = [self._trivial[i] for i, _, _ in groups]
        common = dict(set(kinds[0].items()).intersection(*(k.items() for k in kinds[1:])))
        names = [n for n in self.schema.names if n not in common]
        if order is None:
            body = pa.concat_tables([self._gather(i, pa.array(pos[lo:hi] - self.base[i]), names) for i, lo, hi in groups])
        else:
            local, start = np.empty(len(pos), np.int64), 0
            for i, lo, hi in groups:  # each row's place in the joined tables
                local[lo:hi] = pos[lo:hi] - self.base[i] + start
                start += self.tables[i].num_rows
            joined = pa.concat_tables([self.tables[i].select(names) for i, _, _ in groups])
            body = pc.take(joined, pa.array(local[order]), boundscheck=False)
        n = len(pos)  # (body has no column when every column is made)
        return {f.name: _made(common[f.name], n, f.type) if f.name in common else body.column(f.name) for f in self.schema}

    def _gather(self, i: int, idx: pa.Array, names: list[str]) -> pa.Table:
        """Rows `idx` of stored table i, columns `names` (a push gathers from a dozen tables,
        often a few rows each: the fixed cost per table matters as much as the rows)."""
        part = pc.take(self._bodies[i], idx, boundscheck=False)
        if part.num_columns == len(names):  # the usual case: no column of `names` is trivial here only
            return part
        trivial = self._trivial[i]
        arrays = [part.column(n) if n not in trivial else _made(trivial[n], len(idx), self.schema.field(n).type)
                  for n in names]
        return pa.Table.from_arrays(arrays, schema=pa.schema([self.schema.field(n) for n in names]))

    def _complete(self, body: pa.Table, made: dict[str, Kind], n: int) -> pa.Table:
        """`body` (n rows) with the columns `made` added, in the store's column order."""
        if not made:
            return body
        return pa.Table.from_arrays(
            [body.column(f.name) if f.name not in made else _made(made[f.name], n, f.type) for f in self.schema],
            schema=self.schema)

    def release(self, pos: np.ndarray) -> list[tuple[int, np.ndarray]] | None:
        """Forget emitted rows (ascending positions); when rows moved, return for each table
        compacted its old base and the new position of each of its rows (-1: emitted)."""
        for i, lo, hi in self._groups(pos):
            self._alive[i][pos[lo:hi] - self.base[i]] = False
            self.live[i] -= hi - lo
        sizes = np.array([t.num_rows for t in self.tables], np.int64)
        compact = (self.live > 0) & (self.live * 4 < sizes)
        small = (self.live > 0) & (sizes < 16384)
        join = small.any() and int((self.live > 0).sum()) > 16  # too many tables: join runs of small ones
        if not (compact.any() or join or (self.live == 0).any()):
            return None
        moved: list[tuple[int, np.ndarray]] = []
        keep = [i for i in range(len(self.tables)) if self.live[i]]
        runs: list[list[int]] = []  # runs of tables that end up as one (each table alone, unless joined)
        for i in keep:
            if join and small[i] and runs and small[runs[-1][-1]]:
                runs[-1].append(i)
            else:
                runs.append([i])
        tables, trivial, bodies, alive, base, live = [], [], [], [], [], []
        for run in runs:
            i = run[0]
            if len(run) == 1 and not compact[i]:
                tables.append(self.tables[i])
                trivial.append(self._trivial[i])
                bodies.append(self._bodies[i])
                alive.append(self._alive[i])
                base.append(self.base[i])
                live.append(self.live[i])
                continue
            parts, start = [], int(self.base[i])
            for j in run:  # each table's rows left, in order, from the run's first base on
                rows = np.flatnonzero(self._alive[j])
                k = self._trivial[j]
                parts.append(self._complete(pc.take(self._bodies[j], pa.array(rows), boundscheck=False), k, len(rows)))
                to = np.full(len(self._alive[j]), -1, np.int64)
                to[rows] = start + np.arange(len(rows))
                moved.append((int(self.base[j]), to))
                start += len(rows)
            table = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
            tables.append(table)
            trivial.append(_kinds(table) if len(run) > 1 else self._trivial[i])
            bodies.append(_body(table, trivial[-1]))
            alive.append(np.ones(table.num_rows, bool))
            base.append(self.base[i])
            live.append(table.num_rows)
        self.tables, self._trivial, self._bodies, self._alive = tables, trivial, bodies, alive
        self.base = np.array(base, np.int64)
        self.live = np.array(live, np.int64)
        return moved or None


def remap(pos: np.ndarray, moved: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Positions after `RowStore.release` moved some (rows not emitted yet only)."""
    pos = pos.copy()
    for base, to in moved:
        inside = np.flatnonzero((pos >= base) & (pos < base + len(to)))
        pos[inside] = to[pos[inside] - base]
    return pos
