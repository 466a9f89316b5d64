"""Template-based text presets (DESIGN §3): golden files for every sample, quirks, a round trip."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
from golden import FORMATS, check_golden, rows_for_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logtrack.formats import get_format
from logtrack.formats.template import TemplateFormat
from logtrack.lines import Lines, split_lines
from logtrack.sources import Block, Input, iter_blocks, open_input


def parse_file(path: str, fmt_name: str) -> tuple[pa.Table, pa.Table, int]:
    """Parse a sample through the real sources (decompression) and line splitter."""
    fmt = get_format(fmt_name)
    state = fmt.new_state()
    requests, rejects, invalid = [], [], 0
    for block in iter_blocks(open_input(Input(path)), path):
        lines = split_lines(block)
        invalid += lines.invalid_utf8
        parsed = fmt.parse(lines, state)
        requests.append(parsed.requests)
        rejects.append(parsed.rejects)
    return pa.concat_tables(requests), pa.concat_tables(rejects), invalid


def parse_text(text: str, fmt: str | TemplateFormat) -> tuple[list[dict], list[dict]]:
    """Parse lines given as one string; rows as golden-style dicts, rejects as dicts."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    parsed = f.parse(split_lines(Block("t", 1, text.encode("utf-8"))), f.new_state())
    return rows_for_golden(parsed.requests), parsed.rejects.to_pylist()


# Every sample file this module covers, with the preset that reads it.
SAMPLES = [
    ("apache_combined.log", "combined"),
    ("nginx_combined.log", "combined"),
    ("apache_common.log", "common"),
    ("apache_vhost_combined.log", "vhost_combined"),
    ("nginx_request_time_upstream.log", "nginx_upstream"),
    ("traefik_clf.log", "traefik"),
    ("aws_apigateway_clf.log", "apigateway_clf"),
    ("envoy_default.log", "envoy"),
    ("istio_envoy.log", "istio"),
    ("haproxy_http.log", "haproxy"),
    ("matomo/haproxy.log", "haproxy"),
    ("matomo/common_complete.log", "vhost_combined"),
    ("matomo/common_vhost.log", "common_vhost"),
    ("matomo/static_ignores.log", "vhost_combined"),
    ("matomo/gandi.log", "gandi"),
    ("matomo/ovh.log", "ovh"),
    ("matomo/ncsa_extended.log", "combined"),
    ("matomo/icecast2.log", "icecast2"),
    ("matomo/logs_to_tests.log", "combined"),
    ("matomo/common.log", "common"),
    ("matomo/common.log.gz", "common"),
    ("matomo/common.log.bz2", "common"),
    ("matomo/common_encoding_big5.log", "vhost_combined"),
]
# Lines that are garbage by design, by (file, line): they must be rejects.
EXPECTED_REJECTS = {
    ("apache_common.log", 6),  # `- - - [-] "-" - -`: no timestamp at all
    ("haproxy_http.log", 9),  # `… prod_http_in/sktst2: SSL handshake failure`: not an HTTP request
}


@pytest.mark.parametrize(("name", "fmt"), SAMPLES)
def test_sample_matches_golden(name: str, fmt: str) -> None:
    requests, rejects, _ = parse_file(str(FORMATS / name), fmt)
    reject_rows = [{"line": r["line"], "reason": r["reason"], "text": r["text"]} for r in rejects.to_pylist()]
    assert {(name, r["line"]) for r in reject_rows} == {k for k in EXPECTED_REJECTS if k[0] == name}
    assert requests.num_rows > 0
    check_golden(f"formats/{name}", {"format": fmt, "requests": rows_for_golden(requests), "rejects": reject_rows})


# -- contract: each preset module registers named, described formats that read their sample ---------

@pytest.mark.parametrize(("fmt", "sample"), [
    ("nginx_upstream", "nginx_request_time_upstream.log"),
    ("common_vhost", "matomo/common_vhost.log"),
    ("gandi", "matomo/gandi.log"),
    ("ovh", "matomo/ovh.log"),
    ("icecast2", "matomo/icecast2.log"),
    ("traefik", "traefik_clf.log"),
    ("apigateway_clf", "aws_apigateway_clf.log"),
    ("envoy", "envoy_default.log"),
    ("istio", "istio_envoy.log"),
    ("haproxy", "haproxy_http.log"),
])
def test_preset_contract(fmt: str, sample: str) -> None:
    f = get_format(fmt)
    assert f.name == fmt and f.description and f.detectable
    requests, _, _ = parse_file(str(FORMATS / sample), fmt)
    assert requests.num_rows > 0


def test_nginx_timed_preset_contract_and_layouts() -> None:
    f = get_format("nginx_timed")
    assert f.name == "nginx_timed" and f.description
    head = '10.0.0.1 - - [10/Oct/2026:13:55:36 +0200] "GET /a?b=1 HTTP/1.1" 200 5 "-" "curl/8.0"'
    rows, rejects = parse_text("\n".join([
        head + " 0.250 0.120, 0.030",  # two upstreams tried: times are summed
        head + " 1.5",
        head + ' rt=0.004 uct="0.001" uht="0.002" urt="0.003"',
        head + ' "203.0.113.9, 10.0.0.1" 0.010 -',
    ]), f)
    assert not rejects
    assert [(r.get("request_time_ms"), r.get("upstream_time_ms")) for r in rows] == [
        (250.0, 150.0), (1500.0, None), (4.0, 3.0), (10.0, None)]
    assert rows[2]["fields"] == {"upstream_connect_time": "0.001", "upstream_header_time": "0.002"}
    assert rows[3]["fields"] == {"http_x_forwarded_for": "203.0.113.9, 10.0.0.1"}
    assert rows[0]["ts"] == "2026-10-10T11:55:36+00:00" and rows[0]["query"] == "b=1"


# -- presets must reject lines that are not their own (auto-detection scores match rates) ----------

@pytest.mark.parametrize("fmt", ["nginx_upstream", "nginx_timed", "common_vhost", "gandi", "icecast2",
                                 "traefik", "apigateway_clf", "envoy", "istio", "haproxy"])
def test_presets_reject_plain_combined_lines(fmt: str) -> None:
    requests, rejects, _ = parse_file(str(FORMATS / "apache_combined.log"), fmt)
    assert requests.num_rows == 0 and rejects.num_rows == 9


def test_ovh_needs_a_host_name_in_second_place() -> None:
    # `%h %v %u` is ambiguous with `%h %l %u`: ovh only takes lines whose second field has a letter.
    rows, rejects = parse_text('1.2.3.4 - - [10/Feb/2012:16:42:07 -0500] "GET / HTTP/1.1" 200 1 "-" "x"', "ovh")
    assert rows == [] and len(rejects) == 1


# -- quirks -----------------------------------------------------------------------------------------

def _by_line(name: str, fmt: str) -> dict[int, dict]:
    requests, _, _ = parse_file(str(FORMATS / name), fmt)
    return {r["line"]: r for r in rows_for_golden(requests)}


def test_escaped_quotes_are_decoded() -> None:
    nginx = _by_line("nginx_combined.log", "combined")[11]  # nginx writes " as \x22
    apache = _by_line("apache_combined.log", "combined")[9]  # Apache writes \"
    expected = 'Dalvik/2.1.0 (Linux; U; Android 5.1; Alba 10" Build/LMY47I)'
    assert nginx["user_agent"] == expected and apache["user_agent"] == expected
    assert nginx["path"] == apache["path"] == "/myURL"


def test_ipv6_with_and_without_brackets_and_ports() -> None:
    assert _by_line("apache_common.log", "common")[2]["client_ip"] == "::1"
    assert _by_line("apache_combined.log", "combined")[3]["client_ip"] == "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"
    istio = _by_line("istio_envoy.log", "istio")
    assert istio[4]["client_ip"] == "2a02:cf40::4e36"  # [2a02:cf40::4e36]:5000
    assert istio[4]["fields"]["upstream_host"] == "[2a02:cf40::7]:3000"
    assert istio[1]["client_ip"] == "10.68.1.7"  # 10.68.1.7:39696
    rows, _ = parse_text('[2001:db8::1]:8080 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n'
                         '10.1.2.3:443 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', "combined")
    assert [r["client_ip"] for r in rows] == ["2001:db8::1", "10.1.2.3"]
    # HAProxy logs IPv6 clients without brackets: the port is after the last colon.
    line = ('2001:db8::7:51234 [25/Feb/2019:16:19:48.143] fe be/srv 0/0/7/1457/1487 200 11394 - - ---- '
            '2/1/0/0/0 0/0 "GET / HTTP/1.1"')
    rows, _ = parse_text(line, "haproxy")
    assert rows[0]["client_ip"] == "2001:db8::7" and rows[0]["fields"]["client_port"] == "51234"


def test_dash_means_null() -> None:
    assert "bytes_sent" not in _by_line("apache_common.log", "common")[3]
    traefik = _by_line("traefik_clf.log", "traefik")[5]  # `- -` status and size, "-" router/backend
    assert "status" not in traefik and "bytes_sent" not in traefik
    assert traefik["fields"] == {"request_count": "27"}
    assert "referer" not in _by_line("traefik_clf.log", "traefik")[2]  # bare `-` referer
    upstream = _by_line("nginx_request_time_upstream.log", "nginx_upstream")[2]
    assert "upstream_time_ms" not in upstream and "upstream_addr" not in upstream["fields"]


def test_empty_and_garbage_requests_are_kept_with_nulls() -> None:
    rows = _by_line("nginx_combined.log", "combined")
    empty = rows[7]  # "" 400
    assert empty["status"] == 400 and not {"method", "path", "protocol", "referer", "user_agent"} & set(empty)
    garbage = rows[8]  # TLS bytes sent to a plain-HTTP port, escaped by nginx
    assert garbage["status"] == 400 and "method" not in garbage and "path" not in garbage
    assert garbage["fields"]["request"] == r"]&\xDF\xBDV\xE7\xBB<\x10;\xA2b}\xDFM\x1D"
    tls = _by_line("apache_vhost_combined.log", "vhost_combined")[3]
    assert tls["fields"]["request"] == r"\x16\x03\x03\x01\x8f\x01" and tls["host"] == "127.0.1.1"
    envoy_tcp = _by_line("envoy_default.log", "envoy")[1]  # TCP proxy line "- - -"
    assert envoy_tcp["fields"]["request"] == "- - -" and "method" not in envoy_tcp and "client_ip" not in envoy_tcp
    assert "status" not in envoy_tcp  # Envoy's 0: no response was sent


def test_last_quoted_field_cut_off_is_read_to_end_of_line() -> None:
    path = FORMATS / "real" / "apache_combined_2015.log"
    requests, rejects, _ = parse_file(str(path), "combined")
    assert requests.num_rows == 10000 and rejects.num_rows == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    cut = [i + 1 for i, text in enumerate(lines) if not text.endswith('"')]
    assert cut == [8899]
    row = requests.filter(pa.compute.equal(requests["line"], 8899)).to_pylist()[0]
    assert row["user_agent"] == "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html"
    assert (row["status"], row["bytes_sent"], row["path"]) == (200, 235, "/scripts/grok-py-test/configlib.py")


def test_non_utf8_bytes_are_replaced_not_rejected() -> None:
    requests, rejects, invalid = parse_file(str(FORMATS / "matomo/common_encoding_big5.log"), "vhost_combined")
    assert rejects.num_rows == 0 and invalid == 1
    row = requests.to_pylist()[0]
    assert row["path"].startswith("/\ufffd") and row["path"].endswith("c\ufffdD") and row["status"] == 301


def test_compressed_samples_parse_through_sources() -> None:
    plain = rows_for_golden(parse_file(str(FORMATS / "matomo/common.log"), "common")[0])
    gz = rows_for_golden(parse_file(str(FORMATS / "matomo/common.log.gz"), "common")[0])
    bz = rows_for_golden(parse_file(str(FORMATS / "matomo/common.log.bz2"), "common")[0])
    assert plain[0]["client_ip"] == "1.2.3.4"
    assert gz[0]["client_ip"] == "1.2.3.5" and gz[0]["path"] == "/form"
    assert bz[0]["client_ip"] == "1.2.3.7" and bz[0]["remote_user"] == "theboss"


def test_vhost_first_and_second_orders() -> None:
    rows = _by_line("apache_vhost_combined.log", "vhost_combined")
    assert (rows[2]["client_ip"], rows[2]["host"]) == ("192.168.33.2", "vhost1.domaine.fr")  # ip:port vhost:port
    ovh = _by_line("matomo/ovh.log", "ovh")[1]
    assert (ovh["client_ip"], ovh["host"], ovh["remote_user"]) == ("1.2.3.4", "www.example.com", "theuser")


def test_gandi_and_icecast_durations() -> None:
    assert _by_line("matomo/gandi.log", "gandi")[1]["request_time_ms"] == 0.0
    rows, _ = parse_text('www.example.com 1.2.3.4 - - [10/Feb/2012:16:42:07 -0500] (2 s) "GET / HTTP/1.1" 200 1 "-" "x"',
                         "gandi")
    assert rows[0]["request_time_ms"] == 2000.0 and rows[0]["host"] == "www.example.com"
    assert _by_line("matomo/icecast2.log", "icecast2")[1]["request_time_ms"] == 1807000.0


def test_ingress_nginx_upstream_lists() -> None:
    line = ('10.0.0.1 - - [18/Mar/2023:15:00:00 +0000] "GET / HTTP/2.0" 502 10 "-" "curl/8" 462 0.250 '
            '[ns-svc-80] [] 10.0.50.80:9000, 10.0.50.81:9000 0, 19437 0.100, 0.049 502, 200 abc123')
    single = (FORMATS / "nginx_request_time_upstream.log").read_text().splitlines()[0]
    rows, rejects = parse_text(single + "\n" + line, "nginx_upstream")  # one block, both shapes
    assert not rejects
    assert rows[0]["upstream_time_ms"] == 49.0 and rows[0]["fields"]["upstream_addr"] == "10.0.50.80:9000"
    row = rows[1]
    assert row["upstream_time_ms"] == pytest.approx(149.0) and row["request_time_ms"] == 250.0
    assert row["request_id"] == "abc123"
    assert row["fields"] == {"proxy_upstream_name": "ns-svc-80", "request_length": "462",
                             "upstream_addr": "10.0.50.80:9000, 10.0.50.81:9000",
                             "upstream_response_length": "0, 19437", "upstream_status": "502, 200"}


def test_envoy_client_from_first_forwarded_address_and_host_without_port() -> None:
    line = ('[2019-04-08T16:16:55.931Z] "GET /service/1?x=1 HTTP/1.1" 200 - 0 89 5 4 "203.0.113.5, 10.0.0.2" '
            '"curl/7.54.0" "id-1" "localhost:8000" "172.27.0.3:80"')
    rows, _ = parse_text(line, "envoy")
    row = rows[0]
    assert row["client_ip"] == "203.0.113.5" and row["host"] == "localhost" and row["query"] == "x=1"
    assert row["fields"]["http_x_forwarded_for"] == "203.0.113.5, 10.0.0.2"
    assert (row["request_time_ms"], row["upstream_time_ms"], row["bytes_sent"]) == (5.0, 4.0, 89)
    assert row["ts"] == "2019-04-08T16:16:55.931000+00:00"
    ambassador = _by_line("envoy_default.log", "envoy")[5]
    assert ambassador["client_ip"] == "192.168.0.9" and ambassador["host"] == "localhost"


def test_istio_pre_1_9_layout() -> None:
    line = ('[2020-05-04T10:11:12.123Z] "GET /r HTTP/1.1" 503 UF "-" "-" 0 91 3 - "-" "curl/7" "id" "svc:80" '
            '"10.1.1.1:80" outbound|80||svc.ns.svc.cluster.local - 10.1.1.2:80 10.1.1.3:4444 - default')
    rows, rejects = parse_text(line, "istio")
    assert not rejects
    row = rows[0]
    assert (row["client_ip"], row["host"], row["status"]) == ("10.1.1.3", "svc", 503)
    assert row["fields"]["response_flags"] == "UF" and "upstream_time_ms" not in row


def test_haproxy_captures_timers_and_reject_reason() -> None:
    rows = _by_line("haproxy_http.log", "haproxy")
    first = rows[1]
    assert first["ts"] == "2019-02-25T16:19:48.143000+00:00"  # accept date, no zone: UTC
    assert (first["request_time_ms"], first["upstream_time_ms"]) == (1487.0, 1457.0)  # Tt, Tr
    assert (first["fields"]["tq"], first["fields"]["tw"], first["fields"]["tc"]) == ("0", "0", "7")
    assert first["user_agent"] == first["fields"]["captured_request_headers"]
    assert first["user_agent"].startswith("Mozilla/5.0 (Windows NT 6.1")
    _, rejects, _ = parse_file(str(FORMATS / "haproxy_http.log"), "haproxy")
    assert rejects.to_pylist()[0]["reason"] == "HAProxy connection message, not an HTTP request log line"
    # Several captures (`|`-separated) or a value that is not a user agent stay in fields only;
    # `#22` is HAProxy's encoding of `"`; -1 timers (never reached) are nulls; no syslog header.
    base = ('1.2.3.4:5 [25/Feb/2019:16:19:48.143] fe be/srv 0/0/-1/-1/{tt} 503 0 - - SC-- 1/1/0/0/0 0/0 '
            '{{{cap}}} {{}} "GET / HTTP/1.1"')
    rows, rejects = parse_text("\n".join([
        base.format(tt=5, cap="example.com|curl/8.0"),
        base.format(tt=5, cap="example.com"),
        base.format(tt=5, cap="Mozilla/5.0 #22quoted#22"),
    ]), "haproxy")
    assert not rejects
    assert ["user_agent" in r for r in rows] == [False, False, True]
    assert rows[2]["user_agent"] == 'Mozilla/5.0 "quoted"'
    assert rows[0]["fields"]["captured_request_headers"] == "example.com|curl/8.0"
    assert "upstream_time_ms" not in rows[0] and rows[0]["request_time_ms"] == 5.0
    # rsyslog's RFC 3339 header instead of the BSD one.
    rows, rejects = parse_text("2019-02-25T16:19:49.123+01:00 lb1 haproxy[7]: " + base.format(tt=5, cap=""), "haproxy")
    assert not rejects and rows[0]["client_ip"] == "1.2.3.4" and "captured_request_headers" not in rows[0]["fields"]


def test_custom_strftime_date_needs_an_explicit_format() -> None:
    path = FORMATS / "matomo/custom_regex_custom_date.log"
    custom = TemplateFormat.from_spec("custom", 'apache:%h %l %u [%{%B - %d, %Y:%H:%M:%S}t] "%r" %>s %b')
    assert not custom.detectable
    rows, rejects = parse_text(path.read_text(), custom)
    assert not rejects
    assert rows == [{"ts": "2012-02-10T16:42:07+00:00", "client_ip": "1.2.3.4", "method": "GET", "path": "/",
                     "protocol": "HTTP/1.0", "status": 301, "bytes_sent": 368, "line": 1}]
    assert parse_text(path.read_text(), "combined")[0] == []


# -- round trip: random values rendered through the combined template parse back unchanged ----------

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_NGINX_PLAIN = set(range(0x20, 0x7F)) - {0x22, 0x5C}


def _escape(value: str, style: str) -> str:
    """Escape a quoted field the way servers do: nginx `\\xHH` for `"`, `\\` and non-ASCII bytes;
    Apache `\\"` and `\\\\` (controls as `\\xHH`, UTF-8 written as is)."""
    if style == "nginx":
        return "".join(chr(b) if b in _NGINX_PLAIN else f"\\x{b:02X}" for b in value.encode("utf-8"))
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, dict]:
    ip = draw(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))).compressed
    shown_ip = draw(st.sampled_from(["plain", "port"]))
    port = draw(st.integers(1, 65535))
    client = ip if shown_ip == "plain" else (f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    user = draw(st.one_of(st.just("-"), st.from_regex(r"\A[A-Za-z0-9._@]{1,12}\Z")))
    offset = draw(st.integers(-14 * 60, 14 * 60))
    local = draw(st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1))).replace(microsecond=0)
    tz = timezone(timedelta(minutes=offset))
    stamp = local.replace(tzinfo=tz).strftime("%d/%b/%Y:%H:%M:%S %z")
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    path = "/" + draw(st.from_regex(r"\A[A-Za-z0-9._~%/!$&'()*+,;=:@-]{0,20}\Z"))
    query = draw(st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9._~%&=+/-]{1,20}\Z")))
    proto = draw(st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]))
    status = draw(st.one_of(st.integers(100, 599), st.just(None)))
    size = draw(st.one_of(st.integers(0, 10**12), st.just(None)))
    referer, agent = draw(_TEXT), draw(_TEXT)
    style = draw(st.sampled_from(["nginx", "apache"]))
    target = path + ("" if query is None else "?" + query)
    line = (f'{client} - {user} [{stamp}] "{method} {target} {proto}" {"-" if status is None else status} '
            f'{"-" if size is None else size} "{_escape(referer, style)}" "{_escape(agent, style)}"')
    expected = {
        "ts": local.replace(tzinfo=tz).astimezone(UTC).isoformat(), "client_ip": ip, "method": method,
        "path": path, "query": query, "protocol": proto, "status": status, "bytes_sent": size,
        "referer": None if referer in ("", "-") else referer,
        "user_agent": None if agent in ("", "-") else agent,
        "remote_user": None if user == "-" else user,
    }
    return line, {k: v for k, v in expected.items() if v is not None}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_requests(), min_size=1, max_size=12))
def test_combined_round_trip(cases: list[tuple[str, dict]]) -> None:
    rows, rejects = parse_text("\n".join(line for line, _ in cases), "combined")
    assert rejects == []
    for row, (line, expected) in zip(rows, cases, strict=True):
        row.pop("line")
        assert row == expected, line


def test_round_trip_escape_helper_is_what_servers_write() -> None:
    # The helper itself, checked against the sample files' own escaping.
    assert _escape('Alba 10" Build', "nginx") == r"Alba 10\x22 Build"
    assert _escape('Alba 10" Build', "apache") == r"Alba 10\" Build"
    assert _escape("é", "nginx") == r"\xC3\xA9" and _escape("é", "apache") == "é"
    assert re.fullmatch(r"[ -~]*", _escape("\u2028\x00ü", "nginx"))


def test_nginx_bracketed_time_local_takes_the_split_plan() -> None:
    # `[$time_local]`: the word's brackets are sliced off before the value is checked against the
    # variable's pattern; otherwise every line silently falls back to the slow full regex.
    text = pa.array([
        '10.0.0.1 - - [10/Oct/2026:13:55:36 +0200] "GET / HTTP/1.1" 200 5 "-" "curl/8.0" 0.250 0.120',
        '10.0.0.2 - bob [10/Oct/2026:13:55:37 +0200] "GET /a HTTP/1.1" 404 0 "-" "x" 0.001 -',
    ])
    for fmt in ("nginx_timed", "traefik", "nginx_upstream"):
        template = get_format(fmt).templates[0]
        assert template.segments is not None
    lines = Lines("t", text, pa.array([1, 2], pa.int64()))  # text only (no raw block): the split plan
    pieces = get_format("nginx_timed").templates[0].pieces(lines, np.arange(2))
    assert len(pieces) == 1 and list(pieces[0][0]) == [0, 1]
    assert pieces[0][1]["time_local"].to_pylist() == ["10/Oct/2026:13:55:36 +0200", "10/Oct/2026:13:55:37 +0200"]
