"""Deterministic generator of realistic access logs, for benchmarks, tests and `sample_logs/`.

    python benchmarks/generate.py --lines 1000000 --seed 1 -o benchmarks/data/1m.log
    python benchmarks/generate.py --format shop --lines 4500 --seed 20260302 \\
        -o sample_logs/shop-access.log --rotate 3 --truth /tmp/shop-truth.json

`combined`: nginx/Apache combined lines from pools built once per run (visitors with real user
agents, requests, referrers), timestamps following a daily traffic curve over several days, and
~0.1% quirky lines (see QUIRKS). `shop`: the simulated shop of `shopsim.py`, with ground truth.
The same seed always gives the same bytes (`random.Random(seed)`; gzip parts have mtime 0).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

if __package__:
    from . import combined_pools as cp
    from . import shopsim
    from .logpools import ClfClock, parse_offset
else:  # run as a script, or imported with benchmarks/ on sys.path
    import combined_pools as cp
    import shopsim
    from logpools import ClfClock, parse_offset

CHUNK = 20_000
QUIRK_RATE = 0.001  # share of combined lines that are quirky (all still valid log lines)
OUT_OF_ORDER_RATE = 0.001  # share of combined lines logged a few seconds late
OFFSETS = ("+0000", "+0000", "+0100", "+0200", "-0400", "-0700", "+0530", "+0900")


def _diurnal(minute_of_day: int) -> float:
    """Relative traffic by local time of day: a night trough and an evening peak."""
    h = minute_of_day / 60.0
    return 0.35 + 0.65 * (0.5 - 0.5 * math.cos((h - 4.0) / 24.0 * 2 * math.pi)) + (0.25 if 19 <= h < 22 else 0.0)


def _seconds(rng: random.Random, lines: int, start: int, days: int, shift: int) -> Iterator[int]:
    """Local epoch seconds for `lines` lines, non-decreasing, spread by the daily curve.

    Each minute gets a share of the lines proportional to its weight (cumulative rounding keeps
    the total exact); inside a minute line j lands in slot j with jitter, which stays monotone.
    """
    minutes = days * 1440
    first = (start + shift) // 60 % 1440
    weights = [_diurnal((first + m) % 1440) * (0.85 + 0.3 * rng.random()) for m in range(minutes)]
    total = sum(weights)
    rnd = rng.random
    acc = 0.0
    prev = 0
    for m, w in enumerate(weights):
        acc += w
        cur = round(acc / total * lines) if m < minutes - 1 else lines
        count, prev = cur - prev, cur
        if count:
            base = start + shift + m * 60
            step = 60.0 / count
            for j in range(count):
                yield base + int((j + rnd()) * step)


def combined_defaults(seed: int) -> dict:
    """The start, span and UTC offset a seed picks when the caller gives none."""
    rng = random.Random(f"defaults-{seed}")
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(500))
    return {"start": start, "days": rng.randint(3, 7), "utc_offset": rng.choice(OFFSETS)}


def generate_combined(
    lines: int,
    seed: int = 0,
    *,
    start: datetime | None = None,
    days: int | None = None,
    utc_offset: str | None = None,
    summary: dict | None = None,
) -> Iterator[bytes]:
    """Yield a combined-format log of exactly `lines` lines as byte chunks.

    `summary`, when given, is filled with the run's parameters and its quirky-line counts.
    """
    defaults = combined_defaults(seed)
    start = start or defaults["start"]
    days = days or defaults["days"]
    offset = utc_offset or defaults["utc_offset"]
    rng = random.Random(seed)
    pools = cp.build_pools(rng, lines)
    clock = ClfClock(start, days, offset)
    shift = int(parse_offset(offset).total_seconds())
    start_epoch = int(start.timestamp())
    day_prefix, hms, day0 = clock.days, clock.hms, clock.local_day0
    secs = _seconds(rng, lines, start_epoch, days, shift)
    heads, tails, vcum = pools.heads, pools.tails, pools.visitor_cum
    reqs, refs, rcum = pools.requests, pools.referers, pools.referer_cum
    vidx = range(len(heads))
    quirk_counts: Counter[str] = Counter()
    cycle: list[str] = []
    carry = 0.0
    late = 0
    done = 0
    while done < lines:
        k = min(CHUNK, lines - done)
        vis = rng.choices(vidx, cum_weights=vcum, k=k)
        local = [s - day0 for s in islice(secs, k)]
        out = [
            heads[v] + day_prefix[s // 86400] + hms[s % 86400] + q + r + tails[v]
            for v, s, q, r in zip(
                vis, local, rng.choices(reqs, k=k), rng.choices(refs, cum_weights=rcum, k=k), strict=True
            )
        ]
        # A few lines were logged late (request start time, written at completion).
        for i in rng.sample(range(k), int(k * OUT_OF_ORDER_RATE)):
            s = local[i] - rng.randint(2, 40)
            out[i] = heads[vis[i]] + day_prefix[s // 86400] + hms[s % 86400] + out[i][out[i].index("] "):]
            late += 1
        carry += k * QUIRK_RATE
        for i in rng.sample(range(k), int(carry)):
            if not cycle:  # every kind once per cycle, in a shuffled order: all kinds show up early
                cycle = sorted(cp.QUIRKS)
                rng.shuffle(cycle)
            kind = cycle.pop()
            s = local[i]
            out[i] = cp.QUIRKS[kind](rng, heads[vis[i]], day_prefix[s // 86400] + hms[s % 86400])
            quirk_counts[kind] += 1
        carry -= int(carry)
        done += k
        yield "".join(out).encode("utf-8", "surrogateescape")
    if summary is not None:
        summary.update(
            format="combined",
            seed=seed,
            lines=lines,
            start=start.isoformat(),
            days=days,
            utc_offset=offset,
            out_of_order_lines=late,
            quirky_lines=dict(sorted(quirk_counts.items())),
            distinct_visitors_in_pool=len(heads),
            distinct_requests_in_pool=len(reqs),
        )


def write_combined(path: str | Path, lines: int, seed: int = 0, **kw) -> dict:
    """Write a combined log to `path` (`-` for stdout); return its summary."""
    summary: dict = {}
    out = sys.stdout.buffer if str(path) == "-" else open(path, "wb")
    try:
        for chunk in generate_combined(lines, seed, summary=summary, **kw):
            out.write(chunk)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return summary


def _gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (no name, mtime 0), so the bytes depend only on the content."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def write_shop(path: str | Path, lines: int, seed: int = 0, rotate: int = 1, **kw) -> dict:
    """Write the shop simulation to `path`, split into a rotated set when `rotate` > 1.

    Rotated parts follow logrotate's names: `path` (newest), `path.1`, then `path.2.gz`, … (older
    parts gzip'd). Each part holds one `span / rotate` slice of the run, by the time lines were
    written. Returns the ground truth (see `shopsim.simulate`).
    """
    log = shopsim.simulate(lines, seed, **kw)
    path = Path(path)
    parts = log.split(rotate)
    for age, part in enumerate(reversed(parts)):  # age 0 = the live file
        data = b"".join(part)
        if age == 0:
            path.write_bytes(data)
        elif age == 1:
            path.with_name(f"{path.name}.1").write_bytes(data)
        else:
            path.with_name(f"{path.name}.{age}.gz").write_bytes(_gzip_bytes(data))
    truth = dict(log.truth)
    truth["files"] = {f"{path.name}{'' if a == 0 else f'.{a}' if a == 1 else f'.{a}.gz'}": len(p)
                      for a, p in enumerate(reversed(parts))}
    return truth


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, required=True, help="exact number of lines to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True, help="output file (`-` = stdout, combined only)")
    ap.add_argument("--format", choices=("combined", "shop"), default="combined")
    ap.add_argument("--truth", help="write the ground truth (shop) or the run summary (combined) as JSON")
    ap.add_argument("--start", help="UTC start, ISO 8601 (default: picked by the seed / shop: 2026-03-02)")
    ap.add_argument("--days", type=int, help="span in days (default: 3-7 by seed / shop: 3)")
    ap.add_argument("--utc-offset", help="offset written in timestamps, e.g. +0100")
    ap.add_argument("--rotate", type=int, default=1, help="shop: split into N rotated files (FILE, FILE.1, FILE.2.gz…)")
    args = ap.parse_args(argv)
    kw = {}
    if args.start:
        kw["start"] = datetime.fromisoformat(args.start).astimezone(UTC)
    if args.days:
        kw["days"] = args.days
    if args.utc_offset:
        kw["utc_offset"] = args.utc_offset
    t0 = time.perf_counter()
    if args.format == "combined":
        truth = write_combined(args.output, args.lines, args.seed, **kw)
    else:
        truth = write_shop(args.output, args.lines, args.seed, rotate=args.rotate, **kw)
    elapsed = time.perf_counter() - t0
    if args.truth:
        Path(args.truth).write_text(json.dumps(truth, indent=2, sort_keys=False) + "\n")
    print(f"{args.lines} lines in {elapsed:.2f} s ({args.lines / elapsed:,.0f} lines/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
