"""Sweeps: a grid submits every combination through the normal queue; Optuna asks for trials one by one,
hears each epoch's metric and cancels a trial that is worse than the median of the earlier ones."""

import json
import os
import subprocess
import sys

import pytest

from core.errors import ConfigError
from core.jobs import sweeps
from core.presets import preset
from core.store import RunStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_dimensions_parse_lists_and_ranges_and_refuse_what_a_run_would_refuse(lab_home):
    base = preset("digits-mlp")
    assert sweeps.parse_dimension("optim.lr=1e-3, 1e-2").choices == ("1e-3", "1e-2")
    ranged = sweeps.parse_dimension("optim.lr=1e-4:1e-1:log")
    assert (ranged.low, ranged.high, ranged.log, ranged.integer) == (1e-4, 1e-1, True, False)
    assert sweeps.parse_dimension("batch_size=16:128").integer
    [whole, fraction] = sweeps.typed_dimensions(base, [sweeps.parse_dimension("optim.batch_size=16:128"),
                                                       sweeps.parse_dimension("optim.weight_decay=0:1")])
    assert whole.integer and not fraction.integer  # the field's type decides, not how the ends were written
    [typed] = sweeps.typed_dimensions(base, [sweeps.parse_dimension("optim.batch_size=32,64")])
    assert typed.choices == (32, 64)
    for bad, words in [("optim.lr", "expected key="), ("optim.lr=1:0.1", "low end must be below"),
                       ("optim.lr=0:1:log", "positive low end"), ("optim.lr=1:2:cube", "low:high:log")]:
        with pytest.raises(ConfigError, match=words):
            sweeps.parse_dimension(bad)
    with pytest.raises(ConfigError, match="optim.lr=50"):
        sweeps.typed_dimensions(base, [sweeps.parse_dimension("optim.lr=1e-3,50")])
    with pytest.raises(ConfigError, match="unknown config field"):
        sweeps.typed_dimensions(base, [sweeps.parse_dimension("optim.speed=1,2")])
    with pytest.raises(ConfigError, match="a grid needs listed values"):
        sweeps.start(base, [ranged], method="grid")
    with pytest.raises(ConfigError, match="1 to 200 runs"):
        sweeps.start(base, [ranged], method="optuna", trials=0)
    assert RunStore().list_sweeps() == []  # nothing was recorded for a refused sweep


def test_a_grid_runs_every_combination_and_the_best_trains_again_for_longer(lab_home):
    base = preset("digits-mlp").replace(**{"optim.epochs": 1})
    grid = [sweeps.parse_dimension("optim.lr=1e-4,1e-2"), sweeps.parse_dimension("optim.batch_size=32,64")]
    sweep_id = sweeps.start(base, grid, method="grid")
    seen = []
    assert sweeps.follow(sweep_id, seen.append) == "completed"
    store = RunStore()
    members = store.sweep_runs(sweep_id)
    assert sorted((m.params["optim.lr"], m.params["optim.batch_size"]) for m in members) == [
        (1e-4, 32), (1e-4, 64), (1e-2, 32), (1e-2, 64)]
    for member in members:  # each run trained the values its trial names
        config = store.get_run(member.run_id).config
        assert (config["optim"]["lr"], config["optim"]["batch_size"]) == (member.params["optim.lr"],
                                                                            member.params["optim.batch_size"])
    assert len(seen) == 4 and all(r["state"] == "completed" for r in seen)
    table = sweeps.results(sweep_id)
    assert list(table.val_acc) == sorted(table.val_acc, reverse=True)  # best first
    best = sweeps.best_run(sweep_id)
    assert best == table.iloc[0].run_id and store.get_run(best).config["optim"]["lr"] == 1e-2  # 1 epoch: the high rate wins
    longer = sweeps.train_longer(sweep_id, 3)
    config = store.get_run(longer).config
    assert config["optim"]["epochs"] == 3 and config["optim"]["lr"] == store.get_run(best).config["optim"]["lr"]
    assert store.sweep_of(longer) is None  # a follow-up, not a trial


def test_optuna_prunes_a_trial_worse_than_the_median_of_the_earlier_ones(lab_home, monkeypatch):
    monkeypatch.setattr(sweeps, "POLL_S", 0.1)
    base = preset("digits-cnn").replace(**{"optim.epochs": 8, "log_every": 5})
    good, hopeless = {"optim.lr": 2e-3}, {"optim.lr": 1e-7}
    sweep_id = sweeps.start(base, [sweeps.parse_dimension("optim.lr=1e-7:1e-1:log")], method="optuna", trials=3,
                            detach=False, first=[good, good, hopeless])
    results = []
    assert sweeps.drive(sweep_id, results.append) == "completed"
    assert [r["state"] for r in results] == ["completed", "completed", "pruned"]
    store = RunStore()
    pruned = store.get_run(results[2]["run_id"])
    assert pruned.status == "cancelled" and "pruned" in pruned.tags
    assert 2 <= pruned.summary["epochs_done"] < 8  # judged after two epochs, and stopped early
    assert any("pruned by Optuna" in m for m in store.events(pruned.id).message)
    assert sweeps.best_run(sweep_id) in {results[0]["run_id"], results[1]["run_id"]}
    study = sweeps.optuna_study(store.get_sweep(sweep_id))  # loaded again from its journal file
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]


def test_cli_sweep_prints_each_trial_and_json_results(lab_home):
    done = subprocess.run([sys.executable, "-m", "core", "sweep", "--preset", "digits-mlp", "--set", "epochs=1",
                           "--grid", "optim.lr=1e-3,1e-2", "--json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed" and len(report["trials"]) == 2
    assert {t["optim.lr"] for t in report["trials"]} == {1e-3, 1e-2}
    assert report["best_config"]["optim"]["lr"] == report["trials"][0]["optim.lr"]
    assert done.stderr.count("trial ") == 2  # progress lines, kept off the JSON
    bad = subprocess.run([sys.executable, "-m", "core", "sweep", "--preset", "digits-mlp", "--grid", "optim.lr=abc"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "optim.lr=abc" in bad.stderr


def test_a_sweeps_status_follows_its_runs_and_its_driver(lab_home, no_workers):
    from core.jobs.runner import execute_run
    spawned = no_workers
    base = preset("digits-mlp").replace(**{"optim.epochs": 1})
    grid = sweeps.start(base, [sweeps.parse_dimension("optim.lr=1e-3,1e-2")], method="grid")
    assert sweeps.refresh(grid).status == "submitted"
    for run_id in spawned:
        execute_run(run_id, slot="cpu")
    assert sweeps.refresh(grid).status == "completed"  # no CLI followed it: the runs say so
    store = RunStore()
    driven = store.create_sweep(name="x", method="optuna", space={}, base_config=base.to_dict(), metric="val_acc",
                                mode="max", trials=3, status="running")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.set_sweep_status(driven, "running", pid=dead.pid)
    after = sweeps.refresh(driven)
    assert after.status == "failed" and "driver process stopped" in after.error
    waiting = store.create_sweep(name="y", method="optuna", space={}, base_config=base.to_dict(), metric="val_acc",
                                 mode="max", trials=3, status="running")
    sweeps.cancel(waiting)
    store.set_sweep_status(waiting, "running", pid=os.getpid())  # a driver starting late cannot revive it
    assert store.get_sweep(waiting).status == "cancelled"


def test_one_refused_trial_fails_alone_and_the_sweep_goes_on(lab_home, monkeypatch):
    import core.jobs
    from core.errors import DataError
    monkeypatch.setattr(sweeps, "POLL_S", 0.1)
    real_create = core.jobs.create

    def create(config):  # as when a sampled point passes validation but this machine refuses it (memory, weights)
        if config.optim.lr == 0.5:
            raise DataError("refused here")
        return real_create(config)

    monkeypatch.setattr(core.jobs, "create", create)
    base = preset("digits-mlp").replace(**{"optim.epochs": 1})
    sweep_id = sweeps.start(base, [sweeps.parse_dimension("optim.lr=1e-4:1:log")], method="random", trials=2,
                            detach=False, first=[{"optim.lr": 0.5}, {"optim.lr": 3e-3}])
    results = []
    assert sweeps.drive(sweep_id, results.append) == "completed"
    assert [r["state"] for r in results] == ["refused (refused here)", "completed"]
    assert sweeps.best_run(sweep_id) == results[1]["run_id"]
    assert [t.state.name for t in sweeps.optuna_study(RunStore().get_sweep(sweep_id)).trials] == ["FAIL", "COMPLETE"]
