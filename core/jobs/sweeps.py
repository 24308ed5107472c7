"""Sweeps: many runs of one config with a few fields varied, through the normal job queue.

    start(base, [parse_dimension("optim.lr=1e-3,1e-2"), parse_dimension("optim.batch_size=32,64")], method="grid")
    start(base, [parse_dimension("optim.lr=1e-4:1e-1:log")], method="optuna", trials=12)

A grid submits every combination at once; the device slots run them one after another in submission order.
Random search and Optuna (TPE, Bergstra et al. 2011) need the results of earlier trials, so a driver process
(`python -m core.sweeper SWEEP_ID`, or the CLI in the foreground) asks Optuna for a trial, submits it as a run,
reports each epoch's validation metric back and cancels a trial Optuna's median pruner judges hopeless (worse
than the median of earlier trials at the same epoch). The study lives in LAB_HOME/sweeps/<id>/optuna.journal.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from core.errors import ConfigError, LabError, describe_exception
from core.paths import lab_home
from core.store.records import ACTIVE_STATUSES, FINAL_STATUSES
from core.tasks import apply_overrides, task_spec, validate

GRID, RANDOM, OPTUNA = "grid", "random", "optuna"
METHODS = (GRID, RANDOM, OPTUNA)
MAX_RUNS = 200
POLL_S = float(os.environ.get("LAB_SWEEP_POLL_S", "1"))  # how often a driver looks at its trials' runs
PRUNED_TAG = "pruned"


@dataclass(frozen=True)
class Dimension:
    """One varied field: listed values (`choices`), or a range `low`..`high` (log-spaced if `log`)."""

    key: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def describe(self) -> str:
        if self.is_range:
            return f"{self.low:g} … {self.high:g}" + (" (log)" if self.log else "")
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.choices)

    def to_dict(self) -> dict:
        if self.is_range:
            return {"low": self.low, "high": self.high, "log": self.log, "integer": self.integer}
        return {"choices": list(self.choices)}

    @classmethod
    def from_dict(cls, key: str, raw: dict) -> "Dimension":
        if "choices" in raw:
            return cls(key, choices=tuple(raw["choices"]))
        return cls(key, low=raw["low"], high=raw["high"], log=raw["log"], integer=raw["integer"])

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        if not self.is_range:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


def parse_dimension(text: str) -> Dimension:
    """'optim.lr=1e-3,1e-2' (listed values) or 'optim.lr=1e-4:1e-1:log' / 'optim.batch_size=16:128' (a range,
    for random search and Optuna). Values stay text until `typed_dimensions` checks them against a config."""
    key, sep, values = str(text).partition("=")
    key, values = key.strip(), values.strip()
    example = "e.g. optim.lr=1e-3,1e-2 or optim.lr=1e-4:1e-1:log"
    if not sep or not key or not values:
        raise ConfigError(f"'{text}': expected key=v1,v2 or key=low:high[:log], {example}")
    if ":" in values and "," not in values:
        parts = [part.strip() for part in values.split(":")]
        log = len(parts) == 3 and parts[2] == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise ConfigError(f"'{text}': a range is low:high or low:high:log, {example}")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError(f"'{text}': the ends of a range must be numbers, {example}") from None
        if not low < high:
            raise ConfigError(f"'{text}': the range's low end must be below its high end")
        if log and low <= 0:
            raise ConfigError(f"'{text}': a log range needs a positive low end")
        integer = all(part.lstrip("-").isdigit() for part in parts[:2])
        return Dimension(key, low=low, high=high, log=log, integer=integer)
    choices = tuple(dict.fromkeys(v.strip() for v in values.split(",") if v.strip()))
    if not choices:
        raise ConfigError(f"'{text}': list at least one value, {example}")
    return Dimension(key, choices=choices)


def _value_at(config, key: str):
    """The typed value of `key` ('optim.lr', or the short 'lr') in a RunConfig."""
    raw = config.to_dict()
    parts = key.split(".")
    if len(parts) > 1:
        for part in parts:
            raw = raw[part]
        return raw
    if key in raw and not isinstance(raw[key], dict):
        return raw[key]
    return next(raw[section][key] for section in ("data", "model", "optim") if key in raw[section])


def typed_dimensions(base, dimensions: list[Dimension]) -> list[Dimension]:
    """The dimensions with their listed values typed as the config field's (strings from a shell or a form),
    each value and each end of a range checked by the run's own validation: a bad one fails here, naming it."""
    typed = []
    for dim in dimensions:
        points = [dim.low, dim.high] if dim.is_range else list(dim.choices)
        values = []
        for point in points:
            text = str(int(point)) if dim.is_range and float(point).is_integer() else str(point)
            try:
                config = validate(apply_overrides(base, {dim.key: text}))
            except LabError as exc:
                raise ConfigError(f"sweep {dim.key}={text}: {exc}") from None
            values.append(_value_at(config, dim.key))
        if dim.is_range:  # whole numbers only for a whole-number field (dropout=0:1 is a float range)
            integer = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            typed.append(Dimension(dim.key, low=dim.low, high=dim.high, log=dim.log, integer=integer))
        else:
            typed.append(Dimension(dim.key, choices=tuple(dict.fromkeys(values))))
    keys = [dim.key for dim in typed]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"sweep: each field may be varied once ({', '.join(keys)})")
    return typed


def grid_points(dimensions: list[Dimension]) -> list[dict]:
    if any(dim.is_range for dim in dimensions):
        ranged = next(dim.key for dim in dimensions if dim.is_range)
        raise ConfigError(f"a grid needs listed values ({ranged}=a,b,c); a range low:high is for random or Optuna")
    return [dict(zip([d.key for d in dimensions], combo)) for combo in itertools.product(*(d.choices for d in dimensions))]


def _short(params: dict) -> str:
    return " ".join(f"{key.split('.')[-1]}={value:g}" if isinstance(value, float) else f"{key.split('.')[-1]}={value}"
                    for key, value in params.items())


def _store():
    from core.store import RunStore
    return RunStore()


def sweep_folder(sweep_id: str):
    folder = lab_home() / "sweeps" / sweep_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- starting ----------------------------------------------------------------------------------

def start(base, dimensions: list[Dimension], *, method: str = GRID, trials: int | None = None,
          parallel: int = 1, detach: bool = True, name: str | None = None, first: list[dict] = ()) -> str:
    """Record a sweep and start it; returns its id. A grid's runs are all submitted here; random and Optuna
    start a driver process when `detach` (else the caller runs `drive`), trying the points in `first` (e.g.
    the values a user already trusts) before the sampler's own."""
    if method not in METHODS:
        raise ConfigError(f"sweep method '{method}': use one of {', '.join(METHODS)}")
    if not dimensions:
        raise ConfigError("a sweep needs at least one field to vary, e.g. optim.lr=1e-3,1e-2")
    base = validate(base)
    dimensions = typed_dimensions(base, dimensions)
    points = grid_points(dimensions) if method == GRID else []
    for params in points[:MAX_RUNS]:  # every combination is a valid run before any is recorded
        try:
            validate(apply_overrides(base, params))
        except LabError as exc:
            raise ConfigError(f"sweep point {_short(params)}: {exc}") from None
    count = len(points) if method == GRID else int(trials or 0)
    if not 1 <= count <= MAX_RUNS:
        raise ConfigError(f"a sweep makes 1 to {MAX_RUNS} runs; this one would make {count}"
                          + ("" if method == GRID else " (set the number of trials)"))
    if int(parallel) < 1:
        raise ConfigError("parallel: at least 1 trial at a time")
    metric, mode = task_spec(base.task).watches
    store = _store()
    sweep_id = store.create_sweep(
        name=name or f"{base.display_name()} sweep", method=method,
        space={dim.key: {**dim.to_dict(), "parallel": int(parallel)} for dim in dimensions},
        base_config=base.to_dict(), metric=metric, mode=mode, trials=count,
        status="submitted" if method == GRID else "running")
    if method == GRID:
        for number, params in enumerate(points):
            submit_trial(sweep_id, number, params)
    else:
        study = optuna_study(store.get_sweep(sweep_id))
        for params in first:
            study.enqueue_trial(dict(params))
        if detach:
            spawn_driver(sweep_id)
    return sweep_id


def submit_trial(sweep_id: str, number: int, params: dict) -> str:
    """One trial as a normal run (recorded as the sweep's before its worker starts); returns the run id."""
    from core import jobs
    from core.config import RunConfig
    store = _store()
    sweep = store.get_sweep(sweep_id)
    base = RunConfig.from_dict(sweep.base_config)
    config = apply_overrides(base, params).replace(name=f"{sweep.name} #{number + 1} · {_short(params)}"[:200])
    run_id = jobs.create(config)
    store.add_sweep_run(sweep_id, run_id, number, params)
    jobs.spawn_worker(run_id)
    return run_id


def spawn_driver(sweep_id: str) -> int:
    from core.jobs import PROJECT_ROOT
    log = open(sweep_folder(sweep_id) / "log.txt", "ab")
    env = {**os.environ, "LAB_HOME": str(lab_home()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with log:
        process = subprocess.Popen([sys.executable, "-m", "core.sweeper", sweep_id], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=PROJECT_ROOT, env=env,
                                   start_new_session=True)
    _store().set_sweep_status(sweep_id, "running", pid=process.pid)
    return process.pid


# ---- driving (random search and Optuna) ---------------------------------------------------------

def optuna_study(sweep):
    """The sweep's Optuna study (created on first use, loaded from its journal file after that)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = int(sweep.base_config.get("seed", 0))
    if sweep.method == RANDOM:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:  # TPE models good and bad trials once a few random ones have run
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, sweep.trials // 3)))
    storage = JournalStorage(JournalFileBackend(str(sweep_folder(sweep.id) / "optuna.journal")))
    return optuna.create_study(storage=storage, study_name=sweep.id, sampler=sampler, load_if_exists=True,
                               direction="maximize" if sweep.mode == "max" else "minimize",
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2))


def drive(sweep_id: str, on_trial: Callable[[dict], None] | None = None) -> str:
    """Run a random or Optuna sweep to its end in this process; returns its final status."""
    from optuna.trial import TrialState
    store = _store()
    sweep = store.get_sweep(sweep_id)
    store.set_sweep_status(sweep_id, "running", pid=os.getpid())
    parallel = max(int(d.get("parallel", 1)) for d in sweep.space.values())
    dimensions = [Dimension.from_dict(key, raw) for key, raw in sweep.space.items()]
    distributions = {dim.key: dim.distribution() for dim in dimensions}
    active: dict[str, tuple] = {}  # run id -> (optuna trial, epochs reported so far)
    started = len(store.sweep_runs(sweep_id))
    try:
        study = optuna_study(sweep)
        while True:
            if store.get_sweep(sweep_id).status == "cancelled":
                _cancel_runs(list(active))
                for trial, _ in active.values():
                    study.tell(trial, state=TrialState.FAIL)
                return "cancelled"
            for run_id, (trial, reported) in list(active.items()):
                run = store.get_run(run_id)
                active[run_id] = (trial, _report(study, trial, run_id, sweep.metric, reported))
                if run.status in FINAL_STATUSES:
                    result = _tell(study, trial, run)
                    del active[run_id]
                    if on_trial:
                        on_trial(result)
            while len(active) < parallel and started < sweep.trials:
                trial = study.ask(distributions)
                started += 1
                try:
                    run_id = submit_trial(sweep_id, trial.number, dict(trial.params))
                except LabError as exc:  # e.g. a sampled size the model refuses: this trial fails, not the sweep
                    study.tell(trial, state=TrialState.FAIL)
                    if on_trial:
                        on_trial({"trial": trial.number, "run_id": None, "params": dict(trial.params),
                                  "state": f"refused ({exc})", "value": None})
                    continue
                active[run_id] = (trial, 0)
            if not active:
                store.set_sweep_status(sweep_id, "completed")
                return "completed"
            time.sleep(POLL_S)
    except BaseException as exc:
        _cancel_runs(list(active))
        store.set_sweep_status(sweep_id, "failed", error=describe_exception(exc))
        raise


def _report(study, trial, run_id: str, metric: str, reported: int) -> int:
    """Give Optuna the run's validation metric of each epoch not reported yet; cancel the run when the pruner
    says so. Returns the epochs reported so far."""
    store = _store()
    rows = store.metrics(run_id, keys=[metric])
    for epoch, value in zip(rows.epoch, rows.value):
        epoch = int(round(epoch))
        if epoch <= reported:
            continue
        trial.report(float(value), epoch)
        reported = epoch
        if trial.should_prune() and store.get_run(run_id).status in ACTIVE_STATUSES:
            run = store.get_run(run_id)
            store.set_tags(run_id, [*run.tags, PRUNED_TAG])
            store.log_event(run_id, f"pruned by Optuna at epoch {epoch}: {metric} {value:.4g} is worse than the "
                                    "median of the earlier trials at that epoch")
            _cancel_runs([run_id])
            break
    return reported


def _tell(study, trial, run) -> dict:
    from optuna.trial import TrialState
    from core.store.records import best_of
    value = best_of(run.summary)
    if was_pruned(run):
        study.tell(trial, state=TrialState.PRUNED)
        state = "pruned"
    elif run.status == "completed" and value is not None:
        study.tell(trial, value)
        state = "completed"
    else:
        study.tell(trial, state=TrialState.FAIL)
        state = run.status
    return {"trial": trial.number, "run_id": run.id, "params": dict(trial.params), "state": state, "value": value}


def was_pruned(run) -> bool:
    """Stopped by the pruner (a run that completed before the cancel landed was not)."""
    return PRUNED_TAG in run.tags and run.status == "cancelled"


def _cancel_runs(run_ids: list[str]) -> None:
    from core import jobs
    for run_id in run_ids:
        try:
            jobs.cancel(run_id, wait_s=0)
        except LabError:
            pass  # it ended on its own meanwhile


# ---- following, results, follow-ups -----------------------------------------------------------

def follow(sweep_id: str, on_trial: Callable[[dict], None] | None = None) -> str:
    """Wait until every run of a grid sweep has ended, calling `on_trial` as each one does."""
    from core.store.records import best_of
    store = _store()
    seen: set[str] = set()
    while True:
        members = store.sweep_runs(sweep_id)
        runs = store.get_runs([m.run_id for m in members])
        for member in members:
            run = runs.get(member.run_id)
            if run and run.status in FINAL_STATUSES and member.run_id not in seen:
                seen.add(member.run_id)
                if on_trial:
                    on_trial({"trial": member.trial, "run_id": run.id, "params": member.params,
                              "state": run.status, "value": best_of(run.summary)})
        if store.get_sweep(sweep_id).status == "cancelled" or len(seen) == len(members):
            break
        time.sleep(POLL_S)
    if store.get_sweep(sweep_id).status == "submitted":
        store.set_sweep_status(sweep_id, "completed")
    return store.get_sweep(sweep_id).status


def refresh(sweep_id: str):
    """The sweep with a status that says what is true now: a grid whose runs have all ended is completed; a random
    or Optuna sweep whose driver process is gone is failed (its runs in flight go on and are listed)."""
    from core.store import pid_alive
    store = _store()
    sweep = store.get_sweep(sweep_id)
    if sweep.status == "submitted":
        members = store.sweep_runs(sweep_id)
        runs = store.get_runs([m.run_id for m in members])
        if len(members) >= sweep.trials and all(r.status in FINAL_STATUSES for r in runs.values()):
            store.set_sweep_status(sweep_id, "completed")
    elif sweep.status == "running" and sweep.pid and not pid_alive(sweep.pid):
        store.set_sweep_status(sweep_id, "failed", error="the sweep's driver process stopped (killed, or the machine "
                               "restarted); the runs it had started are listed below")
    return store.get_sweep(sweep_id)


def cancel(sweep_id: str) -> None:
    """Stop a sweep: no new trials, and its queued and running runs are cancelled."""
    store = _store()
    store.cancel_sweep_request(sweep_id)
    members = store.get_runs([m.run_id for m in store.sweep_runs(sweep_id)], statuses=ACTIVE_STATUSES)
    _cancel_runs(list(members))


def results(sweep_id: str):
    """One row per trial: trial, run id, status, each varied field, the watched metric's best value, whether it
    was pruned, epochs done and duration; sorted best first (trials without a value last)."""
    import pandas as pd
    from core.store.records import best_of
    store = _store()
    sweep = store.get_sweep(sweep_id)
    members = store.sweep_runs(sweep_id)
    runs = store.get_runs([m.run_id for m in members])
    rows = []
    for member in members:
        run = runs.get(member.run_id)
        if run is None:  # deleted since
            continue
        rows.append({"trial": member.trial + 1, "run_id": run.id, "status": run.status, **member.params,
                     sweep.metric: best_of(run.summary), "pruned": was_pruned(run),
                     "epochs_done": run.summary.get("epochs_done"), "duration_s": run.duration_s})
    frame = pd.DataFrame(rows, columns=["trial", "run_id", "status", *sweep.space, sweep.metric, "pruned",
                                        "epochs_done", "duration_s"])
    return frame.sort_values(sweep.metric, ascending=sweep.mode == "min", na_position="last", kind="stable")


def best_run(sweep_id: str) -> str | None:
    """The completed, unpruned trial with the best watched metric, or None before any finished."""
    frame = results(sweep_id)
    metric = _store().get_sweep(sweep_id).metric
    done = frame[(frame.status == "completed") & ~frame.pruned.astype(bool)].dropna(subset=[metric])
    return None if done.empty else str(done.iloc[0].run_id)


def train_longer(sweep_id: str, epochs: int) -> str:
    """Submit the best trial's config again for `epochs` epochs (a new run, outside the sweep); returns its id."""
    from core import jobs
    from core.config import RunConfig
    best = best_run(sweep_id)
    if best is None:
        raise LabError("no trial of this sweep has completed yet; wait for one, then train the best for longer")
    config = RunConfig.from_dict(_store().get_run(best).config)
    name = f"{config.display_name()} · {int(epochs)} epochs"
    return jobs.submit(config.replace(**{"optim.epochs": int(epochs), "name": name[:200]}))
