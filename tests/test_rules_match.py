"""Rule matching: every condition kind of DESIGN §5, evaluated over Arrow batches (issue 4)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.rules import requests_table, rules_from_text


def matches(when: str, rows: list[dict], extra: str = "") -> list[int]:
    """Indices of `rows` for which a rule with `when` emits."""
    rules = rules_from_text(f"events:\n  - name: e\n    when: {when}\n{extra}")
    table = requests_table([{**r, "line": i} for i, r in enumerate(rows)])
    return rules.evaluate(table).column("line").to_pylist()


PATHS = [{"path": p} for p in ["/products/42", "/products/abc", "/products/42/reviews", "/products/",
                                "/products/12345678901234567890", "/p/AB_1", "/static/a/b.css", None]]


@pytest.mark.parametrize(("spec", "expected"), [
    ("/products/42", [0]),
    ("'/products/{product_id:int}'", [0]),  # 20 digits do not fit an int64: no match
    ("'/products/{slug}'", [0, 1, 4]),
    ("'/products/{rest:path}'", [0, 1, 2, 3, 4]),
    ("'/products/*'", [0, 1, 3, 4]),
    ("'/static/**'", [6]),
    ("'/products/{id}/reviews'", [2]),
    ("{regex: '^/p/(?P<sku>\\w+)$'}", [5]),
    ("{regex: 'reviews'}", [2]),
    ("{prefix: /products/4}", [0, 2]),
    ("[/p/AB_1, '/products/{id:int}']", [0, 5]),
    ("present", [0, 1, 2, 3, 4, 5, 6]),
    ("absent", [7]),
])
def test_path_forms(spec, expected):
    assert matches(f"{{path: {spec}}}", PATHS) == expected


def test_uuid_and_float_captures():
    rows = [{"path": "/o/123e4567-e89b-12d3-a456-426614174000"}, {"path": "/o/nope"}, {"path": "/v/1.5"}, {"path": "/v/x"}]
    assert matches("{path: '/o/{id:uuid}'}", rows) == [0]
    assert matches("{path: '/v/{x:float}'}", rows) == [2]


STATUS = [{"status": s} for s in [200, 201, 204, 301, 404, 500, 503]] + [{"path": "/no-status"}]


@pytest.mark.parametrize(("spec", "expected"), [
    ("201", [1]),
    ("[200, 201]", [0, 1]),
    ("2xx", [0, 1, 2]),
    ("5XX", [5, 6]),
    ("'>=400'", [4, 5, 6]),
    ("'>404'", [5, 6]),
    ("'<300'", [0, 1, 2]),
    ("'<=204'", [0, 1, 2]),
    ("'!=200'", [1, 2, 3, 4, 5, 6]),
    ("'500-502'", [5]),
    ("[2xx, '>=500']", [0, 1, 2, 5, 6]),
    ("absent", [7]),
    ("'200'", [0]),
])
def test_status_forms(spec, expected):
    assert matches(f"{{status: {spec}}}", STATUS) == expected


def test_method_one_or_list_and_case_blind():
    rows = [{"method": m} for m in ["GET", "POST", "post", "PUT", None]]
    assert matches("{method: POST}", rows) == [1, 2]
    assert matches("{method: [get, PUT]}", rows) == [0, 3]


def test_host_literal_glob_and_case():
    rows = [{"host": h} for h in ["shop.example.com", "SHOP.Example.com", "api.example.com", "example.org"]]
    assert matches("{host: shop.example.com}", rows) == [0, 1]
    assert matches("{host: '*.example.com'}", rows) == [0, 1, 2]
    assert matches("{host: {regex: '^api\\.'}}", rows) == [2]


QUERY = [{"query": q} for q in ["q=red+dress&page=2", "q=caf%C3%A9", "page=1", "q=", "debug&q=x", None, "qq=1"]]


@pytest.mark.parametrize(("spec", "expected"), [
    ("{q: present}", [0, 1, 3, 4]),
    ("{q: absent}", [2, 5, 6]),
    ("{q: red dress}", [0]),  # compared decoded, as a form
    ("{q: café}", [1]),
    ("{q: [x, café]}", [1, 4]),
    ("{q: {one_of: [x]}}", [4]),
    ("{q: {regex: '^re'}}", [0]),
    ("{q: {equals: ''}}", [3]),
    ("{debug: present}", [4]),
    ("{q: present, page: '2'}", [0]),
    ("{page: {glob: '*'}}", [0, 2]),
])
def test_query_params(spec, expected):
    assert matches(f"{{query: {spec}}}", QUERY) == expected


def test_fields_cookies_and_headers():
    rows = [{"fields": {"cookie_plan": "pro", "http_x_app": "ios"}}, {"fields": {"cookie_plan": "free"}},
            {"fields": {}}, {}]
    assert matches("{fields: {cookie_plan: pro}}", rows) == [0]
    assert matches("{fields: {cookie_plan: present}}", rows) == [0, 1]
    assert matches("{fields: {http_x_app: absent}}", rows) == [1, 2, 3]
    assert matches("{fields: {cookie_plan: 'f*'}}", rows) == [1]


def test_bots_are_excluded_unless_asked_for():
    rows = [{"path": "/", "is_bot": False}, {"path": "/", "is_bot": True}, {"path": "/"}]
    assert matches("{path: /}", rows) == [0, 2]
    assert matches("{path: /, bot: true}", rows) == [1]
    assert matches("{path: /, bot: any}", rows) == [0, 1, 2]
    assert matches("{any: [{bot: true}, {bot: false}]}", rows) == [0, 1, 2]


def test_device_static_and_other_columns():
    rows = [{"device": "mobile", "is_static": False, "referer_host": "google.com", "bytes_sent": 10},
            {"device": "desktop", "is_static": True, "channel": "email", "bytes_sent": 5000},
            {"device": "tablet"}]
    assert matches("{device: mobile}", rows) == [0]
    assert matches("{device: [mobile, tablet]}", rows) == [0, 2]
    assert matches("{static: false}", rows) == [0, 2]
    assert matches("{referer_host: google.com}", rows) == [0]
    assert matches("{channel: email}", rows) == [1]
    assert matches("{bytes_sent: '>1000'}", rows) == [1]
    assert matches("{user_agent: absent}", rows) == [0, 1, 2]


def test_user_known_or_anonymous():
    rows = [{"user_id": "u1"}, {"user_id": None}, {"user_id": ""}, {"user_id": "-"}]
    assert matches("{user: known}", rows) == [0]
    assert matches("{user: anonymous}", rows) == [1, 2, 3]


def test_not_any_all():
    rows = [{"method": "GET", "path": "/a"}, {"method": "POST", "path": "/a"}, {"method": "GET", "path": "/b"},
            {"method": "PUT", "path": "/c"}]
    assert matches("{not: {method: GET}}", rows) == [1, 3]
    assert matches("{not: [{method: GET}, {path: /c}]}", rows) == [1]
    assert matches("{any: [{method: POST}, {path: /b}]}", rows) == [1, 2]
    assert matches("{all: [{method: GET}, {path: /b}]}", rows) == [2]
    assert matches("{method: GET, not: {any: [{path: /a}, {path: /c}]}}", rows) == [2]
    assert matches("{}", rows) == [0, 1, 2, 3]


def test_first_in_session_carries_across_batches():
    rules = rules_from_text("events:\n  - name: landing\n    when: {first_in_session: true}\n")
    rows = [{"session_id": "s1", "line": 1}, {"session_id": "s2", "line": 2}, {"session_id": "s1", "line": 3},
            {"session_id": "s3", "line": 4}, {"session_id": "s2", "line": 5}, {"session_id": None, "line": 6}]
    whole = rules.evaluate(requests_table(rows)).column("line").to_pylist()
    assert whole == [1, 2, 4]
    rules.reset()
    parts = [rules.evaluate(requests_table(rows[i:i + 2])).column("line").to_pylist() for i in range(0, 6, 2)]
    assert sum(parts, []) == [1, 2, 4]


def test_first_in_session_uses_time_not_row_order():
    rules = rules_from_text("events:\n  - name: landing\n    when: {first_in_session: true}\n")
    rows = [{"session_id": "s1", "line": 1, "ts": "2026-03-01T10:00:05Z"},
            {"session_id": "s1", "line": 2, "ts": "2026-03-01T10:00:01Z"}]
    assert rules.evaluate(requests_table(rows)).column("line").to_pylist() == [2]


def test_first_in_session_breaks_time_ties_by_source_then_line():
    """(ts, source, line) decides, not the order rows arrive in (the sessionizer emits pushed order)."""
    rules = rules_from_text("events:\n  - name: landing\n    when: {first_in_session: true}\n")
    ts = "2026-03-01T10:00:00Z"
    rows = [{"session_id": "s1", "ts": ts, "source": "web2.log", "line": 1},
            {"session_id": "s1", "ts": ts, "source": "web1.log", "line": 7},
            {"session_id": "s1", "ts": ts, "source": "web1.log", "line": 3}]
    out = rules.evaluate(requests_table(rows))
    assert list(zip(out.column("source").to_pylist(), out.column("line").to_pylist(), strict=True)) == [("web1.log", 3)]


def test_exclude_with_cidr_and_health_checks():
    rules = rules_from_text("""\
exclude:
  - path: /healthz
  - user_agent: "kube-probe/*"
  - client_ip: [10.0.0.0/8, "2001:db8::/32"]
  - {method: HEAD, path: /}
events: []
""")
    rows = [{"path": "/healthz"}, {"path": "/", "user_agent": "kube-probe/1.29"}, {"client_ip": "10.1.2.3"},
            {"client_ip": "11.1.2.3"}, {"client_ip": "2001:db8::1"}, {"client_ip": "2001:db9::1"},
            {"method": "HEAD", "path": "/"}, {"method": "GET", "path": "/"}, {"client_ip": "not-an-ip"}, {}]
    excluded = rules.excluded(requests_table(rows))
    assert isinstance(excluded, pa.BooleanArray)
    assert excluded.to_pylist() == [True, True, True, False, True, False, True, False, False, False]


def test_exclude_across_files_is_a_union(tmp_path):
    from logtrack.rules import load_rules

    (tmp_path / "a.yaml").write_text("exclude: [{path: /a}]\n")
    (tmp_path / "b.yaml").write_text("exclude: {path: /b}\n")
    rules = load_rules([str(tmp_path)])
    table = requests_table([{"path": "/a"}, {"path": "/b"}, {"path": "/c"}])
    assert rules.excluded(table).to_pylist() == [True, True, False]


def test_empty_table_and_dictionary_columns():
    rules = rules_from_text("events:\n  - name: e\n    when: {path: /a}\n")
    assert rules.evaluate(requests_table([])).num_rows == 0
    table = requests_table([{"path": "/a"}, {"path": "/b"}, {"path": "/a"}])
    encoded = table.set_column(table.column_names.index("path"), "path", table.column("path").dictionary_encode())
    assert rules.evaluate(encoded).column("path").to_pylist() == ["/a", "/a"]


def test_cidr_needs_real_octets_and_reads_leading_zeros():
    from logtrack.rules.match import cidr_mask

    values = pa.array(["10.1.2.3", "010.1.2.3", "266.1.2.3", "1.10.2.3", "10.", "172.016.0.1", "172.32.0.1",
                       None, "::ffff:10.1.2.3", "2001:db8::1"])
    assert cidr_mask(values, ("10.0.0.0/8",)).tolist() == [True, True, False, False, False, False, False,
                                                            False, False, False]
    assert cidr_mask(values, ("172.16.0.0/12", "2001:db8::/32")).tolist() == [
        False, False, False, False, False, True, False, False, False, True]
    assert cidr_mask(values, ("0.0.0.0/0",)).tolist() == [True, True, False, True, False, True, True,
                                                           False, False, False]


IPS = st.sampled_from(["10.0.0.1", "010.2.3.4", "10.255.0.9", "11.0.0.1", "300.0.0.1", "192.168.0.1",
                       "192.168.10.7", "2001:db8::1", "fe80::1%eth0", "", "x", None])
TEXTS = st.sampled_from(["/healthz", "/healthz/", "/", "/a", "kube-probe/1.2", "Kube-probe/1", "kube-probe",
                         "curl/8", "HEAD", "GET", "", None])
EXCLUDES = st.lists(st.sampled_from([
    "{path: /healthz}", "{path: [/, /a]}", "{user_agent: 'kube-probe/*'}", "{user_agent: '*probe*'}",
    "{client_ip: 10.0.0.0/8}", "{client_ip: [192.168.0.0/16, '2001:db8::/32']}", "{client_ip: 0.0.0.0/4}",
    "{method: head}", "{path: absent}", "{path: {regex: '^/h'}}", "{not: {path: present}}",
    "{any: [{path: /a}, {client_ip: 10.0.0.0/8}]}", "{method: GET, path: {prefix: /}}", "{status: 5xx}",
    "{not: {user_agent: 'curl/*'}}"]), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(EXCLUDES, st.lists(st.tuples(TEXTS, TEXTS, IPS, TEXTS, st.sampled_from([200, 503, None])), max_size=12))
def test_exclude_row_tests_agree_with_rule_matching(entries, rows):
    import numpy as np

    from logtrack.rules.context import BatchContext
    from logtrack.rules.match import select

    rules = rules_from_text("exclude:\n" + "".join(f"  - {e}\n" for e in entries) + "events: []\n")
    table = requests_table([{"path": p, "user_agent": ua, "client_ip": ip, "method": m, "status": s}
                            for p, ua, ip, m, s in rows])
    expected = np.zeros(table.num_rows, dtype=bool)
    for node in rules.exclude_nodes:
        expected[select(node, BatchContext(table))] = True
    assert rules.excluded(table).to_pylist() == expected.tolist()


def test_many_rules_on_one_column_match_as_each_alone():
    """Past a few lookups a batch groups rows by path and sorts the distinct paths (literal paths
    by one hash lookup, prefixes by binary search, `And`s by matched rows): the events must be
    those each rule gives on its own."""
    rules_text = ["events:"]
    for i in range(24):
        rules_text.append(f"  - name: page{i}\n    when: {{method: GET, path: /p{i}, status: 2xx}}")
        rules_text.append(f"  - name: item{i}\n    when: {{path: '/i{i}/{{n:int}}'}}\n    properties: {{n: '{{n}}'}}")
    rules_text.append("  - name: none\n    when: {path: /absent, method: GET}")
    text = "\n".join(rules_text) + "\n"
    rows = [{"path": p, "method": m, "status": s, "line": k}
            for k, (p, m, s) in enumerate([(f"/p{i % 30}", "GET" if i % 4 else "POST", 200 if i % 5 else 404)
                                           for i in range(300)] + [(f"/i{i % 26}/{i}", "GET", 200) for i in range(200)])]
    table = requests_table(rows)
    together = rules_from_text(text).evaluate(table)
    alone = []
    for block in text.split("\n  - ")[1:]:
        one = rules_from_text("events:\n  - " + block.rstrip("\n") + "\n").evaluate(table)
        alone.extend(zip(one.column("line").to_pylist(), one.column("event_name").to_pylist(),
                         one.column("properties_json").to_pylist(), strict=True))
    got = list(zip(together.column("line").to_pylist(), together.column("event_name").to_pylist(),
                   together.column("properties_json").to_pylist(), strict=True))
    assert sorted(got) == sorted(alone)
    assert len(got) > 300
    assert ('{"n":7}' in [j for _, _, j in got]) and not any(n == "none" for _, n, _ in got)
