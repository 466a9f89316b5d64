"""`objects.block_objects`: JSON objects once per distinct tuple of property values, against a
plain per-event join."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules.objects import block_objects

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
    objects, index = block_objects(props, size)
    assert len(index) == size
    assert objects.take(pa.array(index, pa.int64())).to_pylist() == _plain(props, size)


def test_too_many_combinations_for_one_code_join_per_event():
    # Eight properties of 300 texts: 300**8 codes overflow 62 bits, so events are joined one by one.
    rng = np.random.default_rng(1)
    size = 50
    props = [(f"p{k}", pa.array([f"v{k}-{i}" if i % 7 else None for i in range(300)]), True,
              rng.integers(0, 300, size)) for k in range(8)]
    objects, index = block_objects(props, size)
    assert len(objects) == size
    assert objects.take(pa.array(index)).to_pylist() == _plain(props, size)


def test_repeated_tuples_share_one_object():
    props = [("a", pa.array(["x", "y"]), True, np.array([0, 1, 0, 0])),
             ("b", pa.array(["1", None]), False, np.array([0, 1, 0, 1]))]
    objects, index = block_objects(props, 4)
    assert len(objects) == 3 and index[0] == index[2]
    assert objects.take(pa.array(index)).to_pylist() == ['{"a":"x","b":1}', '{"a":"y"}', '{"a":"x","b":1}', '{"a":"x"}']
