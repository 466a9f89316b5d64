"""The usual request line, `METHOD /path?query PROTOCOL`, split from its bytes with numpy.

`convert.split_request` is the reference: split on spaces, shape checks by regex, the target
split at its first `?`. Every kernel of that route builds new strings (a list array of words,
then the words taken out of it, then the halves of the target). Here the offsets of the spaces
and of the first `?` of each line are found once in the request column's own bytes; they cut
the column into consecutive pieces (method, space, path, `?`, query, space, protocol) that share
its data buffer, so each output column costs one take and nothing else is copied. Lines of any
other shape (absolute-form targets, `*`, doubled spaces, `-`, TLS bytes) are left to the
reference, run on those lines only, and their values are taken from its output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

METHOD_RE = r"^[A-Za-z][A-Za-z0-9_-]*$"
PROTOCOL_RE = r"^[A-Za-z]+/[0-9.]+$"
_COLUMNS = ("method", "scheme", "host", "path", "query", "protocol", "request_raw")
_PIECES = 7  # method, space, path, `?`, query, space, protocol
_AT = {"method": 0, "path": 2, "query": 4, "protocol": 6}


def split_origin_form(request: pa.Array, general: Callable[[pa.Array], dict[str, pa.Array]]
                      ) -> dict[str, pa.Array] | None:
    """`general(request)`'s columns, with the origin-form lines split here; None when no line
    has that shape (the caller runs `general` on everything)."""
    n = len(request)
    if n == 0 or request.type != pa.string() or request.buffers()[2] is None:
        return None
    offsets = np.frombuffer(request.buffers()[1], dtype=np.int32)[request.offset:request.offset + n + 1]
    data = np.frombuffer(request.buffers()[2], dtype=np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    region = data[lo:hi]
    spaces = np.flatnonzero(region == 0x20) + lo
    if len(spaces) < 2:
        return None
    first = np.searchsorted(spaces, offsets)
    count = np.diff(first)
    first = first[:-1]
    fast = count == 2
    if request.null_count:
        fast &= request.is_valid().to_numpy(zero_copy_only=False)
    first = np.minimum(first, len(spaces) - 2)
    s1, s2 = spaces[first], spaces[first + 1]
    # An origin-form target: not empty, starts with `/` (anything else is the target regex's).
    fast &= (s2 > s1 + 1) & (data[np.minimum(s1 + 1, len(data) - 1)] == 0x2F)
    if not fast.any():
        return None
    marks = np.flatnonzero(region == 0x3F) + lo
    if len(marks):
        at = np.searchsorted(marks, s1 + 1)
        found = marks[np.minimum(at, len(marks) - 1)]
        has_query = fast & (at < len(marks)) & (found < s2)
        q = np.where(has_query, found, s2)
    else:
        has_query, q = np.zeros(n, dtype=bool), s2
    # Boundaries of the pieces of each line; a line of another shape is one last piece, whole.
    start = offsets[:-1]
    bounds = np.empty((n, _PIECES), dtype=np.int32)
    bounds[:, 0] = start
    for col, value in enumerate((s1, s1 + 1, q, q + has_query, s2, s2 + 1), start=1):
        bounds[:, col] = np.where(fast, value, start)
    flat = np.append(bounds.ravel(), np.int32(hi))
    pieces = pa.Array.from_buffers(pa.string(), n * _PIECES, [None, pa.py_buffer(flat), request.buffers()[2]])
    base = np.arange(n, dtype=np.int64) * _PIECES

    def take(source: pa.Array, index: np.ndarray, valid: np.ndarray) -> pa.Array:
        return source.take(pa.array(index, mask=~valid))

    shaped = _METHODS.fits(data, start, s1, fast, lambda i: pieces.take(pa.array(base[i])))
    shaped &= _PROTOCOLS.fits(data, s2 + 1, offsets[1:], fast, lambda i: pieces.take(pa.array(base[i] + 6)))
    if not shaped[fast].all():  # (rare: `get /x HTTP/1.1` is fine, `G3T!` or `HTTP/x` are not)
        fast &= shaped
        has_query &= fast
    method, protocol = take(pieces, base, fast), take(pieces, base + 6, fast)
    out = {"method": method, "protocol": protocol, "scheme": pa.nulls(n, pa.string()),
           "host": pa.nulls(n, pa.string())}
    # A line without a space (`-`, `""`, TLS bytes) is no request: nulls and its raw text.
    # Only the lines left (`GET /`, `OPTIONS *`, absolute-form) take the reference.
    raw_rows = count == 0
    rest = ~fast & ~raw_rows
    slow: dict[str, pa.Array] = {}
    where = np.zeros(n, dtype=np.int64)
    if rest.any():
        slow = _general_memo(request.filter(pa.array(rest)), general)
        where[rest] = np.arange(len(slow["method"]))
        for name in ("scheme", "host"):
            if slow[name].null_count < len(slow[name]):
                out[name] = take(slow[name], where, rest)
        raw_rows[rest] = slow["method"].is_null().to_numpy(zero_copy_only=False)
    out["request_raw"] = _only(request, raw_rows)
    # Each column is one take from the pieces followed by the reference's values (patching the
    # fast columns would copy each of them again).
    taken = [name for name in _AT if name in slow and slow[name].null_count < len(slow[name])]
    source = pa.concat_arrays([pieces, *(slow[name] for name in taken)]) if taken else pieces
    at = n * _PIECES
    for name in _AT:
        fits = has_query if name == "query" else fast
        if name in taken:
            values = slow[name]
            valid = fits | (rest & values.is_valid().to_numpy(zero_copy_only=False)[where])
            out[name] = take(source, np.where(fast, base + _AT[name], at + where), valid)
            at += len(values)
        elif name in ("path", "query"):
            out[name] = take(pieces, base + _AT[name], fits)
    return out


MEMO_ROWS = 64  # a block with at most this many other-shape lines looks them up one by one
MEMO_SIZE = 4096  # distinct lines remembered (then forgotten all at once)
_MEMO: dict[Callable, dict[str | None, tuple]] = {}


def _general_memo(rows: pa.Array, general: Callable[[pa.Array], dict[str, pa.Array]]) -> dict[str, pa.Array]:
    """`general(rows)`'s columns (as strings), remembered per distinct line across blocks.

    The other shapes are a handful of lines per block that repeat (`OPTIONS *`, `CONNECT
    host:443`, a proxy's absolute-form URL), and `general` costs tens of kernel calls whatever
    the number of lines. Its columns are per line (no line's values depend on another's), so
    a line's values can be computed once and reused.
    """
    if len(rows) > MEMO_ROWS:
        return {k: v.cast(pa.string()) for k, v in general(rows).items()}
    memo = _MEMO.setdefault(general, {})
    texts = rows.to_pylist()
    distinct = list(dict.fromkeys(texts))
    missing = [t for t in distinct if t not in memo]
    if missing:
        if len(memo) + len(missing) > MEMO_SIZE:
            memo.clear()
            missing = distinct
        found = general(pa.array(missing, pa.string()))
        columns = [found[name].cast(pa.string()).to_pylist() for name in _COLUMNS]
        for i, text in enumerate(missing):
            memo[text] = tuple(col[i] for col in columns)
    values = [memo[t] for t in texts]
    return {name: pa.array([v[j] for v in values], pa.string()) for j, name in enumerate(_COLUMNS)}


def _only(arr: pa.StringArray, rows: np.ndarray) -> pa.Array:
    """`arr` with nulls outside `rows`, sharing its offsets and bytes (no copy of strings)."""
    valid = rows & arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else rows
    if not valid.any():
        return pa.nulls(len(arr), pa.string())
    bitmap = pa.array(np.concatenate([np.zeros(arr.offset, dtype=bool), valid])).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(arr), [bitmap, *arr.buffers()[1:]], offset=arr.offset)


class _Shapes:
    """Which short values fit `pattern`, remembered by their bytes across blocks.

    A value of at most 8 bytes is keyed by those bytes as one 64-bit word, padded with 0xFF (a
    byte UTF-8 never holds, so distinct values have distinct keys). Methods and protocols are a
    handful of values: each block compares its keys with the few known ones, and only values
    never seen before (and longer ones) take the regex.
    """

    LIMIT = 4096  # keys remembered (then forgotten all at once)

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.good = np.zeros(0, dtype=np.uint64)
        self.bad = np.zeros(0, dtype=np.uint64)

    def fits(self, data: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray,
             values: Callable[[np.ndarray], pa.Array]) -> np.ndarray:
        """Rows (of `rows`) whose value data[lo:hi] fits; `values(indices)` gives their strings."""
        keys, short = _keys(data, lo, hi - lo)
        ok = np.isin(keys, self.good) & short & rows
        unknown = np.flatnonzero(rows & ~ok & ~(np.isin(keys, self.bad) & short))
        if len(unknown):
            fit = _fits(values(unknown), self.pattern)
            ok[unknown] = fit
            learn = short[unknown]
            if learn.any():
                if len(self.good) + len(self.bad) + int(learn.sum()) > self.LIMIT:
                    self.good, self.bad = self.good[:0], self.bad[:0]
                self.good = np.union1d(self.good, keys[unknown][learn & fit])
                self.bad = np.union1d(self.bad, keys[unknown][learn & ~fit])
        return ok


def _keys(data: np.ndarray, lo: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's bytes data[lo:lo+length] as a little-endian word padded with 0xFF, and which
    values are short enough (1 to 8 bytes) to be keyed."""
    short = (length >= 1) & (length <= 8)
    words = np.full(len(lo), np.uint64(0xFFFFFFFFFFFFFFFF))
    size = len(data)
    whole = short & (lo + 8 <= size)  # an unaligned 8-byte read at each start (bytes past the end: below)
    if size >= 8 and whole.any():
        at = np.ndarray((size - 7,), dtype="<u8", buffer=data, strides=(1,))
        words[whole] = at[lo[whole]]
    for i in np.flatnonzero(short & ~whole):  # (the last few values of the column)
        tail = bytes(data[lo[i]:lo[i] + length[i]]).ljust(8, b"\xff")
        words[i] = np.frombuffer(tail, dtype="<u8")[0]
    bits = np.minimum(length, 8).astype(np.uint64) * np.uint64(8)
    keep = np.where(bits >= 64, np.uint64(0xFFFFFFFFFFFFFFFF), (np.uint64(1) << np.minimum(bits, np.uint64(63))) - np.uint64(1))
    return words | ~keep, short


_METHODS, _PROTOCOLS = _Shapes(METHOD_RE), _Shapes(PROTOCOL_RE)


def _fits(values: pa.Array, pattern: str) -> np.ndarray:
    """Rows whose value matches `pattern`, checked once per distinct value (methods and
    protocols are a handful); nulls do not fit."""
    enc = pc.dictionary_encode(values)
    fits = pc.fill_null(pc.match_substring_regex(enc.dictionary, pattern), False)
    return pc.fill_null(fits.take(enc.indices), False).to_numpy(zero_copy_only=False)
