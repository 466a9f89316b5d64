"""The CSV plan (lines cut at their quotes by Arrow's reader, stretches at their spaces by numpy)
reads exactly what the `"`-split plan and the full regex read, lines it leaves included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logtrack.formats import get_format
from logtrack.formats.csvplan import Stretch, csv_piece
from logtrack.lines import split_lines
from logtrack.sources import Block

_GOOD = [
    '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 512 "-" "curl/8.0"',
    '::1 - bob [10/Oct/2000:13:55:37 +0200] "POST /x HTTP/2.0" 404 - "http://r.example/" "Mozilla/5.0 (X)"',
    '10.0.0.1 - - [10/Oct/2000:13:55:38 +0000] "GET / HTTP/1.1" 304 0 "-" "-" 0.250 0.120',
]
# Edits that move a line off the usual shape: quotes missing, added, adjacent or escaped, a
# backslash before a closing quote, a lone CR, words added to a stretch or a value, odd values.
# (Not edits that change the words of the head: there the split plan itself depends on the
# other lines of the block, splitting on spaces only when every line has the same count.)
_EDITS = [('" "', '""'), ('"-"', "-"), ("curl", 'cu\\"rl'), ("curl", "cu\\x22rl"), (" 200 ", " 2000 "),
          ("512", "-5"), ('"GET', '"'), (" HTTP/1.1", ""), ("0.250", "0.250 extra"), ("/a", "/\r/a"),
          ('X)"', 'X)" tail'), ("Mozilla", 'Moz"illa'), ("curl/8.0", "curl\\\\"), (" 512 ", " 512 x "),
          ('"-" "', '"-"  "'), ("", "")]


@st.composite
def _blocks(draw: st.DrawFn) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        line = draw(st.sampled_from(_GOOD))
        old, new = draw(st.sampled_from(_EDITS))
        if old and draw(st.booleans()):
            line = line.replace(old, new, 1)
        lines.append(line)
    return lines


def _parse(fmt_name: str, lines: list[str], csv: bool) -> tuple[list, list]:
    fmt = get_format(fmt_name)
    plans = [template.csv for template in fmt.templates]
    try:
        if not csv:
            for template in fmt.templates:
                template.csv = None
        parsed = fmt.parse(split_lines(Block("s", 1, ("\n".join(lines) + "\n").encode())), {})
    finally:
        for template, plan in zip(fmt.templates, plans, strict=True):
            template.csv = plan
    # (No `fields` at all is an empty map or a null one depending on how the pieces were merged.)
    requests = [{**row, "fields": row["fields"] or []} for row in parsed.requests.to_pylist()]
    return requests, sorted(parsed.rejects.to_pylist(), key=lambda r: r["line"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_blocks(), st.sampled_from(["combined", "common", "nginx_timed", "vhost_combined"]))
def test_csv_plan_agrees_with_the_split_plan_and_regex(lines: list[str], fmt_name: str) -> None:
    assert _parse(fmt_name, lines, True) == _parse(fmt_name, lines, False)


def test_csv_plan_reads_the_usual_lines_of_a_clean_block() -> None:
    lines = split_lines(Block("s", 1, ("\n".join(_GOOD[:2] * 20) + "\n").encode()))
    template = get_format("combined").templates[0]
    pieces = template.pieces(lines, np.arange(len(lines)))
    assert len(pieces) == 1 and pieces[0][0].tolist() == list(range(40))  # all the CSV plan's


@given(st.lists(st.text(alphabet="ab -é", max_size=8), max_size=20), st.integers(1, 4), st.integers(0, 3))
def test_stretch_words_agree_with_a_split_on_spaces(values: list[str], count: int, head: int) -> None:
    arr = pa.array(["x y"] * head + values, pa.string()).slice(head)
    stretch = Stretch(arr, count)
    for i, value in enumerate(values):
        words = value.split(" ")
        assert bool(stretch.fits[i]) == (len(words) == count)
        if len(words) == count:
            assert [stretch.word(j)[i].as_py() for j in range(count)] == words
            for j in range(count):
                assert bool(stretch.equals(j, words[j])[i]) and not bool(stretch.equals(j, words[j] + "a")[i])


def test_a_lone_carriage_return_leaves_only_its_line_to_the_other_plans() -> None:
    # The reader breaks lines at a lone `\r` (a line's data to us): that line is blanked first,
    # so that the reader's rows and the block's lines still line up.
    rows = [_GOOD[0]] * 40
    rows[7] = rows[7].replace("/a", "/\r/a")
    lines = split_lines(Block("s", 1, ("\n".join(rows) + "\n").encode()))
    template = get_format("combined").templates[0]
    assert template.csv is not None and lines.raw is not None and lines.raw_starts is not None
    piece = csv_piece(template.csv, lines.raw, lines.raw_starts, len(lines), lines.escaped_quote_mask())
    assert piece is not None and piece[0].tolist() == [i for i in range(40) if i != 7]
    parsed = get_format("combined").parse(lines, {})
    assert parsed.requests.column("path").to_pylist()[7] == "/\r/a" and parsed.rejects.num_rows == 0
