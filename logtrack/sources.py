"""Sources: turn LOGS arguments into named byte streams and blocks of whole lines.

Files, globs, directories (regular non-hidden files, recursively, in name order) and `-` for
stdin; gzip, bzip2 and zstd are recognised by their magic bytes, not by name. Blocks end on a
line boundary so the line splitter never sees half a line; a line longer than `max_line_bytes`
is cut out and reported instead of growing the buffer without bound.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import zstandard

from .errors import UsageError

# DESIGN §8: a few MB (cache effects). 8 MB halves the per-block fixed costs (parse alone of 1 M
# lines −7–9 %) but `report` gained nothing measurable and peaked 55 MB higher (≈700 MB): 4 MB.
BLOCK_SIZE = 4 << 20
MAX_LINE_BYTES = 1 << 20
SAMPLE_BYTES = 256 << 10

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\x28\xb5\x2f\xfd": "zstd"}
_ROTATED = re.compile(r"^(?P<base>.*?)(?:[.-](?P<n>\d{1,3}))?(?:\.(?:gz|bz2|zst|zstd))?$")


@dataclass(frozen=True)
class Input:
    """One input: a file path, or `-` for standard input."""

    path: str

    @property
    def is_stdin(self) -> bool:
        """True for `-`."""
        return self.path == "-"

    @property
    def name(self) -> str:
        """The name rows carry in their `source` column."""
        return "<stdin>" if self.is_stdin else self.path


@dataclass
class Block:
    """Whole lines of one input: `data` ends with `\\n` (except perhaps at end of input)."""

    source: str
    first_line: int  # 1-based number of the first line in `data`
    data: bytes
    oversized: list[tuple[int, bytes]] = field(default_factory=list)  # (line, head of the line)


def expand_inputs(specs: list[str]) -> list[Input]:
    """Resolve LOGS arguments to inputs; a spec that matches nothing is a UsageError."""
    out: list[Input] = []
    for spec in specs:
        if spec == "-":
            out.append(Input("-"))
            continue
        path = Path(spec)
        if path.is_dir():
            files = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and not _hidden(p, path) and not _is_doc(p)]
            out.extend(Input(str(p)) for p in rotation_order(files))
        elif path.is_file():
            out.append(Input(spec))
        else:
            matches = [Path(m) for m in glob.glob(spec) if Path(m).is_file()]
            if not matches:
                raise UsageError(f"no such file or directory: {spec}")
            out.extend(Input(str(p)) for p in rotation_order(sorted(matches)))
    return out


def _is_doc(path: Path) -> bool:
    # A README beside the logs is documentation, not a log; named explicitly it is still read.
    return path.suffix.lower() in (".md", ".rst") or path.name.upper().startswith("README")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def rotation_order(paths: list[Path]) -> list[Path]:
    """Order a rotated set oldest first: access.log.2.gz, access.log.1, access.log."""

    def key(p: Path) -> tuple[str, str, int]:
        m = _ROTATED.match(p.name)
        assert m is not None  # the pattern matches every string
        n = int(m["n"]) if m["n"] else 0
        return (str(p.parent), m["base"], -n)

    return sorted(paths, key=key)


def open_input(inp: Input) -> BinaryIO:
    """Open an input for binary reading, decompressing by content (magic bytes)."""
    raw: BinaryIO = sys.stdin.buffer if inp.is_stdin else open(inp.path, "rb")  # noqa: SIM115
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    head = buffered.peek(4)[:4]
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            if kind == "gzip":
                return gzip.GzipFile(fileobj=buffered)  # type: ignore[return-value]
            if kind == "bzip2":
                return bz2.BZ2File(buffered)  # type: ignore[return-value]
            return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)  # type: ignore[return-value]
    return buffered


def input_size(inp: Input) -> int | None:
    """Size in bytes on disk (None for stdin)."""
    return None if inp.is_stdin else os.path.getsize(inp.path)


class ReadError(Exception):
    """A stream failed part-way (truncated gzip, I/O error); lines before it were delivered."""


def iter_blocks(stream: BinaryIO, source: str, block_size: int = BLOCK_SIZE,
                max_line_bytes: int = MAX_LINE_BYTES, prefix: bytes = b"") -> Iterator[Block]:
    """Yield blocks of whole lines from `stream` (after `prefix`, bytes already read from it).

    Raises ReadError after the last good block when the stream is corrupt or truncated.
    """
    carry = prefix
    line_no = 1
    skipping: tuple[int, bytes] | None = None  # an oversized line being skipped: (line, head)
    error: Exception | None = None
    eof = False
    while not eof:
        pieces, error = _read_pieces(stream, block_size)
        eof = not pieces or error is not None
        parts = [carry, *pieces]
        oversized: list[tuple[int, bytes]] = []
        if skipping is not None:
            data = b"".join(parts)
            nl = data.find(b"\n")
            if nl < 0 and not eof:
                carry = b""
                continue
            oversized.append(skipping)
            skipping = None
            line_no += 1
            parts = [data[nl + 1:] if nl >= 0 else b""]
        body, carry = (b"".join(parts), b"") if eof else _cut(parts)
        if not body and len(carry) > max_line_bytes:
            skipping = (line_no, carry[:1024])
            carry = b""
            if oversized:
                yield Block(source, line_no, b"", oversized)
            continue
        if body or oversized:
            block = Block(source, line_no, body, oversized)
            # (numpy counts a block's newlines several times faster than bytes.count)
            line_no += int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == 10))
            line_no += 1 if eof and body and not body.endswith(b"\n") else 0
            yield block
        if error is not None:
            raise ReadError(f"{source}: {error}") from error


def _cut(parts: list[bytes]) -> tuple[bytes, bytes]:
    """The whole lines of `parts` joined, and the rest (a line still being read): one copy of the
    block instead of joining everything and then slicing it twice."""
    for j in range(len(parts) - 1, -1, -1):
        k = parts[j].rfind(b"\n")
        if k >= 0:
            last = parts[j]
            head = parts[:j] + [last[:k + 1]] if k + 1 < len(last) else parts[:j + 1]
            return b"".join(head), last[k + 1:] + b"".join(parts[j + 1:])
    return b"", b"".join(parts)


READ_PIECE = 256 << 10


def _read_pieces(stream: BinaryIO, size: int) -> tuple[list[bytes], Exception | None]:
    """Read up to `size` bytes in pieces, so a stream that breaks part-way (a truncated gzip)
    still hands over everything it decoded before the break."""
    pieces: list[bytes] = []
    got = 0
    while got < size:
        try:
            piece = stream.read(min(READ_PIECE, size - got))
        except (EOFError, OSError, zstandard.ZstdError) as exc:
            return pieces, exc
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return pieces, None
