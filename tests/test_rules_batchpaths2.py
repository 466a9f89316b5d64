"""More of rules' batch-level shortcuts against the plain definitions they replace: query
parameters and fields read at a few rows, rows grouped by value id, distinct ids by a presence
table, context columns gathered without a take."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules import requests_table, rules_from_text
from logtrack.rules.context import BatchContext, DictCol, compact, encode
from logtrack.rules.gather import gather
from logtrack.rules.queryparams import _query_values_of, query_values

RULES = """\
events:
  - name: search
    when: {path: /s, query: {q: present}}
    properties:
      term: "{query.q}"
      page: {value: "{query.page}", type: int, default: 1}
      both: "{query.q}-{query.page}"
  - name: app
    when: {path: /s, fields: {app: [ios, web]}}
    properties: {app: "{fields.app}", q: "{query.Q}"}
  - name: pattern
    when: {path: /s, query: {q: {regex: "^a"}, Q: absent}}
  - name: anywhere
    when: {query: {page: present}}
  - name: tv
    when: {fields: {app: "t*"}, method: GET}
"""

QUERIES = st.sampled_from([None, "q=a+b&page=2", "q=caf%C3%A9", "page=x", "Q=1&q=", "q=A%2Bb"])
APPS = st.sampled_from([None, "ios", "web", "tv"])


def _table(rows: list[tuple[str | None, str | None, str | None]], filler: int) -> pa.Table:
    """Rows of /s with the given query and app field, then `filler` rows of another path (so
    that the /s rows are few enough for the per-row shortcut)."""
    records = [{"path": p, "query": q, "fields": {"app": a} if a else {}, "line": i}
               for i, (p, q, a) in enumerate(rows)]
    records += [{"path": "/other", "query": "page=1", "line": len(rows) + i} for i in range(filler)]
    return requests_table(records)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/s", "/t", None]), QUERIES, APPS), min_size=1, max_size=12),
       st.sampled_from([0, 5, 60]))
def test_query_and_field_values_at_few_rows_equal_the_batch_encoding(rows, filler):
    table = _table(rows, filler)
    fast = rules_from_text(RULES).evaluate(table)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(BatchContext, "strings_at", lambda self, source, rows, fold=None: None)
        plain = rules_from_text(RULES).evaluate(table)
    assert fast.to_pylist() == plain.to_pylist()


def test_the_per_row_shortcut_runs_and_stops_at_a_quarter_of_the_batch(monkeypatch):
    served: list[int] = []
    original = BatchContext._strings_at

    def spy(self, source, rows, fold):
        served.append(len(rows))
        return original(self, source, rows, fold)

    monkeypatch.setattr(BatchContext, "_strings_at", spy)
    few = _table([("/s", "q=x", "ios")] * 3, 60)
    events = rules_from_text(RULES).evaluate(few)
    assert served and sum(served) < few.num_rows
    assert sorted(e["event_name"] for e in events.to_pylist()).count("search") == 3
    served.clear()
    ctx = BatchContext(_table([("/s", "q=x", None)] * 10, 10))
    assert ctx.strings_at(("query", "q"), np.arange(5)) is not None
    assert ctx.strings_at(("query", "q"), np.arange(6)) is None  # 11 rows > a quarter of 20
    assert ctx.strings_at(("col", "path"), np.arange(2)) is None  # columns: the batch's encoding
    ctx.strings(("query", "page"))
    assert ctx.strings_at(("query", "page"), np.arange(2)) is None  # encoded already: shared


@pytest.mark.parametrize("m", [3, 70_000])
def test_rows_by_value_id_after_many_scans_equal_a_scan(m):
    rng = np.random.default_rng(m)
    indices = rng.integers(0, m + 1, 5_000)
    col = DictCol(pa.array([str(i) for i in range(m)]), indices)
    for i in range(DictCol.FULL_SCANS + 6):
        mask = np.zeros(m + 1, dtype=bool)
        mask[rng.integers(0, m + 1, 1 + 3 * (i % 2))] = True  # one value id, or up to four
        if i % 3 == 0:
            mask[indices[i]] = True  # one that occurs
        assert col.rows_for(mask, None).tolist() == np.flatnonzero(mask[indices]).tolist()
    assert col._by_id is not None  # the grouped path ran


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=30), st.sampled_from([40, 5_000]))
def test_compact_is_unique_with_inverse(values, m):
    index = np.array(values, dtype=np.int64)
    used, where = compact(index, m)
    expected, inverse = np.unique(index, return_inverse=True)
    assert used.tolist() == expected.tolist()
    assert where.tolist() == inverse.reshape(-1).tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([None, "a", "b"]), min_size=1, max_size=20), st.lists(st.integers(0, 20), max_size=3),
       st.data())
def test_gather_equals_a_take(values, cuts, data):
    bounds = [0] + sorted({c % (len(values) + 1) for c in cuts}) + [len(values)]
    col = pa.chunked_array([pa.array(values[a:b], pa.string()) for a, b in zip(bounds, bounds[1:], strict=False)])
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, len(values) - 1)))), dtype=np.int64)
    expected = col.take(pa.array(rows, pa.int64())).to_pylist()
    assert gather(col, rows).to_pylist() == expected
    assert gather(col, rows, encode(col)).to_pylist() == expected


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text("qa=&+%C3é9", max_size=12)), unique=True, max_size=12),
       st.sampled_from(["q", "a", "qa"]))
def test_query_values_remembered_equal_the_kernels(queries, name):
    values = pa.array(queries, pa.string())
    expected = _query_values_of(values, name).to_pylist()
    assert query_values(values, name).to_pylist() == expected
    assert query_values(values, name).to_pylist() == expected  # now from the memo
    assert query_values(values.take(pa.array(list(range(len(queries)))[::-1], pa.int64())), name).to_pylist() \
        == expected[::-1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a", "/b"]), st.sampled_from([200, 201, 404, 503, None])),
                min_size=1, max_size=6))
def test_status_tests_at_few_rows_equal_the_batch_mask(rows):
    # 40 rows of /c after the given ones: the /a rows are few, so status is compared at them only.
    table = requests_table([{"path": p, "status": s, "line": i} for i, (p, s) in enumerate(rows)]
                           + [{"path": "/c", "status": 200, "line": 100 + i} for i in range(40)])
    text = ("events:\n  - {name: a, when: {path: /a, status: [2xx, '>=500']}}\n"
            "  - {name: b, when: {path: /a, status: absent}}\n")
    got = [(e["event_name"], e["line"]) for e in rules_from_text(text).evaluate(table).to_pylist()]
    expected = [("a" if s is not None and (200 <= s < 300 or s >= 500) else "b", i)
                for i, (p, s) in enumerate(rows) if p == "/a" and (s is None or 200 <= s < 300 or s >= 500)]
    assert got == expected
