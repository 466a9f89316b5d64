"""The `properties_json` objects of emitted events, once per distinct object (DESIGN §2, §5).

A rule's events share few distinct property values (the page view's path, a product id, a
search term): each property's texts are often per distinct value already (`emit.Values`), with
each event's index into them. An event's object depends only on which texts it uses, so the
objects are built once per text for single-property rules and once per distinct combination of
texts for the others; every event then takes its object in one gather. Per rule only numpy
runs: the Arrow kernels run once per batch over all rules' texts (200 rules cost no more
kernels than one).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..jsonarrow import escape as json_escape
from .dictcol import compact


class ObjectBuilder:
    """Collects, rule by rule, which texts each event's object is made of, then builds the
    distinct objects and gathers them to the events (`build`)."""

    def __init__(self, n: int) -> None:
        # Each event's object: a text id (one property), a combination id (several; `is_combo`
        # marks those events), or -1 (no property).
        self.event_object = np.full(n, -1, np.int64)
        self.is_combo = np.zeros(n, bool)
        self.combos: list[np.ndarray] = []  # per multi-property rule: (combinations, props) text ids
        self.combo_count = 0

    def single(self, start: int, text_ids: np.ndarray) -> None:
        """Events `start…` of a one-property rule, each with its text's global id."""
        self.event_object[start:start + len(text_ids)] = text_ids

    def multi(self, start: int, text_ids: list[np.ndarray]) -> None:
        """Events `start…` of a rule with several properties: each property's global text id
        per event. The distinct tuples become one object each (a mixed-radix code per event)."""
        size = len(text_ids[0])
        spans = [int(ids.max()) - int(ids.min()) + 1 if size else 1 for ids in text_ids]
        if math.prod(spans) < 1 << 62:
            code = np.zeros(size, np.int64)
            for ids, span in zip(text_ids, spans, strict=True):
                code = code * span + (ids - (ids.min() if size else 0))
            used, combo = compact(code, math.prod(spans) - 1)
            rep = np.empty(len(used), np.int64)
            rep[combo] = np.arange(size, dtype=np.int64)
        else:
            rep = combo = np.arange(size, dtype=np.int64)
        self.combos.append(np.stack([ids[rep] for ids in text_ids], axis=1))
        self.event_object[start:start + size] = self.combo_count + combo
        self.is_combo[start:start + size] = True
        self.combo_count += len(rep)

    def build(self, texts: pa.Array, names: list[str], text_key: np.ndarray, quoted: np.ndarray,
              order: np.ndarray | None) -> pa.Array:
        """Every event's JSON object (event `order[i]` at position i when an order is given).
        `texts` are all rules' property texts (null: value missing), `text_key` each text's
        property name (an index into `names`), `quoted` whether its JSON value is a string."""
        if quoted.all():
            json = pc.binary_join_element_wise('"', escape(texts), '"', "")
        elif quoted.any():
            json = pc.if_else(pa.array(quoted), pc.binary_join_element_wise('"', escape(texts), '"', ""), texts)
        else:
            json = texts
        keys = pa.array([f'"{name}":' for name in names], pa.string()).take(pa.array(text_key))
        members = pc.binary_join_element_wise(keys, json, "")
        parts = [pc.binary_join_element_wise("{", members, "}", "").fill_null("{}")]
        where = self.event_object.copy()
        if self.combos:
            # Rules with fewer properties padded with -1 (no member) to the widest.
            width = max(c.shape[1] for c in self.combos)
            ids = np.concatenate([np.pad(c, ((0, 0), (0, width - c.shape[1])), constant_values=-1)
                                  for c in self.combos])
            parts.append(_joined(members, ids))
            where[self.is_combo] += len(texts)
        parts.append(pa.array(["{}"], pa.string()))
        where[where < 0] = len(texts) + self.combo_count
        if order is not None:
            where = where[order]
        return (parts[0] if len(parts) == 1 else pa.concat_arrays(parts)).take(pa.array(where))


def _joined(members: pa.Array, ids: np.ndarray) -> pa.Array:
    """`{…}` per row of `ids` (the text ids of one object's properties, in declaration order,
    -1 for none): its valid members joined with commas, missing ones left out."""
    count = len(ids)
    valid = ids >= 0
    if members.null_count:
        valid &= members.is_valid().to_numpy(zero_copy_only=False)[np.maximum(ids, 0)]
    offsets = np.zeros(count + 1, np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    entries = members.take(pa.array(ids[valid]))  # row-major: each object's members in order
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), entries), ",")
    return pc.binary_join_element_wise("{", joined, "}", "")


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
