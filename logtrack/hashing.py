"""Keyed hashes for identity (DESIGN §4): BLAKE2b with the salt as key, once per distinct value.

`identity` hashes (truncated IP, user agent[, date]) into anonymous ids and email user ids into
`h:…`. A visitor recurs in many batches, so hashes are remembered for the whole run in a
`HashCache` (held by `IdentityConfig`). Looking thousands of strings up in a Python dict every
batch costs more than it seems (each lookup misses the CPU cache once the batch's Arrow work has
run), so anonymous ids use a `DigestTable`: short text keys, their Python hashes in a pandas
index (one vectorized probe per batch), each hit confirmed by comparing the stored key with
Arrow — a hash collision is only a miss, never a wrong id.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .enrich.encoding import single

CACHE_LIMIT = 500_000


def salt_key(salt: bytes) -> bytes:
    """The BLAKE2b key for a salt (keys are at most 64 bytes; a longer salt is hashed down first)."""
    return salt if 0 < len(salt) <= 64 else hashlib.blake2b(salt).digest()


def digest(text: str, key: bytes, person: bytes) -> str:
    """Keyed BLAKE2b (128-bit) of one string, hex."""
    return hashlib.blake2b(text.encode("utf-8"), key=key, digest_size=16, person=person).hexdigest()


class _Part:
    """Keys, their digests and an index of the keys' Python hashes (unique)."""

    def __init__(self, hashes: np.ndarray, keys: pa.Array, digests: pa.Array) -> None:
        self.index = pd.Index(hashes)
        self.keys = keys
        self.digests = digests

    @classmethod
    def empty(cls) -> _Part:
        return cls(np.empty(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string()))

    def find(self, hashes: np.ndarray, keys: pa.Array) -> pa.Array | None:
        if len(self.keys) == 0:
            return None
        pos = self.index.get_indexer(hashes)
        hit = pos >= 0
        if not hit.any():
            return None
        where = pa.array(pos, mask=~hit)
        same = pc.fill_null(pc.equal(pc.take(self.keys, where), keys), False)
        return pc.if_else(same, pc.take(self.digests, where), pa.scalar(None, pa.string()))


class DigestTable:
    """Digests by text key for one salt and purpose, across batches, bounded (cleared when full).

    New keys go to a small recent part, merged into the main part when it reaches a quarter of
    it, so rebuilding the index costs O(1) per key on average.
    """

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        """An empty table holding at most `limit` keys."""
        self.limit = limit
        self.main = _Part.empty()
        self.recent = _Part.empty()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self.main.keys) + len(self.recent.keys)

    @staticmethod
    def hashes(keys: list[str]) -> np.ndarray:
        """The Python hash of each key, as int64 (stable within the process)."""
        return np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))

    def find(self, keys: pa.Array, hashes: np.ndarray) -> pa.Array:
        """The digest of each key (no nulls in `keys`), null where unknown."""
        with self._lock:
            found = [f for f in (self.main.find(hashes, keys), self.recent.find(hashes, keys)) if f is not None]
        if not found:
            return pa.nulls(len(keys), pa.string())
        return found[0] if len(found) == 1 else pc.coalesce(*found)

    def add(self, keys: pa.Array, hashes: np.ndarray, digests: pa.Array) -> None:
        """Remember new keys (a key whose hash is already taken is left out: it stays a miss)."""
        with self._lock:
            _, first = np.unique(hashes, return_index=True)
            keep = np.zeros(len(hashes), dtype=bool)
            keep[first] = True
            for part in (self.main, self.recent):
                if len(part.keys):
                    keep &= part.index.get_indexer(hashes) < 0
            if not keep.any():
                return
            if len(self) + int(keep.sum()) > self.limit:
                self.main, self.recent = _Part.empty(), _Part.empty()
            mask = pa.array(keep)
            self.recent = _Part(np.concatenate([self.recent.index.to_numpy(), hashes[keep]]),
                                pa.concat_arrays([self.recent.keys, pc.filter(keys, mask)]),
                                pa.concat_arrays([self.recent.digests, pc.filter(digests, mask)]))
            if len(self.recent.keys) > max(4096, len(self.main.keys) // 4):
                self.main = _Part(np.concatenate([self.main.index.to_numpy(), self.recent.index.to_numpy()]),
                                  pa.concat_arrays([self.main.keys, self.recent.keys]),
                                  pa.concat_arrays([self.main.digests, self.recent.digests]))
                self.recent = _Part.empty()


class HashCache:
    """What identity hashing remembers across batches: digests per (salt, purpose), and stable
    small numbers for user agents (to make short keys). Bounded; held by IdentityConfig."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        """An empty cache holding at most `limit` entries per table."""
        self.limit = limit
        self._dicts: dict[tuple[bytes, bytes], dict[str, str]] = {}
        self._tables: dict[tuple[bytes, bytes], DigestTable] = {}
        self._ids: dict[object, int] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def ids(self, values: list) -> list[int]:
        """A number for each value, the same for the whole run (numbers are never reused, so
        dropping old ones when full never makes two values share one)."""
        with self._lock:
            ids = self._ids
            if len(ids) > self.limit:
                for key in list(ids)[: len(ids) // 2]:
                    ids.pop(key, None)
            out = []
            for v in values:  # per distinct user agent (and date) of a batch
                found = ids.get(v)
                if found is None:
                    found = ids[v] = self._next_id
                    self._next_id += 1
                out.append(found)
            return out

    def table(self, salt: bytes, person: bytes) -> dict[str, str]:
        """Value → digest for one salt and purpose, for the few values hashed per batch (emails)."""
        with self._lock:
            found = self._dicts.setdefault((salt, person), {})
            if len(found) > self.limit:
                for key in list(found)[: len(found) // 2]:
                    found.pop(key, None)
            return found

    def digest_table(self, salt: bytes, person: bytes) -> DigestTable:
        """The vectorized table for one salt and purpose (anonymous ids)."""
        with self._lock:
            return self._tables.setdefault((salt, person), DigestTable(self.limit))


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
