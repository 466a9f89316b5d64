"""What the sessionizer emits: the requests table of a push and its SESSIONS rows (`sessions`).

The sessionizer gathers the rows a push makes final from its `RowStore` once, in output order
(`table`: the stored columns, `user_id` as logged). Everything else is derived from that one
table and numpy arrays: stitched user ids, session ids and numbers, and the SESSIONS rows (their
first, landing and exit requests are rows of `table` too), so nothing is gathered twice from the
stored tables (finish's one output is gathered in (ts, source, line) order by the sessionizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .hashing import blake2b_each, hex_strings
from .schema import ENRICHED_REQUESTS, SESSIONS, TS, empty

_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_FIRST_COLS = ["anonymous_id", "browser", "os", "device", "host"]  # of the first request
_LANDING_COLS = ["path", "referer_host", "channel", *_UTM]  # of the landing request
_US = 1_000_000
_SESSIONS = empty(SESSIONS).schema  # SESSIONS as emitted (nullable fields, as `schema.conform` makes them)
_REQUESTS = empty(ENRICHED_REQUESTS).schema


@dataclass
class Closed:
    """Sessions closed by a push, in the order `Sessionizer._close` found them.

    Per row (rows grouped by session, sorted within one): `group` (session index), `src` (the row
    whose user_id the row gets, or -1), `has_user`. Per session: first and last row (`ss`, `se`),
    landing and exit row, pageviews, `seq` (session_seq), `start`/`end` (µs).
    """

    group: np.ndarray
    src: np.ndarray
    has_user: np.ndarray
    ss: np.ndarray
    se: np.ndarray
    landing: np.ndarray
    exit: np.ndarray
    pageviews: np.ndarray
    seq: np.ndarray
    start: np.ndarray
    end: np.ndarray


def session_digests(anon: pa.Array | pa.ChunkedArray, user: pa.Array | pa.ChunkedArray,
                    start_us: np.ndarray) -> np.ndarray:
    """Each session's id as `S32` hex: BLAKE2b-128 of `<visitor key>\\x1f<start, µs since the epoch>`,
    the visitor key being `a:<anonymous_id>`, else `u:<user_id>` of its first request.

    The messages are built by Arrow and the digests hex-encoded by numpy: only the hash itself
    runs once per session in Python.
    """
    start = pc.cast(pa.array(start_us, pa.int64()), pa.string())
    if anon.null_count == 0:  # the usual case: one kernel builds the messages
        text = pc.binary_join_element_wise("a:", anon, "\x1f", start, "")
    else:
        key = pc.coalesce(pc.binary_join_element_wise("a:", anon, ""), pc.binary_join_element_wise("u:", user, ""))
        text = pc.binary_join_element_wise(key, start, "\x1f")
    digests = blake2b_each(pc.cast(text, pa.binary()).to_pylist(), 16)
    return np.frombuffer(digests.hex().encode("ascii"), "S32")  # bytes.hex: C speed


def assemble(table: dict[str, pa.Array | pa.ChunkedArray], at: np.ndarray, closed: Closed | None) -> tuple[pa.Table, pa.Table]:
    """The ENRICHED_REQUESTS and SESSIONS tables of one push.

    `table` holds the emitted rows' columns in output order, user_id as logged; `at` is the row of
    `table` of each closed row (in `closed`'s order). Rows outside sessions keep their user_id and
    get null session columns.
    """
    user = table["user_id"]
    n = len(user)
    if closed is None:
        session_id, session_seq = pa.nulls(n, pa.string()), pa.nulls(n, pa.int32())
        sessions = empty(SESSIONS)
    else:
        # A login carries to the session's other requests: only rows without a user id change.
        stitched = ~closed.has_user & (closed.src >= 0)
        if stitched.any():
            idx = np.arange(n)
            idx[at[stitched]] = at[closed.src[stitched]]
            user = user.take(pa.array(idx))
        first = at[closed.ss]
        anon = table["anonymous_id"].take(pa.array(first))
        digests = session_digests(anon, table["user_id"].take(pa.array(first)), closed.start)
        group = np.full(n, -1, np.int64)  # per output row: its session, or -1
        group[at] = closed.group
        in_session = group >= 0
        session_id = _id_column(digests, group, in_session)
        session_seq = pa.array(closed.seq[group].astype(np.int32), mask=~in_session)
        sessions = _session_rows(table, user, at, closed, digests, anon)
    values = table | {"user_id": user, "session_id": session_id, "session_seq": session_seq}
    return pa.Table.from_arrays([values[name] for name in _REQUESTS.names], schema=_REQUESTS), sessions


def _id_column(digests: np.ndarray, group: np.ndarray, valid: np.ndarray) -> pa.Array:
    """The session_id column: `digests[group]` where `valid`, else null (built from the bytes)."""
    n = len(group)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(valid * np.int32(32), out=offsets[1:])
    data = pa.py_buffer(digests[group[np.flatnonzero(valid)]])  # the gathered bytes themselves (no copy)
    mask = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(offsets), data], null_count=int(n - valid.sum()))


def _by_start_then_word(start: np.ndarray, word: np.ndarray) -> np.ndarray:
    """`np.lexsort((word, start))`, by one sort of packed keys: the start's offset from the
    earliest in its top bits (as many as the push's span of starts needs: a push's sessions can
    span days when one lasts that long), the word's top bits below. Keys can only tie when the
    starts and those bits do (then, and for spans over 2**62 µs, the lexsort)."""
    if len(start) > 1:
        lo = int(start.min())
        bits = max((int(start.max()) - lo).bit_length(), 1)
        if bits <= 62:
            key = ((start - lo).astype(np.uint64) << np.uint64(64 - bits)) | (word >> np.uint64(bits))
            o = np.argsort(key)
            ranked = key[o]
            if not (ranked[1:] == ranked[:-1]).any():
                return o
    return np.lexsort((word, start))


def _session_rows(table: dict[str, pa.Array | pa.ChunkedArray], user: pa.ChunkedArray, at: np.ndarray, c: Closed, digests: np.ndarray,
                  anon: pa.Array | pa.ChunkedArray) -> pa.Table:
    """SESSIONS rows sorted by (start, session_id); `anon` holds their first requests' anonymous_id."""
    # Sort the numbers first, so no table is reordered; sessions starting at the same µs (rare)
    # are then ordered by id (the hex ids compare as four big-endian words).
    words = digests.view(">u8").reshape(-1, 4)
    first_word = words[:, 0].astype(np.uint64)
    o = _by_start_then_word(c.start, first_word)
    if ((c.start[o][1:] == c.start[o][:-1]) & (first_word[o][1:] == first_word[o][:-1])).any():
        words = words.astype(np.uint64)
        o = np.lexsort((words[:, 3], words[:, 2], words[:, 1], first_word, c.start))
    first = pa.array(at[c.ss][o])
    heads = {name: table[name].take(first) for name in _FIRST_COLS[1:]}
    landing = pa.array(at[c.landing][o])
    land = {name: table[name].take(landing) for name in _LANDING_COLS}
    pageviews = c.pageviews[o]
    start, end = c.start[o], c.end[o]
    duration = (end - start) / _US
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "session_id": hex_strings(digests[o], np.ones(len(o), bool)),
        # The stitched user of the session's first request (its first login).
        "user_id": user.take(first),
        "anonymous_id": anon.take(pa.array(o)),
        "start": pa.array(start, TS),
        "end": pa.array(end, TS),
        "duration_s": pa.array(duration),
        "requests": pa.array((c.se - c.ss + 1)[o]),
        "pageviews": pa.array(pageviews),
        "events": pa.array(np.zeros(len(o), np.int64)),
        "landing_path": land["path"],
        "exit_path": table["path"].take(pa.array(at[c.exit][o])),
        "is_bounce": pa.array(pageviews == 1),
        "is_engaged": pa.array((duration > 10) | (pageviews >= 2)),
    }
    cols |= {name: land[name] for name in _LANDING_COLS[1:]}
    cols |= heads
    return pa.Table.from_arrays([cols[f.name] for f in SESSIONS], schema=_SESSIONS)


def inverse(order: np.ndarray) -> np.ndarray:
    """Where each row goes when rows are put in `order` (the inverse permutation)."""
    moved_to = np.empty(len(order), np.int64)
    moved_to[order] = np.arange(len(order))
    return moved_to
