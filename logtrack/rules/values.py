"""Property values: typed conversion, text form and JSON form, vectorized (DESIGN §5).

Declared types are int, float, bool, string. A value that does not convert (`total=abc` with
`type: int`) becomes null and the property is left out of that event, rather than sending a
wrong type to a destination.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TRUE_WORDS = ("true", "1", "yes", "on", "y", "t")
FALSE_WORDS = ("false", "0", "no", "off", "n", "f")
ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_INT = r"^[+-]?[0-9]{1,18}$"
_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"


def convert_literal(value: Any, typ: str) -> tuple[Any, str | None]:
    """Convert a YAML literal to `typ`; (None, message) when it cannot be."""
    if typ == "string":
        return (str(value).lower() if isinstance(value, bool) else str(value)), None
    if typ == "bool":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()
        if text in TRUE_WORDS or text in FALSE_WORDS:
            return text in TRUE_WORDS, None
        return None, f"{value!r} is not a bool (true/false)"
    if isinstance(value, bool):
        return None, f"{value!r} is a bool, not {'an int' if typ == 'int' else 'a float'}"
    try:
        if typ == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip()), None
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
        return number, None
    except (TypeError, ValueError):
        return None, f"{value!r} is not {'an int' if typ == 'int' else 'a float'}"


def cast_values(arr: pa.Array, typ: str) -> pa.Array:
    """Cast an array (text or typed) to a declared type; values that do not convert become null."""
    target = ARROW_TYPES[typ]
    if arr.type == target:
        return arr
    if typ == "string":
        if pa.types.is_timestamp(arr.type):
            return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%SZ")
        return to_text(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not pa.types.is_string(arr.type):
        if typ == "bool":
            arr = arr.cast(pa.string())
        else:
            out = arr.cast(target, safe=False)
            return _drop_nan(out) if typ == "float" else out
    text = pc.utf8_trim_whitespace(arr)
    if typ == "bool":
        low = pc.utf8_lower(text)
        true = pc.is_in(low, value_set=pa.array(TRUE_WORDS))
        known = pc.or_(true, pc.is_in(low, value_set=pa.array(FALSE_WORDS)))
        return pc.if_else(pc.and_(known, pc.is_valid(low)), true, pa.scalar(None, pa.bool_()))
    ok = pc.match_substring_regex(text, _INT if typ == "int" else _FLOAT)
    cleaned = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    out = cleaned.cast(target)
    return _drop_nan(out) if typ == "float" else out


def _drop_nan(arr: pa.Array) -> pa.Array:
    bad = pc.invert(pc.is_finite(arr))
    return pc.if_else(bad, pa.scalar(None, arr.type), arr)


def to_text(arr: pa.Array) -> pa.Array:
    """The text form of typed values: 1999, 19.99 (floats always show a point), true/false."""
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_dictionary(arr.type):
        return arr.cast(arr.type.value_type).cast(pa.string())
    text = arr.cast(pa.string())
    if pa.types.is_floating(arr.type):
        # Arrow prints 3.0 as "3"; a float must read back as a float in JSON and in Python.
        text = pc.replace_substring_regex(text, r"^(-?[0-9]+)$", r"\1.0")
    return text


def literal_array(value: Any, typ: str, n: int) -> pa.Array:
    """`n` copies of a literal value of type `typ`."""
    return pa.repeat(pa.scalar(value, ARROW_TYPES[typ]), n)
