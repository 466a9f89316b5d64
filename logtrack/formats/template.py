"""Compile nginx `log_format` and Apache `LogFormat` strings into vectorized parsers.

A template becomes two plans (DESIGN §3, §8):
- a **split plan**: split each line on `"` and run small regexes (≤ 4 groups, RE2's fast
  one-pass matcher) on the short unquoted parts, taking quoted values as they are;
- a **full regex** with one named group per variable, for the rare lines the split plan cannot
  take (escaped quotes inside a field, a last quoted field cut off without its closing quote).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UsageError
from ..lines import Lines
from ..schema import REQUESTS, empty
from .base import LogFormat, Parsed, RowsOf, assemble, rejects_table
from .columns import convert_vars
from .csvplan import csv_piece, csv_plan
from .variables import QUOTED, Var, apache_var, nginx_var
from .words import Segment, split_words

Token = str | Var
MAX_GROUPS = 4  # RE2's one-pass matcher handles at most this many capture groups (DESIGN §8)

_NGINX_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_APACHE_DIRECTIVE = re.compile(r"%(?:[<>!\d,]*)(?:\{([^}]*)\})?([<>]?[a-zA-Z%])")


def tokenize(spec: str) -> list[Token]:
    """Parse `nginx:…` or `apache:…` (default nginx when it has `$`) into tokens."""
    dialect, _, body = spec.partition(":")
    if dialect not in ("nginx", "apache"):
        dialect, body = ("apache" if "%" in spec and "$" not in spec else "nginx"), spec
    tokens: list[Token] = []
    pos = 0
    if dialect == "nginx":
        for m in _NGINX_VAR.finditer(body):
            tokens.append(body[pos:m.start()])
            tokens.append(nginx_var(m.group(1) or m.group(2)))
            pos = m.end()
    else:
        body = body.replace('\\"', '"')
        for m in _APACHE_DIRECTIVE.finditer(body):
            tokens.append(body[pos:m.start()])
            code = m.group(2)
            if code == "%":
                tokens.append("%")
            else:
                tokens.append(apache_var(code, m.group(1)))
            pos = m.end()
    tokens.append(body[pos:])
    merged: list[Token] = []
    for tok in tokens:
        if isinstance(tok, str) and merged and isinstance(merged[-1], str):
            merged[-1] += tok
        elif tok != "":
            merged.append(tok)
    if not any(isinstance(t, Var) for t in merged):
        raise UsageError(f"log format has no variables: {spec!r}")
    return merged


class Template:
    """One compiled template: its variables, full regex and split plan."""

    def __init__(self, spec: str, allow_trailing: bool = False, prefix: str = "",
                 patterns: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.tokens = [
            replace(t, pattern=patterns[t.name]) if isinstance(t, Var) and patterns and t.name in patterns else t
            for t in tokenize(spec)
        ]
        self.vars: list[Var] = [t for t in self.tokens if isinstance(t, Var)]
        self.allow_trailing = allow_trailing
        self.prefix = prefix  # a regex for text some shippers put before the line (syslog)
        self.full_regex = self._full_regex()
        self.segments = self._segments()
        self.csv = csv_plan(self.segments) if self.segments is not None and not allow_trailing else None

    # -- full regex -------------------------------------------------------------------------
    def _pattern(self, i: int, quoted: bool, nxt: Token | None) -> str:
        var = self.tokens[i]
        assert isinstance(var, Var)
        if quoted:
            return QUOTED
        if var.pattern.startswith(r"\[") or var.pattern != r"\S+":
            return var.pattern
        if isinstance(nxt, str) and nxt[:1] and not nxt[0].isspace() and nxt[0] not in "\"":
            return rf"[^\s{re.escape(nxt[0])}]+"  # `$host:$port`: stop at the separator
        return var.pattern

    def _full_regex(self) -> str:
        parts = ["^", self.prefix]
        quoted = False
        n_quotes = sum(t.count('"') for t in self.tokens if isinstance(t, str))
        seen_quotes = 0
        for i, tok in enumerate(self.tokens):
            if isinstance(tok, str):
                for ch in tok:
                    if ch == '"':
                        seen_quotes += 1
                        last = seen_quotes == n_quotes and i == len(self.tokens) - 1 and tok.endswith('"')
                        parts.append('(?:"|$)' if last else '"')
                        quoted = not quoted
                    else:
                        parts.append(" +" if ch == " " else re.escape(ch))
            else:
                nxt = self.tokens[i + 1] if i + 1 < len(self.tokens) else None
                parts.append(f"(?P<v{i}>{self._pattern(i, quoted, nxt)})")
        if self.allow_trailing:
            parts.append(r"(?: +(?P<extra>.*))?")
        parts.append("$")
        return "".join(parts)

    # -- split plan -------------------------------------------------------------------------
    def _segments(self) -> list[Segment] | None:
        if self.prefix or not any(isinstance(t, str) and '"' in t for t in self.tokens):
            return None
        segs = [Segment(False, [])]
        for tok in self.tokens:
            if isinstance(tok, str):
                pieces = tok.split('"')
                for j, piece in enumerate(pieces):
                    if j:
                        segs.append(Segment(not segs[-1].quoted, []))
                    if piece:
                        segs[-1].tokens.append(piece)
            else:
                segs[-1].tokens.append(tok)
        return segs

    def _segment_regexes(self, seg: Segment, base: int) -> list[tuple[str, list[tuple[str, int]]]]:
        """Regexes for one segment, each with ≤ MAX_GROUPS groups: [(regex, [(group, var_idx)])]."""
        var_positions = [i for i, t in enumerate(seg.tokens) if isinstance(t, Var)]
        out = []
        for start in range(0, max(len(var_positions), 1), MAX_GROUPS):
            chosen = set(var_positions[start:start + MAX_GROUPS])
            parts, groups = ["^"], []
            for i, tok in enumerate(seg.tokens):
                if isinstance(tok, str):
                    parts.append("".join(" +" if c == " " else re.escape(c) for c in tok))
                    continue
                nxt = seg.tokens[i + 1] if i + 1 < len(seg.tokens) else None
                pat = QUOTED if seg.quoted else self._seg_pattern(tok, nxt)
                if i in chosen:
                    parts.append(f"(?P<g{i}>{pat})")
                    groups.append((f"g{i}", base + i))
                else:
                    parts.append(f"(?:{pat})")
            parts.append("$")
            out.append(("".join(parts), groups))
        return out

    @staticmethod
    def _seg_pattern(var: Var, nxt: Token | None) -> str:
        if var.pattern != r"\S+":
            return var.pattern
        if isinstance(nxt, str) and nxt[:1] and not nxt[0].isspace():
            return rf"[^\s{re.escape(nxt[0])}]+"
        return var.pattern

    def pieces(self, lines: Lines, rows: np.ndarray) -> list[tuple[np.ndarray, dict[str, pa.Array]]]:
        """The lines (`rows` of the block) this template parses, as pieces of (positions in
        `rows`, raw captures): the CSV plan's (when `rows` are a whole clean block), then the
        split plan's, then those only the full regex could take. Line text is only built for
        the lines that get past the CSV plan."""
        n = len(rows)
        out: list[tuple[np.ndarray, dict[str, pa.Array]]] = []
        fallback = np.ones(n, dtype=bool)
        if self.csv is not None and lines.raw is not None and n and n == len(lines):
            assert lines.raw_starts is not None
            escaped_quote = lines.escaped_quote_mask()
            assert escaped_quote is not None
            piece = csv_piece(self.csv, lines.raw, lines.raw_starts, n, escaped_quote)
            if piece is not None and len(piece[0]):
                out.append(piece)
                fallback[piece[0]] = False
        if self.segments is not None and fallback.any():
            rest = np.flatnonzero(fallback)
            idx, raw = self._split_plan(lines.text_of(rows[rest]))
            if len(idx):
                out.append((rest[idx], raw))
                fallback[rest[idx]] = False
        if fallback.any():
            idx = np.flatnonzero(fallback)
            m = pc.extract_regex(lines.text_of(rows[idx]), self.full_regex)
            matched = pc.is_valid(m)
            if pc.any(matched).as_py():
                m = m.filter(matched)
                names = {f"v{i}": t.name for i, t in enumerate(self.tokens) if isinstance(t, Var)}
                if self.allow_trailing:
                    names["extra"] = "extra"
                raw = {name: pc.struct_field(m, group) for group, name in names.items()}
                out.append((idx[matched.to_numpy(zero_copy_only=False)], raw))
        return out

    def _split_plan(self, text: pa.Array) -> tuple[np.ndarray, dict[str, pa.Array]]:
        """Rows of the expected shape (indices into `text`) and their raw captures."""
        assert self.segments is not None
        parts = pc.split_pattern(text, '"')
        ok = pc.equal(pc.list_value_length(parts), len(self.segments)).to_numpy(zero_copy_only=False)
        if not ok.any():
            return np.zeros(0, dtype=np.int64), {}
        idx = np.flatnonzero(ok)
        if len(idx) < len(text):
            parts = parts.filter(pa.array(ok))
        raw: dict[str, pa.Array] = {}
        sub_ok = np.ones(len(parts), dtype=bool)
        base = 0
        for s, seg in enumerate(self.segments):
            part = pc.list_element(parts, s)
            if seg.quoted and len(seg.tokens) == 1 and isinstance(seg.tokens[0], Var):
                raw[seg.tokens[0].name] = part
            elif not any(isinstance(t, Var) for t in seg.tokens):
                literal = "".join(t for t in seg.tokens if isinstance(t, str))
                if literal.strip():
                    pattern = "^" + re.escape(literal).replace(r"\ ", " +") + "$"
                    sub_ok &= pc.fill_null(pc.match_substring_regex(part, pattern), False).to_numpy(zero_copy_only=False)
            elif (words := split_words(part, seg)) is not None:
                values, words_ok = words
                raw.update(values)
                sub_ok &= words_ok
            else:
                for regex, groups in self._segment_regexes(seg, base):
                    m = pc.extract_regex(part, regex)
                    sub_ok &= pc.is_valid(m).to_numpy(zero_copy_only=False)
                    for group, tok_idx in groups:
                        tok = seg.tokens[tok_idx - base]
                        assert isinstance(tok, Var)
                        raw[tok.name] = pc.struct_field(m, group)
            base += len(seg.tokens)
        if sub_ok.all():
            return idx, raw
        keep = pa.array(sub_ok)
        return idx[sub_ok], {k: v.filter(keep) for k, v in raw.items()}


class TemplateFormat(LogFormat):
    """A format made of one or more templates, tried in order for lines the previous missed."""

    def __init__(self, name: str, description: str, templates: list[Template], detectable: bool = True) -> None:
        self.name, self.description, self.templates = name, description, templates
        self.detectable = detectable

    @classmethod
    def from_spec(cls, name: str, spec: str, description: str = "") -> TemplateFormat:
        """A user's own `nginx:…` / `apache:…` layout."""
        return cls(name, description or f"custom layout {spec}", [Template(spec, allow_trailing=False)],
                   detectable=False)

    def parse(self, lines: Lines, state: dict[str, Any]) -> Parsed:
        """Parse a block with the first template that fits each line.

        Rows come out in line order.
        """
        n = len(lines)
        remaining = np.arange(n)
        escaped = lines.backslash_mask()
        parts: list[Parsed] = []
        for tpl in self.templates:
            if not len(remaining):
                break
            taken = np.zeros(len(remaining), dtype=bool)
            variables = {v.name: v for v in tpl.vars}
            if tpl.allow_trailing:
                variables["extra"] = Var("extra", "text", None)
            for local, raw in merge_small(tpl.pieces(lines, remaining)):
                rows = remaining[local]
                taken[local] = True
                whole = len(rows) == n and bool((np.diff(rows) == 1).all())
                sub = lines if whole else RowsOf(lines, rows)
                columns, fields = convert_vars(raw, variables, len(rows), escaped[rows])
                parts.append(assemble(sub, columns, pa.repeat(True, len(rows)), fields))
            remaining = remaining[~taken]
        misses = np.zeros(n, dtype=bool)
        misses[remaining] = True
        rejects = rejects_table(lines, misses, "does not match the format")
        if not parts:
            return Parsed(empty(REQUESTS), rejects)
        requests = parts[0].requests
        if len(parts) > 1 or not _ascending(requests.column("line")):
            requests = in_line_order([p.requests for p in parts])
        return Parsed(requests, pa.concat_tables([rejects] + [p.rejects for p in parts]))


def merge_small(pieces: list[tuple[np.ndarray, dict[str, pa.Array]]]
                ) -> list[tuple[np.ndarray, dict[str, pa.Array]]]:
    """The pieces of one template with all but the largest joined into one: converting a piece
    has a fixed cost (tens of kernel calls) whatever its size, and the split plan and the regex
    usually read a handful of lines each. Rows of the joined piece follow the pieces' order (so
    rejects keep theirs); a captured value a piece lacks is null (not captured)."""
    if len(pieces) < 3:
        return pieces
    big = max(range(len(pieces)), key=lambda i: len(pieces[i][0]))
    small = [p for i, p in enumerate(pieces) if i != big]
    names = list(dict.fromkeys(name for _, raw in small for name in raw))
    raw = {name: pa.concat_arrays([r[name].cast(pa.string()) if name in r else pa.nulls(len(rows), pa.string())
                                   for rows, r in small]) for name in names}
    return [pieces[big], (np.concatenate([rows for rows, _ in small]), raw)]


def _ascending(line: pa.Array | pa.ChunkedArray) -> bool:
    values = line.to_numpy()
    return bool((np.diff(values) > 0).all())


def in_line_order(tables: list[pa.Table]) -> pa.Table:
    """Interleave tables into one table in line order.

    The few rows the fallback plans read go back between slices of the big piece: zero-copy
    slices and a chunked result instead of a take over every column of the block.
    """
    lines = np.concatenate([t.column("line").to_numpy() for t in tables])
    piece = np.concatenate([np.full(t.num_rows, i) for i, t in enumerate(tables)])
    pos = np.concatenate([np.arange(t.num_rows) for t in tables])
    order = np.argsort(lines, kind="stable")
    piece, pos = piece[order], pos[order]
    breaks = np.flatnonzero((np.diff(piece) != 0) | (np.diff(pos) != 1)) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(order)]))
    return pa.concat_tables([tables[piece[a]].slice(pos[a], b - a) for a, b in zip(starts, ends, strict=True)])
