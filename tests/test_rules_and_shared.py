"""`And` conditions evaluated from the whole batch share the rows where a set of their children
hold (rules/match.py `select`): each rule still gets exactly its own rows."""

from __future__ import annotations

import numpy as np

from logtrack.rules import requests_table, rules_from_text
from logtrack.rules.context import BatchContext
from logtrack.rules.match import select

RULES = """\
events:
  - name: t1
    when: {path: /s, query: {q: {prefix: t1}}}
  - name: t2
    when: {path: /s, query: {q: {prefix: t2}}}
  - name: s404
    when: {path: /s, status: 404}
  - name: s404_t1
    when: {path: /s, status: 404, query: {q: {prefix: t1}}}
  - name: other
    when: {path: /o, status: 404, bot: any}
"""


def _table(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    rows = [{"path": ["/s", "/o"][int(p)], "query": f"q=t{int(q)}", "status": [200, 404][int(s)], "is_bot": bool(b)}
            for p, q, s, b in zip(rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 2, n),
                                  rng.random(n) < 0.2, strict=True)]
    return rows, requests_table([{**r, "line": i} for i, r in enumerate(rows)])


def _expected(name: str, r: dict) -> bool:
    human = not r["is_bot"]
    s, q, err = r["path"] == "/s", r["query"][2:], r["status"] == 404
    return {"t1": human and s and q.startswith("t1"), "t2": human and s and q.startswith("t2"),
            "s404": human and s and err, "s404_t1": human and s and err and q.startswith("t1"),
            "other": r["path"] == "/o" and err}[name]


def test_rules_sharing_first_tests_get_their_own_rows():
    rows, table = _table(2000)
    out = rules_from_text(RULES).evaluate(table)
    got: dict[str, list[int]] = {}
    for name, line in zip(out.column("event_name").to_pylist(), out.column("line").to_pylist(), strict=True):
        got.setdefault(name, []).append(line)
    for name in ("t1", "t2", "s404", "s404_t1", "other"):
        assert got.get(name, []) == [i for i, r in enumerate(rows) if _expected(name, r)], name


def test_shared_rows_are_remembered_per_set_of_children():
    _, table = _table(500)
    rules = rules_from_text(RULES)
    ctx = BatchContext(table)
    first = select(rules.rules[0].when, ctx)
    shared = [key for key in ctx._cache if key[0] == "and"]
    assert shared and all(len(key[1]) >= 2 for key in shared)
    # Evaluated again (the sets' rows now remembered): the same rows; within given rows, no memo.
    assert np.array_equal(select(rules.rules[0].when, ctx), first)
    some = np.arange(0, 500, 3)
    assert np.array_equal(select(rules.rules[0].when, ctx, some), np.intersect1d(first, some))
