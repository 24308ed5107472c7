"""Exporting runs of other families (core.toolkit.export with each family's ExportSpec): a character LSTM exports
whole and agrees with PyTorch on its own validation windows; a GAN exports its generator alone, which draws the
same pictures from the same noise; formats a family does not offer, and families without an export, are refused
with a message and nothing written."""

from __future__ import annotations

import json

import onnxruntime
import pytest
import torch

from conftest import train_in_process
from core.errors import LabError
from core.paths import run_dir
from core.presets import preset
from core.tasks.checkpoints import load_run_model
from core.toolkit.export import TOLERANCE, export_run, exportable_tasks


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            found = {
                "cnn": train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 256})),
                "lstm": train_in_process(preset("pydocs-char-lstm").replace(**{
                    "optim.epochs": 1, "task_options.steps_per_epoch": 5, "task_options.eval_batches": 2,
                    "task_options.sample_every": 0, "task_options.context": 16, "model.options.hidden": 32,
                    "model.options.embed": 16, "model.options.layers": 1, "optim.batch_size": 8})),
                "gan": train_in_process(preset("digits-dcgan").replace(**{
                    "data.image_size": 16, "model.options.width": 8, "model.options.latent_dim": 8,
                    "optim.epochs": 1, "data.limit": 128, "task_options.fd_samples": 64,
                    "task_options.sample_every": 1000})),
                "autoencoder": train_in_process(preset("digits-autoencoder").replace(**{
                    "optim.epochs": 1, "data.limit": 128})),
            }
            found["lora"] = train_in_process(preset("digits-cnn").replace(**{
                "optim.epochs": 1, "data.limit": 256, "model.init_from": found["cnn"], "model.lora_rank": 4}))
            yield found
        finally:
            torch.set_num_threads(threads)


@pytest.fixture
def lab(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_HOME", str(run_dir(runs["lstm"]).parent.parent))
    return runs


def test_families_that_declare_an_export_are_the_exportable_ones():
    assert {"classification", "language_model", "gan"} <= set(exportable_tasks())
    assert "rl" not in exportable_tasks()


def test_a_char_lstm_exports_to_onnx_and_agrees_on_its_validation_windows(lab):
    result = export_run(lab["lstm"], "onnx")
    assert result.inputs == "validation" and result.max_abs_diff <= TOLERANCE and result.top1_agreement == 1.0
    run_model = load_run_model(lab["lstm"])
    windows = torch.randint(0, len(run_model.metadata["vocab"]), (3, 11), generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    ours = session.run(["logits"], {"tokens": windows.numpy()})[0]  # (3, 11, V): a length it never saw
    with torch.no_grad():
        reference = run_model.model(windows)
        reference = reference[0] if isinstance(reference, tuple) else reference
    assert ours.shape == tuple(reference.shape)
    assert float((torch.from_numpy(ours) - reference).abs().max()) <= TOLERANCE


def test_a_language_model_card_holds_its_vocabulary_and_no_picture_steps(lab):
    result = export_run(lab["lstm"], "safetensors")
    assert result.max_abs_diff == 0.0
    card = json.loads((run_dir(lab["lstm"]) / "exports" / "best.card.json").read_text())
    run_model = load_run_model(lab["lstm"])
    assert card["vocabulary"] == [str(c) for c in run_model.metadata["vocab"]]
    assert card["input"]["name"] == "tokens" and "preprocessing" not in card and "classes" not in card
    readme = (run_dir(lab["lstm"]) / "exports" / "best.README.md").read_text()
    assert "A character language model" in readme and "Preparing a picture" not in readme


def test_a_gan_exports_its_generator_alone_which_draws_the_same_pictures(lab):
    result = export_run(lab["gan"], "onnx")
    assert result.inputs == "random" and result.top1_agreement is None and result.max_abs_diff <= TOLERANCE
    model = load_run_model(lab["gan"]).model
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"]
    z = model.sample_noise(5, seed=7).cpu()
    drawn = torch.from_numpy(session.run(["image"], {"z": z.numpy()})[0])
    with torch.no_grad():
        assert float((drawn - model.generator(z)).abs().max()) <= TOLERANCE
    # the discriminator stayed home: the file is about the generator's size, not the whole GAN's
    generator_params = sum(p.numel() for p in model.generator.parameters())
    assert result.size_bytes < 4 * generator_params + 200_000

    program = export_run(lab["gan"], "torchscript")
    assert program.max_abs_diff <= TOLERANCE


def test_formats_a_family_does_not_offer_and_families_without_export_are_refused(lab):
    before = sorted(p.name for p in run_dir(lab["gan"]).rglob("*"))
    with pytest.raises(LabError, match="cannot be exported as 'bundle'; choose one of: onnx, torchscript, safetensors"):
        export_run(lab["gan"], "bundle")
    assert sorted(p.name for p in run_dir(lab["gan"]).rglob("*")) == before
    with pytest.raises(LabError, match="only runs of these families can be exported for now"):
        export_run(lab["autoencoder"], "onnx")


def test_a_lora_run_exports_with_its_adapters_merged_into_the_plain_architecture(lab):
    from safetensors.torch import load_file

    from core.models import build_from_config
    result = export_run(lab["lora"], "safetensors")
    assert result.max_abs_diff <= TOLERANCE and result.top1_agreement == 1.0
    weights = load_file(result.path)
    assert not [key for key in weights if "lora_" in key or "base_layer" in key]
    run_model = load_run_model(lab["lora"])
    pre = run_model.metadata["preprocessing"]
    plain = build_from_config(run_model.config.model, num_classes=10,  # the architecture alone, no adapters
                              in_channels=pre["channels"], image_size=pre["image_size"])
    plain.load_state_dict(weights, strict=True)  # no PEFT needed to use it
    x = torch.randn(4, pre["channels"], pre["image_size"], pre["image_size"])
    with torch.no_grad():
        assert float((plain.eval()(x) - run_model.model(x)).abs().max()) <= 1e-5
    onnx = export_run(lab["lora"], "onnx")
    assert onnx.max_abs_diff <= TOLERANCE and onnx.top1_agreement == 1.0
