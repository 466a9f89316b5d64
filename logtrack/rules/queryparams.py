"""Query parameters of distinct query strings, form-decoded, remembered across batches.

Rules read a query parameter (`query: {q: present}`, `"{query.q}"`) per distinct query string
of a batch, or of the rows a rule tests. The same queries come back batch after batch (search
terms, category pages), so each query's value is remembered per parameter name; only new ones
go through the Arrow kernels (a literal search, a regex capture, form decoding).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc

_DECODED: dict[str, str] = {}  # raw form value -> decoded (form_decode's memo)
_DECODED_MAX = 200_000


def form_decode(values: pa.Array) -> pa.Array:
    """Decode values as browsers encode forms: `caf%C3%A9` -> café, `red+dress` -> red dress.

    Only values containing `%` or `+` are touched, each distinct one once.
    """
    needs = pc.match_substring_regex(values, r"[%+]").fill_null(False)
    if not pc.any(needs).as_py():
        return values
    raw = values.filter(needs).to_pylist()
    # The same search terms come back batch after batch: decode each once per run.
    if len(_DECODED) > _DECODED_MAX:
        _DECODED.clear()
    decoded = [_DECODED.get(v) or _DECODED.setdefault(v, unquote_plus(v, errors="replace")) for v in raw]
    return pc.replace_with_mask(values, needs, pa.array(decoded, pa.string()))


def query_param_regex(name: str) -> str:
    """RE2 pattern finding parameter `name` in a raw query string; group `v` is its value."""
    return r"(?:^|&)" + re.escape(name) + r"(?:=(?P<v>[^&]*))?(?:&|$)"


_PARAMS: dict[str, dict[str, str | None]] = {}  # name -> raw query -> its value (query_values' memo)
_PARAMS_MAX = 100_000


def query_values(queries: pa.Array, name: str) -> pa.Array:
    """Parameter `name` of each distinct query string, form-decoded (null where absent).

    The same queries come back batch after batch (search terms, category pages): each is
    looked up in a memo per run, and only new ones go through the kernels (a few regex and
    decoding kernels cost more per batch than a dict lookup per distinct query).
    """
    memo = _PARAMS.setdefault(name, {})
    if len(memo) > _PARAMS_MAX:
        memo.clear()
    raw = queries.to_pylist()
    new = [i for i, q in enumerate(raw) if q is not None and q not in memo]
    if new:
        found = _query_values_of(queries.take(pa.array(new, pa.int64())), name).to_pylist()
        memo.update(zip([raw[i] for i in new], found, strict=True))
    return pa.array([None if q is None else memo[q] for q in raw], pa.string())


def _query_values_of(queries: pa.Array, name: str) -> pa.Array:
    """`query_values` by kernels. The regex only runs on the queries that contain the name
    at all (a literal search, much cheaper than a regex with a capture), and most do not."""
    mentions = pc.match_substring(queries, name).fill_null(False)
    count = pc.sum(mentions).as_py() or 0
    if count == 0:
        return pa.nulls(len(queries), pa.string())
    subset = queries if count == len(queries) else queries.filter(mentions)
    found = form_decode(pc.struct_field(pc.extract_regex(subset, query_param_regex(name)), [0]))
    if count == len(queries):
        return found
    return pc.replace_with_mask(pa.nulls(len(queries), pa.string()), mentions, found)
