"""DictCol.rows_for over the whole batch once rows are grouped by value id (or id bucket)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from logtrack.rules.dictcol import DictCol


@pytest.mark.parametrize("m", [5, 65534, 65535, 70_000, 140_000])
def test_grouped_lookups_match_a_scan(m: int) -> None:
    rng = np.random.default_rng(m)
    values = pa.array([f"v{i}" for i in range(m)])
    indices = rng.integers(0, m + 1, 200_000)  # id m: null rows
    col = DictCol(values, indices, lookups=DictCol.FULL_SCANS + 1)  # grouped at the first lookup
    for k in (0, 1, 2, 50, m // 2):
        mask = np.zeros(m + 1, dtype=bool)
        mask[rng.choice(m + 1, size=min(k, m + 1), replace=False)] = True
        if k == 2:
            mask[[0, 1]] = True  # two ids of one bucket
        got = col.rows_for(mask, None)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.flatnonzero(mask[indices]))
    assert col._by_id is not None


def test_few_lookups_scan_without_grouping() -> None:
    col = DictCol(pa.array(["a", "b"]), np.array([0, 1, 2, 0]), lookups=1)
    np.testing.assert_array_equal(col.rows_for(np.array([True, False, True]), None), [0, 2, 3])
    assert col._by_id is None


def test_small_columns_scan_even_when_many_rules_look_up() -> None:
    indices = np.arange(DictCol.SMALL) % 3
    col = DictCol(pa.array(["a", "b", "c"]), indices, lookups=DictCol.FULL_SCANS + 1)
    np.testing.assert_array_equal(col.rows_for(np.array([False, True, False, False]), None),
                                  np.flatnonzero(indices == 1))
    assert col._by_id is None
    big = DictCol(pa.array(["a", "b", "c"]), np.arange(DictCol.SMALL + 1) % 3, lookups=DictCol.FULL_SCANS + 1)
    np.testing.assert_array_equal(big.rows_for(np.array([False, True, False, False]), None),
                                  np.flatnonzero(big.indices == 1))
    assert big._by_id is not None


def test_found_reads_index_in_hits_of_any_array() -> None:
    from logtrack.rules.dictcol import _found

    values = pa.array(["a", "x", None, "b", "a", "y"] * 3)
    codes = pa.compute.index_in(values, value_set=pa.array(["b", "a"]))
    for arr in (codes, codes.slice(3), codes.slice(0, 0), pa.nulls(4, pa.int32())):
        hits, found = _found(arr)
        expect = arr.fill_null(-1).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(hits, np.flatnonzero(expect >= 0))
        np.testing.assert_array_equal(found, expect[expect >= 0])
        assert found.dtype == np.int64
    col = DictCol(values, np.arange(len(values)), literals=("b", "a"))
    np.testing.assert_array_equal(np.sort(col.ids_equal(("a",))), [0, 4, 6, 10, 12, 16])
