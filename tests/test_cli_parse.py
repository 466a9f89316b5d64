"""`logtrack parse` end to end through the CLI: outputs, summaries, exit codes, hostile input."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
from click.testing import CliRunner

from logtrack.cli import main

GOOD = '203.0.113.{i} - - [10/Oct/2026:13:55:{s:02d} +0200] "GET /p/{i}?utm_source=x HTTP/1.1" 200 {i} "-" "Mozilla/5.0"\n'


def good_lines(n: int) -> str:
    return "".join(GOOD.format(i=i % 250, s=i % 60) for i in range(n))


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_parse_writes_requests_and_rejects(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(good_lines(100) + "this is not a log line\n\n")
    out = tmp_path / "req.parquet"
    res = run("parse", str(log), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "102 lines read = 100 parsed + 1 rejected + 1 skipped" in res.output
    df = pd.read_parquet(out)
    assert len(df) == 100
    assert df["ts"].iloc[0] == pd.Timestamp("2026-10-10 11:55:00", tz="UTC")
    assert df["path"].iloc[3] == "/p/3" and df["query"].iloc[3] == "utm_source=x"
    assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall()[0][0] == 100
    rejects = pq.read_table(tmp_path / "req.rejects.parquet").to_pylist()
    assert rejects == [{"source": str(log), "line": 101, "reason": "does not match the format", "text": "this is not a log line"}]


def test_stdin_with_auto_detection_keeps_every_line(tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    res = run("parse", "-", "-o", str(out), input=good_lines(3))
    assert res.exit_code == 0, res.output
    t = pq.read_table(out)
    assert t.num_rows == 3 and set(t["source"].to_pylist()) == {"<stdin>"}
    assert t["line"].to_pylist() == [1, 2, 3]


def test_empty_file_and_comment_only_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    comments = tmp_path / "hdr.log"
    comments.write_text("#Version: 1.0\n#Fields: date time c-ip\n")
    out = tmp_path / "o.parquet"
    res = run("parse", str(empty), str(comments), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows == 0
    assert "2 lines read = 0 parsed + 0 rejected + 2 skipped" in res.output


def test_reject_rate_over_limit_exits_3(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(good_lines(90) + "garbage\n" * 10)
    res = run("parse", str(log), "--format", "combined", "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 3
    res = run("parse", str(log), "--format", "combined", "--max-reject-rate", "0.2", "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 0


def test_truncated_gzip_parses_readable_part_and_fails(tmp_path: Path) -> None:
    packed = gzip.compress(good_lines(50_000).encode())
    log = tmp_path / "cut.log.gz"
    log.write_bytes(packed[: len(packed) // 2])
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--format", "combined", "-o", str(out))
    assert res.exit_code == 1
    assert "error:" in res.output
    n = pq.read_table(out).num_rows
    assert 0 < n < 50_000


def test_hostile_lines_become_rejects_not_crashes(tmp_path: Path) -> None:
    log = tmp_path / "hostile.log"
    lines = [
        good_lines(1).rstrip("\n"),
        "x" * (10 << 20),  # a 10 MB line
        '203.0.113.9 - - [10/Oct/2026:13:55:00 +0200] "GET / HTTP/1.1" 2\x0000 5 "-" "ua"',  # NUL in the structure
        '203.0.113.9 - - [99/Foo/2026:13:55:00 +0200] "GET / HTTP/1.1" 200 5 "-" "ua"',  # bad date
        '203.0.113.9 - - [10/Oct/2026:13:55:00 +0200] "GET /caf\xe9 HTTP/1.1" 200 5 "-" "ua"',
    ]
    raw = "\n".join(lines[:4]).encode() + b"\n" + lines[4].encode("latin-1") + b"\n"
    log.write_bytes(raw)
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--format", "combined", "--max-reject-rate", "1", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out)["path"].to_pylist() == ["/p/0", "/caf\ufffd"]
    rejects = pq.read_table(tmp_path / "o.rejects.parquet").to_pandas().set_index("line")
    assert sorted(rejects.index) == [2, 3, 4]
    assert "longer than" in rejects.loc[2, "reason"] and len(rejects.loc[2, "text"]) <= 1024
    assert rejects.loc[4, "reason"] == "bad or missing timestamp"
    assert "1 lines held bytes that are not UTF-8" in res.output


def test_custom_nginx_layout_with_cookie(tmp_path: Path) -> None:
    log = tmp_path / "custom.log"
    log.write_text('198.51.100.7 - alice [01/Mar/2026:10:00:00 +0000] "POST /api/v1/orders?x=1 HTTP/2.0" 201 17 "https://shop.example/cart" "Mozilla/5.0" 0.125 u-42\n')
    out = tmp_path / "o.parquet"
    spec = 'nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $cookie_uid'
    res = run("parse", str(log), "--log-format", spec, "-o", str(out))
    assert res.exit_code == 0, res.output
    row = pq.read_table(out).to_pylist()[0]
    assert row["remote_user"] == "alice" and row["method"] == "POST" and row["status"] == 201
    assert row["request_time_ms"] == 125.0 and row["protocol"] == "HTTP/2.0"
    assert dict(row["fields"]) == {"cookie_uid": "u-42"}


def test_custom_format_from_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "logtrack.yaml"
    cfg.write_text("formats:\n  myapp: 'nginx:$remote_addr [$time_local] $status \"$request\"'\n")
    log = tmp_path / "a.log"
    log.write_text('10.1.2.3 [01/Mar/2026:10:00:00 +0000] 404 "GET /nope HTTP/1.1"\n')
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--config", str(cfg), "--format", "myapp", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).to_pylist()[0]["status"] == 404


def test_unknown_format_and_undetectable_input_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("hello world\n" * 20)
    res = run("parse", str(log), "--format", "nope", "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "unknown format 'nope'" in res.output
    res = run("parse", str(log), "-o", str(tmp_path / "o.parquet"))
    assert res.exit_code == 2 and "cannot tell the log format" in res.output and "combined" in res.output


def test_trusted_proxies_take_client_from_forwarded_for(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('10.0.0.5 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" "198.51.100.1, 203.0.113.50, 10.0.0.9"\n')
    spec = 'nginx:$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--log-format", spec, "--trusted-proxies", "10.0.0.0/8", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pq.read_table(out)["client_ip"].to_pylist() == ["203.0.113.50"]


def test_since_until_and_host_select(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        'a.example 192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
        'b.example:443 192.0.2.1 - - [02/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
        'a.example 192.0.2.1 - - [03/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n'
    )
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--since", "2026-03-02", "-o", str(out))
    assert pq.read_table(out).num_rows == 2, res.output
    res = run("parse", str(log), "--host", "b.example", "-o", str(out))
    assert pq.read_table(out)["host"].to_pylist() == ["b.example"]
    res = run("parse", str(log), "--until", "2026-03-02T00:00:00", "-o", str(out))
    assert pq.read_table(out).num_rows == 1


def test_lone_carriage_return_is_data_not_a_line_end(tmp_path: Path) -> None:
    line = '203.0.113.1 - - [10/Oct/2026:13:55:00 +0200] "GET /a HTTP/1.1" 200 1 "-" "UA\rwith CR"\n'
    log = tmp_path / "cr.log"
    log.write_bytes((good_lines(50) + line + good_lines(50)).encode())
    out = tmp_path / "o.parquet"
    res = run("parse", str(log), "--format", "combined", "-o", str(out))
    assert res.exit_code == 0, res.output
    t = pq.read_table(out)
    assert t.num_rows == 101 and t["line"].to_pylist() == list(range(1, 102))
    assert t["user_agent"].to_pylist()[50] == "UA\rwith CR"


def test_parse_runs_without_importing_pandas_and_pandas_still_works_after(tmp_path: Path) -> None:
    """`parse` skips pyarrow's pandas probe (start-up cost); a later to_pandas still works."""
    import subprocess
    import sys

    out, log = tmp_path / "r.parquet", tmp_path / "access.log"
    log.write_text(good_lines(300))
    script = (
        "import sys\n"
        "from logtrack.cli import main\n"
        f"sys.argv = ['logtrack', 'parse', {str(log)!r}, '-o', {str(out)!r}, '--quiet']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print('pandas' in sys.modules)\n"
        "import pandas as pd, pyarrow as pa, pyarrow.parquet as pq\n"
        "df = pq.read_table(sys.argv[4]).to_pandas()\n"
        "print(len(df), pa.array(pd.Series([1, 2])).type)\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    imported, summary = res.stdout.split("\n")[:2]
    assert imported == "False"
    rows, arrow_type = summary.split()
    assert int(rows) == 300 and arrow_type == "int64"
