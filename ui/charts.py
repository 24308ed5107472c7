"""Plotly figures for the pages. Long series are downsampled before they reach the browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.i18n import N_, t

MAX_POINTS = 1000
TRAIN_COLOUR, VAL_COLOUR, OTHER_COLOUR = "#4f46e5", "#f97316", "#0ea5e9"


def base_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def _series(frame: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    from core.analysis import downsample
    part = frame[frame.key == key]
    x, y = part.step.to_numpy(dtype=float), part.value.to_numpy(dtype=float)
    return downsample(x, y, MAX_POINTS)


def live_panels(keys: list[str]) -> list[tuple[str, list[str]]]:
    """(title, metric keys) per panel of the live chart, the titles in English (live_figure translates them):
    every loss together, then one panel per other measure (its training and validation curves side by side, so
    a Fréchet distance in the hundreds never flattens an accuracy), then learning rate and throughput, then a CUDA
    run's GPU memory (allocated, reserved, peak) and utilisation."""
    from core.store.records import metric_title

    def base(key: str) -> str:
        for prefix in ("epoch_train_", "train_", "val_"):
            if key.startswith(prefix):
                return key[len(prefix):]
        return key

    measured = [k for k in keys if k.startswith(("train_", "val_"))]
    losses = [k for k in measured if k.endswith("loss")]
    groups: dict[str, list[str]] = {}
    for key in measured:
        if key not in losses:
            groups.setdefault(base(key), []).append(key)
    panels = [(N_("Loss"), losses)] if losses else []
    panels += [(metric_title(name)[:1].upper() + metric_title(name)[1:], group) for name, group in list(groups.items())[:6]]
    panels += [(title, [key]) for title, key in ((N_("Learning rate"), "lr"), (N_("Samples / s"), "samples_per_s"))
               if key in keys]
    memory = [key for key in GPU_MEMORY_KEYS if key in keys]  # CUDA runs only (core.engine.device_stats)
    if memory:
        panels.append((GPU_MEMORY, memory))
    if GPU_USE_KEY in keys:
        panels.append((GPU_USE, [GPU_USE_KEY]))
    return panels


GPU_MEMORY_KEYS = ("gpu_mem_alloc_mb", "gpu_mem_reserved_mb", "gpu_mem_peak_mb")
GPU_TOTAL_KEY, GPU_USE_KEY = "gpu_mem_total_mb", "gpu_util_pct"
GPU_MEMORY, GPU_USE = N_("GPU memory (MB)"), N_("GPU utilisation (%)")  # the metric titles of metrics.toml


def _gpu_panel_axes(fig: go.Figure, frame: pd.DataFrame, title: str, row: int, col: int) -> None:
    """The memory panel starts at 0 and shows the device's total as a dotted line; utilisation runs 0-100 %."""
    if title == GPU_USE:
        fig.update_yaxes(range=[0, 105], row=row, col=col)
        return
    fig.update_yaxes(rangemode="tozero", row=row, col=col)
    total = frame.value[frame.key == GPU_TOTAL_KEY]
    if len(total) and np.isfinite(total.iloc[-1]):
        fig.add_hline(y=float(total.iloc[-1]), line=dict(color="#64748b", width=1, dash="dot"), row=row, col=col,
                      annotation_text=t("total {mb} MB", mb=f"{total.iloc[-1]:,.0f}"),
                      annotation_position="bottom left", annotation_font=dict(size=10, color="#475569"))


def live_figure(frame: pd.DataFrame) -> go.Figure:
    """The metrics of one run in small panels sharing the step axis: training per log window (lines),
    validation per epoch (dashed, with markers). Each panel has its own legend inside its corner, and within
    a panel every curve has its own colour (training and validation of one measure never look alike)."""
    from core.analysis import metric_mode
    from core.store.records import metric_title
    panels = live_panels(list(dict.fromkeys(frame.key)))
    rows = max(1, (len(panels) + 1) // 2)
    fig = make_subplots(rows=rows, cols=2, vertical_spacing=min(0.16, 0.5 / rows), horizontal_spacing=0.08,
                        subplot_titles=[t(title) for title, _ in panels])
    base_layout(fig, 80 + 250 * rows)  # first: the panels' own legends below replace its single legend
    colours = [TRAIN_COLOUR, VAL_COLOUR, *[c for c in PALETTE if c not in (TRAIN_COLOUR, VAL_COLOUR)]]
    for index, (title, keys) in enumerate(panels):
        row, col = index // 2 + 1, index % 2 + 1
        legend = "legend" if index == 0 else f"legend{index + 1}"
        for number, key in enumerate(keys):
            x, y = _series(frame, key)
            if len(x) == 0:
                continue
            validation = key.startswith("val_")
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if validation else "lines", name=t(metric_title(key)),
                                     legend=legend, showlegend=len(keys) > 1, line=dict(color=colours[number % len(colours)], width=2,
                                                              dash="dash" if validation else "solid")),
                          row=row, col=col)
        subplot = fig.get_subplot(row, col)
        rising = metric_mode(keys[0]) == "max"  # curves that climb end top-right: their legend goes below them
        fig.update_layout({legend: dict(x=subplot.xaxis.domain[1], y=subplot.yaxis.domain[0 if rising else 1],
                                        xanchor="right", yanchor="bottom" if rising else "top",
                                        bgcolor="rgba(255,255,255,0.75)", font=dict(size=11), orientation="v")})
        if title in ("Learning rate", "Samples / s"):
            fig.update_yaxes(rangemode="tozero", exponentformat="e", row=row, col=col)
        elif title in (GPU_MEMORY, GPU_USE):
            _gpu_panel_axes(fig, frame, title, row, col)
    fig.update_xaxes(title_text=t("step"), row=rows)
    fig.update_layout(margin=dict(t=40))
    return fig


def schedule_figure(lrs: list[float], steps_per_epoch: int) -> go.Figure:
    steps = np.arange(len(lrs))
    x, y = steps.astype(float), np.asarray(lrs, dtype=float)
    if len(x) > MAX_POINTS:
        from core.analysis import downsample
        x, y = downsample(x, y, MAX_POINTS)
    fig = go.Figure(go.Scatter(x=x / max(1, steps_per_epoch), y=y, mode="lines", line=dict(color=TRAIN_COLOUR),
                               fill="tozeroy", name=t("learning rate")))
    fig.update_xaxes(title_text=t("epoch"))
    fig.update_yaxes(title_text=t("learning rate"), exponentformat="e")
    return base_layout(fig, 220)


def class_counts_figure(classes: list[str], train: list[int], val: list[int]) -> go.Figure:
    fig = go.Figure([go.Bar(x=classes, y=train, name=t("train"), marker_color=TRAIN_COLOUR),
                     go.Bar(x=classes, y=val, name=t("validation"), marker_color=VAL_COLOUR)])
    fig.update_layout(barmode="stack")
    return base_layout(fig, 240)


def confusion_figure(classes: list[str], matrix: np.ndarray) -> go.Figure:
    """The confusion matrix as a heatmap, with one transparent square marker over each cell: Streamlit's
    chart selection returns nothing for a heatmap click, but it returns the x and y of a clicked marker."""
    height = 460 if len(classes) <= 12 else 700
    n = len(classes)
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hoverinfo="skip"))
    xs = [pred for _ in classes for pred in classes]
    ys = [true for true in classes for _ in classes]
    counts = np.asarray(matrix).reshape(-1)
    side = max(6, int(0.8 * (height - 120) / max(n, 1)))  # about the cell's height in pixels
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=counts, showlegend=False,
                             marker=dict(symbol="square", size=side, color="rgba(0,0,0,0)"),
                             selected=dict(marker=dict(color="rgba(249,115,22,0.35)")),
                             unselected=dict(marker=dict(opacity=0)),
                             hovertemplate=t("true %{y} → predicted %{x}: %{customdata}") + "<extra></extra>"))
    fig.update_xaxes(title_text=t("predicted"), type="category")
    fig.update_yaxes(title_text=t("true"), type="category", autorange="reversed")
    base_layout(fig, height)
    fig.update_layout(hovermode="closest", clickmode="event+select", dragmode=False)  # a click picks one cell
    return fig


def top_k_figure(pairs: list[tuple[str, float]]) -> go.Figure:
    labels = [name for name, _ in pairs][::-1]
    values = [p for _, p in pairs][::-1]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=TRAIN_COLOUR,
                           text=[f"{v:.1%}" for v in values], textposition="outside", cliponaxis=False))
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1])
    fig.update_yaxes(type="category")  # class names such as "3" are labels, not numbers
    return base_layout(fig, 60 + 34 * len(pairs))


PALETTE = ["#4f46e5", "#f97316", "#10b981", "#e11d48", "#0ea5e9", "#a855f7", "#eab308", "#14b8a6", "#64748b",
           "#db2777"]


def overlay_figure(curves: pd.DataFrame, best: pd.DataFrame, names: dict[str, str], *, key: str, x: str,
                   log_y: bool, smoothed: bool) -> go.Figure:
    """Several runs' curves of one metric: smoothed lines over faint raw ones, best point marked.

    The traces are plain dicts of numpy arrays handed to Plotly without its per-property validation
    (`_validate=False`): with 100 runs that is three hundred traces, and validating them took about
    0.4 s of the page's 0.9 s. The dicts use only well-known scatter fields; the tests read them back.
    """
    from core.store.records import metric_title
    traces = []
    best_word = t("best {metric}", metric=t(metric_title(key)))
    best_by_run = {run_id: part for run_id, part in best.groupby("run_id", sort=False)}  # one pass, not one mask per run
    parts = dict(tuple(curves.groupby("run_id", sort=False)))
    order = [run_id for run_id in names if run_id in parts] + [run_id for run_id in parts if run_id not in names]
    for index, run_id in enumerate(order):  # the order the runs were selected in, which sets their colours
        part = parts[run_id]
        colour = PALETTE[index % len(PALETTE)]
        label = names.get(run_id, run_id)
        xs = part["x"].to_numpy()
        if smoothed:
            traces.append(dict(type="scatter", x=xs, y=part["value"].to_numpy(), mode="lines",
                               line=dict(color=colour, width=1), opacity=0.25, legendgroup=run_id,
                               showlegend=False, hoverinfo="skip"))
        traces.append(dict(type="scatter", x=xs, y=part["smoothed" if smoothed else "value"].to_numpy(),
                           mode="lines", name=label, legendgroup=run_id, line=dict(color=colour, width=2)))
        top = best_by_run.get(run_id)
        if top is not None and not top.empty and x in top.columns:
            traces.append(dict(type="scatter", x=top[x].to_numpy(), y=top["value"].to_numpy(), mode="markers",
                               legendgroup=run_id, showlegend=False,
                               marker=dict(color=colour, size=11, symbol="star", line=dict(color="white", width=1)),
                               hovertemplate=f"{best_word} %{{y:.4g}} ({label})<extra></extra>"))
    fig = go.Figure(data=traces, _validate=False)
    fig.update_xaxes(title_text={"step": t("step"), "epoch": t("epoch"), "time": t("wall time (s)")}[x])
    fig.update_yaxes(title_text=t(metric_title(key)), type="log" if log_y else "linear")
    return base_layout(fig, 460)


def parallel_figure(table: pd.DataFrame, metric: str) -> go.Figure:
    dims = []
    for column in table.columns:
        if column in ("run_id", "name"):
            continue
        values = table[column]
        if pd.api.types.is_numeric_dtype(values):
            dims.append(dict(label=column, values=values))
        else:
            codes, labels = pd.factorize(values.astype(str))
            dims.append(dict(label=column, values=codes, tickvals=list(range(len(labels))), ticktext=list(labels)))
    colour = table[metric] if metric in table else None
    fig = go.Figure(go.Parcoords(dimensions=dims, line=dict(color=colour, colorscale="Viridis", showscale=True)))
    return base_layout(fig, 420)


def timeline_figure(per_frame: pd.DataFrame) -> go.Figure:
    """Top class of each sampled frame over time; marker opacity follows the confidence."""
    fig = go.Figure(go.Scatter(
        x=per_frame["time_s"], y=per_frame["top1"], mode="markers+lines", line=dict(color="#cbd5e1", width=1),
        marker=dict(size=14, color=per_frame["p1"], colorscale="Blues", cmin=0, cmax=1, showscale=True,
                    colorbar=dict(title="p")),
        customdata=np.arange(len(per_frame)),
        hovertemplate="%{x:.1f}s: %{y} (%{marker.color:.0%})<extra></extra>"))
    fig.update_xaxes(title_text=t("time (s)"))
    fig.update_yaxes(type="category")
    return base_layout(fig, 300)

