"""The local engine: read every input, parse it, and merge the batches by time (DESIGN §1, §4).

Each input is read in blocks (`sources`), split into lines (`lines`), and parsed by its format
(named, or detected per input from its first block). Inputs whose time ranges overlap (several
servers' logs of one day) are interleaved by batch start time, and each batch carries a
watermark — a lower bound for the timestamps still to come — so the sessionizer can tell what is
final. Memory holds one parsed batch per input whose time range is open, not the whole input.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError
from .formats import LogFormat, get_format
from .formats.base import Parsed
from .formats.detect import detect
from .formats.template import TemplateFormat
from .lines import Lines, split_lines
from .proxies import apply_trusted_proxies, parse_cidrs
from .schema import REJECTS, TS, empty
from .sources import BLOCK_SIZE, Block, Input, ReadError, input_size, iter_blocks, open_input


@dataclass
class ParseOptions:
    """What selects and shapes the requests of a run (the flags every log-reading command takes)."""

    format: str = "auto"
    log_format: str | None = None
    custom_formats: dict[str, str] = field(default_factory=dict)
    trusted_proxies: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    hosts: tuple[str, ...] = ()
    block_size: int = BLOCK_SIZE


@dataclass
class SourceStats:
    """Counts for one input. Invariant: lines_read == parsed + rejected + skipped."""

    source: str
    size: int | None = None
    format: str | None = None
    lines_read: int = 0
    parsed: int = 0
    rejected: int = 0
    skipped: int = 0
    invalid_utf8: int = 0
    filtered: int = 0  # parsed but outside --since/--until/--host
    error: str | None = None


@dataclass
class RunStats:
    """Counts for a whole run, per input."""

    sources: dict[str, SourceStats] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def total(self, name: str) -> int:
        """Sum of one counter over every input."""
        return sum(getattr(s, name) for s in self.sources.values())

    @property
    def errors(self) -> list[str]:
        """Read errors (truncated or corrupt inputs)."""
        return [s.error for s in self.sources.values() if s.error]

    @property
    def reject_rate(self) -> float:
        """Rejected lines over data lines (parsed + rejected)."""
        data = self.total("parsed") + self.total("rejected")
        return self.total("rejected") / data if data else 0.0

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started


@dataclass
class ParsedBatch:
    """One parsed block: requests, rejects, and the watermark after it (None = no bound)."""

    requests: pa.Table
    rejects: pa.Table
    watermark: datetime | None


def resolve_format(options: ParseOptions) -> LogFormat | None:
    """The format named by the options (None means detect per input)."""
    if options.log_format:
        return TemplateFormat.from_spec("custom", options.log_format)
    if options.format in options.custom_formats:
        return TemplateFormat.from_spec(options.format, options.custom_formats[options.format])
    if options.format in ("auto", "", None):
        return None
    return get_format(options.format)


class _Reader:
    """Parses one input batch by batch, detecting its format from the first block."""

    def __init__(self, inp: Input, options: ParseOptions, fmt: LogFormat | None, stats: SourceStats) -> None:
        self.inp, self.options, self.fmt, self.stats = inp, options, fmt, stats
        self.cidrs = parse_cidrs(options.trusted_proxies)

    def batches(self) -> Iterator[Parsed]:
        stream = open_input(self.inp)
        try:
            blocks = iter_blocks(stream, self.inp.name, self.options.block_size)
            state: dict = {}
            try:
                pending: list[Lines] = []
                for block in blocks:
                    lines = split_lines(block)
                    if self.fmt is None:
                        pending.append(lines)
                        if sum(len(p) for p in pending) == 0 and len(pending) < 4:
                            continue  # only headers so far: detect on the first data lines
                        self._detect(pending)
                        state = self.fmt.new_state()  # type: ignore[union-attr]
                        for p in pending:
                            yield self._parse(p, state)
                        pending = []
                        continue
                    yield self._parse(lines, state)
                for p in pending:  # input ended before any data line
                    self._count(p, None)
            except ReadError as exc:
                self.stats.error = str(exc)
        finally:
            if not self.inp.is_stdin:
                stream.close()

    def _detect(self, pending: list[Lines]) -> None:
        merged = pending[0] if len(pending) == 1 else Lines(
            pending[0].source,
            pa.concat_arrays([p.text for p in pending]),
            pa.concat_arrays([p.line for p in pending]),
            [c for p in pending for c in p.comments],
        )
        result = detect(merged)
        if result.chosen is None:
            raise UsageError(
                f"{self.inp.name}: cannot tell the log format ({result.sample_lines} sample lines); "
                f"best candidates:\n{result.describe()}\nname one with --format or --log-format"
            )
        self.fmt = result.chosen
        self.stats.format = result.chosen.name

    def _count(self, lines: Lines, parsed: Parsed | None) -> None:
        s = self.stats
        n_rej = (parsed.rejects.num_rows if parsed else 0) + len(lines.too_long)
        s.lines_read += len(lines) + lines.skipped + len(lines.too_long)
        s.parsed += parsed.requests.num_rows if parsed else 0
        s.rejected += n_rej
        s.skipped += lines.skipped + (0 if parsed else len(lines))
        s.invalid_utf8 += lines.invalid_utf8

    def _parse(self, lines: Lines, state: dict) -> Parsed:
        assert self.fmt is not None
        parsed = self.fmt.parse(lines, state)
        self._count(lines, parsed)
        rejects = parsed.rejects
        if lines.too_long:
            extra = pa.table({
                "source": [lines.source] * len(lines.too_long),
                "line": [n for n, _ in lines.too_long],
                "reason": ["line longer than the limit (1 MiB); first 1 KiB kept"] * len(lines.too_long),
                "text": [t for _, t in lines.too_long],
            }, schema=REJECTS)
            rejects = pa.concat_tables([rejects, extra])
        return Parsed(self._select(parsed.requests), rejects)

    def _select(self, requests: pa.Table) -> pa.Table:
        if self.cidrs:
            requests = apply_trusted_proxies(requests, self.cidrs)
        opts = self.options
        mask = None
        if opts.since is not None:
            mask = pc.greater_equal(requests["ts"], pa.scalar(opts.since, TS))
        if opts.until is not None:
            m = pc.less(requests["ts"], pa.scalar(opts.until, TS))
            mask = m if mask is None else pc.and_(mask, m)
        if opts.hosts:
            m = pc.is_in(requests["host"], pa.array([h.lower() for h in opts.hosts]))
            mask = m if mask is None else pc.and_(mask, m)
        if mask is None:
            return requests
        kept = requests.filter(pc.fill_null(mask, False))
        self.stats.filtered += requests.num_rows - kept.num_rows
        return kept


def iter_parsed(inputs: list[Input], options: ParseOptions, stats: RunStats) -> Iterator[ParsedBatch]:
    """Parsed batches of every input, interleaved by time, each with its watermark."""
    fmt = resolve_format(options)
    counter = itertools.count()
    heap: list[tuple[float, int, Parsed, Iterator[Parsed]]] = []
    pending: list[tuple[float, int, Input, Iterator[Parsed] | None, Parsed | None]] = []

    def reader(inp: Input, s: SourceStats) -> Iterator[Parsed]:
        return _Reader(inp, options, fmt, s).batches()

    def push(it: Iterator[Parsed], first: Parsed | None = None) -> None:
        parsed = first if first is not None else next(it, None)
        if parsed is not None:
            heapq.heappush(heap, (_key(parsed), next(counter), parsed, it))

    # Peek at each input's first batch for its start time (and to fail fast on an unknown
    # format); files are reopened when the merge reaches their start, so a rotated set holds
    # one open batch at a time. Stdin cannot be reopened: its first batch is kept.
    for inp in inputs:
        s = stats.sources.setdefault(inp.name, SourceStats(inp.name, input_size(inp), fmt.name if fmt else None))
        if len(inputs) == 1:  # nothing to merge with: no need to know where it starts
            pending.append((float("-inf"), next(counter), inp, None, None))
            break
        probe = reader(inp, s if inp.is_stdin else SourceStats(inp.name))
        first = next(probe, None)
        if not inp.is_stdin:
            probe.close()
        start = _key(first) if first is not None else float("-inf")
        pending.append((start, next(counter), inp, probe if inp.is_stdin else None, first if inp.is_stdin else None))
    pending.sort(key=lambda p: (p[0], p[1]))
    while heap or pending:
        while pending and (not heap or pending[0][0] <= heap[0][0]):
            _, _, inp, it, first = pending.pop(0)
            if it is None:
                it = reader(inp, stats.sources[inp.name])
            push(it, first)
        if not heap:
            continue
        _, _, parsed, it = heapq.heappop(heap)
        push(it)
        bounds = [b for b in (heap[0][0] if heap else None, pending[0][0] if pending else None) if b is not None]
        bound = min(bounds) if bounds else None
        watermark = None if bound is None or bound == float("-inf") else datetime.fromtimestamp(bound, tz=UTC)
        yield ParsedBatch(parsed.requests, parsed.rejects if parsed.rejects.num_rows else empty(REJECTS), watermark)


def _key(parsed: Parsed) -> float:
    start = pc.min(parsed.requests["ts"]).as_py() if parsed.requests.num_rows else None
    return start.timestamp() if start else float("-inf")


def parse_lines(lines: list[str], format_name: str, source: str = "<lines>") -> pa.Table:
    """Parse a few lines given as strings (rule tests, docs examples) into a requests table."""
    data = ("\n".join(lines) + "\n").encode("utf-8")
    fmt = get_format(format_name)
    parsed = fmt.parse(split_lines(Block(source, 1, data)), fmt.new_state())
    return parsed.requests.combine_chunks()

