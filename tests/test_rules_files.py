"""The repo's rules/ and the rule-test runner (`logtrack rules check/test`), issue 4."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from logtrack.rules import check_rules, format_test_results, load_rules, run_rule_tests

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
SAMPLE = ROOT / "sample_logs" / "shop-access.log"


def parser_or_skip():
    try:
        from logtrack.enrich import enrich
        from logtrack.pipeline import parse_lines
    except ImportError as exc:
        pytest.skip(f"line tests need logtrack.pipeline.parse_lines and logtrack.enrich: {exc}")
    return parse_lines, enrich


def test_repo_rules_are_valid():
    assert check_rules([str(RULES)]) == []
    names = load_rules([str(RULES)]).event_names
    for name in ("server_add_to_cart", "server_sign_up", "server_login", "server_order_placed",
                 "server_view_product", "server_search", "server_page_view"):
        assert name in names


def test_repo_rule_tests_pass():
    results = run_rule_tests([str(RULES)])
    assert len(results) >= 15
    assert [str(r) for r in results if r.outcome == "failed"] == []
    skipped = [r for r in results if r.outcome == "skipped"]
    if skipped:
        parser_or_skip()  # skipped only because the parser is missing: say so
        pytest.fail(f"tests skipped although the parser exists: {skipped}")


FAILING = """\
namespace: s
events:
  - name: view
    when: {path: "/p/{id:int}"}
    properties: {id: "{id}"}
tests:
  - name: right
    request: {path: /p/7}
    expect: [{name: s_view, properties: {id: 7}}]
  - name: wrong type
    request: {path: /p/7}
    expect: [{name: s_view, properties: {id: "7"}}]
  - request: {path: /p/7}
    expect: []
  - name: from a line
    line: '192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET /p/8 HTTP/1.1" 200 2 "-" "Mozilla/5.0"'
    expect: [{name: s_view, properties: {id: 8}}]
"""


def test_runner_reports_failures_pytest_style(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(FAILING)
    results = run_rule_tests([str(path)])
    outcome = [(r.name, r.outcome, r.line) for r in results]
    assert outcome[:3] == [("right", "passed", 7), ("wrong type", "failed", 10), ("tests[2]", "failed", 13)]
    assert results[1].message == "s_view: properties.id: expected '7' (string), got 7 (int)\nemitted: s_view {\"id\": 7}"
    assert results[2].message.startswith("expected events [], got ['s_view']")
    lines = format_test_results(results, seconds=0.5)
    assert lines[0] == f"{path}::right PASSED"
    assert lines[1] == f"{path}::wrong type FAILED"
    assert "==================== FAILURES ====================" in lines
    assert f"{path}:10: wrong type" in lines
    assert "    s_view: properties.id: expected '7' (string), got 7 (int)" in lines
    assert re.fullmatch(r"=+ 2 passed, 2 failed in 0\.50s =+|=+ 1 passed, 2 failed, 1 skipped in 0\.50s =+",
                        lines[-1]), lines[-1]


def test_line_tests_skip_with_a_reason_without_the_parser(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "logtrack.pipeline", None)  # import now raises ImportError
    path = tmp_path / "r.yaml"
    path.write_text(FAILING)
    last = run_rule_tests([str(path)])[-1]
    assert last.outcome == "skipped" and "logtrack.pipeline.parse_lines" in last.message
    assert str(last).endswith("SKIPPED (" + last.message + ")")


def test_line_tests_use_the_file_format(tmp_path):
    parser_or_skip()
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent("""\
        format: common
        events: [{name: home, when: {path: /}}]
        tests:
          - line: '192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2'
            expect: [home]
          - line: 'garbage'
            expect: []
        """))
    first, second = run_rule_tests([str(path)])
    assert first.passed, first.message
    assert second.outcome == "failed" and "could not build the request" in second.message


def test_sample_log_events_match_the_rules_meaning():
    parse_lines, enrich = parser_or_skip()
    if not SAMPLE.exists():
        pytest.skip("sample_logs/ not generated")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    table = enrich(parse_lines(lines, "combined"))
    visitor = pc.binary_join_element_wise(table["client_ip"], table["user_agent"], "|")
    table = table.append_column("session_id", visitor).append_column("anonymous_id", visitor)
    table = table.append_column("user_id", table["remote_user"])
    rules = load_rules([str(RULES)])
    kept = table.filter(pc.invert(rules.excluded(table)))
    events = rules.evaluate(kept)
    counts = {d["values"]: d["counts"] for d in pc.value_counts(events["event_name"]).to_pylist()}

    # Independent expectations, straight from the raw text.
    def raw(pattern: str) -> int:
        return sum(1 for line in lines if re.search(pattern, line) and "10.0." not in line.split(" ", 1)[0])

    assert counts.get("server_order_placed", 0) == raw(r'"POST /api/v1/orders HTTP/[0-9.]+" 201 ')
    assert counts.get("server_order_failed", 0) == raw(r'"POST /api/v1/orders HTTP/[0-9.]+" 5\d\d ')
    assert counts.get("server_add_to_cart", 0) == raw(r'"POST /api/v1/cart/items HTTP/[0-9.]+" 201 ')
    assert counts.get("server_sign_up", 0) == raw(r'"POST /api/v1/users HTTP/[0-9.]+" 201 ')
    assert counts.get("server_login", 0) == raw(r'"POST /api/v1/sessions HTTP/[0-9.]+" 200 ')
    assert counts.get("server_order_confirmation_view", 0) == raw(r'"GET /orders/\d+/confirmation HTTP/[0-9.]+" 200 ')
    assert counts["server_order_placed"] > 0 and counts["server_add_to_cart"] > 0
    assert counts.get("server_first_purchase", 0) == len({
        line.split(" ")[2] for line in lines if re.search(r'"POST /api/v1/orders HTTP/[0-9.]+" 201 ', line)})
    # People's product and page views, by the enriched flags (bots and static files never count).
    people = kept.filter(pc.invert(kept["is_bot"].fill_null(False)))
    get_ok = pc.and_(pc.equal(people["method"], "GET"), pc.equal(people["status"], 200))
    products = pc.and_(get_ok, pc.match_substring_regex(people["path"], r"^/products/[0-9]{1,18}$"))
    assert counts["server_view_product"] == pc.sum(products).as_py()
    pages = pc.and_(pc.and_(pc.equal(people["method"], "GET"), pc.and_(pc.greater_equal(people["status"], 200),
                                                                        pc.less(people["status"], 300))),
                    pc.and_(pc.invert(people["is_static"].fill_null(False)),
                            pc.invert(pc.starts_with(people["path"], "/api/"))))
    assert counts["server_page_view"] == pc.sum(pages).as_py()
    terms = {dict(p)["search_term"] for p, n in zip(events["properties"].to_pylist(),
                                                    events["event_name"].to_pylist(), strict=True)
             if n == "server_search"}
    assert "café mug" in terms and "red dress" in terms
    assert not pc.any(pc.equal(events["path"], "/healthz")).as_py()
    assert isinstance(events["event_id"], pa.ChunkedArray)
