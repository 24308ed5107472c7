"""The smaller defects: each message names the user's file and never a server path or unsafe advice;
Launch stays disabled while the data preview fails; the cancel event names the step a resume really
continues from; the Media uploaders accept every picture format core decodes (TIFF was refused)."""

import os
import signal
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import jobs
from core.data.images import IMAGE_EXTENSIONS
from core.data.video_frames import sample_frames
from core.engine import callbacks
from core.engine.checkpoint import load_checkpoint
from core.errors import CheckpointError, InputError
from core.jobs.runner import execute_run
from core.presets import preset
from core.store import RunStore
from core.tasks.classification import ClassificationTask

ROOT = Path(__file__).resolve().parents[2]


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_an_unsafe_checkpoint_is_refused_without_torchs_advice_to_load_it_unsafely(tmp_path):
    hostile = tmp_path / "last.pt"
    torch.save({"model": _RunsCode()}, hostile)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(hostile)
    message = str(refused.value)
    assert "could run code" in message and "weights_only" not in message and "False" not in message
    hostile.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt") as damaged:
        load_checkpoint(hostile)
    assert "weights_only" not in str(damaged.value)


def test_a_video_that_does_not_decode_is_named_as_uploaded_not_by_its_temporary_file():
    with pytest.raises(InputError) as refused:
        sample_frames(os.urandom(4096), name="holiday.mp4", timeout_s=30)
    message = str(refused.value)
    assert message.startswith("could not decode holiday.mp4") and "/tmp" not in message and "lab-video" not in message


def test_the_media_uploaders_accept_every_picture_format_core_decodes():
    from ui.families import captioning, classification_media
    for types in (classification_media.IMAGE_TYPES, captioning.IMAGE_TYPES):
        assert {e.lstrip(".") for e in IMAGE_EXTENSIONS} <= set(types)


def test_launch_stays_disabled_while_the_data_preview_fails(lab_home, monkeypatch):
    monkeypatch.setenv("LAB_DATA_ROOTS", "")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="cfg.data.name").set_value("folder").run()
    at.text_input(key="cfg.data.path").set_value("/etc").run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("outside the folders the lab may read" in w for w in warnings), warnings
    assert [b for b in at.button if b.label == "Launch"][0].disabled
    # a folder it may read brings Launch back
    for label in ("cat", "dog"):
        folder = lab_home / "data" / "pets" / "train" / label
        folder.mkdir(parents=True)
        for i in range(3):
            from PIL import Image
            Image.new("RGB", (20, 20), (40 * i, 200 if label == "cat" else 0, 90)).save(folder / f"{i}.png")
    at.text_input(key="cfg.data.path").set_value(str(lab_home / "data" / "pets")).run()
    assert not [b for b in at.button if b.label == "Launch"][0].disabled


def test_a_second_ctrl_c_during_the_cancel_save_logs_the_step_resume_really_continues_from(lab_home, monkeypatch):
    real_step, calls = ClassificationTask.training_step, []

    def step(self, model, batch):
        calls.append(1)
        if len(calls) == steps_per_epoch + 3:  # three batches into epoch 2: the first Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, model, batch)

    def second_ctrl_c_while_saving(self, trainer):
        raise KeyboardInterrupt

    config = preset("digits-cnn").replace(**{"optim.epochs": 3, "log_every": 1})
    from core.data.loader import steps_per_epoch as per_epoch
    steps_per_epoch = per_epoch(1437, config.optim.batch_size)  # digits: 1,797 images, 20% held out
    monkeypatch.setattr(ClassificationTask, "training_step", step)
    monkeypatch.setattr(callbacks.Checkpointer, "on_cancel", second_ctrl_c_while_saving)
    run_id = jobs.create(config)
    try:
        execute_run(run_id, slot="cpu")
    except KeyboardInterrupt:
        pass
    store = RunStore()
    assert store.get_run(run_id).status == "cancelled"
    assert store.get_run(run_id).summary["steps_per_epoch"] == steps_per_epoch
    event = [m for m in store.events(run_id).message if m.startswith("cancelled at step")][-1]
    assert event == (f"cancelled at step {steps_per_epoch + 3}; a resume continues from step {steps_per_epoch}, "
                     "its last checkpoint")
    monkeypatch.setattr(ClassificationTask, "training_step", real_step)
    assert jobs.resume(run_id, detach=False, progress=False) == "completed"
    assert any(m.startswith(f"resumed from step {steps_per_epoch} ") for m in store.events(run_id).message)
