"""Grouping and Codebook (report/groups.py): hand-computed figures, and
build_reports giving the same reports on every path through them (gathered or per batch, one
pre-aggregate or many, page visitors from the traffic scan or from a second scan)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_aggregates import group_products, write_two_runs

from logtrack.report import aggregates, build_reports, groups
from logtrack.report.groups import Codebook, Grouping

S = pa.string()
TS = pa.timestamp("us", tz="UTC")


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1, hour, tzinfo=dt.UTC)


def test_grouping_sums_mins_and_distinct_counts_over_batches() -> None:
    g = Grouping({"page": S}, {"visitor": S}, {"views": ("pv", "sum"), "first": ("ts", "min"),
                                                "timed": ("ts", "count")})
    # Each batch dictionary-encoded on its own (as the scan reads them): indices differ per batch.
    g.add({"page": pa.array(["/a", "/b", "/a", None]).dictionary_encode(),
           "visitor": pa.array(["v1", "v1", "v2", "v3"]).dictionary_encode(),
           "pv": pa.array([1, 2, 3, 4]), "ts": pa.array([at(3), at(1), None, at(2)], TS)})
    g.add({"page": pa.array(["/b", "/a"]), "visitor": pa.array([None, "v1"]),
           "pv": pa.array([10, None], pa.int64()), "ts": pa.array([at(0), at(5)], TS)})
    got = {r["page"]: r for r in g.result("rows", {"visitor": "visitors"}).to_pylist()}
    assert set(got) == {"/a", "/b", None}
    assert (got["/a"]["rows"], got["/a"]["views"], got["/a"]["visitors"], got["/a"]["first"], got["/a"]["timed"]) \
        == (3, 4, 2, at(3), 2)  # v1 twice counts once; a null pv adds nothing
    assert (got["/b"]["rows"], got["/b"]["views"], got["/b"]["visitors"], got["/b"]["first"]) == (2, 12, 1, at(0))
    assert (got[None]["rows"], got[None]["visitors"]) == (1, 1)  # null keys group together
    assert g.distinct_total("visitor") == 3


def test_grouping_with_codebooks_gathers_rows_and_merges_when_they_outgrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(groups, "GATHER_ROWS", 2)  # a pre-aggregate every second row
    pages, people = Codebook(), Codebook()
    g = Grouping({"day": pa.date32(), "page": pages}, {"visitor": people}, {"n_pv": ("pv", "sum")})
    assert g.gather
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    rows = [(d1, "/a", "v1", 1), (d1, "/a", "v2", 1), (d1, "/a", "v1", 1), (d2, "/a", "v1", 2), (d1, "/b", None, 5)]
    for day, page, who, pv in rows:
        g.add({"day": pa.array([day]), "page": pages.encode(pa.array([page])),
               "visitor": people.encode(pa.array([who], S)), "pv": pa.array([pv])})
    got = sorted((r["day"], r["page"], r["n"], r["visitor"], r["n_pv"]) for r in g.result().to_pylist())
    assert got == [(d1, "/a", 3, 2, 3), (d1, "/b", 1, 0, 5), (d2, "/a", 1, 1, 2)]


def test_empty_grouping_has_one_row_without_keys_and_none_with_keys() -> None:
    assert Grouping({}, {"v": S}).result("sessions").to_pylist() == [{"sessions": 0, "v": 0}]
    assert Grouping({"k": S}, {"v": S}).result().num_rows == 0


def test_codebook_numbers_each_string_once_and_maps_through_a_grouper() -> None:
    calls: list[list[str]] = []

    def grouper(paths: pa.Array) -> pa.Array:
        calls.append(paths.to_pylist())
        return pc.replace_substring_regex(paths, r"^/p/\d+$", "/p/{id}")

    book = Codebook(grouper)
    first = book.encode(pa.array(["/p/1", "/x", None, "/p/2"]))
    again = book.encode(pa.array(["/p/2", "/p/3", "/x"]).dictionary_encode())
    assert first.to_pylist() == [0, 1, None, 0] and again.to_pylist() == [0, 0, 1]
    assert calls == [["/p/1", "/x", "/p/2"], ["/p/3"]]  # each distinct path grouped once
    assert book.decode(pa.array([1, 0, None], pa.int32())).to_pylist() == ["/x", "/p/{id}", None]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_two_runs(tmp_path_factory.mktemp("groups"), rejects=1, events=False)


@pytest.mark.parametrize("grouper", [group_products, None])
def test_reports_do_not_depend_on_how_groupings_merge(dataset: Path, monkeypatch: pytest.MonkeyPatch,
                                                      grouper: object) -> None:
    expected = build_reports(dataset, path_grouper=grouper, write=False)  # type: ignore[arg-type]
    assert expected["top_pages"].num_rows and expected["entry_pages"].num_rows
    monkeypatch.setattr(aggregates, "PAGE_VISITOR_PAIRS", 0)  # page visitors by the second scan
    monkeypatch.setattr(groups, "GATHER_ROWS", 1)  # one pre-aggregate per batch, then merged
    again = build_reports(dataset, path_grouper=grouper, write=False)  # type: ignore[arg-type]
    for name, table in expected.items():
        assert again[name].equals(table), name


# --- the numpy machinery (report/dense.py, groups.PairSet, Grouping on numbers) -------------------

def _reference(rows: list[dict], keys: list[str], distinct: list[str]) -> dict[tuple, dict]:
    """Group `rows` by hand: n, sum/min/max/count of "v", distinct non-null values."""
    out: dict[tuple, dict] = {}
    for r in rows:
        g = out.setdefault(tuple(r[k] for k in keys), {"n": 0, "vs": [], "sets": {d: set() for d in distinct}})
        g["n"] += 1
        if r["v"] is not None:
            g["vs"].append(r["v"])
        for d in distinct:
            if r[d] is not None:
                g["sets"][d].add(r[d])
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(
    st.sampled_from([dt.date(2026, 3, 1), dt.date(1969, 12, 31), dt.date(2300, 1, 1), None]),
    st.sampled_from(["a", "b", "c", None]), st.sampled_from(["v1", "v2", "v3", "v4", None]),
    st.sampled_from(["u1", "u2", None]), st.one_of(st.none(), st.integers(-2**62, 2**62), st.integers(-5, 5))),
    max_size=15), max_size=4), st.booleans())
def test_grouping_on_numbers_matches_a_grouping_by_hand(batches: list[list[tuple]], dense: bool) -> None:
    """Two key columns (an IntBook date, a string: a KeyBook), two distinct columns, every agg,
    nulls everywhere, over batches; pairs in dense tables or sorted (DENSE_CELLS 0)."""
    with pytest.MonkeyPatch.context() as mp:
        if not dense:
            mp.setattr(groups, "DENSE_CELLS", 0)
        mp.setattr(groups, "GATHER_ROWS", 3)
        g = Grouping({"day": pa.date32(), "page": S}, {"who": S, "user": S},
                     {"total": ("v", "sum"), "low": ("v", "min"), "high": ("v", "max"), "seen": ("v", "count")})
        rows = []
        for batch in batches:
            cols = list(zip(*batch, strict=True)) if batch else [[]] * 5
            g.add({"day": pa.array(cols[0], pa.date32()), "page": pa.array(cols[1], S).dictionary_encode(),
                   "who": pa.array(cols[2], S), "user": pa.array(cols[3], S), "v": pa.array(cols[4], pa.int64())})
            rows += [dict(zip(["day", "page", "who", "user", "v"], r, strict=True)) for r in batch]
        got = {(r["day"], r["page"]): r for r in g.result("n", {"who": "visitors"}).to_pylist()}
    expected = _reference(rows, ["day", "page"], ["who", "user"])
    assert set(got) == set(expected)
    for key, e in expected.items():
        r = got[key]
        total = sum(e["vs"])
        wrapped = (total + 2**63) % 2**64 - 2**63  # int64 sums wrap
        assert (r["n"], r["visitors"], r["user"], r["seen"]) == (e["n"], len(e["sets"]["who"]), len(e["sets"]["user"]),
                                                                 len(e["vs"]))
        assert (r["total"], r["low"], r["high"]) == ((wrapped, min(e["vs"]), max(e["vs"])) if e["vs"] else (None,) * 3)
    assert g.distinct_total("who") == len({r["who"] for r in rows} - {None})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 10**7), st.integers(-10**6, 10**6).map(lambda us: us * 1000)), max_size=30),
       st.integers(1, 4))
def test_float_sums_of_whole_microseconds_are_exact_whatever_the_batches(micros: list[int], parts: int) -> None:
    from fractions import Fraction

    from logtrack.report.dense import FloatSum

    values = np.array([m / 1e6 for m in micros], np.float64)
    keys = np.array([m % 3 for m in micros], np.int64)
    total = FloatSum()
    for piece in np.array_split(np.arange(len(values)), parts):
        total.add(keys[piece], values[piece], 3)
    got = total.result(3)
    for k in range(3):
        exact = sum(Fraction(m, 10**6) for m in micros if m % 3 == k)
        assert abs(Fraction(got[k]) - exact) <= abs(exact) * Fraction(1, 2**52)  # the exact sum, rounded
        if all(m % 10**6 == 0 for m in micros):
            assert got[k] == float(exact)  # whole seconds: as any float64 sum of them
    assert total.exact


def test_float_sums_of_other_values_go_on_as_floats() -> None:
    from logtrack.report.dense import FloatSum

    total = FloatSum()
    total.add(np.array([0, 1]), np.array([1.5, 2.25]), 2)
    total.add(np.array([0, 0]), np.array([1 / 3, 0.5]), 2)  # not whole µs
    assert not total.exact
    assert total.result(2).tolist() == [1.5 + 1 / 3 + 0.5, 2.25]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), max_size=20))
def test_int_sums_are_exact_and_wrap_as_int64(values: list[int]) -> None:
    from logtrack.report.dense import int_sums

    keys = np.array([i % 2 for i in range(len(values))], np.int64)
    got = int_sums(keys, np.array(values, np.int64), 2)
    for k in range(2):
        assert got[k] == (sum(values[k::2]) + 2**63) % 2**64 - 2**63


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**40, 2**40), st.integers(0, 5)), max_size=30), st.integers(1, 3))
def test_int_books_number_values_across_batches(values: list[int | None], parts: int) -> None:
    from logtrack.report.dense import IntBook

    book = IntBook(pa.int64())
    seen: list[int] = []
    for piece in np.array_split(np.arange(len(values)), parts):
        chunk = [values[i] for i in piece]
        got = book.slots(np.array([v or 0 for v in chunk], np.int64), np.array([v is not None for v in chunk], bool))
        assert book.decode(got).to_pylist() == chunk  # slots decode to the values; 0 to null
        for v in chunk:
            if v is not None and v not in seen:
                seen.append(v)
    assert sorted(book.values.tolist()) == sorted(seen)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([200, 304, 404, 500, -1, None]),
                          st.sampled_from([0, 1, 3599, -86_401, 90 * 86_400, None]),
                          st.booleans(), st.integers(0, 2**40)), max_size=30), st.sampled_from(["UTC", "Asia/Kolkata"]))
def test_hourly_traffic_matches_an_arrow_group_by(rows: list[tuple], timezone: str) -> None:
    from logtrack.report.dense import ints
    from logtrack.report.scan import hourly, local_dates, local_hours, local_micros

    if not rows:
        return
    status = pa.array([r[0] for r in rows], pa.int16())
    ts = pa.array([None if r[1] is None else r[1] * 1_000_000 + 7 for r in rows], pa.int64()).view(TS)
    pv = np.array([r[2] for r in rows])
    sent = np.array([r[3] for r in rows], np.int64)
    local, timed = local_micros(ts, timezone)
    got = hourly(local, timed, *ints(status), pv, ~pv, sent)
    table = pa.table({"date": local_dates(ts, timezone), "hour": local_hours(ts, timezone), "status": status,
                      "pv": pv.astype(np.int64), "bot": (~pv).astype(np.int64), "sent": sent})
    expected = table.group_by(["date", "hour", "status"], use_threads=False).aggregate(
        [([], "count_all"), ("pv", "sum"), ("bot", "sum"), ("sent", "sum")])
    key = lambda r: repr(r)  # noqa: E731
    assert sorted(map(key, got.to_pylist())) == sorted(key({
        "date": r["date"], "hour": r["hour"], "status": r["status"], "n": r["count_all"], "pageviews": r["pv_sum"],
        "bot_requests": r["bot_sum"], "bytes_sent": r["sent_sum"]}) for r in expected.to_pylist())


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=8, max_size=8),
                          st.lists(st.integers(0, 2**40), min_size=8, max_size=8),
                          st.lists(st.integers(-2**62, 2**62), min_size=8, max_size=8)), min_size=1, max_size=7),
       st.booleans())
def test_packed_sums_are_exact_per_key(columns: list[list[int] | None], keyless: bool) -> None:
    from logtrack.report.dense import Packing

    keys = np.array([0, 2, 2, 1, 0, 2, 3, 0], np.int64)
    packing = Packing([None if c is None else np.array(c, np.int64) for c in columns], 8)
    assert sum(len(p) for p in packing.packs) + len(packing.alone) == len(columns)
    got = packing.sums(None if keyless else keys, 1 if keyless else 5)
    for column, sums in zip(columns, got, strict=True):
        values = [1] * 8 if column is None else column
        wrap = lambda v: (v + 2**63) % 2**64 - 2**63  # noqa: E731
        expected = [wrap(sum(values))] if keyless else [wrap(sum(v for k, v in zip(keys, values, strict=True) if k == key))
                                                        for key in range(5)]
        assert sums.tolist() == expected


def test_small_columns_share_one_weight() -> None:
    from logtrack.report.dense import Packing

    flags = np.array([0, 1, 1, 0], np.int64)
    packing = Packing([None, flags, flags * 3, np.array([2**60, 0, 0, 0], np.int64)], 4)
    assert len(packing.packs) == 1 and packing.alone == [3]


@pytest.mark.parametrize("cells", [None, 4])
@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from([200, 304, 404, 500, -1, None]),
                               st.sampled_from([0, 1, 3599, -86_401, 90 * 86_400, None]),
                               st.booleans(), st.booleans(), st.integers(0, 2**40)), min_size=1, max_size=30))
def test_hourly_traffic_counts_independent_flags_densely_or_not(cells: int | None, rows: list[tuple]) -> None:
    from logtrack.report import scan
    from logtrack.report.dense import ints

    status = pa.array([r[0] for r in rows], pa.int16())
    ts = pa.array([None if r[1] is None else r[1] * 1_000_000 for r in rows], pa.int64()).view(TS)
    pv, bot = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    sent = np.array([r[4] for r in rows], np.int64)
    local, timed = scan.local_micros(ts, "UTC")
    default = scan.HOURLY_CELLS
    scan.HOURLY_CELLS = cells or default  # 4: the sparse way (keys by their distinct values)
    try:
        got = scan.hourly(local, timed, *ints(status), pv, bot, sent)
    finally:
        scan.HOURLY_CELLS = default
    table = pa.table({"date": scan.local_dates(ts, "UTC"), "hour": scan.local_hours(ts, "UTC"), "status": status,
                      "pv": pv.astype(np.int64), "bot": bot.astype(np.int64), "sent": sent})
    expected = table.group_by(["date", "hour", "status"], use_threads=False).aggregate(
        [([], "count_all"), ("pv", "sum"), ("bot", "sum"), ("sent", "sum")])
    assert sorted(map(repr, got.to_pylist())) == sorted(repr({
        "date": r["date"], "hour": r["hour"], "status": r["status"], "n": r["count_all"], "pageviews": r["pv_sum"],
        "bot_requests": r["bot_sum"], "bytes_sent": r["sent_sum"]}) for r in expected.to_pylist())
