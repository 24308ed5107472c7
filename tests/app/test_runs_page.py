"""The Runs page reads well and its link restores the whole comparison (issue: ids cut short, the watched
metric off-screen, raw metric names, epochs like 5.7143, a link that forgot metric, axis and smoothing, one
metric at a time)."""

import json
import time


from conftest import open_page
from core import jobs
from core.presets import preset
from core.store import RunStore



def two_runs() -> list[str]:
    """Two recorded runs with a few metric rows each (no training needed to compare them)."""
    store, ids, now = RunStore(), [], time.time()
    for lr in (0.003, 0.01):
        run_id = jobs.create(preset("digits-mlp").replace(**{"optim.lr": lr}))
        rows = []
        for step in range(1, 6):
            rows += [(run_id, step * 10, step, "val_loss", 1.0 / step + lr, now), (run_id, step * 10, step, "val_acc", 0.5 + step / 20, now),
                     (run_id, step * 10 - 3, step - 0.3, "epoch_time_s", 2.0, now)]
        store.log_metrics(rows)
        store.update_summary(run_id, {"best_metric": "val_acc", "best_val_acc": 0.75, "best_epoch": 5})
        store.finish(run_id, "completed")
        ids.append(run_id)
    return ids


def runs_page(**query):
    return open_page("app_pages/runs.py", **query)


def test_a_shared_link_restores_metric_axis_smoothing_and_scale(lab_home):
    ids = two_runs()
    at = runs_page(compare=",".join(ids), metric="val_loss", x="epoch", smooth="0.5", log="1")
    assert at.multiselect(key="cmp_metrics").value == ["val_loss"]
    assert at.session_state["cmp_x"] == "epoch"
    assert at.slider(key="cmp_smooth").value == 0.5 and at.toggle(key="cmp_log").value is True
    # changing the view rewrites the link
    at.multiselect(key="cmp_metrics").set_value(["val_acc"]).run()
    link = dict(at.query_params)
    assert sorted(link.pop("compare").split(",")) == sorted(ids)  # in the table's order
    assert link == {"metric": "val_acc", "x": "epoch", "smooth": "0.5", "log": "1"}


def test_metric_names_read_as_words_and_the_table_shows_whole_ids_and_the_watched_metric_first(lab_home):
    ids = two_runs()
    at = runs_page(compare=",".join(ids))
    labels = at.multiselect(key="cmp_metrics").options
    assert "epoch time (s) (epoch_time_s)" in labels and "validation loss (val_loss)" in labels
    table = next(d for d in at.dataframe if "best_metric" in d.value.columns)
    order = list(table.proto.column_order)
    assert order[:5] == ["id", "name", "status", "best_metric", "best_value"]
    columns = json.loads(table.proto.columns)
    assert columns["id"]["width"] >= 140 and columns["id"].get("pinned") is True
    stats = next(d for d in at.dataframe if "epoch_of_best" in d.value.columns)
    stats_columns = json.loads(stats.proto.columns)
    assert stats_columns["epoch_of_best"]["type_config"]["format"] == "%.1f"


def test_several_metrics_are_small_charts_sharing_one_x_range_and_the_link_keeps_them(lab_home):
    ids = two_runs()
    at = runs_page(compare=",".join(ids), metric="val_loss,epoch_time_s,val_acc", x="epoch")
    assert at.multiselect(key="cmp_metrics").value == ["val_loss", "epoch_time_s", "val_acc"]
    charts = {e.key: e for e in at.get("plotly_chart") if str(getattr(e, "key", "")).startswith("cmp_chart-")}
    assert sorted(charts) == ["cmp_chart-epoch_time_s", "cmp_chart-val_acc", "cmp_chart-val_loss"]
    ranges = {key: tuple(json.loads(chart.proto.spec)["layout"]["xaxis"]["range"]) for key, chart in charts.items()}
    assert len(set(ranges.values())) == 1  # epoch_time_s starts at epoch 0.7, the others at 1: one range
    assert at.query_params["metric"] == "val_loss,epoch_time_s,val_acc"
