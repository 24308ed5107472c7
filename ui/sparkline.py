"""The Home page's run cards: text and an inline SVG sparkline, without a chart library (it must paint fast)."""

from __future__ import annotations

from html import escape

from core.store.records import best_of, metric_title
from ui.i18n import t
from ui.resources import duration, status_badge


def sparkline_svg(values: list[float], width: int = 220, height: int = 44, colour: str = "#4f46e5",
                  title: str = "") -> str:
    """A tiny inline SVG line chart: cheap to send and to draw (no chart library on the Home page)."""
    points = [v for v in values if v == v]
    if len(points) < 2:
        return ""
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    step = (width - 4) / (len(points) - 1)
    coords = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}"
                      for i, v in enumerate(points))
    label = f"<title>{escape(title)}</title>" if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img">{label}<polyline fill="none" stroke="{colour}" '
            f'stroke-width="2" stroke-linejoin="round" points="{coords}"/></svg>')


def run_card(run, metric: str, curve: list[float]) -> str:
    """One run as markdown with a little HTML: name and status, data set and model, best watched value, sparkline.

    Names come from users: they sit escaped in HTML blocks (a line that starts with <div>), which
    markdown leaves alone, so they show as typed: no tags, formatting, links or images.
    """
    label = t(metric_title(metric))
    best = best_of(run.summary)
    value = "–" if best is None else (f"{best:.1%}" if metric.endswith("acc") else f"{best:.4g}")
    details = " · ".join(escape(str(part)) for part in (run.dataset or "?", run.model or "?", duration(run.duration_s)))
    line = sparkline_svg(curve, title=t("{metric} by epoch", metric=label))
    return (f"<div style='font-weight:600'>{escape(run.name)}</div>\n\n{status_badge(run.status)}\n\n"
            f"<div style='font-size:0.875rem;opacity:0.65'>{details}</div>\n\n"
            f"<div style='font-size:0.875rem'>{escape(t('best {metric}', metric=label))}</div>"
            f"<div style='font-size:2.25rem;line-height:1.25'>{value}</div>\n\n{line}")
