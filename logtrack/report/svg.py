"""Inline SVG charts for report.html, drawn in Python: no script, no network, no dependency.

Charts take plain Python lists (a report has at most a few hundred points). Every label goes
through `esc`, since paths, referrers and user agents come straight from logs; hovering a point
or bar shows its exact value through an SVG `<title>`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"]
WIDTH = 720


def esc(value: object) -> str:
    """HTML-escape any value for text or attribute context (None becomes '')."""
    return "" if value is None else html.escape(str(value), quote=True)


def fmt(value: float | int | None) -> str:
    """A number for people: 1,234 or 12.3 (blank for null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def shorten(text: str, limit: int = 42) -> str:
    """Cut a long label with an ellipsis (the full text stays in the tooltip)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_max(value: float) -> float:
    """Round an axis maximum up to 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _open(chart_id: str, height: int, label: str) -> str:
    return (f'<svg id="{esc(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{esc(label)}" xmlns="http://www.w3.org/2000/svg">')


def empty_chart(chart_id: str, label: str, height: int = 80) -> str:
    """A placeholder chart saying there is no data (the id stays, so layout and tests hold)."""
    return (_open(chart_id, height, label)
            + f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" class="muted">No data</text></svg>')


def _y_axis(top: float, left: int, top_px: int, plot_h: int, plot_w: int) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        y = top_px + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{fmt(value)}</text>')
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: float, max_labels: int = 8) -> list[str]:
    step = max(1, math.ceil(len(labels) / max_labels))
    return [f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="tick">{esc(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, xs, strict=True)) if i % step == 0]


def line_chart(chart_id: str, label: str, x: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> str:
    """Lines over a shared x axis (dates); `series` is [(name, values)], colours from PALETTE."""
    if not x:
        return empty_chart(chart_id, label)
    height, left, top_px, bottom = 260, 64, 12, 36
    plot_w, plot_h = WIDTH - left - 16, height - top_px - bottom
    top = nice_max(max((v or 0) for _, values in series for v in values))
    n = len(x)
    xs = [left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2) for i in range(n)]
    parts = [_open(chart_id, height, label), *_y_axis(top, left, top_px, plot_h, plot_w)]
    for k, (name, values) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        ys = [top_px + plot_h - plot_h * (v or 0) / top for v in values]
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        if n <= 62:
            for a, b, v, day in zip(xs, ys, values, x, strict=True):
                parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}">'
                             f'<title>{esc(name)} {esc(day)}: {fmt(v)}</title></circle>')
    parts += _x_labels(x, xs, height - 12)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(chart_id: str, label: str, labels: Sequence[str | None], values: Sequence[float],
              color: str = PALETTE[0], unit: str = "") -> str:
    """Horizontal bars, largest first as given; long labels are shortened, full in the tooltip."""
    if not labels:
        return empty_chart(chart_id, label)
    row, left, right = 24, 250, 70
    height = row * len(labels) + 8
    plot_w = WIDTH - left - right
    top = max(values) or 1
    parts = [_open(chart_id, height, label)]
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        text = "(none)" if name is None else str(name)
        y = 4 + i * row
        w = max(1.0, plot_w * (value or 0) / top)
        parts.append(
            f'<g><title>{esc(text)}: {fmt(value)}{esc(unit)}</title>'
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" class="label">{esc(shorten(text, 36))}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="2" fill="{color}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" class="value">{fmt(value)}{esc(unit)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(chart_id: str, label: str, x: Sequence[str],
                 series: Sequence[tuple[str, Sequence[float]]], colors: Sequence[str] | None = None) -> str:
    """Vertical columns, stacked when there are several series (status classes per day)."""
    if not x:
        return empty_chart(chart_id, label)
    colors = list(colors or PALETTE)
    height, left, top_px, bottom = 240, 64, 12, 36
    plot_w, plot_h = WIDTH - left - 16, height - top_px - bottom
    totals = [sum((values[i] or 0) for _, values in series) for i in range(len(x))]
    top = nice_max(max(totals))
    slot = plot_w / len(x)
    bar_w = max(1.0, slot * 0.7)
    parts = [_open(chart_id, height, label), *_y_axis(top, left, top_px, plot_h, plot_w)]
    centers = []
    for i, name in enumerate(x):
        cx = left + slot * (i + 0.5)
        centers.append(cx)
        base = top_px + plot_h
        for k, (sname, values) in enumerate(series):
            v = values[i] or 0
            if not v:
                continue
            h = plot_h * v / top
            base -= h
            parts.append(f'<rect x="{cx - bar_w / 2:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colors[k % len(colors)]}"><title>{esc(name)} {esc(sname)}: {fmt(v)}</title></rect>')
    parts += _x_labels(x, centers, height - 12, max_labels=12)
    parts.append("</svg>")
    return "".join(parts)


def legend(series: Sequence[str], colors: Sequence[str] | None = None) -> str:
    """An HTML legend: coloured swatches and names."""
    colors = list(colors or PALETTE)
    items = "".join(f'<span><i style="background:{colors[k % len(colors)]}"></i>{esc(name)}</span>'
                    for k, name in enumerate(series))
    return f'<div class="legend">{items}</div>'
