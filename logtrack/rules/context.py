"""Per-batch column views that every rule shares (DESIGN §5 "compile once … over a batch").

String columns are dictionary-encoded once per batch, so a rule's path regex, method list or
query test runs over the *distinct* values (tens of thousands) rather than every row (a million),
and the result is gathered to rows with a numpy take. Query parameters are extracted and
form-decoded once per parameter name; cookie/header fields are looked up once per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .dictcol import DictCol, compact, encode, take_rows  # noqa: F401  (DictCol, compact: re-exported)
from .model import Source
from .queryparams import form_decode, query_values  # noqa: F401  (form_decode: re-exported)


class BatchContext:
    """Cached views of one batch of enriched requests, shared by every rule."""

    def __init__(self, table: pa.Table,
                 first_in_session: Callable[[BatchContext], np.ndarray] | None = None,
                 literals: dict[tuple[Source, str | None], tuple[str, ...]] | None = None,
                 prefixes: dict[tuple[Source, str | None], tuple[str, ...]] | None = None,
                 lookups: dict[tuple[Source, str | None], int] | None = None) -> None:
        self.table = table
        self.n = table.num_rows
        self._first = first_in_session
        self._cache: dict[Any, Any] = {}
        # Every literal the rules compare each (source, fold) with: see DictCol.ids_equal.
        self._literals = literals or {}
        self._prefixes = prefixes or {}  # and every literal prefix of their patterns
        self._lookups = lookups or {}  # how many rules test each (source, fold): DictCol.rows_for
        self._subset_rows: dict[Source, int] = {}  # rows `strings_at` served per source
        self._last_subset: dict[tuple[Source, str | None], tuple[np.ndarray, DictCol]] = {}

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Compute once per batch: masks and captures shared by rules with the same condition."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def column(self, name: str) -> pa.Array:
        """A column as one Array (nulls when the table lacks it)."""
        def get() -> pa.Array:
            if name not in self.table.column_names:
                from .. import schema

                return pa.nulls(self.n, schema.ENRICHED_REQUESTS.field(name).type)
            col = self.table.column(name)
            return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        return self.memo(("column", name), get)

    def raw(self, name: str) -> pa.Array | pa.ChunkedArray:
        """A column as the table holds it (chunked, uncopied), or the combined one if something
        made it already (nulls when the table lacks it)."""
        combined = self.cached_column(name)
        if combined is not None:
            return combined
        if name not in self.table.column_names:
            return self.column(name)
        return self.table.column(name)

    def cached_column(self, name: str) -> pa.Array | None:
        """The column as `column` made it, if something asked for it already, else None."""
        return self._cache.get(("column", name))

    def take(self, name: str, rows: np.ndarray) -> pa.Array:
        """A column at `rows` (ascending). From the combined column if something made it, else
        chunk by chunk: a take from a column of several chunks first copies them all into one."""
        combined = self.cached_column(name)
        if combined is not None or name not in self.table.column_names:
            return self.column(name).take(pa.array(rows))
        return take_rows(self.table.column(name), rows)

    def cached_strings(self, source: Source) -> DictCol | None:
        """The DictCol of a source if something asked for it already, else None."""
        return self._cache.get(("strings", source, None))

    def has_strings(self, source: Source, fold: str | None = None) -> bool:
        """Whether the batch's DictCol of a source was made already."""
        return ("strings", source, fold) in self._cache

    def strings(self, source: Source, fold: str | None = None) -> DictCol:
        """The DictCol of a string source, case-folded when `fold` is 'lower' or 'upper'."""
        def get() -> DictCol:
            found = self._strings(source, fold)
            literals = self._literals.get((source, fold))
            prefixes = self._prefixes.get((source, fold))
            lookups = self._lookups.get((source, fold), 0)
            if literals or prefixes or lookups:
                return DictCol(found.values, found.indices, literals, prefixes, lookups)
            return found
        return self.memo(("strings", source, fold), get)

    def strings_at(self, source: Source, rows: np.ndarray, fold: str | None = None) -> DictCol | None:
        """The DictCol of a query parameter or field at `rows` only (`indices` aligned with
        them), or None when the batch's own encoding should serve instead.

        A parameter asked for at a few rows (those a rule's path and status tests left, or its
        events) is extracted from those rows' distinct queries: the batch's encoding hashes
        every query string and extracts from all of them. Once the rows served so far reach a
        quarter of the batch (many rules asking), the batch's encoding is made and shared.
        """
        if source[0] not in ("query", "fields") or ("strings", source, fold) in self._cache:
            return None
        reused = self._reuse_subset((source, fold), rows)
        if reused is not None:
            return reused
        spent = self._subset_rows.get(source, 0) + len(rows)
        if 4 * spent > self.n:
            return None
        self._subset_rows[source] = spent
        subset = self._strings_at(source, rows, fold)
        lookups = self._lookups.get((source, fold), 0)
        if lookups:  # rules testing these rows again look their rows up by value id
            subset = DictCol(subset.values, subset.indices, lookups=lookups)
        self._last_subset[(source, fold)] = rows, subset
        return subset

    def _reuse_subset(self, key: tuple[Source, str | None], rows: np.ndarray) -> DictCol | None:
        """The last subset `strings_at` made for `key` at `rows`, when it covers them: rules
        testing the same rows (the same path), a rule's events among the rows it tested."""
        last = self._last_subset.get(key)
        if last is None or len(rows) > len(last[0]):
            return None
        if rows is last[0] or len(rows) == len(last[0]) and np.array_equal(rows, last[0]):
            return last[1]
        if not len(rows):
            return DictCol(last[1].values, last[1].indices[:0])
        # Each row's position in the (ascending) subset rows by binary search: O(k log s) for
        # k rows, where a position table over the batch costs a 1 M-entry array per rule.
        at = np.searchsorted(last[0], rows)
        at[at == len(last[0])] = 0
        return DictCol(last[1].values, last[1].indices[at]) if np.array_equal(last[0][at], rows) else None

    def _strings_at(self, source: Source, rows: np.ndarray, fold: str | None) -> DictCol:
        base = self._strings_at(source, rows, None) if fold else None
        if base is not None:
            return DictCol(pc.utf8_lower(base.values) if fold == "lower" else pc.utf8_upper(base.values), base.indices)
        kind, name = source
        if kind == "query":
            queries = encode(self.take("query", rows))
            return DictCol(query_values(queries.values, name), queries.indices)
        return encode(pc.map_lookup(self.take("fields", rows), pa.scalar(name, pa.string()), "first"))

    def _strings(self, source: Source, fold: str | None) -> DictCol:
        if fold:
            base = self.strings(source)
            folded = pc.utf8_lower(base.values) if fold == "lower" else pc.utf8_upper(base.values)
            return DictCol(folded, base.indices)
        kind, name = source
        if kind == "col":
            return encode(self.raw(name))
        if kind == "query":
            base = self.strings(("col", "query"))
            return DictCol(query_values(base.values, name), base.indices)
        fields = self.column("fields")
        return encode(pc.map_lookup(fields, pa.scalar(name, pa.string()), "first"))

    def number(self, name: str) -> np.ndarray:
        """A numeric column as float64 with NaN for null."""
        def get() -> np.ndarray:
            arr = self.raw(name).cast(pa.float64())
            return arr.fill_null(np.nan).to_numpy(zero_copy_only=False)
        return self.memo(("number", name), get)

    def boolean(self, name: str) -> np.ndarray:
        """A boolean column; null counts as false (an unenriched row is neither bot nor static)."""
        return self.memo(("bool", name),
                         lambda: self.raw(name).fill_null(False).to_numpy(zero_copy_only=False))

    def user_known(self) -> np.ndarray:
        """Rows with a user id (not null, not empty, not '-')."""
        def get() -> np.ndarray:
            ids = self.strings(("col", "user_id"))
            known = pc.invert(pc.is_in(ids.values, value_set=pa.array(["", "-"]))).fill_null(False)
            return np.append(known.to_numpy(zero_copy_only=False), False)[ids.indices]
        return self.memo(("user_known",), get)

    def first_in_session(self) -> np.ndarray:
        """Rows that open their session (computed by the RuleSet, which keeps cross-batch state)."""
        if self._first is None:
            return np.ones(self.n, dtype=bool)
        first = self._first
        return self.memo(("first_in_session",), lambda: first(self))
