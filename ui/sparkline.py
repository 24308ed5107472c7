"""Sparklines for the Home page's run cards, without a chart library (it must paint fast)."""

from __future__ import annotations


def sparkline_svg(values: list[float], width: int = 220, height: int = 44, colour: str = "#4f46e5") -> str:
    """A tiny inline SVG line chart: cheap to send and to draw (no chart library on the Home page)."""
    points = [v for v in values if v == v]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 4) / (len(points) - 1)
    coords = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}"
                      for i, v in enumerate(points))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-linejoin="round" points="{coords}"/></svg>')
