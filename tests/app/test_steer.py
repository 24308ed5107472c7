"""Steering a run from its live view: the Steer panel sends requests to the worker, and each change it made
shows up in the run's history and as a marked line on its live chart."""

import pandas as pd

from conftest import open_page

from core import jobs
from core.presets import preset
from core.store import RunStore
from ui.live import mark_changes
from ui.charts import live_figure


def queued_run():
    return jobs.create(preset("digits-mlp").replace(**{"optim.epochs": 5, "optim.lr": 3e-3}))


def test_apply_and_stop_send_requests_that_the_live_view_lists(lab_home):
    run_id = queued_run()
    at = open_page("app_pages/train.py", run=run_id)
    at.number_input(key=f"steer.epochs.{run_id}.5").set_value(9)
    at.button(key=f"steer.apply.{run_id}").click().run()
    assert not at.exception
    store = RunStore()
    [request] = store.controls(run_id)
    assert (request.kind, request.value, request.applied) == ("epochs", 9, False)
    assert any("epochs → 9 · waiting for the worker" in c.value for c in at.caption)

    at.button(key=f"steer.stop.{run_id}").click().run()
    assert [c.kind for c in store.controls(run_id)] == ["epochs", "stop_after_epoch"]

    store.apply_control(request, value=9, old_value=5, step=40, epoch=1.8)
    at.run()
    assert any("epochs 5 → 9 · at step 40" in c.value for c in at.caption)
    assert store.get_run(run_id).config["optim"]["epochs"] == 9
    assert at.number_input(key=f"steer.epochs.{run_id}.9").value == 9  # redrawn with the run's new length
    at.button(key=f"steer.apply.{run_id}").click().run()  # nothing stale is sent back
    assert len(store.controls(run_id)) == 2


def test_unchanged_values_send_nothing(lab_home):
    run_id = queued_run()
    at = open_page("app_pages/train.py", run=run_id)
    at.button(key=f"steer.apply.{run_id}").click().run()
    assert RunStore().controls(run_id) == []
    assert any("nothing to change" in e.value for e in at.error)  # core's answer, shown as it says


def test_a_settled_run_has_no_steer_panel(lab_home):
    run_id = queued_run()
    RunStore().finish(run_id, "completed")
    at = open_page("app_pages/train.py", run=run_id)
    assert not [b for b in at.button if b.key == f"steer.apply.{run_id}"]


def test_each_applied_change_is_a_line_on_every_panel_of_the_live_chart(lab_home):
    run_id = queued_run()
    store = RunStore()
    store.request_control(run_id, "lr", 1e-4)
    [change] = store.controls(run_id)
    store.apply_control(change, value=1e-4, old_value=3e-3, step=12, epoch=0.5)
    rows = [(run_id, step, step / 22, key, 0.5, 0.0) for key in ("train_loss", "lr") for step in range(1, 30)]
    fig = live_figure(pd.DataFrame(rows, columns=["run_id", "step", "epoch", "key", "value", "time"]))
    mark_changes(fig, store.controls(run_id))
    lines = [shape for shape in fig.layout.shapes if shape.x0 == 12 == shape.x1]
    assert len(lines) == len({trace.xaxis for trace in fig.data})  # one per panel
    assert [a.text for a in fig.layout.annotations if a.x == 12] == ["learning rate → 0.0001"]
