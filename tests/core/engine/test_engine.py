import math
import threading

import pytest
import torch

from core.presets import preset
from core.jobs.assemble import assemble
from core.engine.callbacks import Callback, Checkpointer
from core.engine.checkpoint import LAST, load_checkpoint
from core.engine.optim import lr_curve, lr_factor
from core.errors import Cancelled, TrainingError
from core.tasks import validate


class Recorder(Callback):
    def __init__(self, stop_at_step=None, stop_event=None):
        self.logs, self.epochs = [], []
        self.stop_at_step, self.stop_event = stop_at_step, stop_event

    def on_train_batch_end(self, trainer):
        if self.stop_at_step is not None and trainer.step == self.stop_at_step:
            self.stop_event.set()

    def on_train_log(self, trainer, metrics):
        self.logs.append((trainer.step, metrics["train_loss"]))

    def on_epoch_end(self, trainer, metrics):
        self.epochs.append((trainer.step, metrics["val_loss"], metrics["val_acc"]))


def small_config(**overrides):
    config = preset("digits-mlp").replace(**{"optim.epochs": 3, "log_every": 5, "model.dropout": 0.2,
                                             "data.augment_crop": True, "data.crop_padding": 1, **overrides})
    return validate(config)


def test_trainer_overfits_a_tiny_batch(lab_home):
    config = validate(preset("digits-cnn").replace(**{"data.limit": 32, "optim.batch_size": 32, "optim.epochs": 150,
                                             "optim.lr": 3e-3, "log_every": 1}))
    recorder = Recorder()
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[recorder])
    trainer.fit()
    first, last = recorder.logs[0][1], recorder.logs[-1][1]
    assert first > 1.5  # about ln(10) at the start
    assert last < 0.02, f"loss only went from {first:.3f} to {last:.3f}"


def test_digits_cnn_preset_reaches_95_percent_validation_accuracy(lab_home):
    trainer = assemble(validate(preset("digits-cnn")), device=torch.device("cpu"))
    summary = trainer.fit()
    assert summary["best_val_acc"] >= 0.95, summary
    assert summary["steps"] == summary["steps_per_epoch"] * 10


def test_resuming_mid_epoch_continues_exactly_where_training_stopped(lab_home, tmp_path):
    config = small_config()
    reference = Recorder()
    assemble(config, device=torch.device("cpu"), callbacks=[reference]).fit()

    stop = threading.Event()
    first_part = Recorder(stop_at_step=35, stop_event=stop)  # 22 steps per epoch: stops inside epoch 2
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[first_part, Checkpointer(tmp_path)],
                       stop_event=stop)
    with pytest.raises(Cancelled):
        trainer.fit()
    payload = load_checkpoint(tmp_path / LAST)
    assert payload["step"] == 35 and payload["epoch"] == 1 and payload["batch_in_epoch"] == 13

    second_part = Recorder()
    resumed = assemble(config, device=torch.device("cpu"), callbacks=[second_part])
    resumed.load_state_dict(payload)
    resumed.fit()

    steps = [s for s, _ in first_part.logs] + [s for s, _ in second_part.logs]
    assert steps == sorted(set(steps)), "a step was logged twice"
    assert steps == [s for s, _ in reference.logs]
    # same data order, same augmentation, same dropout masks: the curves are identical after the resume
    assert first_part.epochs + second_part.epochs == pytest.approx(reference.epochs, rel=1e-5)
    after = [loss for s, loss in second_part.logs if s % 5 == 0 and s > 40]
    expected = [loss for s, loss in reference.logs if s % 5 == 0 and s > 40]
    assert after == pytest.approx(expected, rel=1e-5)


def test_non_finite_loss_stops_training_with_a_message(lab_home, monkeypatch):
    from core.tasks.classification import ClassificationTask
    original = ClassificationTask.training_step

    def poisoned(self, model, batch):
        loss, sums = original(self, model, batch)
        return loss * float("nan"), {**sums, "loss": sums["loss"] * float("nan")}
    monkeypatch.setattr(ClassificationTask, "training_step", poisoned)
    trainer = assemble(small_config(), device=torch.device("cpu"))
    with pytest.raises(TrainingError, match=r"the training loss became nan at step 5: training diverged"):
        trainer.fit()


def test_optimizers_and_options_all_train(lab_home):
    for overrides in ({"optim.optimizer": "sgd", "optim.lr": 0.05, "optim.nesterov": True},
                      {"optim.optimizer": "adamw", "optim.weight_decay": 0.01, "optim.schedule": "onecycle"},
                      {"optim.label_smoothing": 0.1, "optim.grad_clip": 0.5, "optim.schedule": "step",
                       "optim.step_size": 1, "optim.gamma": 0.5, "channels_last": True,
                       "data.augment_flip": True}):
        summary = assemble(small_config(**overrides), device=torch.device("cpu")).fit()
        assert summary["best_val_acc"] > 0.7, overrides


def test_early_stopping_ends_the_run_when_the_metric_stalls(lab_home):
    from core.engine.callbacks import EarlyStopping
    config = small_config(**{"optim.epochs": 50, "optim.lr": 1e-9})  # nothing improves after epoch 1
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[EarlyStopping(2)])
    summary = trainer.fit()
    assert summary["epochs_done"] < 50 and "early stopping" in summary["stop_reason"]


def test_schedules_match_torch_references():
    config = preset("digits-cnn").optim
    config.epochs, config.lr = 4, 0.1
    steps = 10
    config.schedule = "cosine"
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)
    expected = []
    for _ in range(40):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        reference.step()
    assert lr_curve(config, steps) == pytest.approx(expected, abs=1e-9)

    config.schedule, config.step_size, config.gamma = "step", 2, 0.5
    assert [lr_factor(s, config, steps) for s in (0, 19, 20, 39)] == [1, 1, 0.5, 0.5]
    config.schedule, config.warmup_epochs = "constant", 1.0
    assert [lr_factor(s, config, steps) for s in (0, 4, 9, 10, 30)] == pytest.approx([0.1, 0.5, 1, 1, 1])
    config.schedule, config.warmup_epochs = "onecycle", 0.0
    curve = lr_curve(config, steps)
    peak = max(range(40), key=curve.__getitem__)
    assert curve[0] == pytest.approx(0.1 / 25) and 10 <= peak <= 13 and curve[-1] < 0.1 * 1e-2
    assert all(math.isfinite(v) for v in curve)


def test_weight_decay_spares_biases_and_norms_and_old_single_group_checkpoints_still_resume(lab_home):
    from core.engine.optim import build_optimizer, build_scheduler
    config = small_config(**{"model.name": "cnn", "optim.optimizer": "adamw", "optim.lr": 3e-3,
                             "optim.weight_decay": 0.01, "optim.epochs": 2})
    trainer = assemble(config, device=torch.device("cpu"))
    decayed, spared = trainer.optimizer.param_groups
    names = {id(p): name for name, p in trainer.model.named_parameters()}
    assert decayed["weight_decay"] == 0.01 and spared["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim == 1 for p in spared["params"])
    assert any("bias" in names[id(p)] for p in spared["params"])  # biases and batch-norm scales are spared
    assert len(decayed["params"]) + len(spared["params"]) == sum(1 for p in trainer.model.parameters())

    import torchvision
    from core.engine.optim import parameter_groups
    convnext = torchvision.models.convnext_tiny()
    _, convnext_spared = parameter_groups(convnext, 0.05)
    scales = {id(p) for name, p in convnext.named_parameters() if name.endswith("layer_scale")}
    assert scales and scales <= {id(p) for p in convnext_spared["params"]}  # (C, 1, 1) scales are spared too

    payload = trainer.state_dict()  # as a checkpoint written before the split: one group for everything
    old_optimizer = build_optimizer(trainer.model, config.optim, split=False)
    payload["optimizer"] = old_optimizer.state_dict()
    payload["scheduler"] = build_scheduler(old_optimizer, config.optim, trainer.steps_per_epoch).state_dict()
    resumed = assemble(config, device=torch.device("cpu"))
    resumed.load_state_dict(payload)
    assert len(resumed.optimizer.param_groups) == 1 and resumed.optimizer.param_groups[0]["weight_decay"] == 0.01
    assert resumed.fit()["best_val_acc"] > 0.5  # and it trains on with the scheduler bound to that optimiser


def test_channels_last_trains_a_video_model_with_3d_convolutions(lab_home):
    """channels_last on a model with 5-D kernels takes their form, channels_last_3d, instead of failing."""
    config = validate(preset("moving-shapes-r2plus1d").replace(**{
        "data.options": {"frames": 8, "size": 32, "num_samples": 96}, "optim.batch_size": 16, "optim.epochs": 1,
        "channels_last": True, "log_every": 1}))
    recorder = Recorder()
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[recorder])
    trainer.fit()
    kernels = [p for p in trainer.model.parameters() if p.dim() == 5 and p.shape[2:].numel() > 1]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in kernels)
    assert recorder.logs and all(math.isfinite(loss) for _, loss in recorder.logs)
