"""`--format auto`: score every detectable format on a sample of lines and pick one (DESIGN §3).

Each format parses the sample; its score is the share of data lines it parsed. Among formats
that parse (nearly) as many lines as the best, the one that fills the most columns per row wins,
so `combined` beats `common` on combined lines and a product's own JSON preset beats the generic
alias table when both read the same lines.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ..lines import Lines
from .base import LogFormat, registry

SAMPLE_LINES = 1000
MIN_SCORE = 0.5
TIME_BUDGET_S = 5.0
TIE = 0.02  # scores this close count as equal; richness decides


@dataclass
class Candidate:
    """How one format fared on the sample."""

    name: str
    matched: int
    total: int
    richness: float

    @property
    def score(self) -> float:
        """Share of the sample's data lines the format parsed."""
        return self.matched / self.total if self.total else 0.0


@dataclass
class Detection:
    """The outcome: the chosen format (or None) and every candidate, best first."""

    chosen: LogFormat | None
    candidates: list[Candidate]
    sample_lines: int

    def describe(self, top: int = 5) -> str:
        """Human-readable list of the top candidates with match rates."""
        rows = [f"  {c.name:<18} {c.matched}/{c.total} lines ({c.score:.0%})" for c in self.candidates[:top]]
        return "\n".join(rows)


def sample_of(lines: Lines, n: int = SAMPLE_LINES) -> Lines:
    """The first `n` data lines of a block, with the `#` header lines that precede them."""
    if len(lines) <= n:
        return lines
    last = lines.line[n - 1].as_py()
    return Lines(lines.source, lines.text.slice(0, n), lines.line.slice(0, n),
                 [c for c in lines.comments if c[0] <= last])


def detect(lines: Lines, formats: dict[str, LogFormat] | None = None,
           budget_s: float = TIME_BUDGET_S) -> Detection:
    """Score formats on `lines` (a sample) and choose the best, or None below MIN_SCORE."""
    formats = formats if formats is not None else registry()
    sample = sample_of(lines)
    total = len(sample)
    deadline = time.monotonic() + budget_s
    results: list[Candidate] = []
    for fmt in formats.values():
        if not fmt.detectable:
            continue
        if time.monotonic() > deadline:
            break
        try:
            parsed = fmt.parse(sample, fmt.new_state())
        except Exception:  # noqa: BLE001 - a format that chokes on foreign input simply scores 0
            continue
        req = parsed.requests
        rows = req.num_rows
        filled = sum(rows - req.column(c).null_count for c in req.column_names if c not in ("source", "line", "fields"))
        if rows and "fields" in req.column_names:
            filled += 0.1 * (pc.sum(pc.list_value_length(req.column("fields").cast(pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))))).as_py() or 0)
        results.append(Candidate(fmt.name, rows, total, filled / rows if rows else 0.0))
    best_score = max((c.score for c in results), default=0.0)

    def rank(c: Candidate) -> tuple[int, float]:
        near_best = c.score >= best_score - TIE
        return (0, -c.richness) if near_best else (1, -c.score)

    results.sort(key=rank)
    chosen = None
    if results and results[0].score >= MIN_SCORE:
        chosen = formats[results[0].name]
    return Detection(chosen, results, total)
