"""`objects.ObjectBuilder`: JSON objects once per distinct tuple of property values, against a
plain per-event join."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules.objects import ObjectBuilder

VALUE = st.one_of(st.none(), st.text(alphabet='ab"\\\né', max_size=4))


def _plain(props, size):
    """Each event's object member by member (the definition)."""
    out = []
    for event in range(size):
        members = {}
        for name, texts, quoted, index in props:
            text = texts[event if index is None else int(index[event])].as_py()
            if text is not None:
                members[name] = text if quoted else json.loads(text)
        out.append(json.dumps(members, ensure_ascii=False, separators=(",", ":")))
    return out


def block_objects(props, size, blocks=1):
    """The events' objects of `blocks` rules with these properties (one after another), as
    `PropertyCollector.build` drives the builder; returns the first rule's events' objects."""
    builder = ObjectBuilder(size * blocks)
    texts, keys, quoted, base = [], [], [], 0
    for b in range(blocks):
        ids = []
        for k, (_, arr, q, index) in enumerate(props):
            texts.append(arr)
            keys += [k] * len(arr)
            quoted += [q] * len(arr)
            ids.append(base + (np.arange(size) if index is None else index))
            base += len(arr)
        if len(ids) == 1:
            builder.single(b * size, ids[0])
        elif ids:
            builder.multi(b * size, ids)
    all_texts = pa.concat_arrays(texts) if texts else pa.array([], pa.string())
    out = builder.build(all_texts, [name for name, *_ in props], np.array(keys, np.int64),
                        np.array(quoted, bool), None).to_pylist()
    assert out == out[:size] * blocks
    return out[:size]


def _props(draw, count, size):
    props = []
    for k in range(count):
        per_event = draw(st.booleans())
        quoted = draw(st.booleans())
        if per_event:
            values = draw(st.lists(VALUE, min_size=size, max_size=size))
            index = None
        else:
            values = draw(st.lists(VALUE, min_size=1, max_size=5))
            index = np.array(draw(st.lists(st.integers(0, len(values) - 1), min_size=size, max_size=size)),
                             np.int64)
        if not quoted:  # bare JSON numbers
            values = [None if v is None else str(len(v)) for v in values]
        props.append((f"p{k}", pa.array(values, pa.string()), quoted, index))
    return props


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_block_objects_equal_per_event_objects(data):
    size = data.draw(st.integers(0, 12))
    props = _props(data.draw, data.draw(st.integers(0, 4)), size)
    assert block_objects(props, size, data.draw(st.integers(1, 3))) == _plain(props, size)


def test_too_many_combinations_for_one_code_join_per_event():
    # Eight properties of 300 texts: 300**8 codes overflow 62 bits, so events are joined one by one.
    rng = np.random.default_rng(1)
    size = 50
    props = [(f"p{k}", pa.array([f"v{k}-{i}" if i % 7 else None for i in range(300)]), True,
              rng.integers(0, 300, size)) for k in range(8)]
    assert block_objects(props, size, 2) == _plain(props, size)


def test_repeated_tuples_share_one_object():
    builder = ObjectBuilder(4)
    builder.multi(0, [np.array([0, 1, 0, 0]), np.array([2, 3, 2, 3])])
    assert builder.combo_count == 3
    out = builder.build(pa.array(["x", "y", "1", None]), ["a", "b"], np.array([0, 0, 1, 1]),
                        np.array([True, True, False, False]), None)
    assert out.to_pylist() == ['{"a":"x","b":1}', '{"a":"y"}', '{"a":"x","b":1}', '{"a":"x"}']


def test_rules_of_different_widths_and_single_ones_in_one_batch():
    builder = ObjectBuilder(5)
    builder.multi(0, [np.array([0, 1]), np.array([2, 2])])          # two properties
    builder.single(2, np.array([3]))                                 # one
    builder.multi(3, [np.array([0, 4]), np.array([2, 3]), np.array([4, 1])])  # three
    texts = pa.array(["x", None, "1", "y", "z"])
    out = builder.build(texts, ["a", "b", "c"], np.array([0, 0, 1, 2, 2]),
                        np.array([True, True, False, True, True]), np.array([4, 3, 2, 1, 0]))
    assert out.to_pylist() == ['{"c":"z","c":"y"}', '{"a":"x","b":1,"c":"z"}', '{"c":"y"}', '{"b":1}',
                               '{"a":"x","b":1}']
