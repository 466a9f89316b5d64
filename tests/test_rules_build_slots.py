"""The `properties` map of events built for all rules at once (rules/emit.py
`PropertyCollector.build`): each event's entries in declaration order, in output order, the
same as its JSON object whatever rules emit at the same requests."""

from __future__ import annotations

import json

import numpy as np

from logtrack.rules import requests_table, rules_from_text

RULES = """\
events:
  - name: one
    when: {path: /a}
    properties: {q: "{query.q}"}
  - name: three
    when: {path: [/a, /b]}
    properties: {n: {value: "{query.n}", type: int}, q: "{query.q}", lit: x}
  - name: none
    when: {path: /b}
  - name: two
    when: {status: 404}
    properties: {s: "{status}", n: {value: "{query.n}", type: float}}
"""


def test_map_entries_follow_declaration_and_output_order():
    rng = np.random.default_rng(11)
    rows = []
    for i in range(400):
        parts = [f"q=v{int(rng.integers(0, 4))}"] if rng.random() < 0.6 else []
        if rng.random() < 0.5:
            parts.append(f"n={'bad' if rng.random() < 0.2 else int(rng.integers(0, 9))}")
        rows.append({"line": i, "path": ["/a", "/b", "/c"][i % 3], "status": [200, 404][int(rng.integers(0, 2))],
                     "query": "&".join(parts) or None})
    out = rules_from_text(RULES).evaluate(requests_table(rows)).to_pylist()
    assert [(e["line"]) for e in out] == sorted(e["line"] for e in out)
    declared = {"one": ["q"], "three": ["n", "q", "lit"], "none": [], "two": ["s", "n"]}
    seen = 0
    for event in out:
        obj = json.loads(event["properties_json"])
        entries = event["properties"]
        assert [k for k, _ in entries] == list(obj), event
        assert [k for k in declared[event["event_name"]] if k in obj] == list(obj)
        for key, value in entries:
            assert value == (obj[key] if isinstance(obj[key], str) else json.dumps(obj[key])), event
        query = rows[event["line"]]["query"] or ""
        params = dict(p.split("=") for p in query.split("&") if p)
        if event["event_name"] == "three":
            expected = {k: v for k, v in (("n", params.get("n")), ("q", params.get("q"))) if v is not None}
            expected.pop("n", None) if expected.get("n") == "bad" else None
            assert {k: v for k, v in entries if k != "lit"} == expected
            seen += 1
    assert seen > 50
