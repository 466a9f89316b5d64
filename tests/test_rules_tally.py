"""The rules' event tally (counts per name and key events per session on integer codes) agrees
with counting the events table's strings, whichever encoding of the session ids serves."""

from __future__ import annotations

from collections import Counter

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules import RuleSet, requests_table, rules_from_text
from logtrack.rules.load import parse_file
from logtrack.rules.model import Problems
from logtrack.yamlfile import load_yaml

RULES = """\
events:
  - name: view
    when: {path: "/p/{id:int}"}
  - name: page_view
    when: {method: GET}
  - name: buy
    when: {method: POST}
"""
FIRST = RULES + """\
  - name: landing
    when: {first_in_session: true}
"""


def _by_strings(events) -> tuple[list[tuple[str, int]], dict[str, int]]:
    names = Counter(events.column("event_name").to_pylist())  # insertion order: first event
    key = events.filter(pc.invert(pc.ends_with(events["event_name"], "page_view")))
    sessions = Counter(s for s in key.column("session_id").to_pylist() if s is not None)
    return list(names.items()), dict(sessions)


def _by_tally(tally) -> tuple[list[tuple[str, int]], dict[str, int]]:
    per = tally.per_session(lambda name: not name.endswith("page_view"))
    sessions = {} if per is None else dict(zip(per["session_id"].to_pylist(), per["n"].to_pylist(), strict=True))
    return list(tally.by_name().items()), sessions


rows_st = st.lists(st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "POST"]),
    "path": st.sampled_from(["/p/1", "/p/2", "/x", "/p/a"]),
    "session_id": st.sampled_from(["s1", "s2", "s3", None]),
}), max_size=25)


@pytest.mark.parametrize("text", [RULES, FIRST], ids=["lazy", "batch-encoding"])
@settings(max_examples=60, deadline=None)
@given(rows=rows_st)
def test_tally_matches_string_counts(text: str, rows: list[dict]) -> None:
    table = requests_table([{"line": i, **r} for i, r in enumerate(rows)])
    events, tally = rules_from_text(text).evaluate_tallied(table)
    assert _by_tally(tally) == _by_strings(events)


def test_rules_sharing_a_name_add_up_in_first_event_order() -> None:
    # Two files of one namespace both emit `buy`; `later` fires before `buy` in the output.
    files = []
    for text in ("namespace: s\nevents:\n  - {name: buy, when: {method: POST}}\n",
                 "namespace: s\nevents:\n  - {name: later, when: {path: /a}}\n  - {name: buy, when: {path: /b}}\n"):
        doc = load_yaml("<t>", text)
        p = Problems(doc)
        files.append(parse_file(doc, p))
        assert not p.items
    table = requests_table([{"method": "GET", "path": "/a"}, {"method": "POST", "path": "/b"},
                            {"method": "GET", "path": "/b"}])
    events, tally = RuleSet(files).evaluate_tallied(table)
    assert list(tally.by_name().items()) == [("s_later", 1), ("s_buy", 3)]
    assert _by_tally(tally)[0] == _by_strings(events)[0]


def test_empty_batch_tallies_nothing() -> None:
    events, tally = rules_from_text(RULES).evaluate_tallied(requests_table([]))
    assert events.num_rows == 0 and tally.by_name() == {}
    assert tally.per_session(lambda name: True) is None
