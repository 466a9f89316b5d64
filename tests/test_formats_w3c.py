"""W3C extended formats (DESIGN §3): `w3c`, `iis`, `cloudfront` — goldens, quirks, layouts, blocks."""

from __future__ import annotations

import pyarrow as pa
import pytest
from golden import FORMATS, check_golden, parse_file, parse_text, rows_for_golden

from logtrack.formats import get_format
from logtrack.formats.w3c_core import NO_HEADER, split_fields
from logtrack.lines import split_lines
from logtrack.sources import Block

SAMPLES = [
    ("aws_cloudfront.log", "cloudfront"),
    ("matomo/amazon_cloudfront_web.log", "cloudfront"),
    ("matomo/amazon_cloudfront_rtmp.log", "cloudfront"),
    ("iis_w3c.log", "iis"),
    ("matomo/iis.log", "iis"),
    ("matomo/iis_custom.log", "iis"),
    ("matomo/netscaler.log", "w3c"),
    ("matomo/shoutcast.log", "w3c"),
    ("matomo/incapsula_w3c.log", "w3c"),
    ("matomo/splitted_date_and_time.log", "w3c"),
]




@pytest.mark.parametrize(("name", "fmt"), SAMPLES)
def test_sample_matches_golden(name: str, fmt: str) -> None:
    requests, rejects = parse_file(str(FORMATS / name), fmt)
    assert rejects.num_rows == 0, rejects.to_pylist()  # no W3C sample line is garbage
    assert requests.num_rows > 0
    check_golden(f"formats/{name}", {"format": fmt, "requests": rows_for_golden(requests), "rejects": []})


@pytest.mark.parametrize("name", ["w3c", "iis", "cloudfront"])
def test_preset_contract(name: str) -> None:
    fmt = get_format(name)
    assert fmt.name == name and fmt.description and fmt.detectable
    sample = {"w3c": "matomo/netscaler.log", "iis": "iis_w3c.log", "cloudfront": "aws_cloudfront.log"}[name]
    requests, rejects = parse_file(str(FORMATS / sample), name)
    assert requests.num_rows > 0 and rejects.num_rows == 0


def test_cloudfront_host_decoding_and_units() -> None:
    rows = rows_for_golden(parse_file(str(FORMATS / "aws_cloudfront.log"), "cloudfront")[0])
    # x-host-header (the viewer's Host) wins over cs(Host), the distribution's domain.
    assert rows[2]["host"] == "www.example.com"
    assert rows[0]["host"] == "d111111abcdef8.cloudfront.net"  # x-host-header is that domain too
    assert rows[0]["user_agent"].startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit")
    assert rows[2]["request_time_ms"] == 102.0  # time-taken 0.102 s
    assert rows[3]["query"] == "source=global" and rows[3]["method"] == "POST"
    assert rows[4]["fields"]["http_x_forwarded_for"] == "81.2.69.142, 216.160.83.56"
    assert rows[0]["request_id"] == "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="
    assert rows[0]["scheme"] == "https" and rows[0]["protocol"] == "HTTP/2.0"
    assert rows[1]["client_ip"] == "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"
    old = rows_for_golden(parse_file(str(FORMATS / "matomo/amazon_cloudfront_web.log"), "cloudfront")[0])
    # `%2520`: the user agent was encoded twice.
    assert old[0]["user_agent"] == ("Mozilla/5.0 (Windows; U; Windows NT 6.1; de-DE) AppleWebKit/534.17 "
                                    "(KHTML, like Gecko) Chrome/10.0.649.0 Safari/534.17")


def test_cloudfront_rtmp_rows_keep_nulls() -> None:
    rows = rows_for_golden(parse_file(str(FORMATS / "matomo/amazon_cloudfront_rtmp.log"), "cloudfront")[0])
    assert len(rows) == 2
    for row in rows:
        assert "method" not in row and "status" not in row  # RTMP has neither (DESIGN §2)
        assert (row["scheme"], row["host"], row["path"]) == ("rtmp", "shqshne4jdp4b6.cloudfront.net", "/cfx/st")
        assert row["user_agent"] == "LNX 10,0,32,18"
        assert "x-page-url" in row["fields"]  # the header's pasted U+200B is gone from the name
    assert rows[1]["fields"]["x-sname"] == "myvideo" and rows[1]["fields"]["x-event"] == "play"


def test_iis_plus_decoding_cookies_and_milliseconds() -> None:
    rows = rows_for_golden(parse_file(str(FORMATS / "iis_w3c.log"), "iis")[0])
    assert rows[0]["user_agent"] == "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    assert rows[0]["request_time_ms"] == 283.0  # IIS time-taken is in milliseconds
    assert "query" not in rows[0]  # cs-uri-query `-`
    assert rows[4]["referer"] == "http://example.com"
    iis = rows_for_golden(parse_file(str(FORMATS / "matomo/iis.log"), "iis")[0])[0]
    assert iis["fields"]["cookie_ASP.NET_SessionId"] == "sldfkjs"
    assert iis["fields"]["cookie_utmccn"] == "(direct)|utmcsr=(direct)|utmcmd=(none)"
    assert iis["host"] == "example.com" and iis["remote_user"] == "theuser"
    assert iis["query"] == "topCat1=divinity&submit=Search"


def test_iis_advanced_logging_quotes_and_spacing() -> None:
    rows = rows_for_golden(parse_file(str(FORMATS / "matomo/iis_custom.log"), "iis")[0])
    assert [r["line"] for r in rows] == [8, 9, 10]
    assert rows[0]["client_ip"] == "70.95.0.0" and rows[0]["host"] == "xzy.example.com"
    assert "client_ip" not in rows[1]  # `-`
    assert rows[2]["fields"]["sc-substatus"] == " garbage w/ spaces "  # quoted, spaces kept
    assert rows[2]["request_time_ms"] == 359.0  # TimeTakenMS
    assert rows[0]["ts"] == "2012-08-15T17:00:00.363000+00:00"


def test_generic_w3c_products() -> None:
    netscaler = rows_for_golden(parse_file(str(FORMATS / "matomo/netscaler.log"), "w3c")[0])[0]
    assert netscaler["request_time_ms"] == 1000.0  # W3C time-taken is in seconds
    assert netscaler["user_agent"].startswith("Mozilla/4.0 (compatible; MSIE 7.0;")
    shout = rows_for_golden(parse_file(str(FORMATS / "matomo/shoutcast.log"), "w3c")[0])[0]
    assert (shout["status"], shout["path"], shout["query"]) == (200, "/stream", "title=UKR%20Nights")
    assert shout["user_agent"] == "NSPlayer/10.0.0.3702 WMFSDK/10.0"
    incapsula = rows_for_golden(parse_file(str(FORMATS / "matomo/incapsula_w3c.log"), "w3c")[0])
    assert (incapsula[0]["host"], incapsula[0]["path"]) == ("www.example.com", "/page.php")
    assert "scheme" not in incapsula[0]  # `host/path` carries no scheme
    assert "status" not in incapsula[1]  # `""`
    iis_under_w3c = rows_for_golden(parse_file(str(FORMATS / "iis_w3c.log"), "w3c")[0])
    assert iis_under_w3c[0]["request_time_ms"] == 283.0  # `#Software:` names IIS: milliseconds


def test_lines_before_any_header_are_rejected() -> None:
    text = "2015-01-13 00:32:17 GET /a 200\n#Fields: date time cs-method cs-uri-stem sc-status\n2015-01-13 00:32:18 GET /b 404\n"
    rows, rejects = parse_text(text, "w3c")
    assert [r["path"] for r in rows] == ["/b"]
    assert [(r["line"], r["reason"]) for r in rejects] == [(1, NO_HEADER)]
    rows, rejects = parse_text((FORMATS / "apache_combined.log").read_text(), "w3c")
    assert rows == [] and rejects and all(r["reason"] == NO_HEADER for r in rejects)


def test_layout_changes_mid_file_and_bad_field_counts() -> None:
    text = (
        "#Software: Microsoft Internet Information Services 10.0\n"
        "#Fields: date time cs-uri-stem sc-status time-taken\n"
        "2024-01-01 10:00:00 /a 200 15\n"
        "2024-01-01 10:00:01 /b 200\n"
        "#Software: Example Server\n"
        "#Date: 2024-01-02 00:00:00\n"
        "#Fields: time c-ip cs-uri-stem cs(Accept-Language) time-taken\n"
        "10:00:02 1.2.3.4 /c en-GB 0.5\n"
        "#Date: 2024-01-03 00:00:00\n"
        "10:00:03 1.2.3.5 /d - 1\n"
    )
    rows, rejects = parse_text(text, "w3c")
    assert [(r["line"], r["path"]) for r in rows] == [(3, "/a"), (8, "/c"), (10, "/d")]
    assert rows[0]["request_time_ms"] == 15.0 and rows[0]["status"] == 200  # IIS: milliseconds
    assert [r["line"] for r in rejects] == [4]
    assert "5 fields of the #Fields: header at line 2" in rejects[0]["reason"]
    # The second layout has no date field: the day comes from the #Date directive in force.
    assert rows[1]["ts"] == "2024-01-02T10:00:02+00:00" and rows[2]["ts"] == "2024-01-03T10:00:03+00:00"
    assert rows[1]["fields"] == {"http_accept_language": "en-GB"}  # cs(Header) → http_<header>
    assert rows[1]["request_time_ms"] == 500.0  # no longer IIS: seconds
    assert rows[1]["client_ip"] == "1.2.3.4"


def test_time_without_date_needs_a_date_directive() -> None:
    rows, rejects = parse_text("#Fields: time cs-uri-stem\n10:00:00 /a\n", "w3c")
    assert rows == [] and rejects[0]["reason"] == "bad or missing timestamp"
    rows, _ = parse_text("#Date: 2024-05-06 00:00:00\n#Fields: time cs-uri-stem\n10:00:00 /a\n", "w3c")
    assert rows[0]["ts"] == "2024-05-06T10:00:00+00:00"


def test_presets_refuse_other_products_layouts() -> None:
    iis = (FORMATS / "iis_w3c.log").read_text()
    cloudfront = (FORMATS / "aws_cloudfront.log").read_text()
    rows, rejects = parse_text(iis, "cloudfront")
    assert rows == [] and len(rejects) == 7 and "not a CloudFront layout" in rejects[0]["reason"]
    rows, rejects = parse_text(cloudfront, "iis")
    assert rows == [] and len(rejects) == 5 and "not an IIS layout" in rejects[0]["reason"]
    for name in ("w3c", "iis", "cloudfront"):
        rows, rejects = parse_text((FORMATS / "aws_alb.log").read_text(), name)
        assert rows == [] and len(rejects) == 10


def test_split_fields_variants() -> None:
    text = pa.array([
        "a\tb\t\tc",  # tabs: empty fields kept
        '"x y" "" z w',  # quoted: quotes removed, spaces kept
        "  p   q r  s ",  # runs of spaces
        "one two",  # too few
    ])
    values, ok = split_fields(text, 4)
    assert ok.tolist() == [True, True, True, False]
    rows = list(zip(*(v.to_pylist() for v in values), strict=True))
    assert rows[:3] == [("a", "b", "", "c"), ("x y", "", "z", "w"), ("p", "q", "r", "s")]


def test_cookies_without_names_stay_raw() -> None:
    text = "#Fields: date time cs-uri-stem cs(Cookie)\n2024-01-01 00:00:00 /a opaque\n2024-01-01 00:00:01 /b a=1;+b=2\n"
    rows, _ = parse_text(text, "w3c")
    assert rows[0]["fields"] == {"cs(Cookie)": "opaque"}
    assert rows[1]["fields"] == {"cookie_a": "1", "cookie_b": "2"}


def _blocks(data: bytes, cuts: list[int]) -> list[Block]:
    """Blocks of whole lines, cut after the line numbers in `cuts` (1-based)."""
    lines = data.splitlines(keepends=True)
    out, start = [], 0
    for cut in [*cuts, len(lines)]:
        if cut > start:
            out.append(Block("t", start + 1, b"".join(lines[start:cut])))
        start = cut
    return out


def _parse_blocks(fmt_name: str, blocks: list[Block]) -> tuple[list[dict], list[dict]]:
    fmt = get_format(fmt_name)
    state = fmt.new_state()
    rows, rejects = [], []
    for block in blocks:
        parsed = fmt.parse(split_lines(block), state)
        rows += rows_for_golden(parsed.requests)
        rejects += parsed.rejects.to_pylist()
    return rows, rejects


@pytest.mark.parametrize("fmt", ["w3c", "iis"])
def test_block_boundaries_do_not_matter(fmt: str) -> None:
    # Two IIS header blocks (a restart) with different layouts, plus a line before any header.
    data = (
        b"2015-01-13 00:00:00 stray line\n"
        + (FORMATS / "iis_w3c.log").read_bytes()
        + (FORMATS / "matomo/iis.log").read_bytes()
        + (FORMATS / "matomo/iis_custom.log").read_bytes()
    )
    n = len(data.splitlines())
    whole = _parse_blocks(fmt, _blocks(data, []))
    assert len(whole[0]) == 7 + 1 + 3 and len(whole[1]) == 1
    for cut in range(1, n):
        assert _parse_blocks(fmt, _blocks(data, [cut])) == whole, cut
    assert _parse_blocks(fmt, _blocks(data, list(range(1, n)))) == whole  # one line per block
