"""Plain-text run summaries: lines read, parsed, rejected, skipped, by input, and time taken."""

from __future__ import annotations

from .pipeline import RunStats


def parse_summary(stats: RunStats) -> str:
    """The summary `logtrack parse` prints; states the invariant read = parsed + rejected + skipped."""
    rows = [("input", "format", "read", "parsed", "rejected", "skipped")]
    for s in stats.sources.values():
        rows.append((s.source, s.format or "-", f"{s.lines_read:,}", f"{s.parsed:,}", f"{s.rejected:,}", f"{s.skipped:,}"))
    if len(stats.sources) > 1:
        rows.append(("total", "", f"{stats.total('lines_read'):,}", f"{stats.total('parsed'):,}",
                     f"{stats.total('rejected'):,}", f"{stats.total('skipped'):,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    read, parsed = stats.total("lines_read"), stats.total("parsed")
    rejected, skipped = stats.total("rejected"), stats.total("skipped")
    elapsed = stats.elapsed_s
    lines.append(f"{read:,} lines read = {parsed:,} parsed + {rejected:,} rejected + {skipped:,} skipped"
                 f" in {elapsed:.2f} s ({read / elapsed if elapsed else 0:,.0f} lines/s)")
    extras = []
    if stats.total("filtered"):
        extras.append(f"{stats.total('filtered'):,} parsed requests outside --since/--until/--host left out")
    if stats.total("invalid_utf8"):
        extras.append(f"{stats.total('invalid_utf8'):,} lines held bytes that are not UTF-8 (decoded with replacement)")
    extras.extend(f"error: {e}" for e in stats.errors)
    return "\n".join(lines + extras)
