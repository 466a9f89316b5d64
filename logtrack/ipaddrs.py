"""IP address truncation (DESIGN §4): each distinct address of a column truncated once, shared by
`identity` (the anonymous hash is over truncated addresses) and `privacy.apply` (what is written).

Canonical dotted quads are parsed with numpy over the column's bytes; anything else (IPv6,
leading zeros, junk) with `ipaddress`, cached across batches. Values that are not addresses
become null.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .enrich import encoding


class Truncated(NamedTuple):
    """Truncated addresses of a column, per distinct value (shared by identity and privacy)."""

    encoded: pa.DictionaryArray  # the column dictionary-encoded: distinct values and row indices
    truncated: pa.Array  # string, aligned with encoded.dictionary; null where not an address
    v4: np.ndarray  # int64, aligned too: the truncated IPv4 value of canonical dotted quads, else -1


def truncation(arr: pa.Array | pa.ChunkedArray, ipv4_prefix: int = 24, ipv6_prefix: int = 48,
               cache: AddressCache | None = None) -> Truncated:
    """Truncate each distinct address of a column once; remembered for that very array, so
    `identify` and `apply` over the same batch share the work (see enrich/encoding.py). With a
    `cache` (held by the stage's config), addresses of earlier batches are not parsed again."""
    return encoding.memo(("truncate", ipv4_prefix, ipv6_prefix), encoding.single(arr),
                         lambda a: _truncation(a, ipv4_prefix, ipv6_prefix, cache))


def _truncation(arr: pa.Array, ipv4_prefix: int, ipv6_prefix: int, cache: AddressCache | None) -> Truncated:
    encoded = encoding.encode(arr)
    if cache is None:
        return Truncated(encoded, *_truncate_distinct(encoded.dictionary, ipv4_prefix, ipv6_prefix))
    return Truncated(encoded, *cache.truncate(encoded.dictionary, ipv4_prefix, ipv6_prefix))


def truncate_ips(arr: pa.Array | pa.ChunkedArray, ipv4_prefix: int = 24, ipv6_prefix: int = 48,
                 cache: AddressCache | None = None) -> pa.Array:
    """Zero the host bits of each address (`203.0.113.77` → `203.0.113.0`, IPv6 to /48 `2001:db8:1::`).

    Each distinct value is handled once: dotted IPv4 with numpy, anything else with `ipaddress`
    (IPv4-mapped IPv6 is truncated as IPv4). Values that are not addresses become null.
    """
    t = truncation(arr, ipv4_prefix, ipv6_prefix, cache)
    return pc.take(t.truncated, t.encoded.indices)


class AddressCache:
    """Truncated addresses of earlier batches (held by a stage's config), bounded.

    Visitors come back batch after batch: a 1 M-line log has 25 k distinct addresses but 200 k
    distinct per batch summed. A batch's distinct addresses are looked up with one hash probe
    (`index_in` against the known ones) and only the new ones are parsed. When full, or when most
    of a batch is new (the probe would not pay), it starts again from the batch's addresses.
    """

    def __init__(self, limit: int = 65_536) -> None:
        """An empty cache of at most `limit` addresses (the probe hashes all of them per batch)."""
        self.limit = limit
        self._tables: dict[tuple[int, int], tuple[pa.Array, pa.Array, np.ndarray]] = {}
        self._lock = threading.Lock()

    def truncate(self, distinct: pa.Array, ipv4_prefix: int, ipv6_prefix: int) -> tuple[pa.Array, np.ndarray]:
        """`_truncate_distinct(distinct, …)`, parsing only the addresses not seen before."""
        with self._lock:
            known = self._tables.get((ipv4_prefix, ipv6_prefix))
            if known is None or len(distinct) == 0:
                at = np.full(len(distinct), -1, np.int64)
            else:
                at = pc.index_in(distinct, value_set=known[0]).fill_null(-1).to_numpy().astype(np.int64)
            new = np.flatnonzero(at < 0)
            if known is None or 2 * len(new) > len(distinct) or len(known[0]) + len(new) > self.limit:
                texts, v4 = _truncate_distinct(distinct, ipv4_prefix, ipv6_prefix)
                if len(distinct) <= self.limit:
                    self._tables[(ipv4_prefix, ipv6_prefix)] = (distinct, texts, v4)
                return texts, v4
            addresses, texts, v4 = known
            if len(new):
                where = pa.array(new)
                new_texts, new_v4 = _truncate_distinct(distinct.take(where), ipv4_prefix, ipv6_prefix)
                at[new] = len(addresses) + np.arange(len(new))
                addresses = pa.concat_arrays([addresses, distinct.take(where)])
                texts = pa.concat_arrays([texts, new_texts])
                v4 = np.concatenate([v4, new_v4])
                self._tables[(ipv4_prefix, ipv6_prefix)] = (addresses, texts, v4)
            return texts.take(pa.array(at)), v4[at]


_OCTET_TEXT = pa.array([str(i) for i in range(256)], pa.string())


def dotted_quads(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_dotted_quads`, once per array (rules' `client_ip` networks and IP truncation read the
    same distinct addresses of a batch)."""
    return encoding.memo("quads", encoding.single(arr), _dotted_quads)


def _dotted_quads(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each string read as a canonical dotted quad (`1.2.3.4`: digits, no leading zeros, octets
    at most 255) with numpy over the array's bytes: (value as int64, 0 where not one; whether it
    is one; the byte offset of each of its three dots, shape (3, n), meaningful where it is one)."""
    n = len(arr)
    dots = np.zeros((3, n), np.int64)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool), dots
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    begin, end = offsets[:-1], offsets[1:]
    ok = (end - begin >= 7) & (end - begin <= 15)
    if arr.null_count:
        ok &= arr.is_valid().to_numpy(zero_copy_only=False)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if not ok.any() or arr.buffers()[2] is None:
        return np.zeros(n, np.int64), np.zeros(n, bool), dots
    data = np.frombuffer(arr.buffers()[2], np.uint8, hi)
    seg = data[lo:]
    # The value each byte belongs to; values with a byte that is neither a digit nor a dot, or
    # without exactly three dots, are not quads (non-ASCII bytes are neither).
    owner = np.repeat(np.arange(n), end - begin)
    ok[owner[(seg - 48 > 9) & (seg != 46)]] = False
    dot_at = np.flatnonzero(seg == 46)
    count = np.bincount(owner[dot_at], minlength=n)
    ok &= count == 3
    quads = np.flatnonzero(ok)
    first = (np.cumsum(count) - count)[quads]
    d1, d2, d3 = (dot_at[first + k] + lo for k in range(3))
    # The four octets as rows of (4, quads) arrays: their first byte, width and digits.
    start = np.stack([begin[quads], d1 + 1, d2 + 1, d3 + 1])
    width = (np.stack([d1, d2, d3, end[quads]]) - start).astype(np.int16)  # small types: less to move
    c0, c1, c2 = (data[np.minimum(start + k, hi - 1)].astype(np.int16) - 48 for k in range(3))
    octet = np.where(width == 1, c0, np.where(width == 2, c0 * 10 + c1, c0 * 100 + c1 * 10 + c2))
    good = ((width >= 1) & (width <= 3) & ((width == 1) | (c0 != 0)) & (octet <= 255)).all(axis=0)
    octet = octet.astype(np.int64)
    value = (octet[0] << 24) | (octet[1] << 16) | (octet[2] << 8) | octet[3]
    ok[quads] = good
    out = np.zeros(n, np.int64)
    out[quads] = np.where(good, value, 0)
    dots[:, quads] = np.stack([d1, d2, d3])
    return out, ok, dots


def _quad_prefixes(arr: pa.Array, canonical: np.ndarray, dots: np.ndarray, keep: int) -> pa.Array:
    """The truncated text of canonical quads whose prefix is a whole number of octets: the first
    `keep` octets as written (a canonical octet's text is its number's) and `0` for the others,
    built by copying bytes (null where not canonical)."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    begin = offsets[:-1]
    cut = offsets[1:] if keep == 4 else (begin if keep == 0 else dots[keep - 1] + 1)
    kept = np.where(canonical, cut - begin, 0)
    suffix = b"" if keep == 4 else b".".join([b"0"] * (4 - keep))
    length = kept + np.where(canonical, len(suffix), 0)
    out_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(length, out=out_offsets[1:])
    total = int(out_offsets[-1])
    hi = int(offsets[-1])
    source = np.concatenate([np.frombuffer(arr.buffers()[2], np.uint8, hi) if hi else np.zeros(0, np.uint8),
                             np.frombuffer(suffix, np.uint8)])
    at = np.arange(total) - np.repeat(out_offsets[:-1], length)  # byte position within its text
    row_kept = np.repeat(kept, length)
    src = np.where(at < row_kept, np.repeat(begin, length) + at, hi + at - row_kept)
    mask = pa.py_buffer(np.packbits(canonical, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(out_offsets.astype(np.int32)),
                                                  pa.py_buffer(source[src].tobytes())],
                                 null_count=int(n - canonical.sum()))


def _truncate_distinct(distinct: pa.Array, ipv4_prefix: int, ipv6_prefix: int) -> tuple[pa.Array, np.ndarray]:
    """(truncated texts, truncated IPv4 values or -1) of distinct addresses: canonical dotted
    quads with numpy, the others (IPv6, leading zeros, junk) in Python, cached across batches."""
    if len(distinct) == 0:
        return pa.array([], pa.string()), np.empty(0, np.int64)
    if distinct.type != pa.string():
        distinct = distinct.cast(pa.string())
    value, canonical, dots = dotted_quads(distinct)
    value = value & (((1 << 32) - 1) ^ ((1 << (32 - ipv4_prefix)) - 1))  # a copy: the parse is shared
    if ipv4_prefix % 8 == 0:
        texts = _quad_prefixes(distinct, canonical, dots, ipv4_prefix // 8)
    else:
        octets = [pa.array((value >> s) & 255) for s in (24, 16, 8, 0)]
        texts = pc.binary_join_element_wise(*[pc.take(_OCTET_TEXT, o) for o in octets], ".")
    v4 = np.where(canonical, value, -1)
    if canonical.all():
        return texts, v4
    other = np.flatnonzero(~canonical)
    fixed = [None if v is None else _truncate_text(v, ipv4_prefix, ipv6_prefix)
             for v in distinct.take(pa.array(other)).to_pylist()]
    return pc.replace_with_mask(texts, pa.array(~canonical), pa.array(fixed, pa.string())), v4


_V4_TEXT = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")


@lru_cache(maxsize=65536)
def _truncate_text(text: str, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    """One value that is not a canonical dotted quad: dotted IPv4 (leading zeros allowed) numerically,
    anything else with `ipaddress`."""
    found = _V4_TEXT.fullmatch(text)
    if found is None:
        return truncate_address(text, ipv4_prefix, ipv6_prefix)
    octets = [int(g) for g in found.groups()]
    if max(octets) > 255:
        return truncate_address(text, ipv4_prefix, ipv6_prefix)
    value = int.from_bytes(bytes(octets), "big") & (((1 << 32) - 1) ^ ((1 << (32 - ipv4_prefix)) - 1))
    return ".".join(str(b) for b in value.to_bytes(4, "big"))


@lru_cache(maxsize=65536)
def truncate_address(text: str | None, ipv4_prefix: int, ipv6_prefix: int) -> str | None:
    """One address (IPv4-mapped IPv6 as IPv4, brackets and a zone id allowed) truncated to its
    network address; None when it is not an address."""
    if text is None:
        return None
    candidate = text.strip().strip("[]").split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits, prefix = (32, ipv4_prefix) if addr.version == 4 else (128, ipv6_prefix)
    # The network address, as `ip_network(f"{addr}/{prefix}", strict=False)` gives it, without
    # its string round trip (several times slower; new IPv6 addresses come every batch).
    return str(type(addr)(int(addr) & (((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1))))
