"""Small inline SVG charts for the dashboard: stacked bars over days, with cap and rate lines.

No script and no external assets: each bar segment carries a <title> so a
hover shows its value, and the page renders the same offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")


@dataclass
class Series:
    name: str
    values: Sequence[float]
    color: str


@dataclass
class Line:
    """A horizontal line (a cap) or, with `values`, a polyline on the right-hand axis (a rate)."""

    name: str
    color: str
    at: float | None = None
    values: Sequence[float | None] | None = None
    right_max: float = 1.0


def _nice(top: float) -> float:
    """A round axis maximum at or above `top`: 1, 2 or 5 times a power of ten (five round gridline steps)."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(top))
    return next(magnitude * step for step in (1, 2, 5, 10) if magnitude * step >= top)


def stacked_bars(labels: Sequence[str], series: Sequence[Series], *, fmt: Callable[[float], str],
                 lines: Sequence[Line] = (), width: int = 1100, height: int = 220, title: str = "") -> str:
    """Stacked bars, one per label (a day), with optional cap lines and a rate line."""
    pad_l, pad_r, pad_t, pad_b = 64, 48, 12, 28
    n = max(1, len(labels))
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    caps = [ln.at for ln in lines if ln.at is not None]
    top = _nice(max([*totals, *caps, 0.0]) * 1.05)
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    bw = plot_w / n

    def y(v: float) -> float:
        return pad_t + plot_h - (v / top) * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for k in range(6):
        v = top * k / 5
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" class="axis" text-anchor="end">{escape(fmt(v))}</text>')
    for i, label in enumerate(labels):
        base = 0.0
        x = pad_l + i * bw
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            h = v / top * plot_h
            out.append(f'<rect x="{x + bw * 0.1:.1f}" y="{y(base + v):.1f}" width="{max(bw * 0.8, 0.5):.1f}" '
                       f'height="{max(h, 0.5):.1f}" fill="{s.color}"><title>{escape(label)} · {escape(s.name)}: '
                       f'{escape(fmt(v))}</title></rect>')
            base += v
    step = max(1, n // 10)
    for i in range(0, len(labels), step):
        out.append(f'<text x="{pad_l + (i + 0.5) * bw:.1f}" y="{height - 8}" class="axis" text-anchor="middle">'
                   f'{escape(labels[i][5:] if len(labels[i]) == 10 else labels[i])}</text>')
    for ln in lines:
        if ln.at is not None:
            out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(ln.at):.1f}" y2="{y(ln.at):.1f}" '
                       f'stroke="{ln.color}" stroke-dasharray="6 4" stroke-width="1.5"><title>{escape(ln.name)}: '
                       f'{escape(fmt(ln.at))}</title></line>'
                       f'<text x="{width - pad_r + 4}" y="{y(ln.at) + 4:.1f}" class="axis" fill="{ln.color}">cap</text>')
        elif ln.values is not None:
            pts = [f"{pad_l + (i + 0.5) * bw:.1f},{pad_t + plot_h - (v / ln.right_max) * plot_h:.1f}"
                   for i, v in enumerate(ln.values) if v is not None]
            if pts:
                out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{ln.color}" stroke-width="1.5">'
                           f'<title>{escape(ln.name)}</title></polyline>'
                           f'<text x="{width - pad_r + 4}" y="{pad_t + 8}" class="axis" fill="{ln.color}">'
                           f'{ln.right_max:.0%}</text>')
    out.append("</svg>")
    return "".join(out)


def hbars(rows: Sequence[tuple[str, float]], *, fmt: Callable[[float], str], width: int = 540,
          title: str = "") -> str:
    """Horizontal bars, one per row (a model, a tool), longest first."""
    row_h, pad_l, pad_r = 22, 190, 90
    height = max(1, len(rows)) * row_h + 8
    top = max([v for _, v in rows] + [0.0]) or 1.0
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, v) in enumerate(rows):
        yy = 4 + i * row_h
        w = (width - pad_l - pad_r) * v / top
        out.append(f'<text x="{pad_l - 6}" y="{yy + 15}" class="axis" text-anchor="end">{escape(label[:28])}</text>'
                   f'<rect x="{pad_l}" y="{yy + 3}" width="{max(w, 0.5):.1f}" height="{row_h - 6}" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: {escape(fmt(v))}</title></rect>'
                   f'<text x="{pad_l + w + 6:.1f}" y="{yy + 15}" class="axis">{escape(fmt(v))}</text>')
    out.append("</svg>")
    return "".join(out)
