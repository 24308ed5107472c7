"""Run store: round trips, status bookkeeping, metrics, stale-run reaping and concurrent writers."""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from core.errors import RunNotFound
from core.paths import RUN_ID_PATTERN, run_dir, runs_root
from core.store import (
    INTERRUPTED_MESSAGE, LIST_COLUMNS, METRIC_COLUMNS, InvalidStatus, MetricBuffer, RunStore,
    new_run_id, pid_alive,
)

CONFIG = {"data": {"name": "cifar10", "batch_size": 128}, "model": {"name": "resnet18", "width": 64},
          "optim": {"lr": 0.1, "betas": [0.9, 0.999]}, "seed": 0}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "lab"))
    monkeypatch.delenv("LAB_HEARTBEAT_STALE_S", raising=False)
    s = RunStore()
    yield s
    s.close()


def _age_heartbeat(store: RunStore, run_id: str, seconds: float) -> None:
    # Test-only back door: pretend the last heartbeat happened `seconds` ago.
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time() - seconds, run_id))
    conn.close()


# -- runs ----------------------------------------------------------------------------------------

def test_new_run_id_matches_pattern_and_is_unique():
    ids = {new_run_id() for _ in range(200)}
    assert all(RUN_ID_PATTERN.match(i) for i in ids)
    assert len(ids) > 150  # 4 hex chars within one second: clashes possible but rare


def test_create_get_round_trip(store):
    run_id = store.create_run(CONFIG, name="first")
    run = store.get_run(run_id)
    assert run.id == run_id and run.name == "first"
    assert run.config == CONFIG
    assert run.status == "queued" and run.is_active
    assert (run.dataset, run.model) == ("cifar10", "resnet18")
    assert run.started_at is None and run.ended_at is None and run.duration_s is None
    assert run.summary == {} and run.tags == [] and run.versions == {} and run.cancel_requested is False
    assert run_dir(run_id).is_dir()
    assert store.path == Path(os.environ["LAB_HOME"]).resolve() / "lab.db"


def test_list_runs_columns_order_and_best_val_acc(store):
    empty = store.list_runs()
    assert list(empty.columns) == LIST_COLUMNS and len(empty) == 0
    first = store.create_run(CONFIG, name="a")
    time.sleep(0.01)
    second = store.create_run({"data": {"name": "mnist"}, "model": {"name": "mlp"}}, name="b")
    store.update_summary(first, {"best_val_acc": 0.91})
    frame = store.list_runs()
    assert list(frame.columns) == LIST_COLUMNS
    assert list(frame["id"]) == [second, first]  # newest first
    by_id = frame.set_index("id")
    assert by_id.loc[first, "best_val_acc"] == pytest.approx(0.91)
    assert math.isnan(by_id.loc[second, "best_val_acc"])
    assert by_id.loc[second, "dataset"] == "mnist" and by_id.loc[second, "tags"] == []
    store.finish(first, "completed")
    assert list(store.list_runs(status="completed")["id"]) == [first]
    with pytest.raises(InvalidStatus):
        store.list_runs(status="bogus")


def test_status_transitions_set_times(store):
    run_id = store.create_run(CONFIG, name="t")
    store.mark_running(run_id, pid=os.getpid(), device="cpu", versions={"torch": "2.x"})
    run = store.get_run(run_id)
    assert run.status == "running" and run.started_at is not None and run.ended_at is None
    assert run.pid == os.getpid() and run.device == "cpu" and run.versions == {"torch": "2.x"}
    assert run.heartbeat is not None and run.duration_s >= 0
    started = run.started_at
    store.finish(run_id, "failed", error="boom")
    run = store.get_run(run_id)
    assert run.status == "failed" and run.error == "boom" and run.ended_at >= started
    assert not run.is_active and run.duration_s == pytest.approx(run.ended_at - started)
    # Resuming keeps the first start time and clears the end and the error.
    store.set_status(run_id, "queued")
    store.mark_running(run_id, pid=os.getpid(), device="cpu", versions={})
    run = store.get_run(run_id)
    assert run.started_at == started and run.ended_at is None and run.error is None
    with pytest.raises(InvalidStatus):
        store.set_status(run_id, "done")
    with pytest.raises(InvalidStatus):
        store.finish(run_id, "running")


def test_update_summary_merges_and_small_setters(store):
    run_id = store.create_run(CONFIG, name="s")
    store.update_summary(run_id, {"best_val_acc": 0.5, "epochs": 1})
    store.update_summary(run_id, {"best_val_acc": 0.7, "params": 1000})
    assert store.get_run(run_id).summary == {"best_val_acc": 0.7, "epochs": 1, "params": 1000}
    store.rename(run_id, "  renamed ")
    store.set_tags(run_id, ["b", "a", "b", " "])
    store.set_notes(run_id, "lr too high")
    run = store.get_run(run_id)
    assert (run.name, run.tags, run.notes) == ("renamed", ["b", "a"], "lr too high")
    assert store.heartbeat(run_id) is False
    store.request_cancel(run_id)
    assert store.heartbeat(run_id) is True and store.get_run(run_id).cancel_requested
    store.finish(run_id, "cancelled")
    assert store.claim_for_resume(run_id, ("cancelled",))  # a resume forgets the cancel request
    assert store.heartbeat(run_id) is False and store.get_run(run_id).status == "queued"


# -- metrics and events ------------------------------------------------------------------------

def test_metrics_many_runs_last_and_delete_after(store):
    a, b = store.create_run(CONFIG, name="a"), store.create_run(CONFIG, name="b")
    now = time.time()
    rows = [(r, s, s / 10, k, float(s) * m, now) for r, m in ((b, 2), (a, 1))
            for k in ("val/acc", "train/loss") for s in reversed(range(10))]
    store.log_metrics(rows)
    frame = store.metrics([a, b])
    assert list(frame.columns) == METRIC_COLUMNS and len(frame) == 40
    expected = frame.sort_values(["run_id", "key", "step"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["step"].dtype == "int64" and frame["value"].dtype == "float64"
    only_loss = store.metrics(b, keys=["train/loss"])
    assert set(only_loss["run_id"]) == {b} and set(only_loss["key"]) == {"train/loss"}
    assert list(only_loss["value"]) == [2.0 * s for s in range(10)]
    assert store.last_metrics(a) == {"train/loss": 9.0, "val/acc": 9.0}
    assert store.delete_metrics_after(a, 4) == 10
    left = store.metrics(a)
    assert left["step"].max() == 4 and len(left) == 10
    assert store.last_metrics(a) == {"train/loss": 4.0, "val/acc": 4.0}
    assert len(store.metrics(b)) == 20  # the other run is untouched
    empty = store.metrics([])
    assert list(empty.columns) == METRIC_COLUMNS and len(empty) == 0


def test_events(store):
    run_id = store.create_run(CONFIG, name="e")
    store.log_event(run_id, "started")
    store.log_event(run_id, "loss is NaN", level="WARNING")
    frame = store.events(run_id)
    assert list(frame["message"]) == ["started", "loss is NaN"]
    assert list(frame["level"]) == ["info", "warning"]


def test_metric_buffer_flushes_by_rows_and_on_exit(store):
    run_id = store.create_run(CONFIG, name="buf")
    with MetricBuffer(store, run_id, flush_rows=100, flush_seconds=3600) as buffer:
        for step in range(250):
            buffer.add(step, 0.0, "loss", 1.0 / (step + 1))
            if step == 99:
                assert len(store.metrics(run_id)) == 100 and len(buffer) == 0
        assert len(store.metrics(run_id)) == 200 and len(buffer) == 50
    assert len(store.metrics(run_id)) == 250  # the last 50 written on exit
    assert list(store.metrics(run_id)["step"]) == list(range(250))


def test_metric_buffer_flushes_by_time(store):
    run_id = store.create_run(CONFIG, name="timed")
    buffer = MetricBuffer(store, run_id, flush_rows=10_000, flush_seconds=0.05)
    buffer.add(0, 0.0, "loss", 1.0)
    time.sleep(0.06)
    buffer.add(1, 0.0, "loss", 0.5)
    assert len(store.metrics(run_id)) == 2


# -- ids, deletion -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["../x", "", "UPPER", "a/b", "../../etc/passwd", "abc", None])
def test_invalid_ids_raise_run_not_found(store, bad):
    with pytest.raises(RunNotFound):
        store.get_run(bad)
    with pytest.raises(RunNotFound):
        run_dir(bad)
    with pytest.raises(RunNotFound):
        store.delete_run(bad)


def test_unknown_id_raises_with_its_name(store):
    unknown = "990101-000000-abcd"
    with pytest.raises(RunNotFound, match=unknown):
        store.get_run(unknown)
    with pytest.raises(RunNotFound, match=unknown):
        store.finish(unknown, "completed")
    with pytest.raises(RunNotFound):
        store.update_summary(unknown, {"x": 1})
    assert run_dir("990101-000000-abcd").parent == runs_root()


def test_delete_run_removes_rows_and_folder(store):
    keep, gone = store.create_run(CONFIG, name="keep"), store.create_run(CONFIG, name="gone")
    (run_dir(gone) / "last.pt").write_bytes(b"x")
    store.log_metrics([(gone, 1, 0.0, "loss", 1.0, time.time()), (keep, 1, 0.0, "loss", 1.0, time.time())])
    store.log_event(gone, "hello")
    store.delete_run(gone)
    assert not run_dir(gone).exists() and run_dir(keep).is_dir()
    with pytest.raises(RunNotFound):
        store.get_run(gone)
    assert len(store.metrics(gone)) == 0 and len(store.events(gone)) == 0
    assert list(store.list_runs()["id"]) == [keep] and len(store.metrics(keep)) == 1
    with pytest.raises(RunNotFound):
        store.delete_run(gone)


# -- stale runs ----------------------------------------------------------------------------------

def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0) and not pid_alive(-1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="zombies are read from /proc")
def test_pid_alive_false_for_zombie():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while pid_alive(child.pid) and time.time() < deadline:
        time.sleep(0.01)  # not waited for, so it stays a zombie once it exits
    assert not pid_alive(child.pid)
    child.wait()


def test_reap_stale_marks_dead_workers_interrupted(store, monkeypatch):
    monkeypatch.setenv("LAB_HEARTBEAT_STALE_S", "5")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = store.create_run(CONFIG, name="dead")
    alive = store.create_run(CONFIG, name="alive")
    fresh = store.create_run(CONFIG, name="fresh")
    store.mark_running(dead, pid=child.pid, device="cpu", versions={})
    store.mark_running(alive, pid=os.getpid(), device="cpu", versions={})
    store.mark_running(fresh, pid=child.pid, device="cpu", versions={})
    _age_heartbeat(store, dead, 60)
    _age_heartbeat(store, alive, 60)
    # `fresh` has a dead pid but a recent heartbeat: still within its grace period.
    assert store.reap_stale() == [dead]
    run = store.get_run(dead)
    assert run.status == "interrupted" and run.error == INTERRUPTED_MESSAGE and run.ended_at is not None
    assert store.get_run(alive).status == "running"
    assert store.get_run(fresh).status == "running"
    assert store.reap_stale() == []


# -- concurrency ---------------------------------------------------------------------------------

ROWS_PER_WRITER = 3000
BATCH = 25


def _hammer(lab_home: str, run_id: str, barrier, errors) -> None:
    """One writer process: its own RunStore on the shared file, small batches plus run updates."""
    try:
        os.environ["LAB_HOME"] = lab_home
        store = RunStore()
        barrier.wait(timeout=60)
        for batch, start in enumerate(range(0, ROWS_PER_WRITER, BATCH)):
            now = time.time()
            store.log_metrics([(run_id, s, 0.0, "loss", float(s), now) for s in range(start, start + BATCH)])
            if batch % 10 == 0:
                store.heartbeat(run_id)
                store.update_summary(run_id, {f"pid{os.getpid()}": start})
                store.log_event(run_id, f"batch {batch}")
                store.list_runs()
        store.close()
    except BaseException as error:  # reported to the parent; an exit code alone says nothing
        errors.put(f"{type(error).__name__}: {error}")
        raise


def test_eight_processes_write_at_once_without_losing_rows(store):
    writers = 8
    run_ids = [store.create_run(CONFIG, name=f"w{i}") for i in range(writers)]
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(writers), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(os.environ["LAB_HOME"], run_ids[i % 2], barrier, errors))
             for i in range(writers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert messages == []
    assert [proc.exitcode for proc in procs] == [0] * writers
    frame = store.metrics(run_ids)
    assert len(frame) == writers * ROWS_PER_WRITER
    assert frame.groupby("run_id").size().to_dict() == {run_ids[0]: 4 * ROWS_PER_WRITER, run_ids[1]: 4 * ROWS_PER_WRITER}
    assert len(store.get_run(run_ids[0]).summary) == 4  # every writer's merge survived
    assert len(store.events(run_ids[1])) == 4 * len(range(0, ROWS_PER_WRITER, BATCH * 10))


def test_threads_share_one_store(store):
    run_id = store.create_run(CONFIG, name="threads")
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with MetricBuffer(store, run_id, flush_rows=50) as buffer:
                for step in range(1000):
                    buffer.add(step, 0.0, f"k{index}", float(step))
                    if step % 200 == 0:
                        store.heartbeat(run_id)
                        store.update_summary(run_id, {f"t{index}": step})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.metrics(run_id)) == 4000
    assert store.get_run(run_id).summary == {f"t{i}": 800 for i in range(4)}


def test_each_run_reports_the_metric_its_task_watches_and_its_best_value():
    from core.store.records import best_of, watched_metric
    assert (watched_metric({}), best_of({})) == ("val_acc", None)  # classification, before any validation
    assert (watched_metric({"best_val_acc": 0.9}), best_of({"best_val_acc": 0.9})) == ("val_acc", 0.9)
    gan = {"best_metric": "val_fd", "best_val_fd": 0.25, "best_val_acc": 0.9}
    assert (watched_metric(gan), best_of(gan)) == ("val_fd", 0.25)


def test_duration_counts_running_time_only_not_the_pause_before_a_resume(tmp_path, monkeypatch):
    import core.store.db
    clock = [1000.0]
    monkeypatch.setattr(core.store.db.time, "time", lambda: clock[0])
    store = RunStore(tmp_path / "lab.db")
    run_id = store.create_run({"data": {"name": "digits"}}, name="paused")
    store.mark_running(run_id, pid=1, device="cpu", versions={})
    clock[0] += 30  # ran 30 s, then cancelled
    store.finish(run_id, "cancelled")
    clock[0] += 3600  # sat cancelled for an hour
    assert store.get_run(run_id).duration_s == 30
    assert store.claim_for_resume(run_id, ("cancelled",))
    store.mark_running(run_id, pid=2, device="cpu", versions={})
    clock[0] += 12
    assert store.get_run(run_id).duration_s == 42  # while running: the finished stretch and this one so far
    store.finish(run_id, "completed")
    assert store.get_run(run_id).duration_s == 42
    assert store.list_runs().duration_s.tolist() == [42.0]


def test_a_version_2_store_keeps_its_runs_durations_after_the_upgrade(tmp_path):
    import sqlite3
    from core.store.connection import SCHEMA_V1, SCHEMA_V2
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in SCHEMA_V1 + SCHEMA_V2:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO runs (id, name, status, created_at, started_at, ended_at) "
                 "VALUES ('261201-120000-abcd', 'old', 'completed', 100, 110, 170)")
    conn.commit()
    conn.close()
    assert RunStore(path).get_run("261201-120000-abcd").duration_s == 60
