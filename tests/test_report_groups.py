"""Grouping and Codebook (report/groups.py), PathMemo (report/scan.py): hand-computed figures, and
build_reports giving the same reports on every path through them (gathered or per batch, one
pre-aggregate or many, page visitors from the traffic scan or from a second scan)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_aggregates import RUN_A, RUN_B, SESSIONS_A, SESSIONS_B, group_products, write_run

from logtrack.enrich.static import is_page_path
from logtrack.report import aggregates, build_reports, groups
from logtrack.report.groups import Codebook, Grouping
from logtrack.report.scan import PathMemo, page_memo, pageviews

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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["/a", "/p/1", "/p/22", "/b/c", None]), max_size=12), max_size=5))
def test_path_memo_answers_as_the_grouper(batches: list[list[str | None]]) -> None:
    memo = PathMemo(group_products, limit=3)  # small: starts over now and then
    for paths in batches:
        array = pa.array(paths, S)
        assert memo(array).to_pylist() == group_products(array).to_pylist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["/a", "/x.css", "/api/v1/p", "/p/22", "/b/c.png", None]), max_size=12),
                max_size=5))
def test_page_memo_answers_as_is_page_path(batches: list[list[str | None]]) -> None:
    memo = page_memo()
    memo.limit = 3  # small: starts over now and then
    for paths in batches:
        array = pa.array(paths, S)
        expected = [v if p is not None else None for p, v in zip(paths, is_page_path(array).to_pylist(), strict=True)]
        assert memo(array).to_pylist() == expected


def test_pageviews_with_a_page_memo_as_without() -> None:
    paths = ["/", "/x.css", "/api/v1/p", "/p/1", None, "/", "/p/1"]
    batch = pa.RecordBatch.from_pydict({
        "status": pa.array([200, 200, 200, 304, 200, 404, 200], pa.int16()),
        "method": ["GET", "GET", "GET", "HEAD", "GET", "GET", "POST"],
        "is_bot": [False, False, False, None, False, False, False],
        "is_static": [False, True, False, False, False, False, False],
        "path": pa.array(paths, S).dictionary_encode(),
    })
    memo = page_memo()
    expected = [True, False, False, True, False, False, False]  # by hand: 2xx/304 GET/HEAD pages
    assert pageviews(batch).to_pylist() == expected
    assert pageviews(batch, memo).to_pylist() == expected
    assert pageviews(batch, memo).to_pylist() == expected  # answered from the memo
    assert memo.known.to_pylist() == ["/", "/x.css", "/api/v1/p", "/p/1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("groups")
    write_run(out, "runa", RUN_A, SESSIONS_A, [], rejects=1)
    write_run(out, "runb", RUN_B, SESSIONS_B, [])
    return out


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
