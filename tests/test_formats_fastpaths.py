"""The numpy fast paths of parsing agree with the general routes they shortcut.

`reqline` (origin-form request lines cut from their bytes) against `split_request_general`,
`strbuf` masks against `pyarrow.compute`, CLF timestamps read once per run of equal rows, and
the fallback pieces of a template converted together.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from logtrack.formats import get_format, strbuf
from logtrack.formats.clftime import parse_clf_fixed
from logtrack.formats.convert import client_ip, nullify, split_request, split_request_general, unescape
from logtrack.formats.words import join_words
from logtrack.lines import split_lines
from logtrack.sources import Block

_WORDS = ["GET", "get", "G3T!", "OPTIONS", "M-SEARCH", "", " ", "/", "/a", "?", "/x?y=1", "/é?ü", "*", "#",
          "http://H.example:80/p?q", "HTTP/1.1", "HTTP/x", "HTTP", "-", "\\x16\\x03", "h:443", "/a#b?c"]
_REQUEST = st.one_of(st.none(), st.lists(st.sampled_from(_WORDS), max_size=6).map("".join),
                     st.tuples(st.sampled_from(["GET", "POST", "get"]), st.sampled_from(["/", "/a", "/a?", "/a?b?c", "/?x"]),
                               st.sampled_from(["HTTP/1.1", "HTTP/2", "HTTP/1.1 ", "x"])).map(" ".join))


@settings(max_examples=200, deadline=None)
@given(st.lists(_REQUEST, max_size=40), st.integers(0, 5), st.integers(0, 5))
def test_request_fast_path_agrees_with_the_general_splitter(values: list[str | None], head: int, tail: int) -> None:
    arr = pa.array(["GET /pad HTTP/1.1"] * head + values + ["-"] * tail, pa.string())
    for sub in (arr, arr.slice(head, len(values))):  # sliced: offsets that do not start at 0
        fast, general = split_request(sub), split_request_general(sub)
        for key, expected in general.items():
            assert fast[key].type == pa.string()
            assert fast[key].to_pylist() == expected.cast(pa.string()).to_pylist(), key


def test_request_fast_path_takes_the_usual_lines_and_leaves_the_rest() -> None:
    arr = pa.array(["GET /a?b HTTP/1.1", "-", "GET http://h.example/x HTTP/1.0", "POST /c? HTTP/2.0", "GET /"])
    out = split_request(arr)
    assert out["path"].to_pylist() == ["/a", None, "/x", "/c", "/"]
    assert out["query"].to_pylist() == ["b", None, None, "", None]
    assert out["host"].to_pylist() == [None, None, "h.example", None, None]
    assert out["protocol"].to_pylist() == ["HTTP/1.1", None, "HTTP/1.0", "HTTP/2.0", None]
    assert out["request_raw"].to_pylist() == [None, "-", None, None, None]


_SHORT = st.one_of(st.none(), st.sampled_from(["-", "", "a", "1.2.3.4", "1.2.3.4:80", "[::1]:443", "::1", "--", "é"]))


@given(st.lists(_SHORT, max_size=30), st.integers(0, 3))
def test_buffer_masks_agree_with_compute(values: list[str | None], cut: int) -> None:
    arr = pa.array(["x"] * cut + values, pa.string()).slice(cut)
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    dash = strbuf.dash_or_empty(arr)
    assert dash is not None
    expected = pc.fill_null(pc.or_(pc.equal(arr, "-"), pc.equal(pc.binary_length(arr), 0)), False)
    assert (dash & valid).tolist() == expected.to_pylist()
    only = strbuf.dash_or_empty(arr, empty=False)
    assert only is not None and (only & valid).tolist() == pc.fill_null(pc.equal(arr, "-"), False).to_pylist()
    colon = strbuf.holding(arr, ord(":"))
    assert colon is not None
    assert (colon & valid).tolist() == pc.fill_null(pc.match_substring(arr, ":"), False).to_pylist()
    assert nullify(arr).to_pylist() == [None if v in ("-", "") else v for v in values]
    assert strbuf.with_nulls(arr, dash).to_pylist() == nullify(arr).to_pylist()
    assert client_ip(arr).to_pylist() == [
        None if v in ("-", "", None) else {"1.2.3.4:80": "1.2.3.4", "[::1]:443": "::1"}.get(v, v) for v in values]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["10/Oct/2000:13:55:36 -0700", "31/Feb/2001:00:00:00 +0000",
                                           "01/Jan/1970:00:00:01 +0100", "10/Oct/2000:13:55:37 -0700"]),
                          st.integers(1, 30)), min_size=1, max_size=12), st.booleans())
def test_clf_runs_read_once_agree_with_each_value_alone(runs: list[tuple[str, int]], braced: bool) -> None:
    texts = [f"[{t}]" if braced else t for t, k in runs for _ in range(k)]
    micros, ok, _ = parse_clf_fixed(pa.array(texts))
    alone = [parse_clf_fixed(pa.array([t])) for t in texts]
    assert ok.tolist() == [bool(a[1][0]) for a in alone]
    assert micros[ok].tolist() == [int(a[0][0]) for a in alone if a[1][0]]


def test_clf_values_of_other_widths_are_left_to_the_general_parser() -> None:
    texts = ["10/Oct/2000:13:55:36 -0700"] * 70 + ["10/Oct/2000:13:55:36.120 -0700", "-"]
    micros, ok, tried = parse_clf_fixed(pa.array(texts))
    assert ok.tolist() == [True] * 70 + [False, False] and tried.tolist() == [True] * 70 + [False, False]
    assert set(micros[:70].tolist()) == {971211336000000}


def test_fallback_pieces_converted_together_keep_line_order_and_rejects() -> None:
    good = '1.1.1.{i} - - [10/Oct/2000:13:55:{i:02d} -0700] "GET /{i} HTTP/1.1" 200 5 "-" "ua"'
    lines = [good.format(i=i) for i in range(40)]
    lines[3] = '1.1.1.3 - - [10/Oct/2000:13:55:03 -0700] "GET /3 HTTP/1.1" 200 5 "-" "a\\"b"'  # split plan
    lines[7] = '1.1.1.7 - - [10/Oct/2000:13:55:07 -0700] "GET /7 HTTP/1.1" 200 5 "-" "cut'  # full regex
    lines[9] = '1.1.1.9 - - [31/Feb/2000:13:55:09 -0700] "GET /9 HTTP/1.1" 200 5 "-" "c\\"d"'  # split, bad time
    lines[12] = '1.1.1.12 - - [31/Feb/2000:13:55:12 -0700] "GET /12 HTTP/1.1" 200 5 "-" "cut2'  # regex, bad time
    lines[20] = "not a log line"
    parsed = get_format("combined").parse(split_lines(Block("s", 1, ("\n".join(lines) + "\n").encode())), {})
    kept = [i for i in range(40) if i not in (9, 12, 20)]
    assert parsed.requests.column("line").to_pylist() == [i + 1 for i in kept]
    assert parsed.requests.column("path").to_pylist() == [f"/{i}" for i in kept]
    assert parsed.requests.column("user_agent").to_pylist()[3] == 'a"b'
    assert parsed.requests.column("user_agent").to_pylist()[7] == "cut"
    assert [(r["line"], r["reason"]) for r in parsed.rejects.to_pylist()] == [
        (21, "does not match the format"), (10, "bad or missing timestamp"), (13, "bad or missing timestamp")]


def test_csv_plan_block_with_a_repaired_line_keeps_the_lines_after_it() -> None:
    # The newline positions move after a repaired line (one bad byte becomes three): the CSV
    # plan reads the repaired bytes with the moved positions.
    rows = [b'1.1.1.%d - - [10/Oct/2000:13:55:36 -0700] "GET /%d HTTP/1.1" 200 5 "-" "ua%d"' % (i, i, i)
            for i in range(30)]
    rows[4] = rows[4].replace(b'"ua4"', b'"u\xffa4"')
    lines = split_lines(Block("s", 1, b"\n".join(rows) + b"\n"))
    assert lines.invalid_utf8 == 1 and lines.raw is not None
    parsed = get_format("combined").parse(lines, {})
    assert parsed.rejects.num_rows == 0
    agents = parsed.requests.column("user_agent").to_pylist()
    assert agents[4] == "u\ufffda4" and agents[5:] == [f"ua{i}" for i in range(5, 30)]
    assert np.array_equal(parsed.requests.column("line").to_numpy(), np.arange(1, 31))


@given(st.lists(st.sampled_from(["200", "2000", "-", "", "٣", "20x", "0", "--", "99999", "١٢"]), min_size=1, max_size=20))
def test_digit_fields_checked_from_the_buffers_agree_with_the_kernels(values: list[str]) -> None:
    from logtrack.formats.variables import COUNT, STATUS
    from logtrack.formats.words import _ascii_digits

    arr = pa.array(values, pa.string())
    for pattern, longest in ((STATUS, 3), (COUNT, None)):
        digits = pc.utf8_is_digit(arr)
        if longest:
            digits = pc.and_(digits, pc.less_equal(pc.binary_length(arr), longest))
        expected = pc.fill_null(pc.or_(digits, pc.equal(arr, "-")), False).to_pylist()
        quick = _ascii_digits(arr, longest)
        assert quick is not None and quick.tolist() == expected, pattern


def test_backslashes_before_no_quote_are_read_by_the_csv_plan() -> None:
    # nginx's `\x22` delimits nothing: the CSV reader takes the line (and the value is still
    # unescaped); Apache's `\"` and a field ending in `\\` leave the line to the other plans.
    line = '1.1.1.{i} - - [10/Oct/2000:13:55:36 -0700] "GET /{i} HTTP/1.1" 200 5 "-" "{ua}"'
    agents = ["plain"] * 100
    agents[2], agents[5], agents[8] = "Alba 10\\x22 Build", 'say \\"hi\\"', "ends \\\\"
    block = Block("s", 1, ("\n".join(line.format(i=i, ua=ua) for i, ua in enumerate(agents)) + "\n").encode())
    lines = split_lines(block)
    marked = lines.escaped_quote_mask()
    assert marked is not None and np.flatnonzero(marked).tolist() == [5, 8]
    template = get_format("combined").templates[0]
    pieces = template.pieces(lines, np.arange(len(lines)))
    assert [i for i in range(100) if i not in (5, 8)] == pieces[0][0].tolist()  # the CSV plan's
    parsed = get_format("combined").parse(split_lines(block), {})
    assert parsed.requests.column("user_agent").to_pylist()[2] == 'Alba 10" Build'
    assert parsed.requests.column("user_agent").to_pylist()[5] == 'say "hi"'
    assert parsed.requests.column("user_agent").to_pylist()[8] == "ends \\"


def test_other_shape_request_lines_are_split_once_per_distinct_line(monkeypatch) -> None:
    from logtrack.formats import reqline

    calls: list[int] = []

    def general(rows: pa.Array) -> dict[str, pa.Array]:
        calls.append(len(rows))
        return split_request_general(rows)

    odd = ["OPTIONS * HTTP/1.1", "CONNECT h.example:443 HTTP/1.1", "GET http://H.example:80/p?q HTTP/1.0", "GET /"]
    block = pa.array(["GET /a HTTP/1.1", *odd, "-", *odd, None, "GET /b?c HTTP/1.1"])
    first = reqline.split_origin_form(block, general)
    again = reqline.split_origin_form(block.slice(1), general)
    assert calls == [len(odd)]  # distinct lines, once: the second block found them all
    expected = split_request_general(block)
    for key, values in expected.items():
        assert first[key].to_pylist() == values.cast(pa.string()).to_pylist(), key
        assert again[key].to_pylist() == values.slice(1).cast(pa.string()).to_pylist(), key
    # A full memo is forgotten; many other-shape lines take `general` at once.
    monkeypatch.setattr(reqline, "MEMO_SIZE", 2)
    few = pa.array(["OPTIONS * HTTP/2.0", "GET /x HTTP/1.1", "PUT * HTTP/2.0", "GET /"])
    assert reqline.split_origin_form(few, general)["path"].to_pylist() == ["*", "/x", "*", "/"]
    assert calls[-1] == 3 and len(reqline._MEMO[general]) == 3
    monkeypatch.setattr(reqline, "MEMO_ROWS", 2)
    many = pa.array(["OPTIONS * HTTP/1.1"] * 3 + ["GET / HTTP/1.1"])
    assert reqline.split_origin_form(many, general)["path"].to_pylist() == ["*"] * 3 + ["/"]
    assert calls[-1] == 3


_SHAPE_CHARS = st.text(alphabet="AZaz09_-/.éH1T", max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SHAPE_CHARS, _SHAPE_CHARS), min_size=1, max_size=20))
def test_method_and_protocol_checked_from_the_bytes_agree_with_the_regexes(pairs: list[tuple[str, str]]) -> None:
    # Methods and protocols up to the window's width are read from the bytes, longer ones by
    # the regexes: both must agree with the general splitter (whose regexes are the reference).
    arr = pa.array(["GET /pad HTTP/1.1"] + [f"{m} /p?q {p}" for m, p in pairs], pa.string())
    fast, general = split_request(arr), split_request_general(arr)
    for key in ("method", "protocol", "path", "query", "request_raw"):
        assert fast[key].to_pylist() == general[key].cast(pa.string()).to_pylist(), key


def test_short_values_keyed_by_their_bytes_are_distinct_and_remembered(monkeypatch) -> None:
    from logtrack.formats import reqline

    values = ["GET", "GET\x00", "HTTP/1", "HTTP/1\x00", "HTTP/1.1", "é", "", "OPTIONSX", "M-SEARCH!"]
    arr = pa.array(values, pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    keys, short = reqline._keys(data, offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64))
    assert short.tolist() == [True] * 6 + [False, True, False]  # 1 to 8 bytes (the last at the buffer's end)
    assert len(set(keys[short].tolist())) == short.sum()
    # Learned keys give the regex's answers; unknown and long values take the regex each time.
    shapes = reqline._Shapes(reqline.PROTOCOL_RE)
    monkeypatch.setattr(reqline._Shapes, "LIMIT", 4)
    seen: list[int] = []

    def strings(rows: np.ndarray) -> pa.Array:
        seen.append(len(rows))
        return arr.take(pa.array(rows))

    rows = np.ones(len(values), dtype=bool)
    expected = [False, False, True, False, True, False, False, False, False]
    for _ in range(2):
        fits = shapes.fits(data, offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64), rows, strings)
        assert fits.tolist() == expected
    assert seen == [len(values), 2]  # then only the unkeyed ones ("" and the long one)
    assert (len(shapes.good), len(shapes.bad)) == (2, 5)
    new = pa.array(["HTTP/2"])
    fits = shapes.fits(np.frombuffer(new.buffers()[2], dtype=np.uint8), np.array([0]), np.array([6]),
                       np.array([True]), lambda rows: new.take(pa.array(rows)))
    assert fits.tolist() == [True] and (len(shapes.good), len(shapes.bad)) == (1, 0)  # over the limit: forgotten


_WORD = st.sampled_from(["[10/Oct/2000:13:55:36", "[11/Oct/2000:13:55:37", "+0100]", "-0700]", "é", "ab", "", "x y"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_WORD, _WORD), max_size=20), st.integers(0, 3), st.booleans())
def test_join_words_agrees_with_the_join_kernel(pairs: list[tuple[str, str]], head: int, nulls: bool) -> None:
    left = pa.array(["[pad/Oct/2000:00:00:00"] * head + [a for a, _ in pairs] + ([None] if nulls else []), pa.string())
    right = pa.array(["+0000]"] * head + [b for _, b in pairs] + (["-"] if nulls else []), pa.string())
    for a, b in ((left, right), (left.slice(head), right.slice(head))):  # sliced: offsets not from 0
        joined = join_words(a, b)
        joined.validate(full=True)
        assert joined.equals(pc.binary_join_element_wise(a, b, " "))


def test_join_words_lays_fixed_width_words_side_by_side() -> None:
    left = pa.array(["[10/Oct/2000:13:55:36", "[11/Oct/2000:13:55:37"])
    right = pa.array(["-0700]", "+0100]"])
    before = pa.total_allocated_bytes()
    joined = join_words(left, right)
    assert pa.total_allocated_bytes() == before  # numpy's matrix, not the kernel's Arrow buffers
    assert joined.to_pylist() == ["[10/Oct/2000:13:55:36 -0700]", "[11/Oct/2000:13:55:37 +0100]"]


_TEXT = st.one_of(st.none(), st.sampled_from(["", "a", "Mozilla \\\"x\\\"", "é\\x22", "[::1]:80", "1.2.3.4:5"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(_TEXT, max_size=30), st.lists(st.sampled_from(["", "b", "long replacement é", None]), max_size=30),
       st.integers(0, 3))
def test_replace_rows_agrees_with_replace_with_mask(values: list[str | None], new: list[str | None], head: int) -> None:
    arr = pa.array(["pad"] * head + values, pa.string()).slice(head)
    rows = np.flatnonzero(np.array([i % 3 != 1 for i in range(len(values))], dtype=bool))[:len(new)]
    replacement = pa.array(new[:len(rows)], pa.string())
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    expected = pc.replace_with_mask(arr, pa.array(mask), replacement) if len(rows) == len(replacement) else None
    spliced = strbuf.replace_rows(arr, rows, replacement)
    if spliced is None:  # only when it cannot tell: nulls to put in or take out, or length mismatch
        assert replacement.null_count or len(rows) != len(replacement) or arr.take(pa.array(rows)).null_count
        return
    spliced.validate(full=True)
    assert spliced.equals(expected)


def test_unescape_and_client_ip_splice_the_few_rows_they_change() -> None:
    agents = pa.array(["Mozilla/5.0"] * 50 + ['Alba 10\\x22 Build', 'a \\"b\\"'] + ["curl/8"] * 50)
    candidates = np.zeros(len(agents), dtype=bool)
    candidates[50:52] = True
    before = pa.total_allocated_bytes()
    out = unescape(agents, candidates)
    assert out.to_pylist()[49:53] == ["Mozilla/5.0", 'Alba 10" Build', 'a "b"', "curl/8"]
    assert pa.total_allocated_bytes() - before < 1024  # spliced in numpy, not rebuilt by a kernel
    ips = pa.array(["1.2.3.4"] * 50 + ["[2001:db8::1]:443", "5.6.7.8:80"] + ["9.9.9.9"])
    assert client_ip(ips).to_pylist()[49:] == ["1.2.3.4", "2001:db8::1", "5.6.7.8", "9.9.9.9"]
