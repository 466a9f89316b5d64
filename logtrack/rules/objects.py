"""The `properties_json` objects of emitted events, once per distinct object (DESIGN §2, §5).

A rule's events share few distinct property values (the page view's path, a product id, a
search term): each property's texts are often per distinct value already (`emit.Values`), with
each event's index into them. An event's object depends only on its tuple of indices, so the
objects are built once per distinct tuple — a single-property rule's objects once per text —
and every event takes its object in one gather at the end, where joining members per event
cost three passes over all the entries.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..jsonarrow import escape as json_escape
from .dictcol import compact

Prop = tuple[str, pa.Array, bool, "np.ndarray | None"]
"""A property's name, texts (null where the value is missing), whether its JSON values are
quoted strings, and each event's index into the texts (None: one text per event)."""

_NO_OBJECT = pa.array(["{}"], pa.string())


def members(name: str, texts: pa.Array, quoted: bool) -> pa.Array:
    """`"name":value` for each text, a string value quoted and escaped (null stays null)."""
    if quoted:
        return pc.binary_join_element_wise(f'"{name}":"', escape(texts), '"', "")
    return pc.binary_join_element_wise(f'"{name}":', texts, "")


def block_objects(props: list[Prop], size: int) -> tuple[pa.Array, np.ndarray]:
    """The JSON objects of one rule's `size` events: (the distinct objects, each event's index
    into them). Members join in declaration order; missing ones are left out."""
    if not props:
        return _NO_OBJECT, np.zeros(size, np.int64)
    if len(props) == 1:
        # One member: each text's object in one join, `{}` where the value is missing.
        name, texts, quoted, index = props[0]
        objects = pc.binary_join_element_wise(f'{{"{name}":"', escape(texts), '"}', "") if quoted \
            else pc.binary_join_element_wise(f'{{"{name}":', texts, "}", "")
        return objects.fill_null("{}"), (np.arange(size, dtype=np.int64) if index is None else index)
    member = [members(name, texts, quoted) for name, texts, quoted, _ in props]
    indexes = [np.arange(size, dtype=np.int64) if p[3] is None else p[3] for p in props]
    radix = [len(texts) for texts in member]
    if math.prod(radix) < 1 << 62:
        # Each event's tuple of indices as one mixed-radix code: its distinct codes are the
        # distinct objects (a representative event each).
        code = np.zeros(size, np.int64)
        for index, base in zip(indexes, radix, strict=True):
            code = code * base + index
        used, event_object = compact(code, math.prod(radix) - 1)
        rep = np.empty(len(used), np.int64)
        rep[event_object] = np.arange(size, dtype=np.int64)
    else:
        rep = event_object = np.arange(size, dtype=np.int64)
    k, count = len(props), len(rep)
    parts = [texts.take(pa.array(index[rep])) for texts, index in zip(member, indexes, strict=True)]
    valid = np.stack([_valid(p) for p in parts], axis=1)  # (objects, props)
    offsets = np.zeros(count + 1, np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    # The valid (object, prop) pairs in row-major order are each object's members in order;
    # prop j of object i sits at j * count + i of the concatenated parts.
    flat = np.flatnonzero(valid.ravel())
    entries = pa.concat_arrays(parts).take(pa.array((flat % k) * count + flat // k))
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), entries), ",")
    return pc.binary_join_element_wise("{", joined, "}", ""), event_object


def _valid(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


def escape(values: pa.Array) -> pa.Array:
    """`jsonarrow.escape`, skipped when no byte of the values needs escaping (a quote, a
    backslash, a control character: ASCII bytes, never part of a multi-byte UTF-8 character).
    A numpy scan of the bytes costs a third of the regex scan that escape starts with."""
    if len(values) == values.null_count:
        return values
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    data = values.buffers()[2]
    if data is None:
        return values
    raw = np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]]
    if not ((raw < 32) | (raw == 34) | (raw == 92)).any():
        return values
    return json_escape(values)
