"""The live chart of a run (issue: one legend for four plots above the toolbar, train and validation of one
metric in one colour, a GAN's val_fd flattening every other curve of its plot)."""

import numpy as np
import pandas as pd

from ui.charts import live_figure, live_panels

GAN_KEYS = ["train_loss", "train_d_loss", "train_g_loss", "train_d_real", "train_d_fake", "val_fd", "val_d_real",
            "val_d_fake", "val_d_loss", "val_fd_real", "lr", "samples_per_s"]


def frame(keys, scale=None):
    scale = scale or {}
    rows = [("r", step, step / 10, key, scale.get(key, 1.0) * (0.5 + 0.01 * step), 0.0) for key in keys
            for step in range(1, 30)]
    return pd.DataFrame(rows, columns=["run_id", "step", "epoch", "key", "value", "time"])


def panels_of(fig):
    """{(xaxis, yaxis): [traces]} and the legend each panel's traces use."""
    by_panel: dict = {}
    for trace in fig.data:
        by_panel.setdefault((trace.xaxis, trace.yaxis), []).append(trace)
    return by_panel


def test_a_gans_fd_has_its_own_panel_and_every_panel_its_own_legend_inside_the_plot():
    fig = live_figure(frame(GAN_KEYS, scale={"val_fd": 300.0}))
    panels = panels_of(fig)
    fd_panel = next(traces for traces in panels.values() if any(t.name == "validation Fréchet distance" for t in traces))
    assert len(fd_panel) == 1  # nothing else is squashed against its scale
    legends = [{t.legend or "legend" for t in traces} for traces in panels.values()]
    assert all(len(names) == 1 for names in legends)  # one legend per panel...
    assert len({next(iter(names)) for names in legends}) == len(panels)  # ...and never shared
    for name in {next(iter(names)) for names in legends}:
        legend = fig.layout[name]
        assert legend.y <= 1 and legend.x <= 1  # inside the figure: clear of the toolbar above it
    assert max(len(traces) for traces in panels.values()) <= 4


def test_training_and_validation_of_one_metric_never_share_a_colour():
    fig = live_figure(frame(["train_loss", "val_loss", "train_acc", "val_acc", "lr", "samples_per_s"]))
    for traces in panels_of(fig).values():
        colours = [t.line.color for t in traces]
        assert len(set(colours)) == len(colours), [(t.name, t.line.color) for t in traces]
    styles = {t.name: t.line.dash for t in fig.data}
    assert styles["validation accuracy"] == "dash" and styles["training accuracy"] == "solid"


def test_panels_group_training_and_validation_of_each_measure():
    assert live_panels(["train_loss", "val_loss", "train_acc", "val_acc", "val_top5", "lr", "samples_per_s"]) == [
        ("Loss", ["train_loss", "val_loss"]), ("Accuracy", ["train_acc", "val_acc"]),
        ("Top-5 accuracy", ["val_top5"]), ("Learning rate", ["lr"]), ("Samples / s", ["samples_per_s"])]
    assert np.isfinite(live_figure(frame(["train_loss"])).layout.height)
