"""The Runs page reads well and its link restores the whole comparison (issue: ids cut short, the watched
metric off-screen, raw metric names, epochs like 5.7143, a link that forgot metric, axis and smoothing)."""

import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import jobs
from core.presets import preset
from core.store import RunStore

APP = str(Path(__file__).resolve().parents[2] / "app.py")


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


def runs_page(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_shared_link_restores_metric_axis_smoothing_and_scale(lab_home):
    ids = two_runs()
    at = runs_page(compare=",".join(ids), metric="val_loss", x="epoch", smooth="0.5", log="1")
    assert at.selectbox(key="cmp_metric").value == "val_loss"
    assert at.session_state["cmp_x"] == "epoch"
    assert at.slider(key="cmp_smooth").value == 0.5 and at.toggle(key="cmp_log").value is True
    # changing the view rewrites the link
    at.selectbox(key="cmp_metric").set_value("val_acc").run()
    link = dict(at.query_params)
    assert sorted(link.pop("compare").split(",")) == sorted(ids)  # in the table's order
    assert link == {"metric": "val_acc", "x": "epoch", "smooth": "0.5", "log": "1"}


def test_metric_names_read_as_words_and_the_table_shows_whole_ids_and_the_watched_metric_first(lab_home):
    ids = two_runs()
    at = runs_page(compare=",".join(ids))
    labels = at.selectbox(key="cmp_metric").options
    assert "epoch time (s) (epoch_time_s)" in labels and "validation loss (val_loss)" in labels
    table = next(d for d in at.dataframe if "best_metric" in d.value.columns)
    order = list(table.proto.column_order)
    assert order[:5] == ["id", "name", "status", "best_metric", "best_value"]
    columns = json.loads(table.proto.columns)
    assert columns["id"]["width"] >= 140 and columns["id"].get("pinned") is True
    stats = next(d for d in at.dataframe if "epoch_of_best" in d.value.columns)
    stats_columns = json.loads(stats.proto.columns)
    assert stats_columns["epoch_of_best"]["type_config"]["format"] == "%.1f"
