"""`--format auto` on every sample in ../shared/formats (DESIGN §3): the right format is chosen per
file and every data line parses, except lines that are garbage by design."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from golden import FORMATS

from logtrack.cli import main

# file → (detected format, line numbers that are garbage by design)
EXPECTED: dict[str, tuple[str, set[int]]] = {
    "apache_combined.log": ("combined", set()),
    "apache_common.log": ("common", {6}),  # `- - - [-] "-" - -`: no timestamp at all
    "apache_vhost_combined.log": ("vhost_combined", set()),
    "aws_alb.log": ("alb", set()),
    "aws_apigateway_clf.log": ("apigateway_clf", set()),
    "aws_apigateway_json.log": ("apigateway_json", set()),
    "aws_cloudfront.log": ("cloudfront", set()),
    "aws_elb_classic.log": ("elb", set()),
    "caddy_json.log": ("caddy", set()),
    "envoy_default.log": ("envoy", set()),
    "gcp_http_lb.log": ("gcp_lb", set()),
    "haproxy_http.log": ("haproxy", {9}),  # `SSL handshake failure`: a connection message, not a request
    "iis_w3c.log": ("iis", set()),
    "istio_envoy.log": ("istio", set()),
    "kong_json.log": ("kong", set()),
    "nginx_combined.log": ("combined", set()),
    "nginx_json.log": ("nginx_json", set()),
    "nginx_request_time_upstream.log": ("nginx_upstream", set()),
    "traefik_clf.log": ("traefik", set()),
    "traefik_json.log": ("traefik_json", set()),
    "real/apache_combined_2015.log": ("combined", set()),
    "matomo/alb.log": ("alb", set()),
    "matomo/amazon_cloudfront_rtmp.log": ("cloudfront", set()),
    "matomo/amazon_cloudfront_web.log": ("cloudfront", set()),
    "matomo/caddy_json.log": ("caddy", set()),
    "matomo/common.log": ("common", set()),
    "matomo/common.log.bz2": ("common", set()),
    "matomo/common.log.gz": ("common", set()),
    "matomo/common_complete.log": ("vhost_combined", set()),
    "matomo/common_encoding_big5.log": ("vhost_combined", set()),
    "matomo/common_vhost.log": ("common_vhost", set()),
    "matomo/elb.log": ("elb", set()),
    "matomo/gandi.log": ("gandi", set()),
    "matomo/haproxy.log": ("haproxy", set()),
    "matomo/icecast2.log": ("nginx_timed", set()),  # combined + seconds: icecast2 reads it the same way
    "matomo/iis.log": ("iis", set()),
    "matomo/iis_custom.log": ("iis", set()),
    "matomo/incapsula_w3c.log": ("iis", set()),  # `iis` and `w3c` read it identically
    "matomo/logs_to_tests.log": ("combined", set()),
    "matomo/ncsa_extended.log": ("combined", set()),
    "matomo/netscaler.log": ("w3c", set()),
    "matomo/nginx_json.log": ("nginx_json", set()),
    "matomo/ovh.log": ("ovh", set()),
    "matomo/s3.log": ("s3", set()),
    "matomo/shoutcast.log": ("w3c", set()),
    "matomo/splitted_date_and_time.log": ("w3c", set()),
    "matomo/static_ignores.log": ("vhost_combined", set()),
    "matomo/traefik_json.log": ("traefik_json", set()),
}
NEEDS_EXPLICIT_FORMAT = {"matomo/custom_regex_custom_date.log"}


def test_every_shared_sample_is_listed() -> None:
    files = {str(p.relative_to(FORMATS)) for p in FORMATS.rglob("*") if p.is_file() and not p.name.endswith(".md")}
    assert files == set(EXPECTED) | NEEDS_EXPLICIT_FORMAT


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_auto_detects_and_parses(name: str, tmp_path: Path) -> None:
    expected_format, garbage = EXPECTED[name]
    out = tmp_path / "out.parquet"
    res = CliRunner().invoke(main, ["parse", str(FORMATS / name), "-o", str(out), "--max-reject-rate", "1"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f" {expected_format} " in res.output.splitlines()[1]
    rejects = pq.read_table(tmp_path / "out.rejects.parquet")
    assert set(rejects["line"].to_pylist()) == garbage, rejects.to_pylist()
    assert pq.read_table(out).num_rows > 0


def test_custom_date_layout_needs_explicit_format(tmp_path: Path) -> None:
    log = FORMATS / "matomo/custom_regex_custom_date.log"
    res = CliRunner().invoke(main, ["parse", str(log), "-o", str(tmp_path / "o.parquet")])
    assert res.exit_code == 2 and "cannot tell the log format" in res.output
    spec = 'apache:%h %l %u [%{%B - %d, %Y:%H:%M:%S}t] "%r" %>s %b'
    res = CliRunner().invoke(main, ["parse", str(log), "--log-format", spec, "-o", str(tmp_path / "o.parquet")])
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 1
