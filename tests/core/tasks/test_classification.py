"""Image classification after training: predictors against the training pipeline, uploads and clips
classified, Grad-CAM, and evaluation reports against scikit-learn. Three tiny real runs are trained once
for the module."""

from __future__ import annotations

import os
import urllib.error

import numpy as np
import pytest

from conftest import encode_image, noise_image, zip_bytes
import torch
from PIL import Image

from conftest import train_in_process
from core.errors import CheckpointError, InputError, LabError, ModelError, RunNotFound

# ---- fixtures ----------------------------------------------------------------------------------------


def _train(name: str, overrides: dict) -> str:
    from core.presets import preset
    return train_in_process(preset(name).replace(**overrides))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"digits": id, "shapes": id, "mlp": id}, all under one module-wide LAB_HOME."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        yield {
            "digits": _train("digits-cnn", {"optim.epochs": 3}),
            "shapes": _train("shapes-cnn", {"data.num_samples": 1500, "optim.epochs": 3}),
            "mlp": _train("digits-mlp", {"optim.epochs": 1}),
        }
        from core.inference import clear_caches
        clear_caches()


def _summary(run_id: str) -> dict:
    from core.store import RunStore
    return RunStore().get_run(run_id).summary


def _val_pictures(run_id: str, count: int | None = None) -> tuple[list[Image.Image], np.ndarray]:
    """The run's validation images rendered as PIL pictures, and their labels."""
    from core.tasks.classification.evaluation import validation_split
    from core.store import RunStore
    import json
    val_x, val_y, _ = validation_split(json.dumps(RunStore().get_run(run_id).config, sort_keys=True))
    count = len(val_y) if count is None else count
    pictures = []
    for chw in val_x[:count]:
        hwc = chw.permute(1, 2, 0).numpy()
        pictures.append(Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc))
    return pictures, val_y[:count].numpy()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


# ---- predictors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["digits", "shapes"])
def test_run_predictor_reproduces_the_recorded_validation_accuracy(runs, kind):
    from core.tasks.classification.predictor import load_run_predictor
    run_id = runs[kind]
    predictor = load_run_predictor(run_id, "best")
    assert predictor.source == "run" and predictor.run_id == run_id and not predictor.model.training
    assert predictor.label.startswith(("digits-cnn · best (val_acc", "shapes-cnn · best (val_acc"))
    pictures, labels = _val_pictures(run_id)
    probs = predictor.predict(pictures, batch_size=100)
    assert probs.shape == (len(labels), len(predictor.classes))
    assert torch.allclose(probs.sum(dim=1), torch.ones(len(labels)), atol=1e-5)
    accuracy = float((probs.argmax(dim=1).numpy() == labels).mean())
    assert accuracy == pytest.approx(_summary(run_id)["best_val_acc"], abs=0.05)

    top = predictor.top_k(pictures[0], k=3)
    assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert top[0][0] == predictor.classes[int(probs[0].argmax())]
    # An arbitrary upload (any size, RGBA) is squashed to the training size.
    x = predictor.prepare(noise_image((100, 37), "RGBA"))
    assert x.shape == (predictor.channels, predictor.image_size, predictor.image_size) and x.dtype == torch.float32


def test_run_predictor_is_cached_until_the_checkpoint_changes(runs):
    from core.tasks.checkpoints import checkpoint_path
    from core.tasks.classification.predictor import load_run_predictor
    run_id = runs["digits"]
    first = load_run_predictor(run_id, "last")
    assert load_run_predictor(run_id, "last") is first
    path = checkpoint_path(run_id, "last")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_run_predictor(run_id, "last") is not first


def test_run_predictor_errors_say_what_to_do(runs):
    from core import jobs
    from core.presets import preset
    from core.tasks.classification.predictor import load_run_predictor
    fresh = jobs.create(preset("digits-cnn"))  # recorded, never trained: no checkpoint yet
    with pytest.raises(CheckpointError, match=f"run {fresh} has no best.pt yet; wait for its first epoch or pick last"):
        load_run_predictor(fresh, "best")
    with pytest.raises(CheckpointError, match="no last.pt"):
        load_run_predictor(fresh, "last")
    with pytest.raises(RunNotFound):
        load_run_predictor("999999-999999-ffff")
    with pytest.raises(LabError, match="not one of"):
        load_run_predictor(runs["digits"], "middle")


def test_pretrained_predictor_loads_from_the_hub_cache(runs, torch_home):
    from torchvision.models import get_model
    from core.inference import list_model_sources
    from core.tasks.classification.predictor import load_pretrained_predictor
    from core.models.imagenet import hub_checkpoint_dir, weights_for

    assert all(not s["cached"] for s in list_model_sources() if s["kind"] == "pretrained")
    torch.manual_seed(0)
    reference = get_model("mobilenet_v3_small", weights=None)
    hub_checkpoint_dir().mkdir(parents=True)
    torch.save(reference.state_dict(), hub_checkpoint_dir() / weights_for("mobilenet_v3_small").url.rsplit("/", 1)[-1])

    predictor = load_pretrained_predictor("mobilenet_v3_small")
    assert predictor.source == "pretrained" and predictor.label == "mobilenet_v3_small (ImageNet)"
    assert len(predictor.classes) == 1000 and predictor.classes[0] == "tench"
    key = "features.0.0.weight"
    assert torch.equal(predictor.model.state_dict()[key], reference.state_dict()[key])
    # Shorter side to 256, centre crop 224, whatever the picture's shape.
    assert predictor.view(noise_image((640, 300))).size == (224, 224)
    probs = predictor.predict([noise_image((300, 200)), noise_image((90, 120), seed=1)])
    assert probs.shape == (2, 1000) and torch.allclose(probs.sum(dim=1), torch.ones(2), atol=1e-5)

    sources = list_model_sources()
    cached = {s["name"]: s["cached"] for s in sources if s["kind"] == "pretrained"}
    assert cached == {"resnet18": False, "resnet50": False, "mobilenet_v3_small": True, "efficientnet_b0": False}
    run_entries = [s for s in sources if s["kind"] == "run"]
    assert {s["run_id"] for s in run_entries} >= set(runs.values())
    digits = next(s for s in run_entries if s["run_id"] == runs["digits"] and s["which"] == "best")
    assert digits["metric"] == pytest.approx(_summary(runs["digits"])["best_val_acc"])
    assert "digits-cnn · best (val_acc" in digits["label"]


def test_pretrained_predictor_offline_names_the_file_to_place(torch_home, monkeypatch):
    from core.tasks.classification.predictor import load_pretrained_predictor

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelError) as err:
        load_pretrained_predictor("resnet18")
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in str(err.value)
    with pytest.raises(ModelError, match="not a pretrained model"):
        load_pretrained_predictor("vgg1000")


# ---- media -------------------------------------------------------------------------------------------


def test_zip_members_are_decoded_one_by_one(runs):
    from core.tasks.classification.predictor import classify_images, load_run_predictor
    from core.data.media import images_from_zip
    data = zip_bytes({
        "a.png": encode_image(noise_image(), "PNG"), "sub/b.jpg": encode_image(noise_image(seed=2), "JPEG"),
        "bad.png": b"not an image", "../evil.png": encode_image(noise_image(), "PNG"), "/abs.png": encode_image(noise_image(), "PNG"),
        "readme.txt": b"hello", "__MACOSX/._a.png": b"\x00\x05\x16\x07",
    })
    results = images_from_zip(data, "photos.zip")
    assert [name for name, _ in results] == ["a.png", "sub/b.jpg", "bad.png"]
    assert isinstance(results[0][1], Image.Image) and isinstance(results[1][1], Image.Image)
    assert isinstance(results[2][1], InputError) and "bad.png is not an image" in str(results[2][1])

    table = classify_images(load_run_predictor(runs["digits"]), results, k=3)
    assert list(table.columns) == ["file", "top1", "p1", "top2", "p2", "top3", "p3", "error"]
    assert table["file"].tolist() == ["a.png", "sub/b.jpg", "bad.png"]
    assert (table["p1"][:2] >= table["p2"][:2]).all() and table["top1"][:2].isin([str(d) for d in range(10)]).all()
    assert table["error"].tolist()[:2] == ["", ""] and "not an image" in table["error"][2]

    with pytest.raises(InputError, match="not a valid zip"):
        images_from_zip(b"PK\x03\x04 garbage", "broken.zip")
    with pytest.raises(InputError, match="holds 3 images; at most 1 can be classified"):
        images_from_zip(data, "photos.zip", max_files=1)
    with pytest.raises(InputError, match="holds no images"):
        images_from_zip(zip_bytes({"readme.txt": b"x"}), "text.zip")


def test_classify_video_tables(runs, clip):
    from core.tasks.classification.predictor import classify_video, load_run_predictor
    from core.data.video_frames import sample_frames
    predictor = load_run_predictor(runs["shapes"])
    frames = sample_frames(clip, every_s=0.5)
    per_frame, summary = classify_video(predictor, frames, k=3)
    assert len(per_frame) == len(frames) == 6
    assert per_frame.columns[:3].tolist() == ["time_s", "top1", "p1"] and len(per_frame.columns) == 6
    assert per_frame["time_s"].tolist() == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5], abs=0.01)
    assert summary.columns.tolist() == ["class", "mean_probability", "frames_top1"]
    assert summary["mean_probability"].is_monotonic_decreasing
    assert summary["frames_top1"].sum() == len(frames)
    for name in per_frame.columns[3:]:
        expected = float(per_frame[name].mean())
        assert float(summary.loc[summary["class"] == name, "mean_probability"].iloc[0]) == pytest.approx(expected)


# ---- Grad-CAM ----------------------------------------------------------------------------------------


def test_grad_cam_looks_at_the_shape(runs):
    from core.tasks.classification.explain import explain
    from core.tasks.classification.gradcam import overlay
    from core.tasks.classification.predictor import load_run_predictor
    predictor = load_run_predictor(runs["shapes"])
    pictures, labels = _val_pictures(runs["shapes"], 40)
    inside, outside = [], []
    for picture in pictures:
        heat = explain(predictor, picture, "gradcam")
        assert heat.shape == (32, 32) and heat.dtype == np.float32
        assert heat.min() >= 0.0 and heat.max() <= 1.0
        pixels = np.asarray(picture)
        shape = pixels.min(axis=2) >= 115  # shapes are drawn at 115..254, backgrounds at 0..113
        if heat.max() > 0 and shape.any() and (~shape).any():
            inside.append(heat[shape].mean())
            outside.append(heat[~shape].mean())
    assert len(inside) >= 30  # almost never a constant map
    assert np.mean(inside) > np.mean(outside) * 1.2, (np.mean(inside), np.mean(outside))

    shown = overlay(pictures[0], explain(predictor, pictures[0], "gradcam", class_index=2))
    assert shown.size == pictures[0].size and shown.mode == "RGB"
    assert all(p.grad is None for p in predictor.model.parameters())  # nothing leaked into the shared model
    with pytest.raises(LabError, match="out of range"):
        explain(predictor, pictures[0], "gradcam", class_index=99)


def test_grad_cam_on_a_grey_cnn_and_an_mlp(runs):
    from core.tasks.classification.explain import explain
    from core.tasks.classification.predictor import load_run_predictor
    pictures, _ = _val_pictures(runs["digits"], 20)
    heats = [explain(load_run_predictor(runs["digits"]), picture, "gradcam") for picture in pictures]
    assert all(heat.shape == (8, 8) for heat in heats)
    # maps of the rectified features: evidence shows up for (nearly) every digit, not an all-zero map
    assert sum(heat.max() == pytest.approx(1.0) and heat.min() < 1.0 for heat in heats) >= 18
    with pytest.raises(LabError, match="Grad-CAM needs a convolutional model.*use integrated gradients"):
        explain(load_run_predictor(runs["mlp"]), pictures[0], "gradcam")


def test_grad_cam_reads_rectified_feature_maps():
    import torchvision
    from core.tasks.classification.gradcam import find_target_layer
    from core.models import build
    assert find_target_layer(build("cnn", num_classes=3, in_channels=1, image_size=16))[0] == "4"  # conv, ReLU
    assert find_target_layer(torchvision.models.resnet18())[0] == "layer4.1"  # the last residual block
    name, layer = find_target_layer(torchvision.models.mobilenet_v3_small())
    assert name == "features.12.2" and isinstance(layer, torch.nn.Hardswish)  # conv, norm, activation
    assert find_target_layer(torchvision.models.convnext_tiny())[0] == "features.7.2"  # no activation: the block


# ---- evaluation --------------------------------------------------------------------------------------


def test_evaluation_matches_scikit_learn_and_the_recorded_accuracy(runs, monkeypatch):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    from core.tasks.checkpoints import checkpoint_path
    from core.tasks.classification.evaluation import evaluate_run, val_images
    from core.tasks.classification.predictor import load_run_predictor
    from core.tasks.classification import evaluation

    run_id = runs["shapes"]
    report = evaluate_run(run_id, "best")
    k = len(report.classes)
    pictures, labels = _val_pictures(run_id)
    predicted = load_run_predictor(run_id).predict(pictures, batch_size=256).argmax(dim=1).numpy()
    assert np.array_equal(report.confusion, confusion_matrix(labels, predicted, labels=list(range(k))))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=list(range(k)),
                                                                     zero_division=0)
    assert np.allclose(report.per_class["precision"], precision) and np.allclose(report.per_class["recall"], recall)
    assert np.allclose(report.per_class["f1"], f1) and (report.per_class["support"].to_numpy() == support).all()
    assert report.accuracy == pytest.approx(np.trace(report.confusion) / report.confusion.sum())
    assert report.accuracy == pytest.approx(_summary(run_id)["best_val_acc"], abs=1e-6)

    wrong = report.misclassified
    assert len(wrong) == report.confusion.sum() - np.trace(report.confusion)
    assert (wrong["true"] != wrong["predicted"]).all() and wrong["confidence"].is_monotonic_decreasing
    assert [report.classes[labels[i]] for i in wrong["index"]] == wrong["true"].tolist()
    assert [report.classes[predicted[i]] for i in wrong["index"]] == wrong["predicted"].tolist()
    shown = val_images(run_id, wrong["index"][:3])
    assert all(img.shape == (32, 32, 3) and img.dtype == np.uint8 for img in shown)
    assert np.array_equal(shown[0], np.asarray(pictures[int(wrong["index"].iloc[0])]))

    # Served from runs/<id>/evaluation_best.json while best.pt is unchanged...
    assert (checkpoint_path(run_id, "best").parent / "evaluation_best.json").is_file()

    def must_not_run(*args):
        raise AssertionError("recomputed although the checkpoint did not change")
    monkeypatch.setattr(evaluation, "_compute_report", must_not_run)
    again = evaluate_run(run_id, "best")
    assert np.array_equal(again.confusion, report.confusion) and again.accuracy == report.accuracy
    assert again.misclassified.equals(report.misclassified) and again.per_class.equals(report.per_class)
    # ... and recomputed once it changes.
    path = checkpoint_path(run_id, "best")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate_run(run_id, "best")


def test_evaluation_of_a_grey_run_and_its_images(runs):
    from core.tasks.classification.evaluation import evaluate_run, val_images
    report = evaluate_run(runs["digits"], "last")
    assert report.confusion.shape == (10, 10) and report.per_class["class"].tolist() == [str(d) for d in range(10)]
    assert report.per_class["support"].sum() == report.num_samples
    assert report.accuracy == pytest.approx(_summary(runs["digits"])["last"]["val_acc"], abs=1e-6)
    assert val_images(runs["digits"], [0])[0].shape == (8, 8, 1)
    with pytest.raises(LabError, match="out of range"):
        val_images(runs["digits"], [10_000])
