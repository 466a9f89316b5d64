"""Rules' shared per-batch lookups against the plain definitions they replace: many literal
prefixes found at once."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules.context import DictCol

TEXT = st.text(alphabet="/ab1é\U0001f600", max_size=6)
# Prefixes of one UTF-8 byte length (4), several per length: the grouped lookup's case.
PREFIXES = st.sampled_from(["/a/b", "/é/", "é/a", "\U0001f600", "ab1/", "/a", "/é", "a"])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), max_size=40),
       st.lists(st.one_of(PREFIXES, TEXT.filter(bool)), min_size=1, max_size=12))
def test_prefixes_found_together_equal_starts_with(values, prefixes):
    col = DictCol(pa.array(values, pa.string()), np.zeros(0, np.int64), prefixes=tuple(dict.fromkeys(prefixes)))
    for prefix in [*prefixes, "/", "zz"]:
        want = [i for i, v in enumerate(values) if v is not None and v.startswith(prefix)]
        assert sorted(col.ids_with_prefix(prefix).tolist()) == want, prefix


def test_prefixes_of_one_length_are_looked_up_in_one_pass():
    prefixes = tuple(f"/c{i}/" for i in range(10, 10 + DictCol.PREFIX_GROUP))
    values = pa.array(["/c10/x", "/c11/", "/c1/y", None, "/c13/z/w", "/c130/"])
    col = DictCol(values, np.zeros(0, np.int64), prefixes=(*prefixes, "/other/"))
    assert col.ids_with_prefix("/c13/").tolist() == [4]
    assert set(col._prefix_hits) == set(prefixes)  # the whole group at once, the rest not
    assert col.ids_with_prefix("/c10/").tolist() == [0]
    assert col.ids_with_prefix("/c12/").tolist() == []
    assert col.ids_with_prefix("/other/").tolist() == []
    assert col._sorted is None


EVENTS = """\
events:
  - name: item
    when: {path: "/i/{id:int}"}
    properties:
      id: "{id}"
      q: "{query.q}"
      price: {value: "{query.p}", type: float}
      ok: {value: "{query.ok}", type: bool}
      n: 5
  - name: any
    when: {path: "/**"}
    properties: {path: "{path}", q: "{query.q}"}
  - name: bare
    when: {path: "/i/**"}
  - name: typed
    when: {query: {p: present}}
    properties: {p: {value: "{query.p}", type: int}, label: "p={query.p}"}
"""
PATHS = st.sampled_from(["/i/1", "/i/22", "/x", "/i/a\\"])
QUERY = st.sampled_from([None, "q=a%22b", "q=%5C&p=2.5", "p=3&ok=yes", "q=caf%C3%A9&ok=0", "q=%0A", "p=x"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(PATHS, QUERY), min_size=1, max_size=25))
def test_json_objects_are_the_maps_entries_in_json(rows):
    from logtrack.rules import requests_table, rules_from_text

    table = requests_table([{"path": p, "query": q, "line": i} for i, (p, q) in enumerate(rows)])
    out = rules_from_text(EVENTS).evaluate(table)
    types = {"id": int, "price": float, "ok": lambda t: t == "true", "n": int, "p": int}
    for entries, text in zip(out.column("properties").to_pylist(), out.column("properties_json").to_pylist(),
                             strict=True):
        expected = {k: types.get(k, str)(v) for k, v in entries}
        assert text == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
