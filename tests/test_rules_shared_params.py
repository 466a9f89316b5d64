"""Query parameters and fields several rules' properties read, extracted once for all their
events (rules/emit.py `_shared_params`): each event still gets its own row's value."""

from __future__ import annotations

import json

import numpy as np

from logtrack.rules import requests_table, rules_from_text
from logtrack.rules.emit import _union

RULES = """\
events:
  - name: a
    when: {path: /a}
    properties: {n: {value: "{query.n}", type: int}, app: "{fields.x_app}"}
  - name: b
    when: {path: [/a, /b]}
    properties: {n: {value: "{query.n}", type: int, default: -1}, q: "{query.q}", app: "{fields.x_app}"}
  - name: c
    when: {path: /c}
    properties: {n: "{query.n}"}
"""


def test_each_event_gets_its_rows_value_whatever_rules_share():
    rows = [
        {"path": "/a", "query": "n=1&q=x", "fields": {"x_app": "ios"}},
        {"path": "/b", "query": "n=2"},
        {"path": "/c", "query": "n=3"},
        {"path": "/b", "query": "q=y", "fields": {"x_app": "web"}},
        {"path": "/a", "query": "n=oops"},
        {"path": "/c", "query": "n=1"},
        {"path": "/b", "query": "n=2"},
    ]
    table = requests_table([{"line": i, **r} for i, r in enumerate(rows)])
    out = rules_from_text(RULES).evaluate(table).to_pylist()
    got = [(r["event_name"], r["line"], json.loads(r["properties_json"])) for r in out]
    assert got == [
        ("a", 0, {"n": 1, "app": "ios"}), ("b", 0, {"n": 1, "q": "x", "app": "ios"}),
        ("b", 1, {"n": 2}),
        ("c", 2, {"n": "3"}),
        ("b", 3, {"n": -1, "q": "y", "app": "web"}),
        ("a", 4, {}), ("b", 4, {"n": -1}),
        ("c", 5, {"n": "1"}),
        ("b", 6, {"n": 2}),
    ]


def test_shared_values_match_per_rule_values_on_many_rows():
    rng = np.random.default_rng(3)
    rows = [{"path": f"/{'abc'[int(k)]}", "query": f"n={int(v)}" if v % 5 else None}
            for k, v in zip(rng.integers(0, 3, 3000), rng.integers(0, 400, 3000), strict=True)]
    table = requests_table([{"line": i, **r} for i, r in enumerate(rows)])
    out = rules_from_text(RULES).evaluate(table).to_pylist()
    for event in out:
        query = rows[event["line"]]["query"]
        value = None if query is None else query[2:]
        props = dict(event["properties"])
        if event["event_name"] == "b":
            assert props["n"] == (value or "-1")
        else:
            assert props.get("n") == value


def test_union_of_sorted_row_lists():
    lists = [np.array([1, 5, 9]), np.array([], np.int64), np.array([0, 5, 10]), np.array([9])]
    assert _union(lists).tolist() == [0, 1, 5, 9, 10]
    assert _union([np.array([4])]).tolist() == [4]
