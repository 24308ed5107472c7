"""Compressing a finished run: int8 (dynamic, static) against the float model, pruning's zeros and smaller
zipped files, the stored table, variants loaded back, bad requests refused with nothing written, the CLI.
Tiny real runs are trained once for the module; latencies are timed with few repeats (not checked)."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch

from conftest import train_in_process
from core.errors import CheckpointError, ConfigError, LabError, ModelError, RunNotFound

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"max_repeats": 5}
# Dynamic int8 rounds each weight to one of 255 steps of its layer's range and each activation batch alike:
# on the digits MLP the logits move by far less than this share of their spread, and the class rarely flips.
LOGIT_TOLERANCE = 0.02  # max |int8 logit - float logit| / (max - min of the float logits)
TOP1_AGREEMENT = 0.98
STATIC_ACCURACY_DROP = 0.02  # static int8 on the digits CNN loses at most 2 points of val_acc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"mlp": id, "cnn": id, "lstm": id}: tiny runs under one module-wide LAB_HOME."""
    from core.presets import preset
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        torch.set_num_threads(1)
        yield {
            "mlp": train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 2})),
            "cnn": train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 2})),
            "lstm": train_in_process(preset("pydocs-char-lstm").replace(**{
                "optim.epochs": 1, "task_options.steps_per_epoch": 5, "task_options.eval_batches": 2,
                "task_options.sample_every": 0, "task_options.context": 16, "model.options.hidden": 32,
                "model.options.embed": 16, "model.options.layers": 1, "optim.batch_size": 8})),
        }


def _data(run_id: str):
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    run_model = load_run_model(run_id)
    return run_model, task_spec(run_model.task).entry("run_data")(run_model)


def _files(run_id: str) -> list[str]:
    from core.paths import run_dir
    folder = run_dir(run_id) / "compressed"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_dynamic_int8_mlp_stays_close_to_the_float_model_and_is_smaller(runs):
    from core.toolkit import int8
    from core.toolkit.compress import compress_run, load_variant

    report = compress_run(runs["mlp"], quantize="dynamic", **FAST)
    assert report.requested == "int8-dynamic" and [r["variant"] for r in report.rows[:1]] == ["original"]
    run_model, data = _data(runs["mlp"])
    x = data.example(256)  # (256, 1, 8, 8) normalised validation images
    with torch.inference_mode():
        reference = run_model.model(x)
        loaded = load_variant(runs["mlp"], "int8-dynamic")
        quantized = loaded(x)
        fresh = int8.quantize_dynamic(run_model.model)(x)  # the same transform, as compress_run applied it
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in loaded.modules())
    spread = float(reference.max() - reference.min())
    assert float((quantized - reference).abs().max()) <= LOGIT_TOLERANCE * spread
    assert float((quantized.argmax(1) == reference.argmax(1)).float().mean()) >= TOP1_AGREEMENT
    assert torch.equal(quantized, fresh)  # loading back changes nothing
    summary = report.summary()
    assert summary["size_ratio"] > 2.0  # float32 -> int8 weights, plus a little packing overhead
    assert summary["metric_after"] == pytest.approx(data.evaluate(loaded))
    assert abs(summary["metric_change"]) <= 0.02
    assert summary["latency_ratio"] > 0 and report.threads == 1


def test_static_int8_cnn_keeps_its_accuracy_and_loads_back(runs):
    from torch.ao.nn import quantized as nnq
    from core.toolkit.compress import compress_run, load_variant

    report = compress_run(runs["cnn"], quantize="static", **FAST)
    row, original = report.row("int8-static"), report.row("original")
    assert original["metric"] - row["metric"] <= STATIC_ACCURACY_DROP
    assert original["size_bytes"] / row["size_bytes"] > 2.0
    loaded = load_variant(runs["cnn"], "int8-static")
    assert any(isinstance(m, (nnq.Conv2d, nnq.Linear)) for m in loaded.modules())
    _, data = _data(runs["cnn"])
    assert data.evaluate(loaded) == pytest.approx(row["metric"])  # the same predictions as when it was made
    x = data.example(64)
    with torch.inference_mode():
        assert torch.equal(loaded(x), load_variant(runs["cnn"], "int8-static")(x))


def test_unstructured_pruning_leaves_half_the_weights_zero_and_a_smaller_zip(runs):
    from core.toolkit.compress import compress_run, load_variant

    report = compress_run(runs["mlp"], prune=0.5, **FAST)
    name = "pruned-unstructured-50"
    assert report.requested == name
    loaded = load_variant(runs["mlp"], name)
    weights = [m.weight for m in loaded.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros >= 0.5 and report.row(name)["sparsity"] == pytest.approx(zeros, abs=1e-6)
    original = report.row("original")
    assert report.row(name)["zipped_bytes"] < 0.8 * original["zipped_bytes"]
    assert report.row(name)["size_bytes"] == pytest.approx(original["size_bytes"], rel=0.05)  # dense zeros
    _, data = _data(runs["mlp"])
    assert data.evaluate(loaded) == pytest.approx(report.row(name)["metric"])


def test_channel_pruning_with_a_fine_tune_keeps_whole_channels_zero(runs):
    from core.toolkit.compress import compress_run, load_variant

    report = compress_run(runs["cnn"], prune=0.5, prune_kind="channel", finetune_epochs=1, quantize="dynamic",
                          **FAST)
    names = [r["variant"] for r in report.rows]
    assert {"pruned-channel-50-ft1", "int8-dynamic", "pruned-channel-50-ft1-int8-dynamic"} <= set(names)
    assert report.requested == "pruned-channel-50-ft1-int8-dynamic"
    loaded = load_variant(runs["cnn"], "pruned-channel-50-ft1")
    for conv in (m for m in loaded.modules() if isinstance(m, torch.nn.Conv2d)):
        dead = (conv.weight.flatten(1).abs().sum(1) == 0).sum()
        assert int(dead) == conv.out_channels // 2  # the fine-tune kept the masks
    assert report.row("pruned-channel-50-ft1")["metric"] > 0.5  # still far better than chance (0.1)


def test_the_table_is_stored_merged_and_read_back(runs):
    from core.paths import run_dir
    from core.toolkit.compress import compress_run, compression_report

    first = compress_run(runs["mlp"], quantize="dynamic", **FAST)
    second = compress_run(runs["mlp"], prune=0.25, **FAST)
    stored = compression_report(runs["mlp"])
    assert stored == second and stored.requested == "pruned-unstructured-25"
    assert {"int8-dynamic", "pruned-unstructured-25"} <= set(stored.variants)  # earlier variants stay
    assert stored.row("int8-dynamic")["size_bytes"] == first.row("int8-dynamic")["size_bytes"]
    raw = json.loads((run_dir(runs["mlp"]) / "compressed" / "report.json").read_text())
    assert raw["which"] == "best" and raw["metric"] == "val_acc"
    sidecar = json.loads((run_dir(runs["mlp"]) / "compressed" / "pruned-unstructured-25.json").read_text())
    assert sidecar["row"] == stored.row("pruned-unstructured-25") and sidecar["prune"] == 0.25
    assert compression_report(runs["cnn"]) is not None and compression_report("never-compressed") is None
    # the page's comparison: the original first, int8 smaller by its zipped size, accuracy change in points
    rows = {row["variant"]: row for row in stored.comparison()}
    assert stored.comparison()[0]["variant"] == "original" and rows["original"]["smaller"] == 1.0
    int8, original = stored.row("int8-dynamic"), stored.row("original")
    assert rows["int8-dynamic"]["smaller"] == pytest.approx(original["zipped_bytes"] / int8["zipped_bytes"])
    assert rows["int8-dynamic"]["smaller"] > 2
    assert rows["int8-dynamic"]["change"] == pytest.approx((int8["metric"] - original["metric"]) * 100)


def test_a_char_lstm_quantises_dynamically_and_static_int8_says_why_not(runs):
    from core.toolkit.compress import compress_run, load_variant

    with pytest.raises(ModelError, match=r"static int8 does not support (LSTM|Embedding) here .*dynamic int8 does"):
        compress_run(runs["lstm"], quantize="static", **FAST)
    assert _files(runs["lstm"]) == []
    report = compress_run(runs["lstm"], quantize="dynamic", **FAST)
    assert report.metric == "val_loss" and report.mode == "min"
    assert report.row()["metric"] == pytest.approx(report.row("original")["metric"], abs=0.05)
    loaded = load_variant(runs["lstm"], "int8-dynamic")
    assert any(type(m).__name__ == "LSTM" and "quantized" in type(m).__module__ for m in loaded.modules())


@pytest.mark.parametrize("kwargs, error, message", [
    ({"prune": 0.0}, ConfigError, "strictly between 0 and 1"),
    ({"prune": 1.0}, ConfigError, "strictly between 0 and 1"),
    ({"prune": -0.5}, ConfigError, "strictly between 0 and 1"),
    ({"quantize": "float16"}, ConfigError, "quantize: 'float16' is not one of"),
    ({}, ConfigError, "nothing to do"),
    ({"quantize": "dynamic", "finetune_epochs": 2}, ConfigError, "follows pruning"),
    ({"prune": 0.5, "prune_kind": "rows"}, ConfigError, "prune_kind"),
    ({"quantize": "dynamic", "which": "newest"}, LabError, "not one of"),
    ({"prune": 0.5, "prune_kind": "channel"}, ModelError, "has no convolutions"),
])
def test_bad_requests_are_refused_and_nothing_is_written(runs, kwargs, error, message):
    from core.toolkit.compress import compress_run
    run_id = runs["lstm"] if kwargs.get("prune_kind") == "channel" else runs["mlp"]
    before = _files(run_id)
    with pytest.raises(error, match=message):
        compress_run(run_id, **kwargs, **FAST)
    assert _files(run_id) == before


def test_unknown_unfinished_checkpointless_and_unsupported_runs_are_refused(runs):
    from core.paths import run_dir
    from core.presets import preset
    from core.store import RunStore
    from core.toolkit.compress import compress_run, load_variant

    with pytest.raises(RunNotFound):
        compress_run("no-such-run", quantize="dynamic")
    store = RunStore()
    queued = store.create_run(preset("digits-mlp").to_dict(), name="waiting")
    with pytest.raises(LabError, match="is queued; compress it once it has finished"):
        compress_run(queued, quantize="dynamic")
    store.finish(queued, "completed")
    with pytest.raises(CheckpointError, match="has no best.pt"):
        compress_run(queued, quantize="dynamic")
    assert _files(queued) == []
    with pytest.raises(LabError, match="no compressed variant 'int8-static'"):
        load_variant(runs["mlp"], "int8-static")
    with pytest.raises(LabError, match="no compressed variant"):
        load_variant(runs["mlp"], "../../best")

    # an autoencoder run: its family declares no run data for the toolkit yet
    config = preset("digits-autoencoder").replace(**{"model.options.width": 4, "model.options.hidden": 16,
                                                      "optim.epochs": 1, "task_options.sample_every": 1000})
    autoencoder = train_in_process(config)
    with pytest.raises(LabError, match=r"does not support autoencoder / vae runs yet \(run .*\); it supports: "
                                       r"classification, language_model"):
        compress_run(autoencoder, quantize="dynamic")
    assert not (run_dir(autoencoder) / "compressed").exists()


def test_cli_prints_the_table_and_json_keys(runs, capsys):
    from core.cli import main
    code = main(["compress", runs["cnn"], "--quantize", "dynamic", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    shown = json.loads(out.out)
    for key in ("size_ratio", "latency_ratio", "metric_before", "metric_after", "table"):
        assert key in shown
    assert shown["variant"] == "int8-dynamic" and shown["table"][0]["variant"] == "original"
    code = main(["compress", runs["cnn"], "--prune", "0.3", "--prune-kind", "channel"])
    out = capsys.readouterr()
    assert code == 0 and "pruned-channel-30" in out.out and "x smaller" in out.out and "the original's speed" in out.out
    code = main(["compress", runs["cnn"], "--prune", "2"])
    assert code == 2 and "strictly between 0 and 1" in capsys.readouterr().err


def test_media_lists_each_variant_and_classifies_with_its_int8_model(runs):
    from PIL import Image

    from core.inference import list_model_sources, load_source
    from core.toolkit.compress import compress_run, load_variant

    compress_run(runs["cnn"], quantize="dynamic", **FAST)
    variants = [s for s in list_model_sources() if s["kind"] == "variant" and s["run_id"] == runs["cnn"]]
    assert "int8-dynamic" in [s["variant"] for s in variants]
    source = next(s for s in variants if s["variant"] == "int8-dynamic")
    assert source["task"] == "classification" and "int8-dynamic" in source["label"]
    assert not [s for s in list_model_sources() if s["kind"] == "variant" and s["run_id"] == runs["lstm"]]

    predictor = load_source(source)
    assert predictor.source == "variant" and "int8-dynamic" in predictor.label
    assert any("quantized" in type(m).__module__ for m in predictor.model.modules())
    original = load_source({"kind": "run", "run_id": runs["cnn"], "which": "best"})
    picture = Image.fromarray((np.arange(64, dtype=np.uint8).reshape(8, 8) * 4))
    x = predictor.prepare(picture).unsqueeze(0)
    with torch.inference_mode():
        expected = torch.softmax(load_variant(runs["cnn"], "int8-dynamic")(x), dim=1)[0]
    assert torch.allclose(predictor.predict([picture])[0], expected, atol=1e-6)
    assert original.model is not predictor.model and original.source == "run"
    from core.tasks.classification.explain import explain
    with pytest.raises(LabError, match="needs gradients, which an int8 model does not have: use occlusion"):
        explain(predictor, picture, "gradcam")
    assert explain(predictor, picture, "occlusion").shape == (8, 8)
