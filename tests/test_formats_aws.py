"""AWS delimited formats (DESIGN §2, §3): `alb`, `elb`, `s3` — goldens, quirks, layout growth."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from golden import FORMATS, check_golden, parse_file, parse_text, rows_for_golden
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.formats import get_format
from logtrack.formats.delimited import Delimited, split_url_request

SAMPLES_DIR = Path(__file__).parent / "samples"
SAMPLES = [
    (FORMATS / "aws_alb.log", "aws_alb.log", "alb"),
    (FORMATS / "matomo/alb.log", "matomo/alb.log", "alb"),
    (FORMATS / "aws_elb_classic.log", "aws_elb_classic.log", "elb"),
    (FORMATS / "matomo/elb.log", "matomo/elb.log", "elb"),
    (FORMATS / "matomo/s3.log", "matomo/s3.log", "s3"),
    (SAMPLES_DIR / "s3.log", "samples/s3.log", "s3"),
]
ALB_HEAD = ("https 2023-09-10T23:55:00.361692Z app/I8YR24BIAN4K/6378464905b0814a {client} 10.0.0.9:80"
            " 0.000 0.003 0.000 401 401 29 805")




@pytest.mark.parametrize(("path", "name", "fmt"), SAMPLES, ids=[s[1] for s in SAMPLES])
def test_sample_matches_golden(path: Path, name: str, fmt: str) -> None:
    requests, rejects = parse_file(path, fmt)
    assert rejects.num_rows == 0, rejects.to_pylist()  # no AWS sample line is garbage
    assert requests.num_rows > 0
    check_golden(f"formats/{name}", {"format": fmt, "requests": rows_for_golden(requests), "rejects": []})


@pytest.mark.parametrize(("name", "sample"), [("alb", "aws_alb.log"), ("elb", "aws_elb_classic.log"),
                                              ("s3", "matomo/s3.log")])
def test_preset_contract(name: str, sample: str) -> None:
    fmt = get_format(name)
    assert fmt.name == name and fmt.description and fmt.detectable
    requests, rejects = parse_file(FORMATS / sample, name)
    assert requests.num_rows > 0 and rejects.num_rows == 0


def test_alb_columns() -> None:
    rows = rows_for_golden(parse_file(FORMATS / "aws_alb.log", "alb")[0])
    first = rows[0]
    assert (first["scheme"], first["host"], first["path"]) == ("http", "www.example.com", "/")  # no :80
    assert first["ts"] == "2018-07-02T22:23:00.186641+00:00"  # `time`, not request_creation_time
    assert first["client_ip"] == "192.168.131.39" and first["status"] == 200 and first["bytes_sent"] == 366
    assert rows[1]["request_time_ms"] == 171.0 and rows[1]["upstream_time_ms"] == 48.0  # 0.086+0.048+0.037 s
    assert rows[6]["status"] == 502 and "target_status_code" not in rows[6]["fields"]  # `-`
    assert rows[6]["fields"]["error_reason"] == "LambdaInvalidResponse"
    assert rows[7]["query"] == "detailsLevel=FULL&offset=0&limit=50"
    assert rows[7]["path"] == "/api/deposits/transactions:search"
    # The malformed request: kept, with nulls and the raw text (DESIGN §2); -1 times → null.
    bad = rows[8]
    assert "method" not in bad and "path" not in bad and "host" not in bad and bad["status"] == 400
    assert bad["fields"]["request"] == "- http://awseb-awseb-1kgu6fbag3fad-640112591.us-east-1.elb.amazonaws.com:80- -"
    assert "request_time_ms" not in bad and "upstream_time_ms" not in bad


def test_alb_ipv6_client_and_trailing_fields() -> None:
    tail = (' "GET https://api.example.nl:443/v1/me?x=1 HTTP/2.0" "okhttp/4.11.0" ECDHE-RSA-AES128-GCM-SHA256'
            ' TLSv1.2 arn:tg "Root=1-64fe5754" "api.example.nl" "session-reused" 11 2023-09-10T23:55:00.358000Z'
            ' "forward" "-" "-" "10.0.100.2:80" "401" "-" "-" TID_1 "future" field 42')
    line = ALB_HEAD.format(client="2a02:a33c:4538:1:bcf4:5264:e01c:f215:50718") + tail
    rows, rejects = parse_text(line + "\n" + ALB_HEAD.format(client="[2001:db8::1]:443") + tail, "alb")
    assert rejects == []
    assert rows[0]["client_ip"] == "2a02:a33c:4538:1:bcf4:5264:e01c:f215"  # port stripped, no brackets
    assert rows[1]["client_ip"] == "2001:db8::1"
    assert (rows[0]["host"], rows[0]["path"], rows[0]["query"]) == ("api.example.nl", "/v1/me", "x=1")
    assert rows[0]["fields"]["chosen_cert_arn"] == "session-reused"


def test_alb_older_layouts_and_escaped_quotes() -> None:
    # The 2016 layout ends at "trace_id"; an escaped quote in the user agent takes the full regex.
    short = ALB_HEAD.format(client="1.2.3.4:5") + ' "GET http://a.example:80/x HTTP/1.1" "curl/7" - - arn:tg "Root=1-a"'
    escaped = (ALB_HEAD.format(client="1.2.3.4:5") + ' "GET http://a.example:80/y HTTP/1.1" "say \\"hi\\"" - - arn:tg'
               ' "Root=1-b" "-" "-" 0 2023-09-10T23:55:00.358000Z "forward" "-" "-"')
    rows, rejects = parse_text(short + "\n" + escaped + "\n", "alb")
    assert rejects == []
    assert rows[0]["path"] == "/x" and rows[0]["fields"]["trace_id"] == "Root=1-a"
    assert "domain_name" not in rows[0]["fields"]
    assert rows[1]["path"] == "/y" and rows[1]["user_agent"] == 'say "hi"'


def test_formats_reject_each_others_lines() -> None:
    alb = (FORMATS / "aws_alb.log").read_text()
    elb = (FORMATS / "aws_elb_classic.log").read_text()
    combined = (FORMATS / "apache_combined.log").read_text()
    for text, names in ((alb, ("elb", "s3")), (elb, ("alb", "s3")), (combined, ("alb", "elb", "s3"))):
        for name in names:
            rows, rejects = parse_text(text, name)
            assert rows == [] and rejects, name
    _, rejects = parse_text("garbage\n", "alb")
    assert rejects[0]["reason"] == "does not match the alb layout"


def test_elb_tcp_lines_and_old_layout() -> None:
    rows = rows_for_golden(parse_file(FORMATS / "aws_elb_classic.log", "elb")[0])
    tcp = rows[7]
    assert "method" not in tcp and "status" not in tcp and tcp["fields"]["request"] == "- - - "
    assert tcp["bytes_sent"] == 305 and tcp["fields"]["received_bytes"] == "82"
    assert rows[4]["status"] == 503 and "request_time_ms" not in rows[4]  # -1 -1 -1: no backend
    assert rows[0]["request_time_ms"] == 0.851 and rows[0]["upstream_time_ms"] == 0.785
    assert (rows[5]["host"], rows[5]["query"]) == ("example.com", "baz=1234")
    old = '2013-05-13T23:39:43.945958Z lb 1.2.3.4:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/old HTTP/1.1"'
    rows, rejects = parse_text(old + "\n", "elb")
    assert rejects == [] and rows[0]["path"] == "/old" and "user_agent" not in rows[0]


def test_s3_columns() -> None:
    rows = rows_for_golden(parse_file(SAMPLES_DIR / "s3.log", "s3")[0])
    assert rows[0]["host"] == "amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com"  # host_header
    assert (rows[0]["path"], rows[0]["query"]) == ("/amzn-s3-demo-bucket1", "versioning")
    assert rows[1]["client_ip"] == "2001:db8::7" and rows[1]["remote_user"] == "arn:aws:iam::123456789012:user/alice"
    assert rows[1]["request_time_ms"] == 70.0 and rows[1]["fields"]["turn_around_time"] == "10"
    assert rows[2]["ts"] == "2019-02-06T06:02:03+00:00"  # -0500 → UTC
    assert rows[2]["host"] == "www.example.com"  # website endpoint without host_header: the bucket
    assert rows[2]["fields"]["error_code"] == "NoSuchKey" and "remote_user" not in rows[2]
    # A lifecycle line writes `-` for the quoted values; it is kept with nulls.
    lifecycle = ('79a5 bucket1 [06/Feb/2019:00:00:38 +0000] - AmazonS3 4A8 S3.EXPIRE.OBJECT photos/a.jpg'
                 ' - - - - 1024 - - - - -')
    rows, rejects = parse_text(lifecycle + "\n", "s3")
    assert rejects == [] and "method" not in rows[0] and rows[0]["fields"]["operation"] == "S3.EXPIRE.OBJECT"


def test_delimited_layout_pieces() -> None:
    layout = Delimited('a [t] "q" b c', required="q")
    values, ok = layout.split(pa.array(['x [1 2] "v w" y z extra', 'x [1 2] "v"', "x 1 2", 'x  [1 2] "v" y z']))
    assert ok.tolist() == [True, True, False, True]  # the doubled space takes the regex
    assert values["t"].to_pylist()[:2] == ["1 2", "1 2"] and values["q"].to_pylist()[:2] == ["v w", "v"]
    assert values["b"].to_pylist()[:2] == ["y", None]


def test_url_request_fast_path_agrees_with_the_general_splitter() -> None:
    from logtrack.formats.convert import split_request

    requests = pa.array([
        "GET http://Example.COM:80/a/b?c=d&e HTTP/1.1", "POST https://h.example/ HTTP/2.0",
        "GET https://h.example HTTP/1.1", "GET http://[::1]:8080/x HTTP/1.1", "- - - ", "",
        "GET http://h.example/p#frag HTTP/1.1", "GET /origin?q HTTP/1.0", "GET http://h:80/? HTTP/1.1", None,
    ])
    fast, slow = split_url_request(requests), split_request(requests)
    for key in ("method", "scheme", "host", "path", "query", "protocol", "request_raw"):
        assert fast[key].to_pylist() == slow[key].cast(pa.string()).to_pylist(), key


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(st.characters(codec="ascii", categories=["L", "N"], include_characters="/-._~%"), max_size=20),
    query=st.none() | st.text(st.characters(codec="ascii", categories=["L", "N"], include_characters="=&%"), max_size=15),
    agent=st.text(st.characters(codec="utf-8", exclude_characters='"\\\n\r'), max_size=30),
    port=st.sampled_from(["", ":80", ":443"]),
)
def test_alb_round_trip(path: str, query: str | None, agent: str, port: str) -> None:
    url = f"https://Shop.example{port}/{path}" + (f"?{query}" if query is not None else "")
    line = (ALB_HEAD.format(client="10.1.2.3:4567") + f' "GET {url} HTTP/1.1" "{agent}" - - arn:tg "Root=1"'
            ' "-" "-" 0 2023-09-10T23:55:00.358000Z "forward" "-" "-" "10.0.0.1:80" "200"')
    rows, rejects = parse_text(line + "\n", "alb")
    assert rejects == []
    row = rows[0]
    assert (row["host"], row["path"], row.get("query")) == ("shop.example", "/" + path, query)
    assert row.get("user_agent") == (agent if agent not in ("", "-") else None)
