"""What a line is (DESIGN §2): endings, skipped lines, UTF-8 repair, oversized lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logtrack.lines import split_lines
from logtrack.sources import Block


def test_line_endings_and_skips() -> None:
    data = b"a\r\nb\rc\n\n   \n# comment\nd\n#Fields: x y\nlast"
    lines = split_lines(Block("s", 10, data))
    assert lines.text.to_pylist() == ["a", "b\rc", "d", "last"]
    assert lines.line.to_pylist() == [10, 11, 15, 17]
    assert lines.skipped == 4
    assert lines.comments == [(14, "# comment"), (16, "#Fields: x y")]


def test_invalid_utf8_is_replaced_and_counted_not_rejected() -> None:
    lines = split_lines(Block("s", 1, b"ok\nbad \xff\xfe here\nok2\n"))
    assert lines.text.to_pylist() == ["ok", "bad \ufffd\ufffd here", "ok2"]
    assert lines.invalid_utf8 == 1


def test_overlong_line_is_set_aside() -> None:
    lines = split_lines(Block("s", 1, b"short\n" + b"y" * 50 + b"\nend\n"), max_line_bytes=20)
    assert lines.text.to_pylist() == ["short", "end"]
    assert [n for n, _ in lines.too_long] == [2]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), min_size=1), max_size=30))
def test_round_trip_of_arbitrary_lines(texts: list[str]) -> None:
    data = "".join(t + "\n" for t in texts).encode("utf-8")
    lines = split_lines(Block("s", 1, data))
    kept = [(i + 1, t) for i, t in enumerate(texts) if t.strip(" \t\n\r\f\v") and not t.startswith("#")]
    assert list(zip(lines.line.to_pylist(), lines.text.to_pylist(), strict=True)) == kept
    assert len(lines) + lines.skipped == len(texts)


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), min_size=1, max_size=20))
def test_invalid_utf8_repair_matches_per_line_replacement(raw: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in raw)
    lines = split_lines(Block("s", 1, data))
    decoded = [line.decode("utf-8", "replace") for line in raw]
    kept = [t for t in decoded if t.strip(" \t\n\r\f\v") and not t.startswith("#")]
    assert lines.text.to_pylist() == kept
    assert lines.invalid_utf8 == sum(1 for line in raw if _invalid(line))


def _invalid(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@given(st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b and b"\r" not in b), min_size=1, max_size=40),
       st.booleans())
def test_invalid_utf8_repair_by_chunks_matches_per_line_replacement(raw: list[bytes], last_newline: bool) -> None:
    # Chunks of 3 lines: valid chunks are skipped, adjacent invalid ones are decoded as one span,
    # and a last line without a newline is checked too.
    import logtrack.lines as lines_module

    chunk = lines_module.UTF8_CHUNK
    lines_module.UTF8_CHUNK = 3
    try:
        data = b"\n".join(raw) + (b"\n" if last_newline else b"")
        lines = split_lines(Block("s", 1, data))
    finally:
        lines_module.UTF8_CHUNK = chunk
    decoded = [line.decode("utf-8", "replace") for line in raw]
    kept = [t for t in decoded if t.strip(" \t\n\r\f\v") and not t.startswith("#")]
    assert lines.text.to_pylist() == kept
    assert lines.invalid_utf8 == sum(1 for line in raw if _invalid(line))


def test_invalid_utf8_in_distant_chunks_and_surrogates() -> None:
    # Arrow's validator and Python's strict decoder agree on what is invalid (encoded surrogates,
    # overlong forms, truncated characters at the end of the block).
    good = "é ok ✓\n".encode() * 2000
    data = good + b"bad \xed\xa0\x80 surrogate\n" + good + b"overlong \xc0\xaf\n" + good + b"cut \xe2\x82"
    lines = split_lines(Block("s", 1, data))
    assert lines.invalid_utf8 == 3
    texts = lines.text.to_pylist()
    assert texts[2000] == "bad \ufffd\ufffd\ufffd surrogate"
    assert texts[4001] == "overlong \ufffd\ufffd"
    assert texts[-1] == "cut \ufffd"
    assert texts[:2000] == ["é ok ✓"] * 2000
