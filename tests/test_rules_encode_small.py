"""`dictcol.encode`: a single-valued column found without hashing from SINGLE_CHECK_MIN rows on,
small arrays hashed straight away; both give the same encoding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from logtrack.rules import dictcol
from logtrack.rules.dictcol import encode


def _decoded(enc: dictcol.DictCol) -> list:
    return pa.concat_arrays([enc.values, pa.nulls(1, pa.string())]).take(pa.array(enc.indices)).to_pylist()


@pytest.mark.parametrize("n", [1, 7, dictcol.SINGLE_CHECK_MIN - 1, dictcol.SINGLE_CHECK_MIN, 10_000])
def test_single_valued_column_any_size(n):
    arr = pa.array(["a.log"] * n, pa.string())
    for col in (arr, pa.chunked_array([arr.slice(0, n // 2), arr.slice(n // 2)])):
        enc = encode(col)
        assert enc.values.to_pylist() == ["a.log"]
        assert enc.indices.dtype == np.int64 and not enc.indices.any() and len(enc.indices) == n


@pytest.mark.parametrize("at", [0, 1, 4321, 9_999])
def test_one_other_value_anywhere_is_found(at):
    values = ["a.log"] * 10_000
    values[at] = "b.log"
    enc = encode(pa.array(values, pa.string()))
    assert enc.m == 2 and _decoded(enc) == values


def test_single_value_shortcut_only_from_the_threshold(monkeypatch):
    calls = []
    real = pa.compute.equal
    monkeypatch.setattr(dictcol.pc, "equal", lambda *a: calls.append(1) or real(*a))
    encode(pa.array(["x"] * (dictcol.SINGLE_CHECK_MIN - 1), pa.string()))
    assert not calls
    encode(pa.array(["x"] * dictcol.SINGLE_CHECK_MIN, pa.string()))
    assert calls
