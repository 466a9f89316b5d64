"""JSON-lines presets (DESIGN §3): golden files for every sample, the alias table, quirks, rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from golden import FORMATS, check_golden, parse_file, rows_for_golden

from logtrack.formats import get_format
from logtrack.formats import jsonmap as jm
from logtrack.formats import jsonread as jr
from logtrack.lines import Lines, split_lines
from logtrack.sources import Block

JSON_FORMATS = ["nginx_json", "caddy", "traefik_json", "kong", "apigateway_json", "gcp_lb"]
# Every sample file this module covers, with the preset that reads it. None of their lines is
# garbage by design: every line must parse.
SAMPLES = [
    ("nginx_json.log", "nginx_json"),
    ("matomo/nginx_json.log", "nginx_json"),
    ("caddy_json.log", "caddy"),
    ("matomo/caddy_json.log", "caddy"),
    ("traefik_json.log", "traefik_json"),
    ("matomo/traefik_json.log", "traefik_json"),
    ("kong_json.log", "kong"),
    ("aws_apigateway_json.log", "apigateway_json"),
    ("gcp_http_lb.log", "gcp_lb"),
]



def parse(lines: list[str], fmt: str) -> tuple[list[dict], list[dict]]:
    """Parse lines given as strings: rows as golden-style dicts, rejects as dicts."""
    f = get_format(fmt)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    parsed = f.parse(split_lines(Block("t", 1, data)), f.new_state())
    return rows_for_golden(parsed.requests), parsed.rejects.to_pylist()


def sample_lines(name: str) -> list[str]:
    return [ln for ln in (FORMATS / name).read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.mark.parametrize(("name", "fmt"), SAMPLES)
def test_sample_matches_golden(name: str, fmt: str) -> None:
    requests, rejects = parse_file(str(FORMATS / name), fmt)
    assert rejects.num_rows == 0, rejects.to_pylist()
    assert requests.num_rows == len(sample_lines(name))
    reject_rows = [{"line": r["line"], "reason": r["reason"], "text": r["text"]} for r in rejects.to_pylist()]
    check_golden(f"formats/{name}", {"format": fmt, "requests": rows_for_golden(requests), "rejects": reject_rows})


@pytest.mark.parametrize(("name", "fmt"), SAMPLES)
def test_each_line_alone_gives_the_same_row(name: str, fmt: str) -> None:
    # Whole file and single lines take different read paths (kong_json.log mixes `"size":"46"`
    # and `"size":139`, so the whole file goes through the json.loads fallback).
    whole, _ = parse(sample_lines(name), fmt)
    for i, line in enumerate(sample_lines(name)):
        alone, _ = parse([line], fmt)
        assert [{**r, "line": i + 1} for r in alone] == [whole[i]]


# -- contract: each preset module registers a named, described format that reads its sample ----------

@pytest.mark.parametrize(("fmt", "sample"), [
    ("nginx_json", "nginx_json.log"), ("caddy", "caddy_json.log"), ("traefik_json", "traefik_json.log"),
    ("kong", "kong_json.log"), ("apigateway_json", "aws_apigateway_json.log"), ("gcp_lb", "gcp_http_lb.log"),
])
def test_preset_contract(fmt: str, sample: str) -> None:
    f = get_format(fmt)
    assert isinstance(f, jm.JsonFormat)
    assert f.name == fmt and f.description and f.detectable
    assert f.generic == (fmt == "nginx_json")
    requests, rejects = parse_file(str(FORMATS / sample), fmt)
    assert requests.num_rows == len(sample_lines(sample)) and rejects.num_rows == 0
    assert requests.column("ts").null_count == 0 and requests.column("status").null_count == 0


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_formats_reject_every_other_products_lines(fmt: str) -> None:
    # Auto-detection scores match rates: a JSON format must not accept another product's lines.
    for name, owner in SAMPLES:
        if owner == fmt:
            continue
        rows, rejects = parse(sample_lines(name), fmt)
        assert rows == [], (fmt, name)
        assert len(rejects) == len(sample_lines(name))


def test_text_formats_lines_are_invalid_json() -> None:
    rows, rejects = parse(sample_lines("apache_combined.log")[:3], "caddy")
    assert rows == [] and {r["reason"] for r in rejects} == {"invalid JSON"}


# -- the alias table -----------------------------------------------------------------------------

def test_a_key_means_the_same_in_every_section() -> None:
    sections = [jm.NGINX, jm.COMMON, jm.MATOMO, jm.CADDY, jm.TRAEFIK, jm.KONG, jm.APIGATEWAY, jm.GCP]
    kinds: dict[tuple[str, str], str] = {}
    for section in sections:
        for col, keys in section.columns.items():
            for key, kind in keys:
                assert kinds.setdefault((col, key), kind) == kind, (col, key)
    # The union keeps every section's keys; the generic format holds the nginx and Matomo names.
    assert ("ts" in jm.ALIASES.columns) and ("requestTime", "time_clf") in jm.ALIASES.columns["ts"]
    generic = {k for keys in jm.GENERIC.columns.values() for k, _ in keys}
    assert {"remote_addr", "time_iso8601", "time_local", "time", "msec", "request", "request_method",
            "request_uri", "uri", "args", "status", "body_bytes_sent", "bytes_sent", "http_referer",
            "http_referrer", "http_user_agent", "request_time", "upstream_response_time", "request_id",
            "http_host", "host", "ip", "path", "referrer", "user_agent", "length",
            "generation_time_milli", "date"} <= generic


def test_mapping_rejects_a_split_that_has_no_such_part() -> None:
    with pytest.raises(ValueError, match="protocol"):
        jm.JsonFormat("x", "x", jm.Mapping({"ts": (("t", "time_any"),), "protocol": (("u", "target"),)}))


# -- nginx escape=json layouts and Matomo keys --------------------------------------------------------

NGINX_LINE = ('{"time_local":"22/Apr/2024:17:56:07 +0200","remote_addr":"2001:db8::1","remote_user":"",'
              '"request":"GET /a%20b?x=1&y=%E7 HTTP/2.0","status":"404","body_bytes_sent":"0",'
              '"request_time":"0.120","upstream_response_time":"0.050, 0.025","http_referrer":"",'
              '"http_user_agent":"curl/8.0","cookie_uid":"u42","http_x_forwarded_for":"9.9.9.9","request_body":""}')


def test_nginx_json_columns_and_fields() -> None:
    rows, rejects = parse([NGINX_LINE], "nginx_json")
    assert rejects == []
    assert rows == [{
        "ts": "2024-04-22T15:56:07+00:00", "client_ip": "2001:db8::1", "method": "GET", "path": "/a%20b",
        "query": "x=1&y=%E7", "protocol": "HTTP/2.0", "status": 404, "bytes_sent": 0,
        "user_agent": "curl/8.0", "request_time_ms": 120.0, "upstream_time_ms": 75.0,
        "fields": {"cookie_uid": "u42", "http_x_forwarded_for": "9.9.9.9"}, "line": 1,
    }]


def test_nginx_json_other_time_keys_and_hand_written_names() -> None:
    lines = [
        '{"time_iso8601":"2024-04-22T17:56:07+02:00","remote_addr":"1.2.3.4","status":200}',
        '{"msec":"1713801367.250","request_method":"POST","uri":"/u","args":"a=1","status":"201"}',
        '{"time":"2024-04-22T15:56:07.5Z","method":"GET","url":"/p?q","vhost":"Example.COM:8443"}',
        '{"@timestamp":1713801367,"request_uri":"http://h.example/x?y=1","status":"-"}',
    ]
    rows, rejects = parse(lines, "nginx_json")
    assert rejects == []
    assert [r["ts"] for r in rows] == ["2024-04-22T15:56:07+00:00", "2024-04-22T15:56:07.250000+00:00",
                                       "2024-04-22T15:56:07.500000+00:00", "2024-04-22T15:56:07+00:00"]
    assert rows[1]["method"] == "POST" and rows[1]["path"] == "/u" and rows[1]["query"] == "a=1"
    assert rows[2]["host"] == "example.com" and rows[2]["path"] == "/p" and rows[2]["query"] == "q"
    assert rows[3]["scheme"] == "http" and rows[3]["host"] == "h.example" and rows[3]["path"] == "/x"
    assert "status" not in rows[3]


def test_nginx_json_request_that_is_not_a_request_line() -> None:
    rows, _ = parse(['{"time_local":"22/Apr/2024:17:56:07 +0000","request":"\\u0016\\u0003\\u0001","status":400}'],
                    "nginx_json")
    assert rows[0]["status"] == 400 and "method" not in rows[0] and "path" not in rows[0]
    assert rows[0]["fields"] == {"request": "\x16\x03\x01"}


def test_nginx_without_escape_json_writes_backslash_x_escapes() -> None:
    # nginx's default escaping (`\x22`, UTF-8 bytes as `\xC3\xA9`) is not JSON; read it anyway.
    line = r'{"time_local":"22/Apr/2024:17:56:07 +0000","request":"GET / HTTP/1.1","status":"200","http_user_agent":"a \x22b\x22 caf\xC3\xA9"}'
    rows, rejects = parse([line, NGINX_LINE], "nginx_json")
    assert rejects == [] and rows[0]["user_agent"] == 'a "b" café'


def test_matomo_keys() -> None:
    rows, _ = parse(sample_lines("matomo/nginx_json.log")[:1], "nginx_json")
    row = rows[0]
    assert row["ts"] == "2013-10-10T14:52:00+00:00"  # 16:52 at +02:00
    assert row["host"] == "www.piwik.org" and row["path"] == "/piwik.php"
    assert row["query"].startswith("action_name=Clearcode%20-%20Web") and row["query"].endswith("res=1680x1050")
    assert row["bytes_sent"] == 192 and row["request_time_ms"] == 0.008 and row["referer"] == "http://clearcode.cc/"
    assert row["fields"] == {"idsite": "1"}


# -- products -----------------------------------------------------------------------------------------

def test_caddy_quirks() -> None:
    rows, _ = parse(sample_lines("caddy_json.log")[:1] + sample_lines("matomo/caddy_json.log")[:1], "caddy")
    plain, tls = rows
    assert plain["ts"] == "2025-10-21T04:10:28.615395+00:00"  # ts 1761019828.6153953
    assert plain["request_time_ms"] == 1.674508  # duration 0.001674508 s
    assert plain["scheme"] == "http" and tls["scheme"] == "https"  # request.tls only on TLS
    assert plain["fields"]["http_cookie"] == "REDACTED" and plain["fields"]["sent_http_etag"] == '"ddnp8sh5vg3i58"'
    assert "remote_user" not in plain  # user_id ""
    assert tls["fields"]["sent_http_server"] == "Caddy, nginx/1.20.1"  # header arrays joined
    assert tls["fields"]["http_sec_gpc"] == "1" and tls["fields"]["http_dnt"] == "1"
    assert "http_user_agent" not in tls["fields"] and tls["user_agent"].startswith("Mozilla/5.0 (Macintosh")
    assert tls["protocol"] == "HTTP/2.0" and tls["host"] == "example.com" and tls["bytes_sent"] == 3609


def test_caddy_uri_with_query_and_host_with_port() -> None:
    line = ('{"ts":1700000000.5,"request":{"remote_ip":"::1","proto":"HTTP/1.1","method":"GET",'
            '"host":"Example.com:8080","uri":"/a?utm_source=x","headers":{"Referer":["https://r.example/"]}},'
            '"duration":0.25,"size":10,"status":200,"user_id":"bob"}')
    rows, _ = parse([line], "caddy")
    assert rows[0] == {"ts": "2023-11-14T22:13:20.500000+00:00", "client_ip": "::1", "method": "GET", "scheme": "http",
                       "host": "example.com", "path": "/a", "query": "utm_source=x", "protocol": "HTTP/1.1",
                       "status": 200, "bytes_sent": 10, "referer": "https://r.example/", "request_time_ms": 250.0,
                       "remote_user": "bob", "line": 1}


def test_traefik_quirks() -> None:
    rows, _ = parse(sample_lines("traefik_json.log") + sample_lines("matomo/traefik_json.log"), "traefik_json")
    v1, v2, no_client_host, ipv6, matomo = rows
    assert v1["ts"] == "2021-03-16T18:56:54.735539+00:00"  # StartUTC, nanoseconds truncated
    assert v1["request_time_ms"] == 0.040356 and v1["upstream_time_ms"] == 0.004086  # ns
    assert v1["fields"]["http_accept"] == "*/*" and v1["user_agent"] == "curl/7.67.0"
    assert v1["fields"]["upstream_http_x_content_type_options"] == "nosniff"
    assert v1["fields"]["FrontendName"] == "backend not found" and "level" not in v1["fields"]
    assert v2["fields"]["http_x_forwarded_host"] == "10.10.10.12:1234" and v2["scheme"] == "http"
    assert no_client_host["client_ip"] == "10.10.10.20"  # from ClientAddr, port dropped
    assert no_client_host["ts"] == "2024-02-02T17:07:08.048870+00:00"  # StartLocal
    assert ipv6["client_ip"] == "::1"
    assert matomo["status"] == 200  # "DownstreamStatus":"200"
    assert matomo["client_ip"] == "1.2.3.4" and matomo["path"] == "/my/app/auth" and matomo["query"] == "id=1234&user=dude"
    assert matomo["referer"] == "www.example.com" and matomo["request_time_ms"] == 10002.425284
    assert matomo["ts"] == "2023-08-11T11:39:21.773360+00:00"  # StartUTC, not `time`


def test_kong_quirks() -> None:
    rows, _ = parse(sample_lines("kong_json.log"), "kong")
    grpc, _, redacted, v38 = rows
    assert grpc["ts"] == "2019-07-30T23:02:12.516000+00:00"  # started_at 1564527732516 ms
    assert grpc["host"] == "localhost" and grpc["scheme"] == "http"  # Host header localhost:9080
    assert grpc["request_time_ms"] == 8.0 and grpc["upstream_time_ms"] == 3.0 and grpc["bytes_sent"] == 298
    assert grpc["fields"]["service_name"] == "grpc" and grpc["fields"]["route_name"] == "say-hello"
    assert redacted["path"] == "/logme/response-headers" and redacted["query"] == "X-Example-Response=whatever"
    assert redacted["fields"]["http_x_example_request"] == "this is somXX REDACTED XXgnore it"
    assert v38["bytes_sent"] == 9982 and v38["request_id"] == "2f6946328ffc4946b8c9120704a4a155"
    assert v38["fields"]["request_length"] == "139" and v38["fields"]["upstream_status"] == "200"


def test_apigateway_quirks() -> None:
    rows, _ = parse(sample_lines("aws_apigateway_json.log"), "apigateway_json")
    http_api, rest, template, with_domain = rows
    assert http_api["method"] == "GET" and http_api["path"] == "/" and http_api["fields"] == {"route_key": "GET /"}
    assert rest["status"] == 200 and rest["bytes_sent"] == 184 and rest["ts"] == "2023-06-10T15:36:28+00:00"
    assert template["path"] == "/pets/{petId}" and template["fields"]["resource_path"] == "/pets/{petId}"
    assert with_domain["host"] == "asad15n3p0.execute-api.us-east-1.amazonaws.com"
    assert with_domain["fields"] == {"api_id": "asad15n3p0", "resource_path": "/pets/{petId}", "stage": "prod"}
    line = ('{"requestId":"r1","ip":"1.2.3.4","requestTimeEpoch":1686315248123,"httpMethod":"GET",'
            '"path":"/prod/pets/7","resourcePath":"/pets/{petId}","status":"200","responseLatency":"42"}')
    rows, _ = parse([line], "apigateway_json")
    assert rows[0]["path"] == "/prod/pets/7" and rows[0]["ts"] == "2023-06-09T12:54:08.123000+00:00"
    assert rows[0]["request_time_ms"] == 42.0


def test_gcp_quirks() -> None:
    rows, _ = parse(sample_lines("gcp_http_lb.log"), "gcp_lb")
    assert [r["host"] for r in rows] == ["81.2.69.193", "pictures.example.com", "81.2.69.193"]  # :8080 dropped
    assert rows[2]["client_ip"] == "89.160.20.156" and rows[2]["fields"]["server_addr"] == "10.5.3.1:9090"
    assert rows[0]["ts"] == "2020-06-08T23:41:30.078651+00:00" and rows[0]["bytes_sent"] == 157
    assert rows[0]["fields"]["cache_hit"] == "true" and rows[0]["fields"]["status_details"] == "response_from_cache"
    line = ('{"timestamp":"2024-05-01T10:00:00.123456789Z","httpRequest":{"requestMethod":"POST",'
            '"requestUrl":"https://shop.example/cart?add=1","status":201,"latency":"0.123s","remoteIp":"2001:db8::2"}}')
    rows, _ = parse([line], "gcp_lb")
    assert rows[0] == {"ts": "2024-05-01T10:00:00.123456+00:00", "client_ip": "2001:db8::2", "method": "POST",
                       "scheme": "https", "host": "shop.example", "path": "/cart", "query": "add=1", "status": 201,
                       "request_time_ms": 123.0, "line": 1}


# -- robustness: rejects with reasons, heterogeneous blocks, the fast path -------------------------------

def test_rejects_say_why_and_never_take_good_lines_down() -> None:
    good = sample_lines("nginx_json.log")[2]
    lines = [good, '{"time_local": "22/Apr/2024', "[1, 2]", '{}', '{"foo": 1}', '{"status": 200, "remote_addr": "1.1.1.1"}',
             '{"time_local": "22/Apr/2024:17:56:07 +0000"}', '{"time_local": "yesterday", "status": "200"}', good]
    rows, rejects = parse(lines, "nginx_json")
    assert [r["line"] for r in rows] == [1, 9]
    reasons = {r["line"]: r["reason"] for r in rejects}
    assert reasons[2] == "invalid JSON"
    assert reasons[3] == "not a JSON object"
    assert reasons[4] == reasons[5] == "JSON object has none of the nginx_json keys"
    assert reasons[6].startswith("JSON object has no timestamp key (time_iso8601, msec, time_local")
    assert reasons[7] == "JSON object has a timestamp but no request keys"
    assert reasons[8] == "bad or missing timestamp"
    assert [r["text"] for r in rejects][0] == '{"time_local": "22/Apr/2024'


def test_a_byte_order_mark_before_the_first_line() -> None:
    rows, rejects = parse(["\ufeff" + NGINX_LINE, NGINX_LINE], "nginx_json")
    assert rejects == [] and len(rows) == 2 and rows[0]["client_ip"] == "2001:db8::1"


def test_heterogeneous_lines_and_changing_types() -> None:
    lines = ['{"time_local":"22/Apr/2024:17:56:07 +0000","status":200,"remote_addr":"1.1.1.1"}',
             '{"time_local":"22/Apr/2024:17:56:08 +0000","status":"404","request_method":"GET"}',
             '{"time_local":"22/Apr/2024:17:56:09 +0000","status":{"code":500},"http_host":"a.example"}']
    rows, rejects = parse(lines, "nginx_json")
    assert rejects == []
    assert [r.get("status") for r in rows] == [200, 404, None]
    assert rows[0]["client_ip"] == "1.1.1.1" and rows[1]["method"] == "GET" and rows[2]["host"] == "a.example"


def test_bisecting_and_python_reads_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = sample_lines("kong_json.log") + ["not json", "[]"] + sample_lines("kong_json.log")[::-1]
    bisected = parse(lines, "kong")
    monkeypatch.setattr(jr, "MAX_READS", 0)  # too mixed to bisect: every line through json.loads
    assert parse(lines, "kong") == bisected
    rows, rejects = bisected
    assert len(rows) == 8 and [(r["line"], r["reason"]) for r in rejects] == [(5, "invalid JSON"), (6, "not a JSON object")]


def test_clean_blocks_take_the_pyarrow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fallback(objs: list) -> dict:
        raise AssertionError("fallback used on a clean block")

    monkeypatch.setattr(jr, "flatten_python", no_fallback)
    for name, fmt in SAMPLES:
        if name != "kong_json.log":  # its lines disagree on the type of `size`
            rows, _ = parse(sample_lines(name), fmt)
            assert rows


def test_a_line_longer_than_the_json_reader_block() -> None:
    # split_lines caps lines at 1 MiB, pyarrow.json's default block; the reader must not rely on it.
    big = json.dumps({"time_iso8601": "2024-01-01T00:00:00Z", "status": 200, "http_x_big": "x" * (3 << 20)})
    lines = Lines("t", pa.array([NGINX_LINE, big, NGINX_LINE]), pa.array([1, 2, 3], pa.int64()))
    parsed = get_format("nginx_json").parse(lines, {})
    assert parsed.rejects.num_rows == 0
    assert len(rows_for_golden(parsed.requests)[1]["fields"]["http_x_big"]) == 3 << 20


def test_time_any_units() -> None:
    arr = pa.array([1700000000, 1700000000000, 1700000000000000, 1700000000000000000])
    want = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert jr.time_any(arr).to_pylist() == [want] * 4
    text = pa.array(["1700000000.25", "14/Nov/2023:23:13:20 +0100", "2023-11-14T22:13:20", "nope", None])
    got = jr.time_any(text).to_pylist()
    assert got[0] == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert got[1] == want and got[2] == want and got[3] is None and got[4] is None
