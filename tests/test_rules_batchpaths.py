"""Rules' batch-level shortcuts give the same results as the plain definitions they replace:
page views on shared encodings, per-distinct property values, chunked tables, first rows per
key with ties, presence tests without encoding, the JSON escape shortcut."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.jsonarrow import escape as json_escape
from logtrack.rules import requests_table, rules_from_text
from logtrack.rules.context import BatchContext, encode, form_decode
from logtrack.rules.match import page_view_mask
from logtrack.rules.objects import escape as _escape
from logtrack.sessions import pageview_mask

METHODS = st.sampled_from(["GET", "HEAD", "POST", "get", None])
STATUSES = st.sampled_from([200, 204, 299, 300, 304, 404, None])
PATHS = st.sampled_from(["/", "/a", "/a.css", "/api/x", "/feed.xml", "/p/1", "/p/1;s=2", None])


def _chunked(table: pa.Table, cuts: list[int]) -> pa.Table:
    """The same rows as a table of several chunks, cut at `cuts`."""
    bounds = [0] + sorted({c % (table.num_rows + 1) for c in cuts}) + [table.num_rows]
    return pa.concat_tables([table.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(METHODS, STATUSES, PATHS, st.sampled_from([True, False, None]),
                          st.sampled_from([True, False, None])), min_size=1, max_size=25),
       st.lists(st.integers(0, 30), max_size=3))
def test_page_view_mask_is_the_sessions_definition(rows, cuts):
    table = requests_table([{"method": m, "status": s, "path": p, "is_bot": b, "is_static": a}
                            for m, s, p, b, a in rows])
    expected = pageview_mask(table)
    got = page_view_mask(BatchContext(_chunked(table, cuts)))
    assert got.tolist() == expected.tolist()


RULES = """\
events:
  - name: product
    when: {method: GET, path: "/p/{id:int}"}
    properties:
      id: "{id}"
      path: "{path}"
      q: "{query.q}"
      page: {value: "{query.page}", type: int, default: 1}
      kind: product
  - {name: any_path, when: {}, properties: {path: "{path}", ua: "{user_agent}"}}
  - {name: campaign, when: {utm_campaign: present}, properties: {campaign: "{utm_campaign}", n: 3}}
  - {name: direct, when: {utm_campaign: absent, path: "/p/*"}}
  - {name: landing, when: {first_in_session: true}}
  - {name: once, when: {path: "/p/*"}, once_per: session}
"""

ROWS = st.tuples(st.sampled_from(["/p/1", "/p/22", "/p/x", "/q", '/p/"3', None]),
                 st.sampled_from([None, "q=a+b&page=2", "q=caf%C3%A9", "page=x"]),
                 st.sampled_from(["s1", "s2", None]), st.sampled_from([None, "spring"]),
                 st.sampled_from(["a.log", "b.log"]), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=25), st.lists(st.integers(0, 30), max_size=4))
def test_chunked_tables_give_the_same_events(rows, cuts):
    table = requests_table([{"method": "GET", "path": p, "query": q, "session_id": s, "utm_campaign": c,
                             "source": src, "line": i, "user_agent": f"ua{i % 3}",
                             "ts": f"2026-03-01T10:00:0{t}Z"} for i, (p, q, s, c, src, t) in enumerate(rows)])
    whole = rules_from_text(RULES).evaluate(table)
    assert rules_from_text(RULES).evaluate(_chunked(table, cuts)).to_pylist() == whole.to_pylist()


def test_a_property_is_the_same_from_an_encoded_column_or_a_take():
    table = requests_table([{"path": p, "user_agent": u, "line": i}
                            for i, (p, u) in enumerate([("/p/1", "x"), (None, "y"), ("/a\tb", None), ("/p/1", "x")])])
    alone = "events:\n  - {name: b, when: {}, properties: {p: '{path}'}}\n"
    # The first rule's condition encodes `path`; the second rule's property then reads that encoding.
    shared = "events:\n  - {name: a, when: {path: '/p/*'}}\n  - {name: b, when: {}, properties: {p: '{path}'}}\n"
    plain = rules_from_text(alone).evaluate(table).to_pylist()
    via = [r for r in rules_from_text(shared).evaluate(table).to_pylist() if r["event_name"] == "b"]
    keys = ("line", "properties", "properties_json")
    assert [{k: r[k] for k in keys} for r in via] == [{k: r[k] for k in keys} for r in plain]
    assert [r["properties_json"] for r in plain] == ['{"p":"/p/1"}', "{}", '{"p":"/a\\tb"}', '{"p":"/p/1"}']


def test_few_events_among_many_distinct_values():
    # Two events among eight distinct paths: only the paths they use are converted.
    rows = [{"path": f"/p/{i}", "status": 200 if i in (2, 6) else 404, "line": i} for i in range(8)]
    table = requests_table(rows)
    few = "  - {name: c, when: {status: 200}, properties: {p: '{path}', n: {value: '{path}', type: int}}}\n"
    alone = rules_from_text("events:\n" + few).evaluate(table).to_pylist()
    shared = [r for r in rules_from_text("events:\n  - {name: a, when: {path: '/p/*'}}\n" + few)
              .evaluate(table).to_pylist() if r["event_name"] == "c"]
    assert [r["properties_json"] for r in shared] == [r["properties_json"] for r in alone] \
        == ['{"p":"/p/2"}', '{"p":"/p/6"}']


def test_first_in_session_ties_go_to_the_first_source_then_line():
    rows = [{"session_id": "s", "source": "b.log", "line": 1, "ts": "2026-03-01T10:00:05Z"},
            {"session_id": "s", "source": "a.log", "line": 9, "ts": "2026-03-01T10:00:05Z"},
            {"session_id": "s", "source": "a.log", "line": 3, "ts": "2026-03-01T10:00:05Z"},
            {"session_id": "s", "source": "a.log", "line": 2, "ts": "2026-03-01T10:00:06Z"},
            {"session_id": "t", "source": "b.log", "line": 4, "ts": "2026-03-01T10:00:07Z"},
            {"session_id": "t", "source": "b.log", "line": 4, "ts": "2026-03-01T10:00:07Z"},
            {"session_id": None, "source": "a.log", "line": 0, "ts": "2026-03-01T10:00:00Z"}]
    out = rules_from_text("events:\n  - {name: landing, when: {first_in_session: true}}\n"
                          "  - {name: once, when: {}, once_per: session}\n").evaluate(requests_table(rows))
    got = [(r["event_name"], r["source"], r["line"]) for r in out.to_pylist()]
    # Row order; the null session's row is no landing but keeps its once_per event.
    assert got == [("landing", "a.log", 3), ("once", "a.log", 3), ("landing", "b.log", 4), ("once", "b.log", 4),
                   ("once", "a.log", 0)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=20))
def test_escape_shortcut_equals_the_json_escape(values):
    arr = pa.array(values, pa.string())
    assert _escape(arr).to_pylist() == json_escape(arr).to_pylist()
    if len(arr) > 2:
        assert _escape(arr.slice(1)).to_pylist() == json_escape(arr.slice(1)).to_pylist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["x.log", "y.log", None]), min_size=1, max_size=20),
       st.lists(st.integers(0, 20), max_size=3))
def test_encode_of_chunked_and_single_valued_columns(values, cuts):
    arr = pa.array(values, pa.string())
    table = _chunked(pa.table({"v": arr}), cuts)
    for col in (table.column("v"), arr, pa.chunked_array([arr])):
        enc = encode(col)
        decoded = pa.concat_arrays([enc.values, pa.nulls(1, pa.string())]).take(pa.array(enc.indices))
        assert decoded.to_pylist() == values
        assert len(set(enc.values.to_pylist())) == enc.m


def test_form_decode_is_the_same_when_remembered():
    values = pa.array(["a+b", "caf%C3%A9", "%ZZ", "plain", None, "%E9"], pa.string())
    first = form_decode(values).to_pylist()
    assert first == ["a b", "café", "%ZZ", "plain", None, "\ufffd"]
    assert form_decode(values).to_pylist() == first


def test_presence_conditions_without_encoding():
    table = requests_table([{"utm_campaign": c, "line": i} for i, c in enumerate(["a", None, "", None])])
    text = "events:\n  - {name: p, when: {utm_campaign: present}}\n  - {name: a, when: {utm_campaign: absent}}\n" \
           "  - {name: e, when: {utm_campaign: [present, absent]}}\n" \
           "  - {name: both, when: {utm_campaign: present, referer: absent}}\n"
    got = [(r["line"], r["event_name"]) for r in rules_from_text(text).evaluate(table).to_pylist()]
    assert got == [(0, "p"), (0, "e"), (0, "both"), (1, "a"), (1, "e"), (2, "p"), (2, "e"), (2, "both"),
                   (3, "a"), (3, "e")]
    assert np.array_equal(np.array([r[0] for r in got]), np.sort([r[0] for r in got]))
