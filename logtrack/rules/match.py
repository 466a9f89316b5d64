"""Evaluate condition trees over a batch: row selections and captures, vectorized (DESIGN §5).

`select(node, ctx, rows)` returns the sorted row numbers (a subset of `rows`, or of all rows)
where the node holds. `And` narrows candidates child by child, string conditions first: a path
test over the distinct paths usually leaves a few rows, and the status/method tests then run on
those rows only. Captures are extracted for emitted rows only.
"""

from __future__ import annotations

import functools
import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..enrich.static import PAGEVIEW_METHODS, is_page_path, pageview_rows
from ..ipaddrs import dotted_quads
from .context import BatchContext, DictCol, compact
from .model import (
    Always,
    And,
    BoolCond,
    Cidr,
    Equals,
    FirstInSession,
    Node,
    Not,
    NumCond,
    Or,
    PageView,
    Pattern,
    Presence,
    StrCond,
    UserKnown,
    node_captures,
)
from .templates import capturing_only_named
from .values import ARROW_TYPES, cast_values


def select(node: Node, ctx: BatchContext, rows: np.ndarray | None = None) -> np.ndarray:
    """Sorted row numbers (int64) within `rows` (None = all rows) where `node` holds."""
    if isinstance(node, And):
        # From the whole batch, the rows where a set of children hold are the same whatever
        # rule tests them: rules sharing their first tests (`path: /search` and not a bot)
        # share those rows, and each goes on from there (one gather over them, not one per rule).
        applied: frozenset[Node] | None = frozenset() if rows is None else None
        for child in _by_selectivity(_and_order(node), ctx):
            if applied is None:
                rows = select(child, ctx, rows)
            else:
                applied = applied | {child}
                rows = select(child, ctx, rows) if len(applied) == 1 else \
                    ctx.memo(("and", applied), lambda child=child, rows=rows: select(child, ctx, rows))
            if len(rows) == 0:
                break
        return _all(ctx) if rows is None else rows
    if isinstance(node, Or):
        parts = [select(child, ctx, rows) for child in node.children]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    if isinstance(node, Not):
        base = _all(ctx) if rows is None else rows
        hit = select(node.child, ctx, rows)
        keep = np.ones(len(base), dtype=bool)
        keep[np.searchsorted(base, hit)] = False
        return base[keep]
    if isinstance(node, StrCond) and _presence_only(node):
        mask = presence_mask(node, ctx)
        return np.flatnonzero(mask) if rows is None else rows[mask[rows]]
    if isinstance(node, StrCond):
        subset = None if rows is None else ctx.strings_at(node.source, rows, node.fold)
        if subset is not None:  # rules testing the same rows' subset share its grouping by value
            return rows[subset.rows_for(id_mask(node, subset), None)]
        strings = ctx.strings(node.source, node.fold)
        ids = ctx.memo(("ids", node), lambda: id_mask(node, strings))
        if rows is None:  # rules sharing a first test (`path: /search`) share its rows
            return ctx.memo(("rows", node), lambda: strings.rows_for(ids, None))
        return strings.rows_for(ids, rows)
    if isinstance(node, Always):
        return _all(ctx) if rows is None else rows
    if isinstance(node, NumCond) and rows is not None and 8 * len(rows) < ctx.n:
        # The few rows the string tests left: compared directly, no mask over the batch.
        return rows[_num_mask(node, ctx.number(node.column)[rows])]
    mask = row_mask(node, ctx)
    if rows is None:
        return np.flatnonzero(mask)
    return rows[mask[rows]]


@functools.lru_cache(maxsize=4096)
def _and_order(node: And) -> tuple[Node, ...]:
    """Cheap, selective string tests first; each later child only sees the surviving rows."""
    return tuple(sorted(node.children, key=lambda c: 0 if isinstance(c, StrCond) else 1))


def _by_selectivity(children: tuple[Node, ...], ctx: BatchContext) -> tuple[Node, ...]:
    """String tests ordered by how many rows they match (known from their value-id masks and the
    rows per value id, without finding the rows), the others after them. A string test that
    matches no row at all makes the whole `And` empty: nothing else is evaluated."""
    strs = [c for c in children if isinstance(c, StrCond)]
    # Query parameters and fields not extracted for the batch yet go last, tested at the rows
    # the others leave (`BatchContext.strings_at`): counting their rows would extract them.
    late = tuple(c for c in strs if c.source[0] in ("query", "fields") and not ctx.has_strings(c.source, c.fold))
    if late and len(late) < len(children):
        strs = [c for c in strs if c not in late]
        children = tuple(c for c in children if c not in late)
    else:
        late = ()
    if len(strs) < 2 and not (strs and len(strs) == len(children)):
        return children + late
    counted = []
    for i, child in enumerate(strs):
        if _presence_only(child):
            count = int(presence_mask(child, ctx).sum())
            if count == 0:
                return (child,)
            counted.append((count, i, child))
            continue
        strings = ctx.strings(child.source, child.fold)
        ids = ctx.memo(("ids", child), lambda child=child, strings=strings: id_mask(child, strings))
        count = strings.row_count(ids)
        if count == 0:
            return (child,)
        counted.append((count, i, child))
    ordered = tuple(c for _, _, c in sorted(counted, key=lambda t: (t[0], t[1])))
    return ordered + tuple(c for c in children if not isinstance(c, StrCond)) + late


def _presence_only(node: StrCond) -> bool:
    """A column test of `present`/`absent` only: decided by the column's validity, no encoding."""
    return node.source[0] == "col" and all(isinstance(i, Presence) for i in node.items)


def presence_mask(node: StrCond, ctx: BatchContext) -> np.ndarray:
    """Rows satisfying a presence-only column test (`_presence_only`)."""
    def compute() -> np.ndarray:
        valid = ctx.memo(("valid", node.source[1]),
                         lambda: ctx.raw(node.source[1]).is_valid().to_numpy(zero_copy_only=False))
        wanted = {i.present for i in node.items}
        if wanted == {True, False}:
            return np.ones(ctx.n, dtype=bool)
        return valid if True in wanted else ~valid
    return ctx.memo(("presence", node), compute)


def _all(ctx: BatchContext) -> np.ndarray:
    return np.arange(ctx.n, dtype=np.int64)


def row_mask(node: Node, ctx: BatchContext) -> np.ndarray:
    """A full-length boolean mask for a non-string leaf condition (cached per batch)."""
    def compute() -> np.ndarray:
        if isinstance(node, NumCond):
            return _num_mask(node, ctx.number(node.column))
        if isinstance(node, BoolCond):
            values = ctx.boolean(node.column)
            return values if node.value else ~values
        if isinstance(node, FirstInSession):
            first = ctx.first_in_session()
            return first if node.value else ~first
        if isinstance(node, UserKnown):
            known = ctx.user_known()
            return known if node.known else ~known
        if isinstance(node, PageView):
            return page_view_mask(ctx)
        raise TypeError(f"not a leaf condition: {node!r}")
    return ctx.memo(("mask", node), compute)


def _num_mask(node: NumCond, values: np.ndarray) -> np.ndarray:
    """Which `values` (float64, NaN for null) satisfy a numeric condition."""
    if node.presence is not None:
        return ~np.isnan(values) if node.presence else np.isnan(values)
    out = np.zeros(len(values), dtype=bool)
    for lo, hi in node.ranges:
        out |= (values >= lo) & (values <= hi)
    return out


def page_view_mask(ctx: BatchContext) -> np.ndarray:
    """`sessions.pageview_mask` (2xx/304 GET/HEAD of a page-like path by a non-bot, not static),
    decided on the batch's shared encodings: the method and path tests run per distinct value,
    and the page-like test only on the paths of rows that pass the others (tests compare both)."""
    method = ctx.strings(("col", "method"))
    get = np.zeros(method.m + 1, dtype=bool)
    get[method.ids_equal(PAGEVIEW_METHODS)] = True
    # A null status is NaN here: no comparison holds, so it is no pageview.
    ok = pageview_rows(ctx.number("status"), get[method.indices], ctx.boolean("is_bot"), ctx.boolean("is_static"))
    paths = ctx.strings(("col", "path"))
    wanted = np.zeros(paths.m + 1, dtype=bool)
    wanted[paths.indices[ok]] = True
    wanted[-1] = False  # a null path is no page
    ids = np.flatnonzero(wanted)
    page = np.zeros(paths.m + 1, dtype=bool)
    if len(ids):
        page[ids] = _np(is_page_path(paths.values.take(pa.array(ids))))
    return ok & page[paths.indices]


def id_mask(node: StrCond, strings: DictCol) -> np.ndarray:
    """Which value ids (m + 1, the last one for null rows) satisfy any of the node's items."""
    values = strings.values
    out = np.zeros(strings.m + 1, dtype=bool)
    for item in node.items:
        if isinstance(item, Presence):
            valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
            out[:-1] |= valid if item.present else ~valid
            out[-1] |= not item.present
        elif isinstance(item, Equals):
            out[strings.ids_equal(item.values)] = True
        elif isinstance(item, Pattern):
            out[pattern_ids(strings, item)] = True
        elif isinstance(item, Cidr):
            out[:-1] |= cidr_mask(values, item.networks)
    return out


def pattern_ids(strings: DictCol, item: Pattern) -> np.ndarray:
    """Value ids matching a pattern; its literal prefix narrows the candidates by binary search."""
    if item.prefix:
        candidates = strings.ids_with_prefix(item.prefix)
        if not len(candidates):
            return candidates
        values = strings.values.take(pa.array(candidates))
    else:
        candidates, values = None, strings.values
    hit = _np(pc.match_substring_regex(values, item.regex))
    return candidates[hit] if candidates is not None else np.flatnonzero(hit)


def pattern_mask(values: pa.Array, item: Pattern) -> np.ndarray:
    """Boolean mask of `values` matching a pattern (used to group report paths)."""
    return _np(pc.match_substring_regex(values, item.regex))


def cidr_mask(values: pa.Array, networks: tuple[str, ...]) -> np.ndarray:
    """Which addresses lie in any network: IPv4 with integer arithmetic, IPv6 per distinct value.

    Canonical dotted quads (the usual address) come parsed from `ipaddrs.dotted_quads`, shared
    with IP truncation. The rest are first narrowed to candidates: an IPv4 address inside
    `10.0.0.0/8` is written `10.…` unless an octet has a leading zero (then it starts with `0` or
    holds `.0`), an IPv6 one holds `:`. Those are cheap memcmp kernels; the regex and arithmetic
    then run on a few values only.
    """
    nets = [ipaddress.ip_network(n) for n in networks]
    values = values if isinstance(values, pa.Array) else values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    number, canonical, _ = dotted_quads(values)
    out = np.zeros(len(values), dtype=bool)
    for net in nets:
        if net.version == 4:
            out |= canonical & ((number & int(net.netmask)) == int(net.network_address))
    rest = np.flatnonzero(~canonical)
    if len(rest):
        some = values if len(rest) == len(values) else values.take(pa.array(rest))
        rows = np.flatnonzero(_cidr_candidates(some, nets))
        if len(rows):
            out[rest[rows]] = _cidr_exact(some if len(rows) == len(some) else some.take(pa.array(rows)), nets)
    return out


def _cidr_candidates(values: pa.Array, nets: list) -> np.ndarray:
    """A superset of the values `_cidr_exact` can accept, by prefix and substring tests."""
    v4 = [n for n in nets if n.version == 4]
    if any(n.prefixlen < 8 for n in v4):
        return np.ones(len(values), dtype=bool)
    hit = np.zeros(len(values), dtype=bool)
    for net in v4:
        fixed = net.network_address.packed[:net.prefixlen // 8]
        hit |= _np(pc.starts_with(values, ".".join(str(o) for o in fixed) + "."))
    if v4:
        hit |= _np(pc.starts_with(values, "0")) | _np(pc.match_substring(values, ".0"))
    if len(v4) < len(nets):
        hit |= _np(pc.match_substring(values, ":"))
    return hit


def _cidr_exact(values: pa.Array, nets: list) -> np.ndarray:
    out = np.zeros(len(values), dtype=bool)
    octets = pc.extract_regex(values, r"^(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})$")
    v4 = _np(pc.is_valid(octets))
    if v4.any():
        ip = np.zeros(len(values), dtype=np.int64)
        for i in range(4):
            part = pc.struct_field(octets, [i]).cast(pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
            v4 &= part <= 255  # 300.1.2.3 is no address (and must not wrap into 44.1.2.3)
            ip = ip * 256 + part
        for net in nets:
            if net.version == 4:
                mask = int(net.netmask)
                out |= v4 & ((ip & mask) == int(net.network_address))
    v6_rows = np.flatnonzero(_np(pc.match_substring(values, ":")))
    v6_nets = [n for n in nets if n.version == 6]
    if len(v6_rows) and v6_nets:
        for row, text in zip(v6_rows, values.take(pa.array(v6_rows)).to_pylist(), strict=True):
            try:
                addr = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            out[row] = any(addr in n for n in v6_nets)
    return out


def _np(arr: pa.Array) -> np.ndarray:
    return arr.fill_null(False).to_numpy(zero_copy_only=False)


def capture_indexed(node: Node, name: str, typ: str, ctx: BatchContext,
                    rows: np.ndarray) -> tuple[pa.Array, np.ndarray] | None:
    """Capture `name` (as `typ`) per distinct value, and each of `rows`' index into them (the
    last value null, for rows without one), when one string condition's one pattern defines
    it; else None (`capture_values` then gives the values per row)."""
    if isinstance(node, And):
        for child in node.children:
            if name in node_captures(child):
                return capture_indexed(child, name, typ, ctx, rows)
        return None
    if not isinstance(node, StrCond):
        return None
    items = [i for i in node.items if isinstance(i, Pattern) and name in dict(i.captures)]
    if len(items) != 1:
        return None
    strings = ctx.strings(node.source, node.fold)
    # Null rows (id m, the largest) land at len(ids): the appended null.
    ids, where = compact(strings.indices[rows], strings.m)
    ids = ids[ids < strings.m]
    per_id = _extract(strings.values.take(pa.array(ids)), items[0], name, typ) if len(ids) \
        else pa.array([], ARROW_TYPES[typ])
    return pa.concat_arrays([per_id, pa.nulls(1, per_id.type)]), where


def capture_values(node: Node, name: str, typ: str, ctx: BatchContext, rows: np.ndarray) -> pa.Array:
    """Values of capture `name` (as `typ`) for `rows`, every one of which matched `node`."""
    if isinstance(node, StrCond):
        subset = None if rows is None else ctx.strings_at(node.source, rows, node.fold)
        if subset is not None:
            return rows[id_mask(node, subset)[subset.indices]]
        strings = ctx.strings(node.source, node.fold)
        row_ids = strings.indices[rows]
        # Extract from the distinct values these rows use, not from every value of the batch.
        ids, where = compact(row_ids, strings.m)
        ids = ids[ids < strings.m]
        where = pa.array(where.clip(0, max(len(ids) - 1, 0)))
        valid = row_ids < strings.m
        pieces = []
        for item in node.items:
            if isinstance(item, Pattern) and name in dict(item.captures) and len(ids):
                per_id = _extract(strings.values.take(pa.array(ids)), item, name, typ)
                values = per_id.take(where)
                if not valid.all():
                    values = pc.if_else(pa.array(valid), values, pa.scalar(None, values.type))
                pieces.append(values)
        if not pieces:
            return pa.nulls(len(rows), ARROW_TYPES[typ])
        return pieces[0] if len(pieces) == 1 else pc.coalesce(*pieces)
    if isinstance(node, And):
        for child in node.children:
            if name in node_captures(child):
                return capture_values(child, name, typ, ctx, rows)
    if isinstance(node, Or):
        # The first alternative that matched a row (and defines the capture) gives its value.
        chunks: list[pa.Array] = []
        index = np.full(len(rows), -1, dtype=np.int64)
        offset = 0
        for child in node.children:
            if name not in node_captures(child):
                continue
            hit = select(child, ctx, rows)
            pos = np.searchsorted(rows, hit)
            free = index[pos] < 0
            if not free.any():
                continue
            vals = capture_values(child, name, typ, ctx, hit[free])
            index[pos[free]] = offset + np.arange(free.sum())
            chunks.append(vals)
            offset += len(vals)
        chunks.append(pa.nulls(1, ARROW_TYPES[typ]))
        index[index < 0] = offset
        return pa.concat_arrays(chunks).take(pa.array(index))
    return pa.nulls(len(rows), ARROW_TYPES[typ])


def _extract(values: pa.Array, item: Pattern, name: str, typ: str) -> pa.Array:
    """Capture `name` of each value, typed (null where the pattern does not match)."""
    found = pc.extract_regex(values, capturing_only_named(item.regex))
    names = [f.name for f in found.type]
    text = pc.struct_field(found, [names.index(name)])
    if typ != "string" and dict(item.captures).get(name) == typ:
        # Template converters (int, float) only match well-formed numbers: cast directly.
        return text.cast(ARROW_TYPES[typ])
    return cast_values(text, typ)
