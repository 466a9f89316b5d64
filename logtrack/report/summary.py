"""The terminal summary of `logtrack report`: plain text lines or a rich renderable.

The run's own figures (lines, parsed, rejected) come from `run_info["counts"]`; the audience
figures (requests, bot share, visitors, sessions, events, top pages) from the reports, i.e. over
the whole dataset in DIR, as in report.html. Log strings are wrapped in `rich.text.Text`, so a
path like `/[bold]` is printed as is, never read as rich markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from rich.console import RenderableType

from .svg import fmt


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _events_by_name(reports: dict[str, pa.Table], limit: int) -> list[tuple[str, int]]:
    events = reports.get("events_by_day")
    if events is None or events.num_rows == 0:
        return []
    totals = events.group_by("event_name").aggregate([("events", "sum")])
    totals = totals.sort_by([("events_sum", "descending"), ("event_name", "ascending")]).slice(0, limit)
    return list(zip(totals["event_name"].to_pylist(), totals["events_sum"].to_pylist(), strict=True))


def _top_pages(reports: dict[str, pa.Table], limit: int) -> list[tuple[str, int]]:
    pages = reports.get("top_pages")
    if pages is None:
        return []
    pages = pages.slice(0, limit)
    return list(zip(pages["path"].to_pylist(), pages["pageviews"].to_pylist(), strict=True))


def summary_rows(reports: dict[str, pa.Table], run_info: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures as (label, value) pairs, in display order."""
    counts = run_info.get("counts") or {}
    totals_table = reports.get("totals")
    totals = totals_table.to_pylist()[0] if totals_table is not None and totals_table.num_rows else {}
    lines, rejected = counts.get("lines"), counts.get("rejected")
    rate = f" ({rejected / lines * 100:.2f}%)" if lines and rejected is not None else ""
    rows = [("lines", fmt(lines)), ("parsed", fmt(counts.get("parsed"))), ("rejected", fmt(rejected) + rate)]
    rows += [("requests", fmt(totals.get("requests"))), ("bot share", _pct(totals.get("bot_share"))),
             ("pageviews", fmt(totals.get("pageviews"))), ("visitors", fmt(totals.get("visitors"))),
             ("sessions", fmt(totals.get("sessions"))), ("events", fmt(totals.get("events")))]
    return rows


def summary_lines(reports: dict[str, pa.Table], run_info: dict[str, Any], limit: int = 5) -> list[str]:
    """The summary as plain text lines (for a log file or a non-terminal stdout)."""
    out = [f"{label:<10} {value:>14}" for label, value in summary_rows(reports, run_info)]
    events = _events_by_name(reports, limit)
    if events:
        out.append("events by name:")
        out += [f"  {fmt(n):>12}  {name}" for name, n in events]
    pages = _top_pages(reports, limit)
    if pages:
        out.append("top pages:")
        out += [f"  {fmt(n):>12}  {'(none)' if path is None else path}" for path, n in pages]
    return out


def summary_renderable(reports: dict[str, pa.Table], run_info: dict[str, Any], limit: int = 5) -> RenderableType:
    """The summary as rich tables (for a terminal): headline figures, events, top pages."""
    # rich is imported here, not with the module: `report --quiet` and piped output never use it
    # (≈10 ms of every run's start-up).
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Table(show_header=False, box=None, padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(justify="right")
    for label, value in summary_rows(reports, run_info):
        head.add_row(label, value)
    parts: list[RenderableType] = [head]
    for title, pairs in (("Events by name", _events_by_name(reports, limit)),
                         ("Top pages", _top_pages(reports, limit))):
        if not pairs:
            continue
        table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
        table.add_column(justify="right")
        table.add_column(overflow="fold")
        for name, n in pairs:
            table.add_row(fmt(n), Text("(none)" if name is None else str(name)))
        parts.append(table)
    return Group(*parts)
