"""Video classification: moving-shapes clips, the video folder, the six models, the task, clip inference
and the pages (Media timeline, Runs comparison, Train preview)."""

from __future__ import annotations

import base64
import json

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.presets import preset
from core.jobs.assemble import assemble
from core.errors import ConfigError, DataError, InputError
from core.tasks import validate

PAGES = Path(__file__).resolve().parents[3] / "app_pages"

MODELS = ("single_frame", "early_fusion", "late_fusion", "slow_fusion", "r2plus1d", "cnn_lstm")
RED, GREEN, BLUE = (230, 20, 20), (20, 220, 20), (20, 20, 230)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def video_config(model="early_fusion", *, samples=64, frames=4, size=16, epochs=1, **overrides) -> RunConfig:
    raw = {"task": "video", "data": {"name": "moving-shapes", "val_fraction": 0.25,
                                     "options": {"frames": frames, "size": size, "num_samples": samples}},
           "model": {"name": model, "hidden": 64, "options": {"width": 8}},
           "optim": {"optimizer": "adam", "lr": 3e-3, "batch_size": 32, "epochs": epochs}, "log_every": 5}
    return validate(RunConfig.from_dict(raw).replace(**overrides))


def train_run(config) -> str:
    """A completed run in the store (checkpoints, metrics), trained in this process."""
    from core import jobs
    from core.jobs.runner import execute_run
    run_id = jobs.create(config)
    assert execute_run(run_id) == "completed"
    return run_id


# ---- data -------------------------------------------------------------------------------------

def test_moving_shapes_are_deterministic_balanced_and_every_frame_has_the_same_statistics():
    from core.data.moving_shapes import CLASSES, generate_moving_shapes
    x, y = generate_moving_shapes(800, 6, 24, seed=3)
    again, _ = generate_moving_shapes(800, 6, 24, seed=3)
    assert x.shape == (800, 6, 3, 24, 24) and x.dtype == torch.uint8 and torch.equal(x, again)
    assert torch.bincount(y).tolist() == [100] * len(CLASSES)
    assert not torch.equal(x, generate_moving_shapes(800, 6, 24, seed=4)[0])
    # Where the shape is (brighter than its background) must not depend on the class, in any frame:
    # the share of clips covering each pixel is about the same for every class and frame.
    bright = (x.float().mean(dim=2) > x.float().mean(dim=(2, 3, 4))[:, :, None, None]).float()  # (N, T, S, S)
    coverage = torch.stack([bright[y == k].mean(dim=(0, 2, 3)) for k in range(len(CLASSES))])  # (K, T)
    assert (coverage.max() - coverage.min()).item() < 0.08, coverage
    # ...while the motion itself differs: the shape's centre of brightness moves for "left" clips
    left = bright[y == CLASSES.index("left")]
    cols = torch.arange(24.0)
    shift = ((left[:, 1:] - left[:, :-1]).sum(dim=2) * cols).sum(dim=-1).mean()
    assert shift < 0, "shapes of the 'left' class should move towards smaller x on average"


def test_single_frame_stays_near_chance_while_temporal_models_learn(lab_home):
    results = {}
    for model in ("single_frame", "early_fusion", "slow_fusion"):
        config = video_config(model, samples=640, frames=6, size=24, epochs=6, **{"optim.lr": 3e-3})
        results[model] = assemble(config, device=torch.device("cpu")).fit()["best_val_acc"]
    chance = 1 / 8
    assert results["single_frame"] < chance + 0.13, results
    assert results["early_fusion"] > chance + 0.25, results
    assert results["slow_fusion"] > chance + 0.25, results


def test_clip_batches_are_normalised_deterministic_and_crop_all_frames_alike():
    from core.data.clips import ClipBatches
    x = torch.randint(1, 256, (10, 3, 3, 8, 8), dtype=torch.uint8)  # no zeros: those mark the padding
    y = torch.arange(10)
    batches = ClipBatches(x, y, batch_size=4, device="cpu", mean=[0.5] * 3, std=[0.25] * 3, seed=1,
                          augment_crop=True, crop_padding=2)
    first = list(batches.epoch(2))
    assert len(batches) == 3 and [b[0].shape for b in first] == [(4, 3, 3, 8, 8)] * 2 + [(2, 3, 3, 8, 8)]
    for (a, la), (b, lb) in zip(first, batches.epoch(2)):
        assert torch.equal(a, b) and torch.equal(la, lb)
    resumed = list(batches.epoch(2, start_batch=1))
    assert torch.equal(resumed[0][0], first[1][0])
    plain = ClipBatches(x, y, batch_size=10, device="cpu", mean=[0.5] * 3, std=[0.25] * 3, shuffle=False)
    clips, labels = next(plain.epoch(0))
    assert torch.allclose(clips, (x.float() / 255 - 0.5) / 0.25, atol=1e-5) and torch.equal(labels, y)
    # the crop offset is one per clip: the padding (zeros, normalised to -2) sits at the same place in every frame
    padded = (first[0][0] == -2.0).float()  # (B, T, C, H, W)
    assert torch.equal(padded[:, :1].expand_as(padded), padded)


def _video_tree(root, make_video):
    for split, count in (("train", 3), ("val", 1)):
        for name, colours in (("red", [RED]), ("blue", [BLUE])):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                make_video(folder / f"{name}{i}.mp4", colours, seconds=1, fps=8, size=(48, 32))
    make_video(root / "train" / "red" / "rgb.mp4", [RED, GREEN, BLUE], seconds=3, fps=8, size=(48, 32))
    (root / "train" / "blue" / "broken.mp4").write_bytes(b"\x00\x01 definitely not a video" * 100)


def test_video_folder_decodes_clips_evenly_and_skips_a_corrupt_one(lab_home, tmp_path):
    from conftest import make_video

    from core.config import DataConfig
    from core.data import load_dataset
    _video_tree(tmp_path / "clips", make_video)
    splits = load_dataset(DataConfig(name="video-folder", path=str(tmp_path / "clips"),
                                     options={"frames": 6, "size": 16}), seed=0)
    assert splits.classes == ["blue", "red"] and splits.skipped == 1
    assert splits.train_x.shape == (7, 6, 3, 16, 16) and splits.val_x.shape == (2, 6, 3, 16, 16)
    assert sorted(splits.val_y.tolist()) == [0, 1]
    colour = splits.train_x.float().mean(dim=(3, 4))  # (N, T, 3)
    for clip, label in zip(colour, splits.train_y.tolist()):
        dominant = clip.argmax(dim=1).tolist()  # per frame: 0 red, 1 green, 2 blue
        if len(set(dominant)) > 1:  # the red-green-blue clip: six frames spread evenly over its 3 seconds
            assert dominant == [0, 0, 1, 1, 2, 2] and label == 1
        else:
            assert dominant[0] == (2 if label == 0 else 0)
    assert 0.1 < splits.frame_interval_s < 0.3  # 1 s clips (the median) over 6 frames

    from core.tasks.video import preview_clips  # what the Train page shows: the first clip of each class
    config = RunConfig.from_dict({"task": "video", "data": {"name": "video-folder", "path": str(tmp_path / "clips"),
                                                            "options": {"frames": 4, "size": 16}}})
    classes, clips, labels = preview_clips(config)
    assert classes == ["blue", "red"] and clips.shape == (2, 4, 3, 16, 16) and labels.tolist() == [0, 1]

    # the same tree as a zip, and the cache: a second load decodes nothing
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((tmp_path / "clips").rglob("*")):
            z.write(path, "top/" + path.relative_to(tmp_path / "clips").as_posix())
    zipped = load_dataset(DataConfig(name="video-folder", path=str(archive), options={"frames": 6, "size": 16}))
    assert zipped.skipped == 1 and zipped.train_x.shape == splits.train_x.shape


def test_video_folder_with_nothing_readable_says_so(lab_home, tmp_path):
    from core.config import DataConfig
    from core.data import load_dataset
    for name in ("a", "b"):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "train" / name / "x.mp4").write_bytes(b"garbage" * 50)
    with pytest.raises(DataError, match=r"none of the 2 videos .* could be decoded \(first: x\.mp4: "):
        load_dataset(DataConfig(name="video-folder", path=str(tmp_path)))
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no videos"):
        load_dataset(DataConfig(name="video-folder", path=str(tmp_path / "empty")))


def test_decoding_children_skip_a_clip_past_the_time_limit_and_carry_on(tmp_path):
    from conftest import make_video

    from core.data.video_folder import decode_clips
    good = tmp_path / "good.mp4"
    make_video(good, [RED], seconds=1, fps=8)  # 64 x 48
    mixed = decode_clips([str(good), str(tmp_path / "missing.mp4"), str(good)], frames=4, side=32, workers=1)
    assert [clip.shape if clip is not None else None for clip, _, _ in mixed] == [(4, 24, 32, 3), None, (4, 24, 32, 3)]
    assert mixed[0][1] == pytest.approx(1.0, abs=0.2) and "not a readable video" in mixed[1][2]
    # a limit no clip can meet: each clip's child is killed, and a fresh child takes the next clip
    late = decode_clips([str(good), str(good)], frames=4, side=32, timeout_s=1e-3, workers=1)
    assert [(clip, reason) for clip, _, reason in late] == [(None, "decoding took longer than 0.001 s")] * 2


def test_a_clip_that_crashes_its_decoder_is_skipped(tmp_path, monkeypatch):
    import core.data.video_folder as video_folder
    crasher = tmp_path / "crash.sh"  # stands in for FFmpeg dying on a hostile file
    crasher.write_text("#!/bin/sh\necho 'start 0'\nkill -SEGV $$\n")
    crasher.chmod(0o755)
    monkeypatch.setattr(video_folder, "_child_command", lambda spec, out: [str(crasher)])
    [(clip, _, reason)] = video_folder.decode_clips(["any.mp4"], frames=4, side=32)
    assert clip is None and reason == "the decoder crashed (signal 11); the file is probably damaged"


# ---- models and configuration -----------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_every_model_maps_clips_to_one_row_of_logits(model):
    from core.models import model_info
    for frames, size in ((8, 32), (3, 16)):
        net = model_info(model).builder(num_classes=5, in_channels=3, frames=frames, image_size=size, hidden=32,
                                        dropout=0.1, width=4)
        clips = torch.randn(2, frames, 3, size, size, requires_grad=True)
        logits = net(clips)
        assert logits.shape == (2, 5)
        logits.sum().backward()
        used = clips.grad.abs().sum(dim=(2, 3, 4)) > 0  # (B, T): which frames the model looked at
        if model == "single_frame":
            assert used[0].tolist() == [t == frames // 2 for t in range(frames)]
        elif model == "late_fusion":
            assert used[0].tolist() == [t in (0, frames - 1) for t in range(frames)]
        else:
            assert used.all(), f"{model} ignores some frames"


def test_presets_validate_and_bad_video_configs_are_refused():
    from core.presets import list_presets
    names = list_presets("video")
    assert {f"moving-shapes-{n}" for n in ("single-frame", "early-fusion", "late-fusion", "slow-fusion",
                                            "r2plus1d", "cnn-lstm")} <= set(names)
    for name in names:
        validate(preset(name))
    with pytest.raises(ConfigError, match="data.augment_flip: mirroring 'moving-shapes' clips"):
        video_config(**{"data.augment_flip": True})
    with pytest.raises(ConfigError, match=r"data.options.frames: 1 is out of range"):
        video_config(frames=1)
    with pytest.raises(ConfigError, match="model.name: 'cnn' is not one of"):
        video_config(model="cnn")
    with pytest.raises(ConfigError, match="data.name: 'digits' is not one of"):
        video_config(**{"data.name": "digits"})


# ---- runs, checkpoints and inference ----------------------------------------------------------

def test_a_run_loads_through_load_run_model_and_classifies_a_clip_window_by_window(lab_home):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.video.clips import classify_clip, decode_clip, example_video
    run_id = train_run(video_config("cnn_lstm", epochs=2, **{"data.limit": 32}))
    loaded = load_run_model(run_id, "best")
    assert loaded.task == "video" and loaded.metadata["classes"][0] == "left"
    assert loaded.metadata["preprocessing"]["frames"] == 4 and loaded.metadata["data"]["train"] == 32
    frames = decode_clip(example_video("up", frames=12), name="up.mp4", size=16, every_s=0.1)
    assert len(frames) == 12
    prediction = classify_clip(loaded, frames, stride=2)
    assert prediction.starts == [0, 2, 4, 6, 8] and prediction.probabilities.shape == (5, 8)
    assert torch.allclose(prediction.probabilities.sum(dim=1), torch.ones(5))
    assert prediction.summary["mean_probability"].iloc[0] == pytest.approx(
        prediction.probabilities.mean(dim=0).max().item())
    assert prediction.window_frames(4).shape == (4, 3, 16, 16)
    short = classify_clip(loaded, frames[:2])  # fewer frames than a window: repeated to fill one
    assert short.repeated and short.starts == [0]


def test_a_video_that_will_not_decode_is_a_clear_input_error(lab_home):
    from core.tasks.video.clips import decode_clip
    with pytest.raises(InputError, match="could not decode broken.mp4"):
        decode_clip(b"\x00" * 4096, name="broken.mp4", size=16)
    with pytest.raises(InputError, match="empty"):
        decode_clip(b"", name="empty.mp4", size=16)


# ---- pages ------------------------------------------------------------------------------------

def test_media_page_classifies_an_uploaded_clip_and_shows_the_timeline(lab_home, tmp_path):
    from streamlit.testing.v1 import AppTest

    from conftest import make_video
    run_id = train_run(video_config("early_fusion"))
    clip = tmp_path / "clip.mp4"
    make_video(clip, [RED, GREEN, BLUE], seconds=2, fps=5, size=(48, 48))

    at = AppTest.from_file(str(PAGES / "media.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    from core.inference import list_model_sources
    chosen = list_model_sources()[at.selectbox(key="media_source").value]
    assert chosen["run_id"] == run_id and chosen["task"] == "video"
    at.file_uploader(key="video_clip").set_value(("clip.mp4", clip.read_bytes(), "video/mp4")).run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(m.value for m in at.markdown)
    assert "**Clip:" in text and "of 7 windows of 4 frames; 10 frames sampled" in text  # 0.1 s sampling, stride 1
    charts = {getattr(c, "key", None) for c in at.get("plotly_chart")}
    assert {"video_timeline", "video_summary"} <= charts
    at.slider(key="video_window").set_value(3).run()
    assert not at.exception
    assert at.get("image")[0].proto.imgs[0].caption.startswith("window 3: 0.60s to 1.20s")

    at.toggle(key="video_explain").set_value(True).run()  # where and when the model looked, in window 3
    assert not at.exception, [e.value for e in at.exception]
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert any(c.startswith("Evidence for ") for c in captions)
    share = next(c for c in at.get("plotly_chart") if getattr(c, "key", None) == "video_frame_share")
    bars = json.loads(share.proto.spec)["data"][0]["y"]  # Plotly ships numeric arrays as base64 ("bdata")
    bars = np.frombuffer(base64.b64decode(bars["bdata"]), dtype=bars["dtype"]) if isinstance(bars, dict) else bars
    assert len(bars) == 4 and float(np.sum(bars)) == pytest.approx(1.0)  # early fusion: every frame of the window counts
    at.radio(key="video_explain_method").set_value("ig").run()
    assert not at.exception and any(c.startswith("Evidence for ") for c in (i.proto.imgs[0].caption
                                                                             for i in at.get("image")))

    at.file_uploader(key="video_clip").set_value(("broken.mp4", b"\x00" * 4096, "video/mp4")).run()
    assert not at.exception and any("could not decode broken.mp4" in e.value for e in at.error)


def test_runs_page_compares_the_fusion_variants(lab_home):
    from streamlit.testing.v1 import AppTest

    from core.store import RunStore
    from core.tasks.video import fusion_comparison
    ids = [train_run(video_config(model, epochs=2)) for model in ("late_fusion", "single_frame")]
    best, curves = fusion_comparison(RunStore(), ids)
    assert best.model.tolist() == ["late_fusion", "single_frame"] and len(curves) == 4
    assert best.best_val_acc.tolist() == [curves[curves.run_id == i].val_acc.max() for i in best.run_id]

    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=60)  # the router: the page links to others
    at.query_params["compare"] = ",".join(ids)
    at.run()
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Fusion variants" in [s.value for s in at.subheader]
    charts = {getattr(c, "key", None) for c in at.get("plotly_chart")}
    assert {"video_fusion_bars", "video_fusion_lines"} <= charts


def _preview_page():
    from core.presets import preset
    from ui.families.video import preview
    preview(preset("moving-shapes-slow-fusion").replace(**{"data.options.frames": 4, "data.options.size": 16}))


def test_train_preview_shows_one_frame_strip_per_class(lab_home):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_preview_page, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    from core.data.moving_shapes import CLASSES
    assert [e.proto.imgs[0].caption for e in at.get("image")] == list(CLASSES)


def test_a_video_run_is_evaluated_on_its_validation_clips_as_training_validated(lab_home):
    """The Train page's results for a video run: the report's accuracy is the one training recorded."""
    from core.store import RunStore
    from core.tasks import task_spec
    run_id = train_run(video_config(epochs=2))
    report = task_spec("video").entry("evaluate")(run_id, "best")
    run = RunStore().get_run(run_id)
    assert report.accuracy == pytest.approx(run.summary["best_val_acc"], abs=1e-6)
    assert report.num_samples == 16 and report.confusion.shape == (len(report.classes),) * 2
    assert (report.per_class.support.sum()) == 16


def test_the_train_page_shows_a_finished_video_runs_validation_results(lab_home):
    from streamlit.testing.v1 import AppTest
    run_id = train_run(video_config())
    at = AppTest.from_file(str(PAGES.parent / "app.py"), default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Validation results" in [s.value for s in at.subheader]
    assert any(m.label == "accuracy (best checkpoint)" for m in at.metric)
