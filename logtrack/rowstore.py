"""The sessionizer's store of pushed tables (`sessions.Sessionizer`): rows addressed by position.

The sessionizer's own state is plain numpy arrays; the wide rows stay in the tables as they were
pushed until they are emitted, and a push gathers the rows it emits once (`RowStore.take`).
Gathering costs per value, so the store avoids gathering what it can make: each table gathers
only its own rows (Arrow's take over several tables would first copy all of them into one), and
columns without values in a table — all null, or empty maps, as many columns of a log format are
— are made at the right length instead (Arrow's take is slowest on nulls).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _made(kind: str, n: int, typ: pa.DataType) -> pa.Array:
    """n nulls, or n empty maps, of type `typ`."""
    if kind == "null":
        return pa.nulls(n, typ)
    none = pa.array([], typ.key_type)
    return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), none, none.cast(typ.item_type), type=typ)


def _kinds(table: pa.Table) -> dict[str, str]:
    """Columns of a table without values: `null` (all null) or `empty` (maps, all empty)."""
    out = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        if col.null_count == len(col):
            out[name] = "null"
        elif pa.types.is_map(col.type) and col.null_count == 0 and all(
                c.offsets[-1].as_py() == c.offsets[0].as_py() for c in col.chunks):
            out[name] = "empty"
    return out


class RowStore:
    """The pushed tables whose rows are not all emitted yet; a row is addressed by its position in
    their concatenation.

    A table is dropped once all its rows are emitted and compacted once fewer than a quarter are
    left, so memory stays within a small multiple of the rows held back (and the rows a push
    gathers are not spread thinly over many tables); `release` says how positions moved.
    """

    def __init__(self, schema: pa.Schema) -> None:
        """An empty store of tables with `schema`."""
        self.schema = schema
        self.tables: list[pa.Table] = []
        self._trivial: list[dict[str, str]] = []  # per table: its columns without values (`_kinds`)
        self._alive = np.empty(1024, bool)  # per position: not emitted yet (a buffer grown by doubling)
        self.bounds = np.zeros(1, np.int64)  # first position of each table, and the end
        self.live = np.empty(0, np.int64)  # rows not emitted yet, per table

    @property
    def alive(self) -> np.ndarray:
        """Per position: not emitted yet."""
        return self._alive[: self.bounds[-1]]

    def add(self, table: pa.Table) -> np.ndarray:
        """Keep a table (with the store's schema); return its rows' positions."""
        start, end = int(self.bounds[-1]), int(self.bounds[-1]) + table.num_rows
        if end > len(self._alive):
            grown = np.empty(max(end, 2 * len(self._alive)), bool)
            grown[:start] = self._alive[:start]
            self._alive = grown
        self._alive[start:end] = True
        self.tables.append(table)
        self._trivial.append(_kinds(table))
        self.bounds = np.append(self.bounds, end)
        self.live = np.append(self.live, table.num_rows)
        return np.arange(start, end)

    def take(self, pos: np.ndarray, in_order: bool = False) -> tuple[pa.Table, np.ndarray]:
        """Rows by position (all >= 0), every column; returns them and `order`: row i of the result
        is `pos[order[i]]`. The rows come grouped by the table they are stored in (`pos`'s order
        within a group), or in `pos`'s order when `in_order` (a second gather, of these rows)."""
        table_of = np.searchsorted(self.bounds, pos, side="right") - 1
        order = np.argsort(table_of, kind="stable")
        which = table_of[order]
        cuts = np.flatnonzero(which[1:] != which[:-1]) + 1
        groups = list(zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(order)]]), strict=True))
        if not groups:
            return self.schema.empty_table(), order
        kinds = [self._trivial[which[lo]] for lo, _ in groups]
        common = {n: k for n, k in kinds[0].items() if all(other.get(n) == k for other in kinds[1:])}
        names = [n for n in self.schema.names if n not in common]
        body = pa.concat_tables([
            self._gather(self.tables[which[lo]], kinds[g], pa.array(pos[order[lo:hi]] - self.bounds[which[lo]]), names)
            for g, (lo, hi) in enumerate(groups)])
        if in_order:
            body = pc.take(body, pa.array(np.argsort(order)), boundscheck=False)
            order = np.arange(len(order))
        return self._complete(body, common), order

    def _gather(self, table: pa.Table, trivial: dict[str, str], idx: pa.Array, names: list[str]) -> pa.Table:
        """Rows `idx` of one stored table, columns `names`."""
        wanted = [n for n in names if n not in trivial]
        part = pc.take(table.select(wanted), idx, boundscheck=False)
        if len(wanted) == len(names):
            return part
        arrays = [part.column(n) if n not in trivial else _made(trivial[n], len(idx), self.schema.field(n).type)
                  for n in names]
        return pa.Table.from_arrays(arrays, schema=pa.schema([self.schema.field(n) for n in names]))

    def _complete(self, body: pa.Table, made: dict[str, str]) -> pa.Table:
        """`body` with the columns `made` added, in the store's column order."""
        if not made:
            return body
        n = body.num_rows
        return pa.Table.from_arrays(
            [body.column(f.name) if f.name not in made else _made(made[f.name], n, f.type) for f in self.schema],
            schema=self.schema)

    def release(self, pos: np.ndarray) -> np.ndarray | None:
        """Forget emitted rows; when rows moved, return each old position's new one."""
        if not len(pos):
            return None
        self._alive[pos] = False
        self.live -= np.bincount(np.searchsorted(self.bounds, pos, side="right") - 1, minlength=len(self.live))
        sizes = np.diff(self.bounds)
        compact = (self.live > 0) & (self.live * 4 < sizes)
        if not (compact.any() or (self.live == 0).any()):
            return None
        alive = self.alive
        kept, tables, kinds = alive.copy(), [], []
        for i, table in enumerate(self.tables):
            part = slice(self.bounds[i], self.bounds[i + 1])
            if compact[i]:
                k, idx = self._trivial[i], pa.array(np.flatnonzero(alive[part]))
                tables.append(self._complete(self._gather(table, k, idx, [n for n in self.schema.names if n not in k]), k))
                kinds.append(k)  # a column without values keeps none
            elif self.live[i]:
                tables.append(table)
                kinds.append(self._trivial[i])
                kept[part] = True  # dead rows stay in a table kept as it is
        if len(tables) > 16:
            tables, kinds = self._merge_small(tables, kinds)
        self.tables, self._trivial = tables, kinds
        n = int(kept.sum())
        self._alive = np.concatenate([alive[kept], np.empty(max(1024, n), bool)])
        self.bounds = np.cumsum([0] + [t.num_rows for t in self.tables])
        self.live = np.add.reduceat(self._alive[:n].astype(np.int64), self.bounds[:-1]) if self.tables else np.empty(0, np.int64)
        return np.cumsum(kept) - 1

    @staticmethod
    def _merge_small(tables: list[pa.Table], kinds: list[dict[str, str]]) -> tuple[list[pa.Table], list[dict[str, str]]]:
        """Join runs of small tables (leftovers of long sessions), keeping the row order."""
        out: list[pa.Table] = []
        out_kinds: list[dict[str, str]] = []
        run: list[pa.Table] = []
        for table, k in [*zip(tables, kinds, strict=True), (None, None)]:
            if table is not None and table.num_rows < 16384:
                run.append(table)
                continue
            if run:
                out.append(pa.concat_tables(run).combine_chunks() if len(run) > 1 else run[0])
                out_kinds.append(_kinds(out[-1]) if len(run) > 1 else _kinds(run[0]))
                run = []
            if table is not None and k is not None:
                out.append(table)
                out_kinds.append(k)
        return out, out_kinds
