"""Work done once in the report scans: row groups' dictionaries concatenated instead of unified
(`scan.concat_dictionaries`), numberings of paths, visitors and users shared by the requests,
sessions and events scans, and the dense `PairSet` growing only the side that overflows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_report_aggregates import group_products, write_two_runs

from logtrack.report import groups
from logtrack.report.dense import Packing, slots
from logtrack.report.dimensions import events_by_day, session_reports
from logtrack.report.groups import Codebook, Interner, PairSet
from logtrack.report.scan import concat_dictionaries


def test_concatenated_dictionaries_decode_and_number_as_unified_ones() -> None:
    chunks = [pa.array(v, pa.string()).dictionary_encode() for v in (["/b", "/a", None, "/b"], ["/c", "/a"], [None], ["/a", "/d"])]
    column = pa.chunked_array(chunks)
    joined = concat_dictionaries(column)
    assert len(joined.dictionary) > len(set(joined.dictionary.to_pylist()))  # values repeat in it
    assert joined.cast(pa.string()).to_pylist() == column.cast(pa.string()).to_pylist()
    unified = column.unify_dictionaries().combine_chunks()
    assert Interner().slots_of(joined).tolist() == Interner().slots_of(unified).tolist() == [1, 2, 0, 1, 3, 2, 0, 2, 4]
    book = Codebook(lambda paths: pa.array(["/x" if p in ("/a", "/c") else p for p in paths.to_pylist()]))
    assert book.slots_of(joined).tolist() == [1, 2, 0, 1, 2, 2, 0, 2, 3]


def test_slots_widen_and_offset_codes_with_or_without_nulls() -> None:
    assert slots(pa.array([0, None, 2], pa.int32())).tolist() == [1, 0, 3]
    assert slots(pa.chunked_array([[2**31 - 1], [0]], pa.int32())).tolist() == [2**31, 1]
    assert slots(pa.array([], pa.int32())).dtype == np.int64


@pytest.mark.parametrize("cells", [None, 4096])
def test_pair_set_grows_only_the_side_that_overflows(monkeypatch: pytest.MonkeyPatch, cells: int | None) -> None:
    if cells is not None:  # small: the table turns into sorted pairs on the way
        monkeypatch.setattr(groups, "DENSE_CELLS", cells)
    rng = np.random.default_rng(5)
    pairs, expected = PairSet(), set()
    for width in (50, 300, 900, 2500):  # values outgrow the table again and again, keys do not
        keys, values = rng.integers(0, 3, 400), rng.integers(0, width, 400)
        pairs.add(keys, values)
        expected |= set(zip(keys.tolist(), values.tolist(), strict=True))
    if cells is None:
        assert pairs.seen is not None and pairs.seen.shape[0] == 8  # rows never doubled
    else:
        assert pairs.seen is None
    assert pairs.counts(4).tolist() == [sum(1 for k, _ in expected if k == key) for key in range(4)]
    assert pairs.total() == len({v for _, v in expected})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_runs(tmp_path_factory.mktemp("shared"), rejects=0, row_group_rows_b=2)


@pytest.mark.parametrize("grouper", [None, group_products])
def test_session_and_event_reports_do_not_depend_on_shared_numberings(dataset: Path, grouper) -> None:
    alone = session_reports(dataset, "UTC", grouper, None)
    # Numberings already used by another scan: other strings first, in another order.
    paths = Codebook(grouper)
    paths.slots_of(pa.array(["/zzz", "/products/9", "/", None, "/products/1"]))
    people = {"anonymous_id": Interner(), "user_id": Interner()}
    people["anonymous_id"].slots_of(pa.array(["someone", "a2", "a1"]))
    people["user_id"].slots_of(pa.array(["u9", None, "u2"]))
    shared = session_reports(dataset, "UTC", grouper, None, paths, people)
    assert alone[0].keys() == shared[0].keys()
    for name, table in alone[0].items():
        assert table.equals(shared[0][name]), name
    assert alone[1].sort_by("date").equals(shared[1].sort_by("date"))
    assert alone[2] == shared[2]
    assert events_by_day(dataset, "UTC").equals(events_by_day(dataset, "UTC", people))


@pytest.mark.parametrize("size", [1, 7, 256, 300])
def test_packed_sums_in_lanes_are_exact_per_key(size: int) -> None:
    rng = np.random.default_rng(size)
    rows = 9000  # enough for lanes (LANE_ROWS); keys in runs, as rows in time order give them
    keys = np.sort(rng.integers(0, size, rows))
    columns = [None, rng.integers(0, 2, rows), rng.integers(0, 1 << 30, rows), rng.integers(0, 1 << 40, rows)]
    got = Packing(columns, rows).sums(keys, size)
    for column, sums in zip(columns, got, strict=True):
        values = np.ones(rows, np.int64) if column is None else column
        expected = [int(values[keys == k].sum()) for k in range(size)]
        assert sums.tolist() == expected
