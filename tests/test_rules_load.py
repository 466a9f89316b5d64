"""Rule files: strict validation, every problem at once with file:line: key.path (issue 4)."""

from __future__ import annotations

import textwrap

import pytest

from logtrack.errors import ConfigError
from logtrack.rules import check_rules, load_rules, rules_from_text


def problems(text: str, name: str = "rules/shop.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        rules_from_text(textwrap.dedent(text), name)
    assert info.value.exit_code == 2
    return info.value.problems


def test_unknown_key_reports_line_of_the_key_and_a_suggestion():
    out = problems("""\
        namespace: server
        events:
          - name: a
            when: {method: GET}
          - name: b
            when: {method: GET}
          - name: c
            when:
              path: /x
              methd: POST
        """)
    assert out == ["rules/shop.yaml:10: events[2].when: unknown key 'methd' (did you mean 'method'?)"]


def test_every_problem_is_reported_at_once():
    out = problems("""\
        namespace: s
        events:
          - name: a
            when:
              path: {regex: "("}
              status: 2xy
            properties: {x: "{nope}", y: {value: 1, type: integer}}
          - name: a
            when: {}
          - name: b
            when: {query: {q: {regx: a}}}
            once_per: sesion
            stop: maybe
        evnts: []
        """)
    assert out == [
        "rules/shop.yaml:14: (top level): unknown key 'evnts' (did you mean 'events'?)",
        "rules/shop.yaml:5: events[0].when.path.regex: invalid regex '(': missing ): (",
        "rules/shop.yaml:6: events[0].when.status: bad status '2xy': use 201, [200, 201], 2xx, '>=400' or '200-299'",
        "rules/shop.yaml:7: events[0].properties.x: {nope} is not a capture or a request column; "
        "this rule's path captures nothing",
        "rules/shop.yaml:7: events[0].properties.y.type: unknown type 'integer' (did you mean 'int'?); "
        "types: string, int, float, bool",
        "rules/shop.yaml:11: events[2].when.query.q: unknown key 'regx' (did you mean 'regex'?)",
        "rules/shop.yaml:12: events[2].once_per: must be session or user, not 'sesion' (did you mean 'session'?)",
        "rules/shop.yaml:13: events[2].stop: must be true or false, not 'maybe'",
        "rules/shop.yaml:8: events[1].name: duplicate event name 's_a' (also at rules/shop.yaml:3); "
        "combine the conditions with any:",
    ]


def test_undefined_capture_suggests_the_rule_captures():
    out = problems("""\
        events:
          - name: view
            when: {path: "/products/{product_id:int}"}
            properties: {id: "{product}"}
        """)
    assert out == ["rules/shop.yaml:4: events[0].properties.id: {product} is not a capture or a request "
                   "column (did you mean 'product_id'?); this rule captures product_id"]


@pytest.mark.parametrize(("when", "message"), [
    ("{status: '>=abc'}", "events[0].when.status: bad status '>=abc'"),
    ("{status: 9xx}", "events[0].when.status: bad status '9xx'"),
    ("{status: [200, true]}", "events[0].when.status[1]: must be a number"),
    ("{path: '/p/{id:integer}'}", "unknown capture type 'integer'"),
    ("{path: '/p/{id'}", "unclosed '{'"),
    ("{path: '/p/{a}/{a}'}", "capture 'a' appears twice"),
    ("{path: '/search?q=x'}", "a path has no query string"),
    ("{method: post}", None),  # methods are case-blind: POST
    ("{method: [GET, 'NOT A METHOD']}", "'NOT A METHOD' is not an HTTP method"),
    ("{device: mobil}", "unknown device 'mobil' (did you mean 'mobile'?)"),
    ("{bot: yes please}", "events[0].when.bot: must be true or false or any"),
    ("{user: someone}", "must be 'known' or 'anonymous'"),
    ("{client_ip: 10.0.0.0/33}", "is not an IP address or CIDR network"),
    ("{fields: {cookie_plan: yes}}", "YAML read True as a boolean; quote it"),
    ("{query: present}", "events[0].when.query: must be a mapping of parameter names"),
    ("{any: {path: /x}}", "events[0].when.any: must be a non-empty list"),
    ("{not: {pth: /x}}", "events[0].when.not: unknown key 'pth' (did you mean 'path'?)"),
    ("[method, GET]", "events[0].when: must be a mapping of conditions"),
])
def test_condition_errors(when, message):
    text = f"events:\n  - name: e\n    when: {when}\n"
    if message is None:
        assert rules_from_text(text).rules[0].name == "e"
        return
    out = problems(text)
    assert len(out) == 1 and message in out[0], out
    assert out[0].startswith("rules/shop.yaml:3: ")


@pytest.mark.parametrize(("props", "message"), [
    ('{n: {value: "abc", type: int}}', "'abc' is not an int"),
    ('{n: {value: "{status}", type: int, default: x}}', "events[0].properties.n.default: 'x' is not an int"),
    ('{n: {type: int}}', "missing value:"),
    ('{n: "{query.q"}', "unclosed '{'"),
    ('{n: "a}b"}', "unmatched '}'"),
    ('{n: "{a b}"}', "bad reference {a b}"),
    ('{"bad name": x}', "bad property name 'bad name'"),
    ('{n: [1, 2]}', "must be a template string or a literal value"),
    ('{n: {value: x, tpye: int}}', "unknown key 'tpye' (did you mean 'type'?)"),
])
def test_property_errors(props, message):
    out = problems(f"events:\n  - name: e\n    when: {{}}\n    properties: {props}\n")
    assert len(out) == 1 and message in out[0], out


def test_file_level_errors():
    out = problems("""\
        namespace: my-shop
        separator: " "
        builtins: {page_veiw: true, session_start: true}
        exclude:
          - {first_in_session: true}
          - /healthz
        events:
          - when: {path: /x}
          - name: 1abc
          - name: ok
        tests:
          - {request: {method: GET}, line: x, expect: []}
          - {request: {method: GET}}
          - {request: {methd: GET, fields: [1]}, expect: []}
        """)
    assert out == [
        "rules/shop.yaml:1: namespace: must be a name of letters, digits and _ (starting with a letter), not 'my-shop'",
        "rules/shop.yaml:2: separator: must be a non-empty string without spaces, not ' '",
        "rules/shop.yaml:8: events[0]: missing name:",
        "rules/shop.yaml:9: events[1].name: event names use letters, digits and _ and start with a letter, not '1abc'",
        "rules/shop.yaml:9: events[1]: missing when: (use when: {} to match every request)",
        "rules/shop.yaml:10: events[2]: missing when: (use when: {} to match every request)",
        "rules/shop.yaml:3: builtins: unknown built-in 'page_veiw' (did you mean 'page_view'?); built-ins: page_view",
        "rules/shop.yaml:3: builtins: session_start is not a built-in: destinations derive sessions from the session id",
        "rules/shop.yaml:5: exclude[0].first_in_session: exclude runs before identity and sessions; "
        "session conditions are not allowed here",
        "rules/shop.yaml:6: exclude[1]: each exclude entry must be a mapping of conditions, e.g. {path: /healthz}",
        "rules/shop.yaml:12: tests[0]: give exactly one of request:, requests:, line:, lines: (found request, line)",
        "rules/shop.yaml:13: tests[1]: missing expect: (a list of events, [] for none)",
        "rules/shop.yaml:14: tests[2].request: unknown request column 'methd' (did you mean 'method'?)",
        "rules/shop.yaml:14: tests[2].request.fields: must be a mapping of field names to text, e.g. {cookie_plan: pro}",
    ]


def test_yaml_syntax_error_has_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  - name: a\n    when: {path: /x\n")
    out = check_rules([str(bad)])
    assert len(out) == 1 and out[0].startswith(f"{bad}:") and "invalid YAML" in out[0]


def test_directories_missing_paths_and_duplicates_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text("namespace: s\nevents:\n  - name: x\n    when: {path: /a}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("namespace: s\nevents:\n  - name: x\n    when: {path: /b}\n")
    (tmp_path / ".hidden.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("ignored")
    out = check_rules([str(tmp_path), str(tmp_path / "nope.yaml")])
    assert out == [
        f"{tmp_path / 'nope.yaml'}: no such file or directory",
        f"{tmp_path / 'sub' / 'b.yml'}:3: events[0].name: duplicate event name 's_x' "
        f"(also at {tmp_path / 'a.yaml'}:3); combine the conditions with any:",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_rules([str(empty)]) == [f"{empty}: no *.yaml or *.yml rule files in this directory"]
    with pytest.raises(ConfigError) as info:
        load_rules([str(tmp_path)])
    assert len(info.value.problems) == 1


def test_valid_file_loads_with_namespace_separator_and_builtins(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent("""\
        namespace: api
        separator: "."
        builtins: {page_view: true}
        events:
          - name: signup
            when: {method: POST, path: /users, status: 201}
        """))
    assert check_rules(str(path)) == []
    rules = load_rules([str(path)])
    assert rules.event_names == ["api.signup", "api.page_view"]
