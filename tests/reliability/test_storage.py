"""A read-only or full LAB_HOME: one sentence (which folder, what to do) from every CLI command and page,
never a traceback; a run stopped by a full disk resumes from its last good checkpoint once space is back.

Root ignores file modes, so as root the read-only home is a real read-only tmpfs mount and the full disk
a real tiny tmpfs; as another user the read-only home is a folder without write permission."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.engine import callbacks
from core.errors import StorageError
from core.paths import storage_error
from core.presets import preset
from core.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root with CAP_SYS_ADMIN")


@pytest.fixture
def read_only_home(tmp_path, monkeypatch):
    """A lab home holding one recorded run, then made read-only."""
    home = tmp_path / "lab"
    if IS_ROOT:
        mount_tmpfs(home, "64m")
    monkeypatch.setenv("LAB_HOME", str(home))
    # Recorded by another process, so that no connection of ours keeps the mount busy.
    made = subprocess.run([sys.executable, "-c", "from core import jobs; from core.presets import preset; "
                           "from core.store import RunStore; run_id = jobs.create(preset('digits-mlp')); "
                           "RunStore().finish(run_id, 'interrupted', error='the worker vanished'); print(run_id)"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    run_id = made.stdout.strip()
    if IS_ROOT:
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
    else:
        for folder, _, files in os.walk(home):
            for name in files:
                os.chmod(Path(folder) / name, 0o444)
            os.chmod(folder, 0o555)
    yield home, run_id
    if IS_ROOT:
        subprocess.run(["umount", "--lazy", str(home)], check=False)  # detached now, freed once unused
    else:
        for folder, _, _ in os.walk(home):
            os.chmod(folder, 0o755)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ})


@pytest.mark.parametrize("args", [
    ("runs", "list"), ("runs", "show", "{run}"), ("runs", "export", "{run}", "--csv", "/dev/null"), ("runs", "delete", "{run}", "--yes"),
    ("resume", "{run}"), ("cancel", "{run}"), ("train", "--preset", "digits-mlp", "--epochs", "1"),
])
def test_every_cli_command_on_a_read_only_home_says_one_clear_sentence(read_only_home, args):
    home, run_id = read_only_home
    done = cli(*(a.format(run=run_id) for a in args))
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output and "sqlite3" not in output, output
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("error: the lab cannot write to its folder"), output
    assert str(home) in message[0] and "LAB_HOME" in message[0]


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/train.py", "app_pages/runs.py",
                                  "app_pages/media.py", "app_pages/concepts.py"])
def test_every_page_on_a_read_only_home_shows_the_sentence_and_no_traceback(read_only_home, page):
    home, _ = read_only_home
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page != "app_pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "cannot write to its folder" in errors[0] and str(home) in errors[0], errors


def test_the_sentence_for_each_kind_of_refusal():
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"))
    denied = storage_error(PermissionError(errno.EACCES, "Permission denied"))
    read_only = storage_error(OSError(errno.EROFS, "Read-only file system"))
    assert isinstance(full, StorageError) and full.full and "is full" in str(full)
    assert isinstance(denied, StorageError) and "permission denied" in str(denied) and "LAB_HOME" in str(denied)
    assert "read-only file system" in str(read_only)
    other = ValueError("not about storage")
    assert storage_error(other) is other


@pytest.mark.skipif(not IS_ROOT, reason="a genuinely full disk needs a tmpfs mount, which needs root")
def test_a_run_stopped_by_a_full_disk_resumes_from_its_last_good_checkpoint(tmp_path, monkeypatch):
    home = tmp_path / "lab"
    mount_tmpfs(home, "48m")
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.setenv("LAB_HEARTBEAT_S", "0.2")
    ballast = home / "ballast"
    real_epoch_end = callbacks.Checkpointer.on_epoch_end

    def fill_after_first_epoch(self, trainer, metrics):
        real_epoch_end(self, trainer, metrics)
        if trainer.epoch == 1:  # epoch 1's checkpoint is safe on disk: now the disk fills up
            with open(ballast, "wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * (1 << 20))
                        handle.flush()
                except OSError:
                    pass
            with open(ballast, "r+b") as handle:  # leave the store room for its small writes, not a checkpoint
                handle.truncate(ballast.stat().st_size - (1 << 20))

    monkeypatch.setattr(callbacks.Checkpointer, "on_epoch_end", fill_after_first_epoch)
    try:
        config = preset("digits-cnn").replace(**{"optim.epochs": 3, "log_every": 5, "model.hidden": 512})
        run_id = jobs.create(config)
        from core.jobs.runner import execute_run
        assert execute_run(run_id, slot="cpu") == "interrupted"
        store = RunStore()
        run = store.get_run(run_id)
        assert "is full" in run.error and "resume" in run.error and "Traceback" not in run.error
        assert "unexpected pos" not in run.error and "inline_container" not in run.error
        steps_per_epoch = run.summary["steps_per_epoch"]
        assert any(f"a resume continues from step {steps_per_epoch}" in m for m in store.events(run_id).message)

        ballast.unlink()  # space is back
        monkeypatch.setattr(callbacks.Checkpointer, "on_epoch_end", real_epoch_end)
        assert jobs.resume(run_id, detach=False, progress=False) == "completed"
        run = store.get_run(run_id)
        assert run.summary["epochs_done"] == 3
        assert store.metrics(run_id, keys=["train_loss"]).step.is_unique
        assert any(m.startswith(f"resumed from step {steps_per_epoch} ") for m in store.events(run_id).message)
    finally:
        subprocess.run(["umount", "--lazy", str(home)], check=False)  # detached now, freed once unused
