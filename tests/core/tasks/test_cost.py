"""Cost before launch: training FLOPs per step from a meta-device forward pass, divided by the device's
measured rate; the live view's ETA uses it until the run's own pace is known."""

import pandas as pd
import pytest

from core import jobs
from core.analysis import run_progress
from core.presets import preset
from core.store import RunStore
from core.tasks.cost import seconds_per_step, training_flops_per_step


def test_flops_scale_with_the_batch_and_the_model():
    cnn = preset("cifar10-cnn")
    one = training_flops_per_step(cnn)
    double = training_flops_per_step(cnn.replace(**{"optim.batch_size": 2 * cnn.optim.batch_size}))
    assert double == pytest.approx(2 * one, rel=1e-6)
    resnet = training_flops_per_step(preset("cifar10-resnet18").replace(**{"optim.batch_size": cnn.optim.batch_size}))
    assert resnet > 10 * one  # ResNet-18 costs far more per image than the small CNN at 32 px
    # about 3 x 2 x 0.56 GMACs per 32x32 image for ResNet-18 (He et al.'s CIFAR variant is smaller; ours keeps
    # the ImageNet widths), so between 1 and 5 GFLOP per image and step
    assert 1e9 < resnet / cnn.optim.batch_size < 5e9


def test_a_family_that_cannot_say_its_input_shape_is_not_estimated():
    assert training_flops_per_step(preset("digits-dcgan")) is None  # only image classifiers declare it today


def test_the_estimate_is_stored_with_a_new_run_and_gives_an_eta_before_the_first_logged_steps(lab_home):
    config = preset("digits-cnn")
    run_id = jobs.create(config)
    summary = RunStore().get_run(run_id).summary
    assert summary["estimated_seconds_per_step"] == pytest.approx(seconds_per_step(config), rel=0.5)
    empty = pd.DataFrame(columns=["run_id", "step", "epoch", "key", "value", "time"])
    progress = run_progress("running", config.to_dict(), {**summary, "steps_per_epoch": 44}, empty)
    assert progress.eta_estimated and progress.eta_s == pytest.approx(44 * 10 * summary["estimated_seconds_per_step"])
    # once two log windows give a pace, the measured one is used
    rows = pd.DataFrame([(run_id, 10, 0.2, "train_loss", 1.0, 100.0), (run_id, 20, 0.4, "train_loss", 0.9, 101.0)],
                        columns=["run_id", "step", "epoch", "key", "value", "time"])
    measured = run_progress("running", config.to_dict(), {**summary, "steps_per_epoch": 44}, rows)
    assert not measured.eta_estimated and measured.eta_s == pytest.approx((440 - 20) / 10)


def test_the_train_form_shows_time_per_step_and_per_epoch_before_launch(lab_home):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parents[3] / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    time_line = next(c for c in captions if "Time: about" in c)
    assert "per step" in time_line and "per epoch (44 steps)" in time_line  # digits: 1,437 images / 32
    assert any("Memory: about" in c for c in captions)
