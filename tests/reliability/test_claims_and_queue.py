"""Claims on a run are atomic, and a queued run is a small process that starts in submission order.

Reproduces: two `resume` calls on one run both started a worker (52 train_loss rows for 30 steps);
each queued run held about 0.5 GB before it had a slot; the queue did not start runs in order."""

import subprocess
import sys
import threading
import time
from pathlib import Path

from core import jobs
from core.errors import LabError
from core.jobs.slots import device_slot
from core.presets import preset
from core.store import RunStore
from conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]




def tiny(name="tiny", epochs=1):
    return preset("digits-mlp").replace(**{"optim.epochs": epochs, "log_every": 5, "name": name})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def test_two_concurrent_resumes_start_one_worker_and_the_other_is_told_why(lab_home):
    store = RunStore()
    run_id = jobs.create(tiny(epochs=2))
    store.finish(run_id, "interrupted", error="the worker vanished")
    # Two terminals typing `resume` at once: real processes, released together.
    command = [sys.executable, "-m", "core", "resume", run_id, "--detach"]
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [(p.wait(timeout=120), p.stdout.read()) for p in procs]
    assert sorted(code == 0 for code, _ in outputs) == [False, True], outputs
    refused = next(text for code, text in outputs if code != 0)
    assert "already" in refused and "Traceback" not in refused
    wait_for(lambda: store.get_run(run_id).status == "completed", timeout=120, what="the resumed run")
    steps = store.metrics(run_id, keys=["train_loss"]).step
    assert steps.is_unique, "two workers trained the same run"
    assert len(store.events(run_id).query("message.str.startswith('resumed from step') or "
                                          "message.str.startswith('no checkpoint')")) == 1


def test_eight_resumes_racing_in_threads_start_exactly_one_worker(lab_home, monkeypatch):
    store = RunStore()
    run_id = jobs.create(tiny())
    store.finish(run_id, "cancelled")
    spawned, refused = [], []
    monkeypatch.setattr(jobs, "spawn_worker", lambda run, **_: spawned.append(run))
    barrier = threading.Barrier(8)

    def resume():
        barrier.wait()
        try:
            jobs.resume(run_id)
        except LabError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spawned == [run_id], f"{len(spawned)} workers started for one run"
    assert len(refused) == 7 and all("already queued" in m for m in refused), refused
    assert store.get_run(run_id).status == "queued"


def test_a_repeated_launch_request_makes_one_run_and_a_new_config_a_new_one(lab_home, monkeypatch):
    spawned = []
    monkeypatch.setattr(jobs, "spawn_worker", lambda run_id, **_: spawned.append(run_id))
    first = jobs.submit(tiny(), request_key="session-a:config-1")
    again = jobs.submit(tiny(), request_key="session-a:config-1")
    other = jobs.submit(tiny(), request_key="session-a:config-2")
    assert again == first and other != first
    assert spawned == [first, other] and RunStore().count_runs() == 2


def test_cancelling_a_finished_run_is_refused_and_changes_nothing(lab_home):
    store = RunStore()
    run_id = jobs.create(tiny())
    store.finish(run_id, "completed")
    try:
        jobs.cancel(run_id, wait_s=0)
    except LabError as exc:
        assert "completed" in str(exc)
    else:
        raise AssertionError("cancelling a completed run was accepted")
    assert not store.get_run(run_id).cancel_requested


def test_queued_runs_are_small_processes_and_start_in_submission_order(lab_home):
    store = RunStore()
    with device_slot("cpu") as held:  # the CPU is busy: every run below has to queue
        assert held
        run_ids = [jobs.submit(tiny(f"queued {i}")) for i in range(4)]
        pids = [store.get_run(r).pid for r in run_ids]
        time.sleep(6)  # long enough for an eager worker to import torch (about 2 s here)
        assert [store.get_run(r).status for r in run_ids] == ["queued"] * 4
        sizes = [rss_mb(pid) for pid in pids]
        print(f"queued workers hold {[round(s) for s in sizes]} MB")
        assert max(sizes) < 100, f"queued workers hold {sizes} MB"
    wait_for(lambda: all(store.get_run(r).status == "completed" for r in run_ids), timeout=240,
             what="the queued runs")
    started = [store.get_run(r).started_at for r in run_ids]
    assert started == sorted(started), "runs started out of submission order"
