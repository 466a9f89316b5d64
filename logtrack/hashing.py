"""Keyed hashes for identity (DESIGN §4): BLAKE2b with the salt as key, once per distinct value.

`identity` hashes (truncated IP, user agent[, date]) into anonymous ids and email user ids into
`h:…`. A visitor recurs in many batches, so hashes are remembered for the whole run in a
`HashCache` (held by `IdentityConfig`). Looking thousands of strings up in a Python dict every
batch costs more than it seems, so anonymous ids use a `DigestTable`: exact int64 keys (the
truncated IPv4 value or a run-wide number of another truncated IP, packed with a run-wide number
of the user agent) in sorted numpy arrays, one vectorized probe per batch, digests kept as bytes in
numpy and turned into the Arrow column without a Python string per row.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .enrich.encoding import single

CACHE_LIMIT = 500_000
ID_LIMIT = 1 << 30  # run-wide numbers fit 30 bits: anonymous id keys pack two of them
MAX_TABLES = 8


def salt_key(salt: bytes) -> bytes:
    """The BLAKE2b key for a salt (keys are at most 64 bytes; a longer salt is hashed down first)."""
    return salt if 0 < len(salt) <= 64 else hashlib.blake2b(salt).digest()


def digest(text: str, key: bytes, person: bytes) -> str:
    """Keyed BLAKE2b (128-bit) of one string, hex."""
    return hashlib.blake2b(text.encode("utf-8"), key=key, digest_size=16, person=person).hexdigest()


def blake2b_each(messages: Iterable[bytes], digest_size: int, key: bytes = b"", person: bytes = b"") -> bytes:
    """The BLAKE2b digest of each message, concatenated (`digest_size` bytes each). One state is
    set up and copied per message: a keyed BLAKE2b spends a whole compression on the key block,
    and constructing a hash object costs a third more than copying one (same digests)."""
    start = hashlib.blake2b(key=key, digest_size=digest_size, person=person).copy
    out = []
    add = out.append
    for message in messages:
        h = start()
        h.update(message)
        add(h.digest())
    return b"".join(out)


def hex_digests(texts: list[str], key: bytes, person: bytes) -> list[bytes]:
    """`digest` of each text, as ASCII bytes."""
    joined = blake2b_each((t.encode("utf-8") for t in texts), 16, key, person).hex().encode("ascii")
    return [joined[i:i + 32] for i in range(0, len(joined), 32)]


class DigestTable:
    """Digests by int64 key for one salt and purpose (and day), across batches, bounded (cleared
    when full). A key stands for exactly one hashed text (identity builds it from the truncated
    IPv4 value or a run-wide number of the truncated IP text, and a run-wide number of the user
    agent), so a lookup is a vectorized binary search of sorted keys, with nothing to confirm.

    Digests live in one numpy array of 32-byte hex strings, in insertion order; new keys go to a
    small recent index, merged into the main one when it reaches a quarter of it, so re-sorting
    the index costs O(log n) per key on average.
    """

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        """An empty table holding at most `limit` keys."""
        self.limit = limit
        self._clear()
        self._lock = threading.Lock()

    def _clear(self) -> None:
        # Two indexes, main and recent: sorted keys and each key's position in `store`.
        self.main = (np.empty(0, np.int64), np.empty(0, np.int64))
        self.recent = (np.empty(0, np.int64), np.empty(0, np.int64))
        self.store = np.empty(0, "S32")

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self.store)

    def _find(self, keys: np.ndarray) -> np.ndarray:
        # The keys are searched in sorted order: a binary search then starts where the last one
        # ended, and its memory accesses stay close (about 3x faster than unsorted keys).
        order = np.argsort(keys)
        wanted = keys[order]
        found = np.full(len(keys), -1, np.int64)
        for sorted_keys, slots in (self.main, self.recent):
            if len(sorted_keys):
                at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
                found = np.where(sorted_keys[at] == wanted, slots[at], found)
        pos = np.empty(len(keys), np.int64)
        pos[order] = found
        return pos

    @staticmethod
    def _index(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        keys, slots = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        order = np.argsort(keys, kind="stable")
        return keys[order], slots[order]

    def digests(self, keys: np.ndarray, texts: Callable[[np.ndarray], list[str]], key: bytes,
                person: bytes) -> np.ndarray:
        """The digest of each key (`S32`): remembered, else hashing `texts(positions of the keys
        not seen before, one per distinct key)` and remembering those."""
        with self._lock:
            pos = self._find(keys)
            out = self.store[np.maximum(pos, 0)] if len(self.store) else np.zeros(len(keys), "S32")
            missing = np.flatnonzero(pos < 0)
            if len(missing) == 0:
                return out
            new, first, inverse = np.unique(keys[missing], return_index=True, return_inverse=True)
            # Two keys can share a text (IPv4 and mapped IPv6): hashing it twice gives the same.
            fresh = np.array(hex_digests(texts(missing[first]), key, person), "S32")
            out[missing] = fresh[inverse.reshape(-1)]
            if len(self.store) + len(new) > self.limit:
                self._clear()
            self.recent = self._index([self.recent, (new, len(self.store) + np.arange(len(new)))])
            self.store = np.concatenate([self.store, fresh])
            if len(self.recent[0]) > max(4096, len(self.main[0]) // 4):
                self.main = self._index([self.main, self.recent])
                self.recent = (np.empty(0, np.int64), np.empty(0, np.int64))
            return out


def hex_strings(digests: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An Arrow string array of `S32` digests, null where not `valid` (built from the bytes
    directly: no Python string per row)."""
    n = len(digests)
    every = bool(valid.all())
    kept = np.ascontiguousarray(digests if every else digests[valid])
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(valid * 32, out=offsets[1:])
    mask = None if every else pa.py_buffer(np.packbits(valid, bitorder="little"))
    # The digests' own memory is the data buffer (the buffer keeps the array alive): no copy.
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(offsets), pa.py_buffer(kept)],
                                 null_count=n - int(valid.sum()))


class HashCache:
    """What identity hashing remembers across batches: digests per (salt, purpose), and stable
    small numbers for user agents (to make short keys). Bounded; held by IdentityConfig."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        """An empty cache holding at most `limit` entries per table."""
        self.limit = limit
        self._dicts: dict[tuple[bytes, bytes], dict[str, str]] = {}
        self._tables: dict[tuple[bytes, bytes, int | None], DigestTable] = {}
        self._ids: dict[object, int] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def ids(self, values: list) -> np.ndarray:
        """A number below 2**30 for each value (int64), the same for the whole run: numbers are
        never reused, so dropping old values when full never makes two share one; when the
        numbers run out, every number and digest table starts afresh. Call it once per batch
        with all the values the batch needs, so no number of the batch goes stale."""
        with self._lock:
            ids = self._ids
            if self._next_id + len(values) >= ID_LIMIT:
                ids.clear()
                self._tables.clear()
                self._next_id = 0
            elif len(ids) > self.limit:
                for key in list(ids)[: len(ids) // 2]:
                    ids.pop(key, None)
            out = []
            for v in values:  # per distinct user agent and odd IP text of a batch
                found = ids.get(v)
                if found is None:
                    found = ids[v] = self._next_id
                    self._next_id += 1
                out.append(found)
            return np.array(out, np.int64)

    def table(self, salt: bytes, person: bytes) -> dict[str, str]:
        """Value → digest for one salt and purpose, for the few values hashed per batch (emails)."""
        with self._lock:
            found = self._dicts.setdefault((salt, person), {})
            if len(found) > self.limit:
                for key in list(found)[: len(found) // 2]:
                    found.pop(key, None)
            return found

    def digest_table(self, salt: bytes, person: bytes, day: int | None = None) -> DigestTable:
        """The vectorized table for one salt and purpose (anonymous ids), and day when ids
        rotate daily (only the last few days are kept: logs move forward in time)."""
        with self._lock:
            found = self._tables.get((salt, person, day))
            if found is None:
                while len(self._tables) >= MAX_TABLES:
                    self._tables.pop(next(iter(self._tables)))
                found = self._tables[(salt, person, day)] = DigestTable(self.limit)
            return found


def digests(values: list[str | None], salt: bytes, person: bytes, known: dict[str, str]) -> list[str | None]:
    """The digest of each value (None stays None), hashing only the values `known` lacks."""
    out = [known.get(v) for v in values]
    missing = [i for i, d in enumerate(out) if d is None and values[i] is not None]
    key = salt_key(salt) if missing else b""
    for i in missing:
        value = values[i]
        found = known.get(value)  # a duplicate of an earlier value of this list
        out[i] = known[value] = found if found is not None else digest(value, key, person)
    return out


def keyed_hashes(values: pa.Array, salt: bytes, person: bytes, cache: HashCache | None = None) -> pa.Array:
    """Keyed BLAKE2b (128-bit, hex) of each value, computed once per distinct value; null stays null.

    With a `cache`, values hashed in earlier batches are not hashed again.
    """
    encoded = pc.dictionary_encode(single(values))
    known = cache.table(salt, person) if cache is not None else {}
    return pc.take(pa.array(digests(encoded.dictionary.to_pylist(), salt, person, known), pa.string()),
                   encoded.indices)


def hash_email_values(values: pa.Array, salt: bytes, cache: HashCache) -> pa.Array:
    """Each email among `values` becomes `h:<keyed hash>` (callers pass distinct values; a
    repeated one is hashed once all the same). The same array when there is no email."""
    if values.null_count == len(values):
        return values
    email = pc.match_substring_regex(values, r"@|%40", ignore_case=True)
    if not pc.any(email).as_py():
        return values
    hashed = keyed_hashes(pc.filter(values, email), salt, b"logtrack-user", cache)
    return pc.replace_with_mask(values, email, pc.binary_join_element_wise("h:", hashed, ""))


def hash_emails(user: pa.Array, salt: bytes, cache: HashCache) -> pa.Array:
    """An email user id becomes `h:<keyed hash>` (per distinct value)."""
    if user.null_count == len(user):
        return user
    encoded = pc.dictionary_encode(user)
    fixed = hash_email_values(encoded.dictionary, salt, cache)
    return user if fixed is encoded.dictionary else pc.take(fixed, encoded.indices)


def codes(encoded: pa.DictionaryArray) -> tuple[np.ndarray, int]:
    """Row indices into the dictionary as int64, nulls pointing at one extra slot; and the slot count."""
    size = len(encoded.dictionary)
    return pc.fill_null(encoded.indices, size).cast(pa.int64()).to_numpy(), size + 1


def combinations(parts: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct combinations of per-row codes (each `(codes, radix)`): for each row the index
    of its combination, and for each part the code of every combination. Mixed radix, made dense
    again after each part so the int64 keys never overflow."""
    row, radix = parts[0]
    combos = [np.arange(radix)]
    for part, size in parts[1:]:
        encoded = pc.dictionary_encode(pa.array(row * size + part))
        keys = encoded.dictionary.to_numpy()
        combos = [c[keys // size] for c in combos] + [keys % size]
        row = encoded.indices.to_numpy().astype(np.int64)
    return row, combos
