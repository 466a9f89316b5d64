"""The numpy CLF timestamp parser agrees with strptime (and rejects what strptime rejects)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from logtrack.formats.clftime import parse_clf_fixed
from logtrack.formats.convert import time_clf

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_agrees_with_python(moment: datetime, offset_min: int) -> None:
    tz = timezone(timedelta(minutes=offset_min))
    sign = "-" if offset_min < 0 else "+"
    hh, mm = divmod(abs(offset_min), 60)
    text = f"{moment:%d}/{MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} {sign}{hh:02d}{mm:02d}"
    micros, ok, _ = parse_clf_fixed(pa.array([text]))
    assert ok[0]
    expected = moment.replace(microsecond=0, tzinfo=tz)
    assert micros[0] == int(expected.timestamp()) * 1_000_000


@given(st.integers(1, 40), st.sampled_from(MONTHS + ["Foo"]), st.integers(1999, 2001), st.integers(0, 25))
def test_rejects_exactly_what_is_not_a_date(day: int, month: str, year: int, hour: int) -> None:
    text = f"{day:02d}/{month}/{year}:{hour:02d}:00:00 +0000"
    try:
        datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z")
        valid = True
    except ValueError:
        valid = False
    assert bool(parse_clf_fixed(pa.array([text]))[1][0]) == valid
    assert (time_clf(pa.array([text]))[0].as_py() is not None) == valid


def test_other_shapes_fall_back() -> None:
    got = time_clf(pa.array(["10/Oct/2000:13:55:36.250 -0700", "25/Feb/2019:16:19:48.143", "-", None]))
    assert got.to_pylist()[:2] == [datetime(2000, 10, 10, 20, 55, 36, 250000, tzinfo=UTC),
                                   datetime(2019, 2, 25, 16, 19, 48, 143000, tzinfo=UTC)]
    assert got.to_pylist()[2:] == [None, None]


def test_bracketed_values_as_apache_writes_them() -> None:
    got = time_clf(pa.array(["[10/Oct/2000:13:55:36 -0700]", "[31/Feb/2000:13:55:36 -0700]"]))
    assert got.to_pylist() == [datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC), None]
    # 28 characters but no brackets: not the bracketed layout, read by the general parser
    assert time_clf(pa.array(["10/Oct/2000:13:55:36.1 -0700"])).to_pylist() == [
        datetime(2000, 10, 10, 20, 55, 36, 100000, tzinfo=UTC)]
