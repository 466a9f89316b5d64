"""File-level `exclude:` over enriched requests, evaluated on the distinct values enrich encoded.

The chain decides exclusions right after enrich, which has dictionary-encoded the path and user
agent columns (remembered per array, `enrich.encoding`): a literal, glob or regex then runs over
the distinct values and the rows take the verdict; `client_ip` gets encoded here, and identity's
IP truncation reuses that encoding and the parsed addresses. A pattern first narrows the values
by its literal prefix (`starts_with`, a memcmp) and runs its regex on those few only, and a
network test reads canonical dotted quads as numbers (`match.cidr_mask`). Conditions without a
value-level form here (case-folded columns, query parameters, fields, session conditions) use
`select`; both give the same rows (tests compare them).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..enrich import encoding
from .context import BatchContext
from .match import cidr_mask, select
from .model import And, Cidr, Equals, Node, Not, Or, Pattern, Presence, StrCond


def exclude_mask(nodes: list[Node], table: pa.Table) -> np.ndarray:
    """True for rows any of `nodes` (a file's `exclude:` entries) matches."""
    mask = np.zeros(table.num_rows, dtype=bool)
    if not nodes or not table.num_rows:
        return mask
    ctx = BatchContext(table)
    for node in nodes:
        mask |= _mask(node, ctx)
    return mask


def _mask(node: Node, ctx: BatchContext) -> np.ndarray:
    if isinstance(node, And):
        out = np.ones(ctx.n, dtype=bool)
        for child in node.children:
            out &= _mask(child, ctx)
            if not out.any():
                break
        return out
    if isinstance(node, Or):
        out = np.zeros(ctx.n, dtype=bool)
        for child in node.children:
            out |= _mask(child, ctx)
        return out
    if isinstance(node, Not):
        return ~_mask(node.child, ctx)
    if isinstance(node, StrCond) and node.source[0] == "col" and node.fold is None:
        name = node.source[1]
        if name not in ctx.table.column_names:
            values = ctx.column(name)
            out = np.zeros(ctx.n, dtype=bool)
            for item in node.items:
                out |= _item_mask(values.cast(pa.string()), item)
            return out
        # Per distinct value (the encoding is shared with the stages around), then to rows.
        encoded = encoding.encode(ctx.table.column(name))
        distinct = encoded.dictionary
        if not pa.types.is_string(distinct.type):
            distinct = distinct.cast(pa.string())
        hit = np.zeros(len(distinct) + 1, dtype=bool)  # + the slot of null rows
        for item in node.items:
            hit[:-1] |= _item_mask(distinct, item)
            if isinstance(item, Presence) and not item.present:
                hit[-1] = True
        return hit[encoding.codes(encoded.indices)]
    out = np.zeros(ctx.n, dtype=bool)
    out[select(node, ctx)] = True
    return out


def _item_mask(values: pa.Array, item: Equals | Pattern | Presence | Cidr) -> np.ndarray:
    """Rows whose value satisfies one string item (null values satisfy only `Presence(False)`)."""
    if isinstance(item, Presence):
        present = pc.is_valid(values)
        return _np(present if item.present else pc.invert(present))
    if isinstance(item, Equals):
        if len(item.values) == 1:
            return _np(pc.equal(values, pa.scalar(item.values[0], values.type)))
        return _np(pc.is_in(values, value_set=pa.array(item.values, values.type)))
    if isinstance(item, Pattern):
        if not item.prefix:
            return _np(pc.match_substring_regex(values, item.regex))
        rows = np.flatnonzero(_np(pc.starts_with(values, item.prefix)))
        out = np.zeros(len(values), dtype=bool)
        if len(rows):
            out[rows] = _np(pc.match_substring_regex(values.take(pa.array(rows)), item.regex))
        return out
    return cidr_mask(values, item.networks)


def _np(arr: pa.Array) -> np.ndarray:
    return arr.fill_null(False).to_numpy(zero_copy_only=False)
