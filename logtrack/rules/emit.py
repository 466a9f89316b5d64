"""Build the properties of emitted events and their deterministic ids, vectorized (DESIGN §2, §5).

For the rows a rule emits, each property is one Arrow array (typed as declared); the `properties`
map (text) and the `properties_json` object are assembled from those arrays column-wise, never
row by row. A property whose value is missing (an absent query parameter) is left out.
"""

from __future__ import annotations

import binascii
import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .context import BatchContext, DictCol, compact
from .match import capture_indexed, capture_values
from .model import Prop, Ref, Rule, node_captures
from .objects import ObjectBuilder
from .values import ARROW_TYPES, cast_values, literal_array, to_text

Values = tuple[pa.Array, "np.ndarray | None"]
"""A property's values for a rule's events: (per event, None), or (distinct values, the index
of each event's value): conversion, text and JSON then run once per distinct value."""


def _plus_null(values: pa.Array) -> pa.Array:
    """`values` and a trailing null (the slot of null rows)."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)])


def _with_null(ctx: BatchContext, key: tuple[str, str], strings: DictCol) -> pa.Array:
    # Values plus a trailing null, so null rows (index m) take a null.
    return ctx.memo(("with_null", key),
                    lambda: pa.concat_arrays([strings.values, pa.nulls(1, pa.string())]))


def _encoded(ref: Ref, ctx: BatchContext) -> DictCol | None:
    """The batch's encoding of a referenced string source, when there is one: query parameters
    and fields always; a column only when a condition encoded it already (a hash of every row
    costs more than a take of the emitted ones)."""
    if ref.kind in ("query", "fields"):
        return ctx.strings((ref.kind, ref.name))
    if ref.kind == "column" and ref.name in ctx.table.column_names \
            and pa.types.is_string(ctx.table.schema.field(ref.name).type):
        return ctx.cached_strings(("col", ref.name))
    return None


def ref_values(ref: Ref, rule: Rule, ctx: BatchContext, rows: np.ndarray) -> pa.Array:
    """The values of one template reference for `rows`."""
    if ref.kind == "capture":
        typ = node_captures(rule.when)[ref.name]
        return capture_values(rule.when, ref.name, typ, ctx, rows)
    if ref.kind in ("query", "fields"):
        subset = ctx.strings_at((ref.kind, ref.name), rows)
        if subset is not None:
            return _plus_null(subset.values).take(pa.array(subset.indices))
        strings = ctx.strings((ref.kind, ref.name))
        return _with_null(ctx, (ref.kind, ref.name), strings).take(pa.array(strings.indices[rows]))
    return ctx.take(ref.name, rows)


def prop_values(prop: Prop, rule: Rule, ctx: BatchContext, rows: np.ndarray,
                shared: SharedParams | None = None) -> Values:
    """One property's typed values for `rows` (null where a referenced value is missing).
    `shared`: parameters extracted once for the rows of several rules (`_shared_params`)."""
    n = len(rows)
    if prop.parts is None:
        return literal_array(prop.literal, prop.type, 1), np.zeros(n, np.int64)
    index = None
    ref = _single_param(prop)
    if ref is not None and shared and (ref.kind, ref.name) in shared:
        values, index = shared[(ref.kind, ref.name)].at(rows, prop.type)
        if prop.default is not None:
            values = values.fill_null(pa.scalar(prop.default, ARROW_TYPES[prop.type]))
        return values, index
    if len(prop.parts) == 1 and isinstance(prop.parts[0], Ref):
        ref = prop.parts[0]
        subset = ctx.strings_at((ref.kind, ref.name), rows) if ref.kind in ("query", "fields") else None
        strings = _encoded(ref, ctx) if subset is None else None
        found = capture_indexed(rule.when, ref.name, node_captures(rule.when)[ref.name], ctx, rows) \
            if ref.kind == "capture" else None
        if subset is not None:
            values, index = _plus_null(subset.values), subset.indices
        elif strings is not None:
            values, index = _with_null(ctx, (ref.kind, ref.name), strings), strings.indices[rows]
            if len(values) > 2 * n:
                # Few events for many distinct values: only the values they use are converted.
                used, index = compact(index, strings.m)
                values = values.take(pa.array(used))
        elif found is not None:
            values, index = found
        else:
            values = ref_values(ref, rule, ctx, rows)
        values = cast_values(values, prop.type)
    else:
        pieces = [pa.scalar(part) if isinstance(part, str)
                  else cast_values(ref_values(part, rule, ctx, rows), "string") for part in prop.parts]
        if not any(isinstance(p, pa.Array) for p in pieces):
            pieces.append(pa.nulls(n, pa.string()).fill_null(""))
        values = cast_values(pc.binary_join_element_wise(*pieces, ""), prop.type)
    if prop.default is not None:
        values = values.fill_null(pa.scalar(prop.default, ARROW_TYPES[prop.type]))
    return values, index


def _single_param(prop: Prop) -> Ref | None:
    """The query parameter or field a property is made of alone (`"{query.n}"`), else None."""
    if prop.parts is not None and len(prop.parts) == 1 and isinstance(prop.parts[0], Ref) \
            and prop.parts[0].kind in ("query", "fields"):
        return prop.parts[0]
    return None


class SharedParam:
    """A query parameter or field at the union of several rules' events (`rows`, ascending):
    each rule's events find their value by binary search, and the values are converted once
    per declared type, where each rule would extract, encode and convert its own rows'."""

    def __init__(self, rows: np.ndarray, strings: DictCol) -> None:
        self.rows = rows
        self.strings = strings
        self._typed: dict[str, pa.Array] = {}

    def at(self, rows: np.ndarray, typ: str) -> Values:
        """(Typed values, each of `rows`' index into them) for `rows`, a subset of `self.rows`."""
        if typ not in self._typed:
            self._typed[typ] = cast_values(_plus_null(self.strings.values), typ)
        values = self._typed[typ]
        index = self.strings.indices[np.searchsorted(self.rows, rows)]
        if len(values) > 2 * len(rows):
            # Few events for many values: only the values they use go on (text, JSON).
            used, index = compact(index, len(values) - 1)
            values = values.take(pa.array(used))
        return values, index


SharedParams = dict[tuple[str, str], SharedParam]


def _shared_params(pending: list[tuple[int, tuple[Prop, ...], Rule, BatchContext, np.ndarray]]) -> SharedParams:
    """The query parameters and fields that properties of two or more emitting rules read alone,
    each extracted once at the union of those rules' events (`BatchContext.strings_at`, or the
    batch's own encoding when that is made or the rows are many)."""
    wanted: dict[tuple[str, str], list[np.ndarray]] = {}
    for _, props, _, _, rows in pending:
        for key in dict.fromkeys((ref.kind, ref.name) for ref in map(_single_param, props) if ref is not None):
            wanted.setdefault(key, []).append(rows)
    out: SharedParams = {}
    ctx = pending[0][3] if pending else None  # one batch: every rule's context is the same
    for key, lists in wanted.items():
        if len(lists) < 2 or ctx is None:
            continue
        union = _union(lists)
        subset = ctx.strings_at(key, union)
        if subset is not None:
            out[key] = SharedParam(union, subset)
        else:  # the batch's encoding: every row's value id
            strings = ctx.strings(key)
            out[key] = SharedParam(union, DictCol(strings.values, strings.indices[union]))
    return out


def _union(lists: list[np.ndarray]) -> np.ndarray:
    """The ascending union of ascending row lists. A stable sort is a merge of sorted runs
    here (timsort finds them), cheaper than `np.unique`'s quicksort or a mask over the batch."""
    rows = np.sort(np.concatenate(lists), kind="stable")
    if len(rows) > 1:
        rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    return rows


class PropertyCollector:
    """Gathers the typed property values of every emitting rule of a batch, then builds the
    `properties` map and JSON objects for all events at once.

    Per (rule, property) only the values are computed, per distinct value where they come from
    an encoded source (`Values`). The map's entries are placed by arithmetic on offsets, without
    sorting the (event, property) pairs; the JSON objects are made once per distinct object
    (`objects.ObjectBuilder`: numpy per rule, Arrow kernels per batch) and gathered at once.
    """

    def __init__(self) -> None:
        # One block per `add`: (first event, events, [(name, values)]), filled by `_resolve`.
        self.blocks: list[tuple[int, int, list[tuple[str, Values]]]] = []
        self.total = 0
        # Per `add`: (first event, props, rule, context, rows); values are computed at `build`,
        # when every rule's rows are known (see `_shared_params`).
        self._pending: list[tuple[int, tuple[Prop, ...], Rule, BatchContext, np.ndarray]] = []

    def add(self, props: tuple[Prop, ...] | None, rule: Rule, ctx: BatchContext, rows: np.ndarray) -> None:
        """Record the properties of `len(rows)` events emitted by `rule`, in emission order."""
        self._pending.append((self.total, props or (), rule, ctx, rows))
        self.total += len(rows)

    def _resolve(self) -> None:
        """Compute the recorded blocks' property values (`prop_values`), the query parameters
        and fields several rules read extracted once for all their rows."""
        shared = _shared_params(self._pending)
        for start, props, rule, ctx, rows in self._pending:
            values = [(prop.name, prop_values(prop, rule, ctx, rows, shared)) for prop in props]
            self.blocks.append((start, len(rows), values))
        self._pending = []

    def build(self, order: np.ndarray | None = None) -> tuple[pa.MapArray, pa.Array]:
        """The `properties` map and JSON object of every recorded event: in emission order, or
        event `order[i]` at position i when an order is given."""
        self._resolve()
        n = self.total
        if not any(values for _, _, values in self.blocks):
            offsets = pa.array(np.zeros(n + 1, np.int32))
            empty = pa.array([], pa.string())
            return pa.MapArray.from_arrays(offsets, empty, empty), pa.repeat(pa.scalar("{}"), n)
        names: dict[str, int] = {}
        texts: list[pa.Array] = []
        # Per (block, property): first event, events' valid mask, texts start, key, index.
        parts: list[tuple[int, np.ndarray, int, int, np.ndarray | None]] = []
        quoted: list[bool] = []  # per text array: whether its JSON form is a quoted string
        objects = ObjectBuilder(n)
        counts = np.zeros(n, np.int64)
        text_base = 0
        for start, size, values in self.blocks:
            text_ids: list[np.ndarray] = []  # each property's global text id per event
            for name, (arr, index) in values:
                valid = _valid(arr)
                if index is not None:
                    valid = valid[index]
                counts[start:start + size] += valid
                parts.append((start, valid, text_base, names.setdefault(name, len(names)), index))
                texts.append(to_text(arr))
                quoted.append(pa.types.is_string(arr.type))
                text_ids.append(text_base + (np.arange(size, dtype=np.int64) if index is None else index))
                text_base += len(arr)
            if len(text_ids) == 1:
                objects.single(start, text_ids[0])
            elif text_ids:
                objects.multi(start, text_ids)
        position = np.arange(n)
        if order is not None:
            position[order] = np.arange(n)
        counts_out = counts if order is None else counts[order]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts_out, out=offsets[1:])
        # Entry slot of an event's property: its event's offset + how many valid properties
        # of the same rule come before it (the declaration order).
        value_index = np.empty(int(offsets[-1]), np.int64)
        key_code = np.empty(int(offsets[-1]), np.int64)
        rank = np.zeros(n, np.int64)
        for start, valid, first, code, index in parts:
            events = np.flatnonzero(valid)
            slot = offsets[position[start + events]] + rank[start + events]
            rank[start + events] += 1
            value_index[slot] = first + (events if index is None else index[events])
            key_code[slot] = code
        all_texts = _concat(texts)
        mapping = pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                          pa.array(list(names), pa.string()).take(pa.array(key_code)),
                                          all_texts.take(pa.array(value_index)))
        lengths = [len(t) for t in texts]
        text_key = np.repeat(np.array([code for _, _, _, code, _ in parts], np.int64), lengths)
        return mapping, objects.build(all_texts, list(names), text_key, np.repeat(np.array(quoted), lengths), order)


def _concat(arrays: list[pa.Array]) -> pa.Array:
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


# ---- event ids -----------------------------------------------------------------------------------

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-spread 64-bit mixing function (wraps on overflow).
    Mixes `x` in place (callers pass a temporary) and returns it: no new array per step."""
    x += np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _digest(texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit halves of BLAKE2b-128 for each text (None hashes as a distinct marker)."""
    raw = b"".join(hashlib.blake2b(b"\x00null" if t is None else t.encode("utf-8", "surrogatepass"),
                                   digest_size=16, person=b"logtrack-event").digest() for t in texts)
    halves = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    return halves[:, 0].copy(), halves[:, 1].copy()


def event_ids(source: DictCol, line: pa.Array | pa.ChunkedArray, names: list[str],
              name_index: np.ndarray) -> pa.Array:
    """32-hex-digit ids from (source, line, event name): identical whatever the batch size.

    `source` holds each event's source (`indices` aligned with `line`; a null source at index
    `m`). Sources and names are hashed once per distinct value (BLAKE2b); rows combine those
    hashes with the line number through a 64-bit mixer, so the cost per event is a few numpy ops.
    """
    n = len(line)
    if n == 0:
        return pa.array([], pa.string())
    s1, s2 = _digest(source.values.to_pylist() + [None])
    s1, s2 = s1[source.indices], s2[source.indices]
    n1, n2 = _digest(names)
    n1, n2 = n1[name_index], n2[name_index]
    ln = line.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)
    lo = _mix(s1 ^ _mix(ln ^ n1))
    hi = _mix(s2 ^ _mix(ln + n2) ^ lo)
    raw = np.empty((n, 2), dtype=">u8")  # big-endian (hi, lo) per event, converted on assignment
    raw[:, 0] = hi
    raw[:, 1] = lo
    # hexlify runs in C over the whole buffer and returns bytes (no str to encode again).
    hexed = binascii.hexlify(raw.view(np.uint8))
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(hexed))
