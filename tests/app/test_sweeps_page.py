"""Sweeps from the app: launched under the Train form, grouped on the Runs page with their parallel
coordinates, best configuration and "train the best for longer"."""

import pytest

from conftest import open_page

from core.jobs import sweeps
from core.jobs.runner import execute_run
from core.presets import preset
from core.store import RunStore




def test_the_train_form_launches_a_grid_sweep_of_its_own_config(lab_home, no_workers):
    at = open_page("app_pages/train.py", preset="digits-mlp")
    lr = preset("digits-mlp").optim.lr
    assert any("3 run(s) of this configuration" in c.value for c in at.caption)
    at.button(key="sweep_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [sweep] = RunStore().list_sweeps()
    members = RunStore().sweep_runs(sweep.id)
    assert sorted(m.params["optim.lr"] for m in members) == pytest.approx([lr / 3, lr, lr * 3], rel=0.05)
    assert sorted(no_workers) == sorted(m.run_id for m in members)  # each went to the normal queue
    assert sweep.base_config["data"]["name"] == "digits" and sweep.method == "grid"


def test_the_runs_page_shows_a_finished_sweep_and_trains_its_best_for_longer(lab_home, no_workers):
    base = preset("digits-mlp").replace(**{"optim.epochs": 1})
    sweep_id = sweeps.start(base, [sweeps.parse_dimension("optim.lr=1e-4,1e-3,1e-2")], method="grid")
    for run_id in list(no_workers):
        assert execute_run(run_id, slot="cpu") == "completed"
    at = open_page("app_pages/runs.py", sweep=sweep_id)
    assert not at.exception, [e.value for e in at.exception]
    assert any("Best configuration" in m.value for m in at.markdown)
    best = sweeps.best_run(sweep_id)
    assert RunStore().get_run(best).config["optim"]["lr"] == 1e-2
    assert any("`optim.lr` = **0.01**" in m.value for m in at.markdown)
    charts = [c for c in at.get("plotly_chart")]
    import json
    figure = json.loads(charts[0].proto.spec)
    labels = [d["label"] for d in figure["data"][0]["dimensions"]]
    assert labels == ["log10 optim.lr", "validation accuracy"]  # decades apart: drawn on a log axis
    assert len(at.dataframe[0].value) == 3

    at.number_input(key=f"sweep_longer-{sweep_id}").set_value(4)
    at.button(key=f"sweep_train-{sweep_id}").click().run()
    newest = next(iter(RunStore().get_runs().values()))
    assert newest.config["optim"]["epochs"] == 4 and newest.config["optim"]["lr"] == 1e-2
    assert RunStore().sweep_of(newest.id) is None


def test_cancelling_a_sweep_asks_each_of_its_queued_runs_to_stop(lab_home, no_workers):
    sweep_id = sweeps.start(preset("digits-mlp"), [sweeps.parse_dimension("optim.lr=1e-3,1e-2")], method="grid")
    at = open_page("app_pages/runs.py", sweep=sweep_id)
    at.button(key="sweep_cancel").click().run()
    store = RunStore()
    assert store.get_sweep(sweep_id).status == "cancelled"
    # each waiting worker sees the request and ends its run cancelled (none run in this test)
    assert all(store.get_run(r).cancel_requested for r in no_workers) and len(no_workers) == 2
