"""Build JSON text column-wise with pyarrow.compute, so payloads cost no Python loop per event.

Each function takes and returns Arrow string arrays holding JSON fragments; a null fragment means
"leave this member out". Only the rare strings holding control characters are escaped by
`json.dumps` one by one (RE2 finds them; the common case never leaves Arrow).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def escape(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The inside of the JSON string literal of each string (null stays null): quotes,
    backslashes and control characters escaped, no surrounding quotes."""
    arr = _flat(values).cast(pa.string())
    # One scan finds the values that need escaping; they are rare (a decoded %22 or %0A in a
    # search term, a tab in a user agent), so only those go through json.dumps (the \uXXXX
    # escapes of control characters have no Arrow kernel) and the rest pass uncopied.
    special = pc.match_substring_regex(arr, r'["\\\x00-\x1f]').fill_null(False)
    if not pc.any(special).as_py():
        return arr
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    fixed = [json.dumps(v, ensure_ascii=False)[1:-1] for v in arr.take(pa.array(rows)).to_pylist()]
    return pc.replace_with_mask(arr, special, pa.array(fixed, pa.string()))


def quote(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON string literals for `values` (nulls stay null)."""
    return pc.binary_join_element_wise('"', escape(values), '"', "")


def number(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """JSON numbers for integer `values` (nulls stay null)."""
    return _flat(values).cast(pa.string())


def member(key: str, value_json: pa.Array) -> pa.Array:
    """`"key":value` fragments; null where the value is null."""
    return pc.binary_join_element_wise(json.dumps(key) + ":", value_json, "")


def obj(*members: pa.Array, n: int | None = None) -> pa.Array:
    """`{...}` objects joining the non-null members of each row (`{}` when all are null)."""
    if not members:
        return pa.array(["{}"] * (n or 0), pa.string())
    return pc.binary_join_element_wise("{", _join_present(members), "}", "")


def obj_or_null(*members: pa.Array) -> pa.Array:
    """Like `obj`, but null where every member is null (so the parent leaves it out)."""
    inner = _join_present(members)
    inner = pc.if_else(pc.equal(inner, ""), pa.scalar(None, pa.string()), inner)
    return pc.binary_join_element_wise("{", inner, "}", "")


def join_present(*values: pa.Array, sep: str = ",") -> pa.Array:
    """Join the non-null values of each row with `sep` ("" when all are null)."""
    return _join_present(values, sep)


def _join_present(members: tuple[pa.Array, ...] | list[pa.Array], sep: str = ",") -> pa.Array:
    # Not null_handling="skip": in pyarrow 26 it drops the rows where every input is null
    # (the result comes out shorter). Prefix each present member with the separator instead,
    # concatenate, and cut the first separator.
    pieces = [pc.fill_null(pc.binary_join_element_wise(sep, _flat(m), ""), "") for m in members]
    joined = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pieces[0]
    return pc.utf8_slice_codeunits(joined, len(sep))


def inner_members(object_json: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The members of JSON objects without their braces (null for null or empty objects)."""
    arr = pc.utf8_trim_whitespace(_flat(object_json).cast(pa.string()))
    inner = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(arr, 1, -1))
    return pc.if_else(pc.equal(inner, ""), pa.scalar(None, pa.string()), inner)


def nbytes(values: pa.Array) -> np.ndarray:
    """UTF-8 byte length of each string, as int64 (null counts 0)."""
    return pc.fill_null(pc.binary_length(values), 0).to_numpy().astype(np.int64)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
