"""Build the properties of emitted events and their deterministic ids, vectorized (DESIGN §2, §5).

For the rows a rule emits, each property is one Arrow array (typed as declared); the `properties`
map (text) and the `properties_json` object are assembled from those arrays column-wise, never
row by row. A property whose value is missing (an absent query parameter) is left out.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..jsonarrow import escape as json_escape
from .context import BatchContext, DictCol
from .match import capture_values
from .model import Prop, Ref, Rule, node_captures
from .values import ARROW_TYPES, cast_values, literal_array, to_text


def _with_null(ctx: BatchContext, key: tuple[str, str], strings: DictCol) -> pa.Array:
    # Values plus a trailing null, so null rows (index m) take a null.
    return ctx.memo(("with_null", key),
                    lambda: pa.concat_arrays([strings.values, pa.nulls(1, pa.string())]))


def ref_values(ref: Ref, rule: Rule, ctx: BatchContext, rows: np.ndarray) -> pa.Array:
    """The values of one template reference for `rows`."""
    if ref.kind == "capture":
        typ = node_captures(rule.when)[ref.name]
        return capture_values(rule.when, ref.name, typ, ctx, rows)
    if ref.kind in ("query", "fields"):
        strings = ctx.strings((ref.kind, ref.name))
        return _with_null(ctx, (ref.kind, ref.name), strings).take(pa.array(strings.indices[rows]))
    return ctx.column(ref.name).take(pa.array(rows))


def prop_values(prop: Prop, rule: Rule, ctx: BatchContext, rows: np.ndarray) -> pa.Array:
    """One property's typed values for `rows` (null where a referenced value is missing)."""
    n = len(rows)
    if prop.parts is None:
        return literal_array(prop.literal, prop.type, n)
    if len(prop.parts) == 1 and isinstance(prop.parts[0], Ref):
        values = cast_values(ref_values(prop.parts[0], rule, ctx, rows), prop.type)
    else:
        pieces = [pa.scalar(part) if isinstance(part, str)
                  else cast_values(ref_values(part, rule, ctx, rows), "string") for part in prop.parts]
        if not any(isinstance(p, pa.Array) for p in pieces):
            pieces.append(pa.nulls(n, pa.string()).fill_null(""))
        values = cast_values(pc.binary_join_element_wise(*pieces, ""), prop.type)
    if prop.default is not None:
        values = values.fill_null(pa.scalar(prop.default, ARROW_TYPES[prop.type]))
    return values


class PropertyCollector:
    """Gathers the typed property arrays of every emitting rule of a batch, then builds the
    `properties` map and JSON objects for all events at once.

    Per (rule, property) only the values are computed; text conversion, JSON escaping and the
    assembly into maps and objects run once per batch over all events, so a rule that emits adds
    a handful of Arrow calls, not dozens.
    """

    def __init__(self) -> None:
        self.values: list[pa.Array] = []
        self.names: list[str] = []
        self.starts: list[int] = []
        self.orders: list[int] = []
        self.total = 0

    def add(self, props: tuple[Prop, ...] | None, rule: Rule, ctx: BatchContext, rows: np.ndarray) -> None:
        """Record the properties of `len(rows)` events emitted by `rule`, in emission order."""
        for order, prop in enumerate(props or ()):
            self.values.append(prop_values(prop, rule, ctx, rows))
            self.names.append(prop.name)
            self.starts.append(self.total)
            self.orders.append(order)
        self.total += len(rows)

    def build(self, order: np.ndarray | None = None) -> tuple[pa.MapArray, pa.Array]:
        """The `properties` map and JSON object of every recorded event: in emission order, or
        event `order[i]` at position i when an order is given (assembled in that order directly,
        rather than taking the built arrays afterwards)."""
        n = self.total
        if not self.values:
            offsets = pa.array(np.zeros(n + 1, np.int32))
            empty = pa.array([], pa.string())
            return pa.MapArray.from_arrays(offsets, empty, empty), pa.repeat(pa.scalar("{}"), n)
        # Convert per type (one text and one JSON pass per type for the whole batch). The JSON
        # of a number or bool is its text; a string's is its escaped text between quotes, the
        # quotes going into the fragment's prefix and suffix below (no pass of their own).
        by_type: dict[pa.DataType, list[int]] = {}
        for i, v in enumerate(self.values):
            by_type.setdefault(v.type, []).append(i)
        texts, jsons, valids, base = [], [], [], np.zeros(len(self.values), np.int64)
        quoted = np.zeros(len(self.values), dtype=bool)
        offset = 0
        for members in by_type.values():
            merged = pa.concat_arrays([self.values[i] for i in members])
            text = to_text(merged)
            texts.append(text)
            is_string = pa.types.is_string(merged.type)
            jsons.append(json_escape(merged) if is_string else text)
            valids.append(merged.is_valid().to_numpy(zero_copy_only=False))
            for i in members:
                base[i] = offset
                quoted[i] = is_string
                offset += len(self.values[i])
        text_all, json_all = pa.concat_arrays(texts), pa.concat_arrays(jsons)
        valid_all = np.concatenate(valids)
        # Long format: one entry per (event, property) value, sorted by event then declaration.
        lengths = np.array([len(v) for v in self.values], np.int64)
        entry = np.repeat(np.arange(len(self.values)), lengths)
        within = np.arange(len(entry)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        event = np.repeat(np.array(self.starts, np.int64), lengths) + within
        value_index = base[entry] + within
        keep = valid_all[value_index]
        entry, event, value_index = entry[keep], event[keep], value_index[keep]
        if order is not None:
            position = np.empty(n, np.int64)
            position[order] = np.arange(n)
            event = position[event]
        by_event = np.lexsort((np.array(self.orders, np.int64)[entry], event))
        entry, event, value_index = entry[by_event], event[by_event], value_index[by_event]
        counts = np.bincount(event, minlength=n)
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        take = pa.array(value_index)
        keys = pa.array(self.names, pa.string()).take(pa.array(entry))
        mapping = pa.MapArray.from_arrays(pa.array(offsets), keys, text_all.take(take))
        return mapping, self._objects(entry, offsets, counts, quoted, json_all.take(take))

    def _objects(self, entry: np.ndarray, offsets: np.ndarray, counts: np.ndarray, quoted: np.ndarray,
                 values: pa.Array) -> pa.Array:
        """The JSON object of each event from its entries' JSON values (in event order): each
        entry is `prefix + value + suffix`, the prefix holding the key (and `{` when it opens
        its event, `"` before a string), the suffix the closing quote (and `}` when it closes
        its event), then one join per event with commas."""
        m = len(self.names)
        # Affix codes: property i, opening its event or not, quoted or not -> one small table.
        first = np.zeros(len(entry), dtype=bool)
        last = np.zeros(len(entry), dtype=bool)
        first[offsets[:-1][counts > 0]] = True
        last[offsets[1:][counts > 0] - 1] = True
        table_prefix = [f'{brace}"{name}":{quote}' for brace in ("", "{") for name, quote in
                        zip(self.names, np.where(quoted, '"', ""), strict=True)]
        table_suffix = [quote + brace for brace in ("", "}") for quote in np.where(quoted, '"', "")]
        prefix = pa.array(table_prefix, pa.string()).take(pa.array(entry + m * first))
        suffix = pa.array(table_suffix, pa.string()).take(pa.array(entry + m * last))
        fragments = pc.binary_join_element_wise(prefix, values, suffix, "")
        body = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), fragments), ",")
        if counts.all():
            return body
        return pc.if_else(pa.array(counts > 0), body, pa.scalar("{}"))


# ---- event ids -----------------------------------------------------------------------------------

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-spread 64-bit mixing function (wraps on overflow)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _digest(texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit halves of BLAKE2b-128 for each text (None hashes as a distinct marker)."""
    raw = b"".join(hashlib.blake2b(b"\x00null" if t is None else t.encode("utf-8", "surrogatepass"),
                                   digest_size=16, person=b"logtrack-event").digest() for t in texts)
    halves = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 2)
    return halves[:, 0].copy(), halves[:, 1].copy()


def event_ids(source: pa.Array, line: pa.Array, names: list[str], name_index: np.ndarray) -> pa.Array:
    """32-hex-digit ids from (source, line, event name): identical whatever the batch size.

    Sources and names are hashed once per distinct value (BLAKE2b); rows combine those hashes
    with the line number through a 64-bit mixer, so the cost per event is a few numpy ops.
    """
    from .context import encode

    n = len(line)
    if n == 0:
        return pa.array([], pa.string())
    src = encode(source)
    s1, s2 = _digest(src.values.to_pylist() + [None])
    s1, s2 = s1[src.indices], s2[src.indices]
    n1, n2 = _digest(names)
    n1, n2 = n1[name_index], n2[name_index]
    ln = line.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64)
    lo = _mix(s1 ^ _mix(ln ^ n1))
    hi = _mix(s2 ^ _mix(ln + n2) ^ lo)
    raw = np.stack([hi, lo], axis=1).astype(">u8")
    # bytes.hex runs in C over the whole buffer: ~10x faster than a lookup table in numpy.
    hexed = raw.tobytes().hex().encode("ascii")
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(hexed))
