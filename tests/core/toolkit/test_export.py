"""Exporting a finished run (core.toolkit.export): each format is checked against PyTorch on the run's validation
images, a broken export is refused with nothing written, the weights reload bit for bit, the bundle's predict.py
classifies like the lab without the lab, and bad requests change nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import train_in_process
from core.cli import main
from core.errors import CheckpointError, LabError, RunNotFound
from core.paths import run_dir
from core.presets import preset
from core.tasks.checkpoints import load_run_model
from core.toolkit import export, formats
from core.toolkit.export import FORMATS, TOLERANCE, export_run, list_exports


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("export") / "lab"


@pytest.fixture
def lab(home, monkeypatch):
    """This module's LAB_HOME (one trained run serves every test)."""
    monkeypatch.setenv("LAB_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def run_id(home):
    """A digits-cnn run trained for one epoch (conv, pooling, batch of linear layers: what most runs hold)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(home))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1}))
        finally:
            torch.set_num_threads(threads)


def exports_folder(run_id: str):
    return run_dir(run_id) / "exports"


def folder_state(run_id: str) -> list[str]:
    """Everything under the run's folder: a refused export must leave it as it was."""
    root = run_dir(run_id)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "evaluation_" not in p.name)


def check_batch(run_id: str, which: str = "best"):
    batch, inputs, _ = export.export_spec(load_run_model(run_id, which)).inputs(formats.CHECK_INPUTS)
    assert inputs == "validation"
    return batch


# ---- the formats ------------------------------------------------------------------------------------------------

def test_onnx_agrees_with_pytorch_on_validation_images_at_any_batch_size(lab, run_id):
    import onnxruntime
    result = export_run(run_id, "onnx")
    assert result.path == str(exports_folder(run_id) / "best.onnx")
    assert result.max_abs_diff <= TOLERANCE and result.top1_agreement == 1.0
    assert result.inputs == "validation" and result.images == formats.CHECK_INPUTS

    # checked again here, independently, at a batch size the export never saw
    batch = check_batch(run_id)[:5]
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    ours = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]  # (5, K)
    with torch.inference_mode():
        reference = load_run_model(run_id).model(batch).numpy()
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= TOLERANCE
    assert (ours.argmax(1) == reference.argmax(1)).all()

    listed = list_exports(run_id)
    assert [(r.format, r.path) for r in listed][:1] == [("onnx", result.path)]
    assert listed[0].max_abs_diff == result.max_abs_diff and listed[0].size_bytes == os.path.getsize(result.path)


def test_an_export_that_disagrees_is_refused_with_its_figures_and_nothing_is_written(lab, run_id, monkeypatch):
    before = folder_state(run_id)
    original = formats.onnx_outputs
    monkeypatch.setattr(formats, "onnx_outputs", lambda session, images, spec: original(session, images, spec) + 0.5)
    with pytest.raises(LabError) as caught:
        export_run(run_id, "onnx", which="last")
    message = str(caught.value)
    assert "does not match PyTorch" in message and "nothing was written" in message
    assert "largest output difference 0.5 (at most 0.0001 allowed), top-1 agreement" in message
    assert folder_state(run_id) == before

    # a different top-1 class with tiny differences is refused too
    def swapped(session, images, spec):
        logits = original(session, images, spec)
        return logits[:, ::-1].copy()
    monkeypatch.setattr(formats, "onnx_outputs", swapped)
    with pytest.raises(LabError, match="top-1 agreement"):
        export_run(run_id, "bundle", which="last")
    assert folder_state(run_id) == before


class DataDependent(torch.nn.Module):
    """A layer whose path depends on the values it sees: no exporter can trace it into one graph."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def test_a_model_that_cannot_be_exported_names_the_layer_and_nothing_is_written(lab, run_id, monkeypatch):
    before = folder_state(run_id)
    plain = export.exported_copy

    def with_branch(model):
        copy = plain(model)
        return torch.nn.Sequential(copy, DataDependent()).eval()
    monkeypatch.setattr(export, "exported_copy", with_branch)
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(LabError) as caught:
            export_run(run_id, fmt, which="last")
        message = str(caught.value)
        assert "cannot be exported" in message and "nothing was written" in message
        assert "1 (DataDependent)" in message, message  # the layer, as model.named_modules() names it
        assert "branches on the values in a tensor" in message
    assert folder_state(run_id) == before


def test_a_run_whose_images_cannot_be_read_is_checked_on_random_inputs_and_says_so(lab, run_id, monkeypatch):
    from core.errors import DataError
    from core.tasks.classification import evaluation

    def gone(*_):
        raise DataError("the folder /data/photos is gone")
    monkeypatch.setattr(evaluation, "validation_split", gone)
    result = export_run(run_id, "onnx", which="last")
    assert result.inputs == "random" and "the folder /data/photos is gone" in result.note
    assert result.max_abs_diff <= TOLERANCE and result.top1_agreement == 1.0


def test_torchscript_saves_a_torch_export_program_that_agrees(lab, run_id):
    result = export_run(run_id, "torchscript")
    assert result.path.endswith("best.pt2") and "torch.export" in result.exporter
    assert result.max_abs_diff <= TOLERANCE and result.top1_agreement == 1.0
    batch = check_batch(run_id)[:3]
    program = torch.export.load(result.path).module()
    with torch.no_grad():
        ours = program(batch)
        reference = load_run_model(run_id).model(batch)
    assert (ours - reference).abs().max() <= TOLERANCE


def test_safetensors_reload_bit_for_bit_into_a_fresh_model_and_the_card_says_everything(lab, run_id):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from core.engine.checkpoint import load_checkpoint
    from core.tasks import task_spec

    result = export_run(run_id, "safetensors")
    assert result.max_abs_diff == 0.0 and result.top1_agreement == 1.0
    checkpoint = load_checkpoint(run_dir(run_id) / "best.pt")
    run_model = load_run_model(run_id)
    fresh = task_spec("classification").build_model(run_model.config, run_model.metadata)
    fresh.load_state_dict(load_file(result.path), strict=True)
    state = fresh.state_dict()
    assert set(state) == set(checkpoint["model"])
    assert all(torch.equal(state[key], checkpoint["model"][key]) for key in state)

    card_path, readme = (exports_folder(run_id) / "best.card.json", exports_folder(run_id) / "best.README.md")
    assert sorted(result.files) == sorted([str(card_path), str(readme)])
    card = json.loads(card_path.read_text())
    with safe_open(result.path, framework="pt") as handle:
        assert json.loads(handle.metadata()["lab_card"]) == card
    assert card["run_id"] == run_id and card["model"] == "cnn" and card["config"]["model"]["name"] == "cnn"
    assert card["classes"] == [str(c) for c in run_model.metadata["classes"]]
    pre = card["preprocessing"]
    assert pre["mean"] == pytest.approx(run_model.metadata["preprocessing"]["mean"])
    assert pre["std"] == pytest.approx(run_model.metadata["preprocessing"]["std"])
    assert pre["image_size"] == run_model.metadata["preprocessing"]["image_size"] and pre["channels"] == 1
    assert "squash" in pre["resize"]
    assert card["metrics"]["watched"] == "val_acc" and 0 < card["metrics"]["best"] <= 1
    assert card["metrics"]["best_epoch"] == 1 and card["checkpoint"]["epoch"] == 1
    assert card["data"]["name"] == "digits" and card["data"]["validation_images"] > 0
    assert card["exported"]["date"].startswith("20") and card["trained"]["software"]["torch"] == torch.__version__
    assert "safetensors" in card["exported"]["software"]
    text = readme.read_text()
    assert run_id in text and "Preparing a picture" in text


def test_the_bundle_classifies_a_picture_like_the_lab_without_the_lab(lab, run_id, tmp_path):
    from core.tasks.classification.evaluation import val_images
    from core.tasks.classification.predictor import load_run_predictor

    result = export_run(run_id, "bundle")
    assert result.path.endswith("best-bundle.zip")
    with zipfile.ZipFile(result.path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / f"{run_id}-best"
    assert {"model.onnx", "card.json", "README.md", "predict.py", "requirements.txt", "classes.txt"} <= \
        {name.rsplit("/", 1)[-1] for name in names}

    # a validation digit, bigger and in colour, so predict.py must squash it and make it grey as the lab does
    grey = val_images(run_id, [7])[0][:, :, 0]  # (S, S)
    picture = Image.fromarray(grey).convert("RGB").resize((40, 30), Image.Resampling.NEAREST)
    image_path = tmp_path / "digit.png"
    picture.save(image_path)
    expected = load_run_predictor(run_id).top_k(Image.open(image_path), k=3)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    lab_free = subprocess.run([sys.executable, "-I", "-c", "import core"], cwd=outside, capture_output=True)
    assert lab_free.returncode != 0  # isolated mode: the lab cannot be imported there
    done = subprocess.run([sys.executable, "-I", str(folder / "predict.py"), str(image_path), "--top-k", "3",
                           "--json"], cwd=outside, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed[0]["class"] == expected[0][0]
    assert [p["probability"] for p in printed] == pytest.approx([p for _, p in expected], abs=1e-4)

    plain = subprocess.run([sys.executable, "-I", str(folder / "predict.py"), str(image_path)], cwd=outside,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and plain.stdout.startswith(f"1. {expected[0][0]}  ")


# ---- the command line ------------------------------------------------------------------------------------------

def test_cli_export_prints_json_with_the_figures(lab, run_id, capsys, tmp_path):
    out = tmp_path / "digits.onnx"
    code = main(["export", run_id, "--format", "onnx", "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    result = json.loads(printed.out)
    assert {"path", "format", "max_abs_diff", "top1_agreement"} <= set(result)
    assert result["path"] == str(out) and result["format"] == "onnx" and out.is_file()
    assert result["max_abs_diff"] <= TOLERANCE and result["top1_agreement"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.onnx"]  # no sidecar outside the run's folder

    code = main(["export", run_id, "--format", "onnx", "--out", str(tmp_path)])  # a folder: the default name in it
    printed = capsys.readouterr()
    assert code == 0 and f"written to {tmp_path / 'best.onnx'}" in printed.out
    assert "top-1 agreement 100.0%" in printed.out

    code = main(["export", "260101-000000-dead", "--format", "onnx"])
    assert code == 2 and "error:" in capsys.readouterr().err


# ---- bad requests -----------------------------------------------------------------------------------------------

def test_bad_requests_get_a_clear_message_and_change_nothing(lab, run_id):
    from core import jobs
    from core.store import RunStore

    before = folder_state(run_id)
    with pytest.raises(LabError, match="not an export format; choose one of: " + ", ".join(FORMATS)):
        export_run(run_id, "tflite")
    with pytest.raises(LabError, match="best, last"):
        export_run(run_id, "onnx", which="middle")
    with pytest.raises(RunNotFound):
        export_run("260101-000000-dead", "onnx")
    assert folder_state(run_id) == before

    store = RunStore()
    queued = jobs.create(preset("digits-mlp"))  # no worker: it stays queued
    with pytest.raises(LabError, match=f"run {queued} is still queued"):
        export_run(queued, "onnx")
    store.mark_running(queued, pid=os.getpid(), device="cpu", versions={})
    with pytest.raises(LabError, match="is still running"):
        export_run(queued, "onnx")

    no_checkpoint = jobs.create(preset("digits-mlp"))
    store.finish(no_checkpoint, "completed")
    with pytest.raises(CheckpointError, match="has no best.pt"):
        export_run(no_checkpoint, "onnx")

    agent = jobs.create(preset("cartpole-reinforce"))
    store.finish(agent, "completed")
    with pytest.raises(LabError, match="reinforcement learning run; only runs of these families can be exported for "
                                       "now: image classification, character language model"):
        export_run(agent, "onnx")
    for other in (queued, no_checkpoint, agent):
        assert not exports_folder(other).exists()
        assert list_exports(other) == []
