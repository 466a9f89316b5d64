"""Split a block of bytes into lines, vectorized (DESIGN §2 "What a line is").

A line ends at `\\n`; a `\\r` right before it is dropped; a lone `\\r` is data. Empty or
whitespace-only lines and `#` lines are skipped and counted (the `#` lines are kept aside for
formats whose headers matter, W3C `#Fields:`). Bytes that are not UTF-8 are decoded with
replacement and counted; they never reject a line by themselves.
"""

from __future__ import annotations

import codecs

import numpy as np
import pyarrow as pa

from .sources import MAX_LINE_BYTES, Block


class Lines:
    """The data lines of one block, plus what was set aside.

    `text` (the lines without their endings, one Arrow string each) is built on first use for a
    clean block: parsers that read the block's bytes whole (the CSV plan) never need it.
    """

    def __init__(self, source: str, text: pa.Array | None, line: pa.Int64Array,
                 comments: list[tuple[int, str]] | None = None, skipped: int = 0, invalid_utf8: int = 0,
                 too_long: list[tuple[int, str]] | None = None, raw: bytes | None = None,
                 raw_starts: np.ndarray | None = None, raw_ends: np.ndarray | None = None) -> None:
        self.source = source
        self._text = text
        self.line = line  # 1-based line numbers of the data lines
        self.comments = comments or []  # `#` lines: (line, text)
        self.skipped = skipped  # empty, whitespace-only and `#` lines
        self.invalid_utf8 = invalid_utf8  # lines that held bytes that are not UTF-8
        self.too_long = too_long or []  # (line, head) over the limit
        # A clean block (every line a data line): its bytes and where each line starts and ends
        # (without its ending), for parsers that read the block whole. None otherwise.
        self.raw, self.raw_starts, self.raw_ends = raw, raw_starts, raw_ends
        self._backslash: np.ndarray | None = None
        self._backslash_at: np.ndarray | None = None  # positions of `\\` in `raw`

    @property
    def text(self) -> pa.Array:
        """The data lines as strings (built from the block's bytes on first use)."""
        if self._text is None:
            assert self.raw is not None and self.raw_starts is not None and self.raw_ends is not None
            self._text = _strings(np.frombuffer(self.raw, dtype=np.uint8), self.raw_starts, self.raw_ends)
        return self._text

    def text_of(self, rows: np.ndarray) -> pa.Array:
        """The strings of some lines, without building the whole block's when they are few."""
        if self._text is None and self.raw is not None and len(rows) * 8 < len(self):
            assert self.raw_starts is not None and self.raw_ends is not None
            raw, starts, ends = self.raw, self.raw_starts, self.raw_ends
            return pa.array([raw[starts[i]:ends[i]].decode("utf-8") for i in rows], pa.string())
        return self.text.take(pa.array(rows))

    def __len__(self) -> int:
        return len(self.line)

    def backslash_mask(self) -> np.ndarray:
        """Which lines hold a backslash (so escape decoding can skip all the others)."""
        if self._backslash is None:
            if self._text is None and self.raw is not None and self.raw_starts is not None:
                buf = np.frombuffer(self.raw, dtype=np.uint8)
                self._backslash_at = np.flatnonzero(buf == 0x5C)
                self._backslash = _lines_of(self._backslash_at, self.raw_starts)
            else:
                self._backslash = lines_with_byte(self.text, 0x5C)
        return self._backslash

    def escaped_quote_mask(self) -> np.ndarray | None:
        """Which lines of a clean block hold a backslash right before a `"` (an escaped quote,
        or an escaped backslash closing a field): the lines whose quotes may not delimit
        fields. None when the block's bytes are not kept."""
        if self.raw is None or self.raw_starts is None:
            return None
        buf = np.frombuffer(self.raw, dtype=np.uint8)
        if self._backslash_at is None:
            self._backslash_at = np.flatnonzero(buf == 0x5C)
        at = self._backslash_at[self._backslash_at + 1 < len(buf)]
        return _lines_of(at[buf[at + 1] == 0x22], self.raw_starts)

    def take(self, indices: pa.Array | np.ndarray) -> Lines:
        """The subset of data lines at `indices` (comments and counts are not carried)."""
        rows = np.asarray(indices)
        return Lines(self.source, self.text_of(rows), self.line.take(pa.array(rows)))


def _strings(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """One contiguous string array of buf[starts[i]:ends[i]] (line endings left out)."""
    lengths = ends - starts
    # Mark each line's bytes: +1 at its start, -1 at its end; a running sum > 0 is inside a line.
    # (Distinct positions: a line's end is its newline or CR, never another line's start.)
    delta = np.zeros(len(buf) + 1, dtype=np.int8)
    delta[starts[lengths > 0]] = 1
    delta[ends[lengths > 0]] = -1
    joined = buf[np.cumsum(delta[:-1], dtype=np.int8) > 0]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(joined)]
    ).cast(pa.string())


def _lines_of(hits: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Which lines (given by their starts) contain one of the positions `hits`."""
    mask = np.zeros(len(starts), dtype=bool)
    if len(hits):
        mask[np.searchsorted(starts, hits, side="right") - 1] = True
    return mask


_SPACE_BYTES = np.array([0x20, 0x09, 0x0D, 0x0B, 0x0C], dtype=np.uint8)


def split_lines(block: Block, max_line_bytes: int = MAX_LINE_BYTES) -> Lines:
    """Split `block` into data lines with their numbers; pure and vectorized."""
    data = block.data
    invalid = 0
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if not data.isascii():  # (ASCII is valid UTF-8, and isascii is a fraction of a decode)
        data, invalid, nl = _repair_utf8(data, nl)
        buf = np.frombuffer(data, dtype=np.uint8)
    if len(buf) and (not len(nl) or nl[-1] != len(buf) - 1):
        nl = np.append(nl, len(buf))  # last line without a newline
    starts = np.concatenate(([0], nl[:-1] + 1)) if len(nl) else np.zeros(0, dtype=np.int64)
    ends = nl.copy()
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else ends > starts
    ends = ends - has_cr
    lengths = ends - starts
    numbers = np.arange(block.first_line, block.first_line + len(lengths), dtype=np.int64)
    too_long = [(int(n), h) for n, h in ((n, h.decode("utf-8", "replace")) for n, h in block.oversized)]
    long_mask = lengths > max_line_bytes
    # Skipped lines, from the bytes: empty, `#` first, or only whitespace (checked one by one
    # for the few lines that start with whitespace).
    nonempty = lengths > 0
    first = buf[np.minimum(starts, max(len(buf) - 1, 0))] if len(buf) else np.zeros(0, dtype=np.uint8)
    comment = nonempty & (first == 0x23)
    blank = ~nonempty
    for i in np.flatnonzero(nonempty & np.isin(first, _SPACE_BYTES)):
        if not data[starts[i]:ends[i]].strip(b" \t\r\x0b\x0c"):
            blank[i] = True
    drop = blank | comment | long_mask
    if not drop.any() and not too_long:
        return Lines(block.source, None, pa.array(numbers, pa.int64()), [], 0, invalid, [],
                     raw=data, raw_starts=starts, raw_ends=ends)
    text = _strings(buf, starts, ends)
    for i in np.flatnonzero(long_mask):
        too_long.append((int(numbers[i]), text[int(i)].as_py()[:1024]))
    comments = [(int(numbers[i]), text[int(i)].as_py()) for i in np.flatnonzero(comment & ~long_mask)]
    keep_rows = ~drop
    return Lines(block.source, text.filter(pa.array(keep_rows)), pa.array(numbers[keep_rows], pa.int64()),
                 comments, int(((blank | comment) & ~long_mask).sum()), invalid, too_long)


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


UTF8_CHUNK = 512  # lines per Arrow validation of a block that holds invalid UTF-8


def _invalid_spans(data: bytes, newlines: np.ndarray) -> list[tuple[int, int]]:
    """Byte ranges of `data` (whole lines, in order) that hold invalid UTF-8; the rest is valid.

    Arrow's validator checks a block several times faster than a decode (it builds no str):
    the whole block as one string first, then chunks of UTF8_CHUNK lines when it failed, so
    only the chunks holding a bad byte are decoded to find it. A chunk of whole lines is valid
    on its own exactly when it is within the block: a newline is never part of a character.
    """
    cuts = np.concatenate(([0], newlines[UTF8_CHUNK - 1::UTF8_CHUNK] + 1, [len(data)])).astype(np.int64)
    buffer = pa.py_buffer(data)

    def valid(first: int, count: int) -> bool:
        try:
            pa.Array.from_buffers(pa.large_string(), count, [None, pa.py_buffer(cuts), buffer],
                                  offset=first).validate(full=True)
        except pa.ArrowInvalid:
            return False
        return True

    whole = np.array([0, len(data)], dtype=np.int64)
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(whole), buffer]).validate(full=True)
        return []
    except pa.ArrowInvalid:
        pass
    spans: list[tuple[int, int]] = []
    for k in range(len(cuts) - 1):
        if valid(k, 1):
            continue
        start, end = int(cuts[k]), int(cuts[k + 1])
        if spans and spans[-1][1] == start:
            start = spans.pop()[0]
        spans.append((start, end))
    return spans


def _repair_utf8(data: bytes, newlines: np.ndarray) -> tuple[bytes, int, np.ndarray]:
    """Replace invalid UTF-8 line by line; return the repaired bytes, how many lines needed it,
    and where the newlines (`newlines` in `data`) are in the repaired bytes.

    Within each span `_invalid_spans` found, the decoder stops at the first bad byte: that line
    is decoded with replacement and the check goes on after it, so each span is read once
    whatever the number of bad lines (a replacement character holds no newline: only the lines
    after a repaired one move).
    """
    view = memoryview(data)
    pieces: list[bytes | memoryview] = []
    moved: list[tuple[int, int]] = []  # (index of the first newline after a repaired line, growth)
    pos = 0
    for checked, stop in _invalid_spans(data, newlines):
        while True:
            try:
                codecs.utf_8_decode(view[checked:stop], "strict", True)
                break
            except UnicodeDecodeError as exc:
                bad = checked + exc.start
            line = int(np.searchsorted(newlines, bad))  # the line holding the bad byte
            start = int(newlines[line - 1]) + 1 if line else 0
            end = int(newlines[line]) if line < len(newlines) else len(data)
            fixed = data[start:end].decode("utf-8", "replace").encode("utf-8")
            pieces += [view[pos:start], fixed]
            moved.append((line, len(fixed) - (end - start)))
            pos = checked = end
    if not moved:
        return data, 0, newlines
    pieces.append(view[pos:])
    shift = np.zeros(len(newlines) + 1, dtype=np.int64)
    for line, growth in moved:
        shift[line] += growth
    return b"".join(pieces), len(moved), newlines + np.cumsum(shift)[:len(newlines)]
