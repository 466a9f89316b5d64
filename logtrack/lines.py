"""Split a block of bytes into lines, vectorized (DESIGN §2 "What a line is").

A line ends at `\\n`; a `\\r` right before it is dropped; a lone `\\r` is data. Empty or
whitespace-only lines and `#` lines are skipped and counted (the `#` lines are kept aside for
formats whose headers matter, W3C `#Fields:`). Bytes that are not UTF-8 are decoded with
replacement and counted; they never reject a line by themselves.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .sources import MAX_LINE_BYTES, Block


@dataclass
class Lines:
    """The data lines of one block, plus what was set aside."""

    source: str
    text: pa.StringArray  # data lines only, without their line ending
    line: pa.Int64Array  # 1-based line numbers of `text`
    comments: list[tuple[int, str]] = field(default_factory=list)  # `#` lines: (line, text)
    skipped: int = 0  # empty, whitespace-only and `#` lines
    invalid_utf8: int = 0  # lines that held bytes that are not UTF-8
    too_long: list[tuple[int, str]] = field(default_factory=list)  # (line, head) over the limit
    _backslash: np.ndarray | None = field(default=None, repr=False)
    # A clean block (every line a data line): its bytes and each line's start, for parsers that
    # read the block whole (the CSV plan). None otherwise.
    raw: bytes | None = field(default=None, repr=False)
    raw_starts: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.text)

    def backslash_mask(self) -> np.ndarray:
        """Which lines hold a backslash (so escape decoding can skip all the others)."""
        if self._backslash is None:
            self._backslash = lines_with_byte(self.text, 0x5C)
        return self._backslash

    def take(self, indices: pa.Array | np.ndarray) -> Lines:
        """The subset of data lines at `indices` (comments and counts are not carried)."""
        return Lines(self.source, self.text.take(indices), self.line.take(indices))


def split_lines(block: Block, max_line_bytes: int = MAX_LINE_BYTES) -> Lines:
    """Split `block` into data lines with their numbers; pure and vectorized."""
    data = block.data
    invalid = 0
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data, invalid = _repair_utf8(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(buf) and (not len(nl) or nl[-1] != len(buf) - 1):
        nl = np.append(nl, len(buf))  # last line without a newline
    starts = np.concatenate(([0], nl[:-1] + 1)) if len(nl) else np.zeros(0, dtype=np.int64)
    ends = nl.copy()
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else ends > starts
    ends = ends - has_cr
    # Build one contiguous buffer without line endings so the Arrow array is zero-copy friendly.
    keep = np.ones(len(buf), dtype=bool)
    keep[nl[nl < len(buf)]] = False
    keep[(ends[has_cr])] = False
    joined = buf[keep]
    lengths = ends - starts
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = pa.Array.from_buffers(
        pa.large_string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(joined)]
    ).cast(pa.string())
    numbers = np.arange(block.first_line, block.first_line + len(lengths), dtype=np.int64)

    too_long = [(int(n), h) for n, h in ((n, h.decode("utf-8", "replace")) for n, h in block.oversized)]
    long_mask = lengths > max_line_bytes
    blank = pc.or_(pc.equal(pa.array(lengths), 0), pc.ascii_is_space(text))
    comment = pc.starts_with(text, "#")
    drop = pc.or_(blank, comment)
    if long_mask.any():
        for i in np.flatnonzero(long_mask):
            too_long.append((int(numbers[i]), text[int(i)].as_py()[:1024]))
        drop = pc.or_(drop, pa.array(long_mask))
    comments: list[tuple[int, str]] = []
    if pc.any(comment).as_py():
        idx = np.flatnonzero(comment.to_numpy(zero_copy_only=False))
        comments = [(int(numbers[i]), text[int(i)].as_py()) for i in idx]
    n_drop = pc.sum(drop).as_py() or 0
    if n_drop:
        keep_rows = pc.invert(drop)
        text = text.filter(keep_rows)
        numbers = numbers[keep_rows.to_numpy(zero_copy_only=False)]
    skipped = n_drop - int(long_mask.sum())
    # (A lone CR would split a line in a whole-block reader; the CSV plan checks that its rows
    # and these lines line up one to one and steps aside when they do not.)
    clean = not n_drop and not too_long
    return Lines(block.source, text, pa.array(numbers, pa.int64()), comments, skipped, invalid, too_long,
                 raw=data if clean else None, raw_starts=starts if clean else None)


def lines_with_byte(text: pa.Array, byte: int) -> np.ndarray:
    """A mask of the strings in `text` that contain `byte`, from one scan of the data buffer."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    hits = np.flatnonzero(data == byte) + offsets[0]
    mask = np.zeros(n, dtype=bool)
    if len(hits):
        mask[np.searchsorted(offsets, hits, side="right") - 1] = True
    return mask


def _repair_utf8(data: bytes) -> tuple[bytes, int]:
    """Replace invalid UTF-8 line by line; return the repaired bytes and how many lines needed it.

    Only lines holding a byte ≥ 0x80 can be invalid (found with numpy); each of those is checked
    on its own and, when invalid, decoded with replacement. ASCII lines are copied as they are.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    high = np.flatnonzero(buf >= 0x80)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    pos, bad = 0, 0
    for line in np.unique(np.searchsorted(newlines, high)):
        start = int(starts[line])
        end = int(newlines[line]) if line < len(newlines) else len(data)
        try:
            codecs.utf_8_decode(view[start:end], "strict", True)
        except UnicodeDecodeError:
            pieces.append(view[pos:start])
            pieces.append(data[start:end].decode("utf-8", "replace").encode("utf-8"))
            pos, bad = end, bad + 1
    pieces.append(view[pos:])
    return b"".join(pieces), bad
