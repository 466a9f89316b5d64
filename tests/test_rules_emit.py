"""Rule emission: properties, types, JSON, once_per, stop, built-ins, event ids (issue 4)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack import schema
from logtrack.rules import requests_table, rules_from_text


def events(text: str, rows: list[dict]) -> list[dict]:
    table = requests_table([{"line": i, **r} for i, r in enumerate(rows)])
    out = rules_from_text(text).evaluate(table)
    return [{"name": r["event_name"], "line": r["line"], "props": dict(r["properties"]),
             "json": r["properties_json"], "user": r["user_properties_json"]} for r in out.to_pylist()]


def test_typed_capture_templates_literals_and_query_decoding():
    out = events("""\
namespace: server
events:
  - name: view_product
    when: {path: "/products/{product_id:int}"}
    properties:
      product_id: "{product_id}"
      label: "p-{product_id}"
      q: "{query.q}"
      status: "{status}"
      code: {value: "{status}", type: int}
      price: {value: "{query.price}", type: float}
      promo: {value: "{query.promo}", type: bool}
      plan: "{fields.cookie_plan}"
      n: 5
      ratio: 0.5
      flag: true
      text: "literal {{braces}}"
""", [{"path": "/products/42", "query": "q=caf%C3%A9+au+lait&price=19.90&promo=yes", "status": 200,
       "fields": {"cookie_plan": "pro"}}])
    assert len(out) == 1
    assert out[0]["name"] == "server_view_product"
    assert json.loads(out[0]["json"]) == {
        "product_id": 42, "label": "p-42", "q": "café au lait", "status": "200", "code": 200, "price": 19.9,
        "promo": True, "plan": "pro", "n": 5, "ratio": 0.5, "flag": True, "text": "literal {braces}"}
    assert out[0]["json"] == ('{"product_id":42,"label":"p-42","q":"café au lait","status":"200","code":200,'
                              '"price":19.9,"promo":true,"plan":"pro","n":5,"ratio":0.5,"flag":true,'
                              '"text":"literal {braces}"}')
    assert out[0]["props"] == {"product_id": "42", "label": "p-42", "q": "café au lait", "status": "200",
                               "code": "200", "price": "19.9", "promo": "true", "plan": "pro", "n": "5",
                               "ratio": "0.5", "flag": "true", "text": "literal {braces}"}
    assert out[0]["user"] is None


def test_missing_and_unconvertible_values_are_left_out_or_defaulted():
    text = """\
events:
  - name: e
    when: {}
    properties:
      q: "{query.q}"
      page: {value: "{query.page}", type: int, default: 1}
      total: {value: "{query.total}", type: int}
      mixed: "a-{query.q}"
      whole: {value: "{query.w}", type: float}
"""
    out = events(text, [{"query": "page=x&total=12abc&w=3"}, {"query": "q=&page=7&total=-5"}])
    assert out[0]["json"] == '{"page":1,"whole":3.0}'
    assert out[0]["props"] == {"page": "1", "whole": "3.0"}
    assert json.loads(out[1]["json"]) == {"q": "", "page": 7, "total": -5, "mixed": "a-"}


def test_json_escaping_round_trips():
    out = events('events:\n  - {name: e, when: {}, properties: {q: "{query.q}", ua: "{user_agent}"}}\n',
                 [{"query": "q=%22quoted%22+back%5Cslash+new%0Aline+tab%09+%01", "user_agent": 'x"y\\z'}])
    assert json.loads(out[0]["json"]) == {"q": '"quoted" back\\slash new\nline tab\t \x01', "ua": 'x"y\\z'}


def test_captures_from_regex_groups_and_any_alternatives():
    text = """\
events:
  - name: e
    when:
      any:
        - path: "/p/{sku}"
        - path: {regex: '^/item-(?P<sku>[A-Z]+)(-[0-9]+)?$'}
        - path: /other
    properties: {sku: "{sku}"}
  - name: f
    when: {path: ["/a/{id:int}", "/b/{id:int}"]}
    properties: {id: "{id}"}
"""
    out = events(text, [{"path": "/p/x1"}, {"path": "/item-AB-7"}, {"path": "/other"}, {"path": "/b/9"}])
    assert [(e["name"], e["json"]) for e in out] == [
        ("e", '{"sku":"x1"}'), ("e", '{"sku":"AB"}'), ("e", "{}"), ("f", '{"id":9}')]


def test_several_rules_emit_in_rule_order_and_stop_ends_matching():
    text = """\
namespace: s
builtins: {page_view: true}
events:
  - {name: any_get, when: {method: GET}}
  - {name: product, when: {path: "/products/*"}, stop: true}
  - {name: after_stop, when: {method: GET}}
"""
    rows = [{"method": "GET", "path": "/products/1", "status": 200},
            {"method": "GET", "path": "/about", "status": 200}]
    names = [(e["line"], e["name"]) for e in events(text, rows)]
    assert names == [(0, "s_any_get"), (0, "s_product"), (0, "s_page_view"),
                     (1, "s_any_get"), (1, "s_after_stop"), (1, "s_page_view")]


def test_page_view_builtin_conditions_narrowing_and_properties():
    rows = [{"method": "GET", "path": "/", "status": 200}, {"method": "GET", "path": "/a.css", "status": 200,
            "is_static": True}, {"method": "GET", "path": "/b", "status": 404},
            {"method": "POST", "path": "/c", "status": 200}, {"method": "GET", "path": "/d", "status": 200,
            "is_bot": True}, {"method": "GET", "path": "/api/v1/x", "status": 200},
            {"method": "GET", "path": "/e", "status": 204}, {"method": "GET", "path": "/f", "status": 304},
            {"method": "HEAD", "path": "/g", "status": 200}]
    plain = events("namespace: server\nbuiltins: {page_view: true}\n", rows)
    # The same page view as sessions count: 2xx/304 GET/HEAD of a page (not an asset, not /api/).
    assert [(e["line"], e["name"], e["json"]) for e in plain] == [
        (0, "server_page_view", '{"path":"/"}'), (6, "server_page_view", '{"path":"/e"}'),
        (7, "server_page_view", '{"path":"/f"}'), (8, "server_page_view", '{"path":"/g"}')]
    narrowed = events("""\
builtins:
  page_view:
    when: {not: {path: "/api/**"}}
    properties: {page: "{path}", title: home}
""", rows)
    assert [(e["line"], e["name"], e["json"]) for e in narrowed] == [
        (0, "page_view", '{"page":"/","title":"home"}'), (6, "page_view", '{"page":"/e","title":"home"}'),
        (7, "page_view", '{"page":"/f","title":"home"}'), (8, "page_view", '{"page":"/g","title":"home"}')]
    assert events("builtins: {page_view: false}\n", rows) == []


def test_user_properties_and_separator():
    out = events("""\
namespace: api
separator: "."
events:
  - name: signup
    when: {path: /users}
    properties: {}
    user_properties: {plan: "{fields.cookie_plan}", signed_up: true}
""", [{"path": "/users", "fields": {"cookie_plan": "pro"}}, {"path": "/users"}])
    assert [(e["name"], e["json"], e["user"]) for e in out] == [
        ("api.signup", "{}", '{"plan":"pro","signed_up":true}'), ("api.signup", "{}", '{"signed_up":true}')]


ONCE = """\
events:
  - {name: first_purchase, when: {path: /orders}, once_per: user}
  - {name: session_order, when: {path: /orders}, once_per: session}
"""


def test_once_per_user_and_session_across_batches():
    rows = [{"path": "/orders", "user_id": "u1", "session_id": "s1"},
            {"path": "/orders", "user_id": "u1", "session_id": "s2"},
            {"path": "/orders", "anonymous_id": "a9", "session_id": "s3"},
            {"path": "/orders", "anonymous_id": "a9", "session_id": "s3"},
            {"path": "/orders", "user_id": "u2", "session_id": "s2"}]
    table = requests_table([{"line": i, **r} for i, r in enumerate(rows)])
    rules = rules_from_text(ONCE)
    whole = [(r["line"], r["event_name"]) for r in rules.evaluate(table).to_pylist()]
    assert whole == [(0, "first_purchase"), (0, "session_order"), (1, "session_order"),
                     (2, "first_purchase"), (2, "session_order"), (4, "first_purchase")]
    rules.reset()
    pieces = [rules.evaluate(table.slice(i, 1)).to_pylist() for i in range(table.num_rows)]
    assert [(r["line"], r["event_name"]) for p in pieces for r in p] == whole
    # State survives a round trip through plain data (for runs that persist it).
    saved = rules.state()
    fresh = rules_from_text(ONCE)
    fresh.restore(json.loads(json.dumps(saved)))
    assert fresh.evaluate(table).num_rows == 0


def test_closed_sessions_are_forgotten_but_users_are_not():
    text = ONCE + "  - {name: landing, when: {first_in_session: true}}\n"
    rows = [{"path": "/orders", "user_id": "u1", "session_id": "s1", "line": 1},
            {"path": "/orders", "user_id": "u1", "session_id": "s2", "line": 2}]
    rules = rules_from_text(text)
    first = [r["event_name"] for r in rules.evaluate(requests_table(rows[:1])).to_pylist()]
    assert first == ["first_purchase", "session_order", "landing"]
    assert rules.state()["sessions"] == ["s1"]
    rules.close_sessions(pa.array(["s1", "s9", None]))
    assert rules.state() == {"once_per": {"first_purchase": ["u1"], "session_order": []}, "sessions": []}
    # s2 is new; s1 closed, so a later s1 row (which the sessionizer never emits) would count anew.
    later = rules.evaluate(requests_table(rows[1:])).to_pylist()
    assert [r["event_name"] for r in later] == ["session_order", "landing"]
    assert rules.state()["sessions"] == ["s2"]


def test_events_schema_and_context_columns():
    rules = rules_from_text("events:\n  - {name: e, when: {}}\n")
    table = requests_table([{"path": "/x", "query": "utm_source=a", "host": "h", "client_ip": "192.0.2.0",
                             "user_agent": "ua", "referer": "r", "utm_source": "a", "user_id": "u",
                             "anonymous_id": "an", "session_id": "s", "source": "f.log", "line": 7,
                             "ts": "2026-03-01T10:00:00Z"}])
    out = rules.evaluate(table)
    assert out.schema == schema.empty(schema.EVENTS).schema
    row = out.to_pylist()[0]
    assert {k: row[k] for k in ("event_name", "path", "query", "host", "client_ip", "user_agent", "referer",
                                "utm_source", "user_id", "anonymous_id", "session_id", "source", "line")} == {
        "event_name": "e", "path": "/x", "query": "utm_source=a", "host": "h", "client_ip": "192.0.2.0",
        "user_agent": "ua", "referer": "r", "utm_source": "a", "user_id": "u", "anonymous_id": "an",
        "session_id": "s", "source": "f.log", "line": 7}
    assert row["ts"].isoformat() == "2026-03-01T10:00:00+00:00"
    assert rules_from_text("events: []\n").evaluate(table).schema == out.schema


def test_event_ids_are_deterministic_and_distinct():
    text = "events:\n  - {name: a, when: {}}\n  - {name: b, when: {}}\n"
    rows = [{"source": s, "line": n} for s in ("x.log", "y.log") for n in range(50)]
    table = requests_table(rows)
    first = rules_from_text(text).evaluate(table).column("event_id").to_pylist()
    again = rules_from_text(text).evaluate(table).column("event_id").to_pylist()
    assert first == again
    assert len(set(first)) == 200 and all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    renamed = rules_from_text(text.replace("name: b", "name: c")).evaluate(table).column("event_id").to_pylist()
    assert renamed[0::2] == first[0::2] and not set(renamed[1::2]) & set(first[1::2])


BATCH_RULES = """\
events:
  - {name: view, when: {path: "/p/{id:int}"}, properties: {id: "{id}", q: "{query.q}"}}
  - {name: landing, when: {first_in_session: true}}
  - {name: once, when: {path: "/p/*"}, once_per: session}
  - {name: stopper, when: {query: {stop: present}}, stop: true}
  - {name: tail, when: {}}
"""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/p/1", "/p/2", "/p/x", "/q"]), st.sampled_from([None, "q=a+b", "stop"]),
                          st.sampled_from(["s1", "s2", "s3"])), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=7))
def test_same_events_whatever_the_batch_size(rows, size):
    table = requests_table([{"path": p, "query": q, "session_id": s, "source": "a.log", "line": i}
                            for i, (p, q, s) in enumerate(rows)])
    rules = rules_from_text(BATCH_RULES)
    whole = rules.evaluate(table)
    rules.reset()
    parts = pa.concat_tables([rules.evaluate(table.slice(i, size)) for i in range(0, table.num_rows, size)])
    assert parts.to_pylist() == whole.to_pylist()
    assert pc.count_distinct(whole.column("event_id")).as_py() == whole.num_rows


def test_path_templates_and_grouping():
    rules = rules_from_text("""\
events:
  - {name: a, when: {path: "/products/{product_id:int}"}}
  - {name: b, when: {any: [{path: "/category/{slug}"}, {path: "/products/{product_id:int}"}]}}
  - {name: c, when: {path: "/static/**"}}
  - {name: d, when: {not: {path: "/users/{user_id}/orders/{order_id:int}"}}}
""")
    assert rules.path_templates == ["/products/{product_id}", "/category/{slug}",
                                    "/users/{user_id}/orders/{order_id}"]
    paths = pa.chunked_array([["/products/1", "/products/x", "/category/shoes"],
                              ["/users/u1/orders/7", None, "/static/a.js"]])
    assert rules.group_paths(paths).to_pylist() == [
        "/products/{product_id}", "/products/x", "/category/{slug}", "/users/{user_id}/orders/{order_id}",
        None, "/static/a.js"]
