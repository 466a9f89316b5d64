"""Sources: inputs, rotation order, compression by content, blocks of whole lines."""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import pytest
import zstandard

from logtrack.errors import UsageError
from logtrack.sources import Input, ReadError, expand_inputs, iter_blocks, open_input, rotation_order

LINES = b"".join(b"line %d\n" % i for i in range(1000))


def _read_all(inp: Input, block_size: int = 1 << 20) -> bytes:
    return b"".join(b.data for b in iter_blocks(open_input(inp), inp.name, block_size))


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lambda d: zstandard.ZstdCompressor().compress(d)])
def test_compression_is_recognised_by_content_not_name(tmp_path: Path, compress) -> None:
    path = tmp_path / "access.log"  # no telling suffix
    path.write_bytes(compress(LINES))
    assert _read_all(Input(str(path))) == LINES


def test_blocks_end_on_line_boundaries_and_number_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(LINES)
    blocks = list(iter_blocks(open_input(Input(str(path))), "a", block_size=100))
    assert all(b.data.endswith(b"\n") for b in blocks)
    assert b"".join(b.data for b in blocks) == LINES
    firsts = [b.first_line for b in blocks]
    assert firsts[0] == 1
    for prev, cur in zip(blocks, blocks[1:], strict=False):
        assert cur.first_line == prev.first_line + prev.data.count(b"\n")


def test_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\ntwo")
    assert _read_all(Input(str(path))) == b"one\ntwo"


def test_oversized_line_is_cut_out_not_buffered(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"before\n" + b"x" * (3 << 20) + b"\nafter\n")
    blocks = list(iter_blocks(open_input(Input(str(path))), "big", block_size=1 << 16, max_line_bytes=1 << 20))
    oversized = [o for b in blocks for o in b.oversized]
    assert [n for n, _ in oversized] == [2]
    data = b"".join(b.data for b in blocks)
    assert b"before\n" in data and b"after\n" in data and b"xxxx" * 1000 not in data
    after = next(b for b in blocks if b"after" in b.data)
    assert after.first_line + after.data[: after.data.index(b"after")].count(b"\n") == 3


def test_truncated_gzip_delivers_readable_part_then_fails(tmp_path: Path) -> None:
    data = b"".join(b"192.0.2.%d - - line\n" % (i % 250) for i in range(200_000))
    packed = gzip.compress(data)
    path = tmp_path / "cut.log.gz"
    path.write_bytes(packed[: len(packed) // 2])
    got = b""
    with pytest.raises(ReadError):
        for block in iter_blocks(open_input(Input(str(path))), "cut", block_size=1 << 16):
            got += block.data
    assert len(got) > 0 and data.startswith(got)


def test_rotation_order_oldest_first() -> None:
    names = ["access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz", "error.log"]
    ordered = [p.name for p in rotation_order([Path("/x") / n for n in names])]
    assert ordered == ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log", "error.log"]


def test_directories_globs_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ["b.log", "a.log", ".hidden.log", "sub/c.log", "README.md", "sub/README"]:
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.log").write_text("x\n")
    names = [Path(i.path).name for i in expand_inputs([str(tmp_path)])]
    assert names == ["a.log", "b.log", "c.log"]
    assert [Path(i.path).name for i in expand_inputs([str(tmp_path / "*.log")])] == ["a.log", "b.log"]
    with pytest.raises(UsageError):
        expand_inputs([str(tmp_path / "nothing*.log")])


def test_stdin_is_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeStdin:
        buffer = io.BufferedReader(io.BytesIO(gzip.compress(b"a\nb\n")))  # type: ignore[arg-type]

    monkeypatch.setattr("sys.stdin", FakeStdin())
    (inp,) = expand_inputs(["-"])
    assert inp.is_stdin and inp.name == "<stdin>"
    assert _read_all(inp) == b"a\nb\n"


def test_blocks_cut_on_lines_across_read_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks are read in pieces and joined once: the cut at the last newline may fall in any
    # piece, or in none (a line longer than the block).
    import logtrack.sources as sources

    monkeypatch.setattr(sources, "READ_PIECE", 7)
    lines = [b"x" * n for n in (0, 3, 12, 40, 1, 6, 7, 8, 0, 25)]
    data = b"\n".join(lines) + b"\nlast"
    path = tmp_path / "p.log"
    path.write_bytes(data)
    for size in (5, 16, 30, 64):
        blocks = list(iter_blocks(open_input(Input(str(path))), "p", block_size=size))
        assert b"".join(b.data for b in blocks) == data
        pos = 0
        for b in blocks:
            assert b.data.endswith(b"\n") or b is blocks[-1]
            assert data.count(b"\n", 0, pos) + 1 == b.first_line
            pos += len(b.data)
