"""Streamed image folders (core.data.stream, core.data.plan): the batches keep DeviceBatches' contract and its
reproducibility (resume, worker count, shards), unreadable files are skipped, the decoded cache on disk gives the
same pixels without decoding again, the memory-or-disk choice follows the budget and data.stream, and a streamed
run trains, learns and classifies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import open_page, train_in_process
from core.config import DataConfig, RunConfig
from core.data.plan import StreamedSplits, data_plan
from core.data.stream import StreamedBatches

RED, BLUE = (220, 40, 30), (30, 60, 210)


def make_folder(root: Path, per_class: int = 12, size=(20, 16), bad: int = 0, noise: int = 30) -> Path:
    """train/red and train/blue: noisy images of two colours, JPEG and PNG mixed; `bad` unreadable files in red."""
    rng = np.random.default_rng(0)
    for name, colour in (("red", RED), ("blue", BLUE)):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.integers(-noise, noise + 1, (size[1], size[0], 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / "train" / name / f"{i:03d}.{'jpg' if i % 2 else 'png'}")
    for i in range(bad):
        (root / "train" / "red" / f"bad{i}.jpg").write_bytes(b"" if i % 2 else b"\xff\xd8\xff not a jpeg at all")
    return root


def files_of(root: Path, bad: bool = False) -> list[tuple[Path, int]]:
    return [(path, label) for label, name in enumerate(("blue", "red"))
            for path in sorted((root / "train" / name).iterdir()) if bad or not path.name.startswith("bad")]


def batches(files, **overrides) -> StreamedBatches:
    options = {"image_size": 16, "batch_size": 5, "device": "cpu", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
               "shuffle": True, "augment_crop": True, "augment_flip": True, "seed": 3}
    return StreamedBatches(files, **{**options, **overrides})


def same(first, second) -> bool:
    return len(first) == len(second) and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                                             for a, b in zip(first, second))


@pytest.fixture
def folder(tmp_path, lab_home):
    return make_folder(tmp_path / "photos")


def test_batches_are_normalised_base_images_with_labels(tmp_path, lab_home):
    root = tmp_path / "plain"
    (root / "train" / "a").mkdir(parents=True)
    Image.new("RGB", (30, 20), (255, 0, 51)).save(root / "train" / "a" / "x.png")  # squashed, not cropped
    Image.new("L", (9, 9), 102).save(root / "train" / "a" / "grey.png")
    Image.new("RGBA", (9, 9), (0, 0, 0, 0)).save(root / "train" / "a" / "clear.png")  # over white, as in memory
    files = [(root / "train" / "a" / name, 1) for name in ("x.png", "grey.png", "clear.png")]
    source = batches(files, shuffle=False, augment_crop=False, augment_flip=False, batch_size=2,
                     mean=[0.5] * 3, std=[0.5] * 3)
    out = list(source.epoch(0))
    assert len(source) == 2 and source.num_samples == 3 and source.batch_size == 2
    assert [tuple(x.shape) for x, _ in out] == [(2, 3, 16, 16), (1, 3, 16, 16)]
    x, y = out[0]
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and y.tolist() == [1, 1]
    expected = (torch.tensor([255, 0, 51]) / 255 - 0.5) / 0.5
    assert torch.allclose(x[0].mean(dim=(1, 2)), expected, atol=1e-5)
    assert torch.allclose(x[1], torch.full_like(x[1], (102 / 255 - 0.5) / 0.5), atol=1e-5)
    assert torch.allclose(out[1][0], torch.ones(1, 3, 16, 16))  # transparent pixels are white


def test_unreadable_files_are_skipped_and_counted_and_an_empty_batch_is_left_out(tmp_path, lab_home, monkeypatch):
    root = make_folder(tmp_path / "bad", per_class=3, bad=3)
    Image.new("RGB", (40, 40), RED).save(root / "train" / "red" / "bad-bomb.png")  # too many pixels, below
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # beyond twice this Pillow refuses to decode
    files = [(path, 0) for path in sorted((root / "train" / "red").glob("bad*"))] + files_of(root)
    source = batches(files, shuffle=False, batch_size=4)
    out = list(source.epoch(0))
    assert source.skipped == 4  # the first batch held only bad files (empty, corrupt, a bomb): not yielded
    assert [len(y) for _, y in out] == [4, 2] and sum(len(y) for _, y in out) == 6
    list(source.epoch(1))
    assert source.skipped == 4  # each file counted once


def test_a_resumed_epoch_is_the_tail_of_the_whole_epoch(folder):
    source = batches(files_of(folder))
    whole = list(source.epoch(2))
    assert len(whole) == len(source) == 5
    assert same(list(source.epoch(2, start_batch=3)), whole[3:])
    assert list(source.epoch(2, start_batch=len(source))) == []
    assert not torch.equal(list(source.epoch(3))[0][0], whole[0][0])  # each epoch its own order and crops


def test_the_worker_count_does_not_change_the_batches(folder):
    files = files_of(folder)
    in_process = list(batches(files, workers=0).epoch(1))
    two = batches(files, workers=2, drop_last=True)
    assert same(list(two.epoch(1)), in_process[:len(two)])
    left = two.epoch(0)
    next(left)
    left.close()  # an epoch abandoned half way (a stop request): the persistent workers start the next one afresh
    assert same(list(two.epoch(1, start_batch=2)), in_process[2:len(two)])


def test_the_shards_of_two_ranks_make_the_one_rank_batch(folder):
    files = files_of(folder)
    whole = list(batches(files, batch_size=8).epoch(0))
    halves = [list(batches(files, batch_size=8, shard=(rank, 2)).epoch(0)) for rank in (0, 1)]
    for (x, y), first, second in zip(whole, *halves):
        assert torch.equal(torch.cat([first[0], second[0]]), x) and torch.equal(torch.cat([first[1], second[1]]), y)


def test_the_decoded_cache_gives_the_same_pixels_and_later_epochs_do_not_decode(tmp_path, lab_home, monkeypatch):
    # (flips only: without a cache a random crop is cut while decoding, with one from the cached base image; the
    # next test bounds that difference)
    import core.data.stream as stream
    root = make_folder(tmp_path / "cached", per_class=6, bad=1)
    files = files_of(root, bad=True)
    reference = [list(batches(files, workers=0, augment_crop=False).epoch(e)) for e in (0, 1)]
    decoded = []
    real = stream.decode_file
    monkeypatch.setattr(stream, "decode_file", lambda path, size, box=None: decoded.append(path) or real(path, size, box))
    cached = batches(files, workers=0, augment_crop=False, disk_cache=True, cache_identity=str(root))
    assert cached.disk_cache and len(list((lab_home / "cache" / "streamed").iterdir())) == 1
    assert same(list(cached.epoch(0)), reference[0]) and len(decoded) == len(files)  # epoch 1 fills it
    decoded.clear()
    assert same(list(cached.epoch(1)), reference[1]) and decoded == []  # the unreadable file is remembered too
    assert cached.skipped == 1
    # A worker killed between writing a file's pixels and its state byte: the entry is decoded again, not trusted.
    cache = cached.dataset.cache
    cache._open()
    cache._state[0], cache._pixels[0] = 0, 7
    again = batches(files, workers=0, augment_crop=False, disk_cache=True, cache_identity=str(root))
    assert same(list(again.epoch(1)), reference[1]) and len(decoded) == 1
    # Worker processes fill and read the same cache (each their own mapping of it).
    assert same(list(batches(files, workers=2, augment_crop=False, disk_cache=True, cache_identity=str(root)).epoch(0)), reference[0])


def test_a_crop_cut_while_decoding_matches_the_crop_of_the_base_image(tmp_path):
    import random

    from core.data.stream import augment, crop_box, decode_file
    rng = np.random.default_rng(1)
    # smooth content, so the two ways of resampling agree closely: a gradient with a little noise, 300 x 200
    ramp = np.linspace(0, 255, 300)[None, :, None] * np.ones((200, 1, 3)) * np.array([1.0, 0.6, 0.3])
    pixels = np.clip(ramp + rng.normal(0, 4, ramp.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "ramp.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    for seed in range(5):
        box = crop_box(64, random.Random(seed))
        fused = decode_file(path, 64, box).float()
        two_steps = augment(decode_file(path, 64), random.Random(seed), True, False).float()
        assert fused.shape == two_steps.shape == (3, 64, 64)
        assert (fused - two_steps).abs().mean() < 2.0, seed  # grey levels out of 255


def test_the_plan_streams_beyond_the_memory_budget_or_when_asked(folder, monkeypatch):
    cfg = DataConfig(name="folder", path=str(folder), image_size=16, workers=2)
    monkeypatch.setenv("LAB_MEMORY_BUDGET_MB", "1000")
    plan = data_plan(cfg)
    assert plan.mode == "memory" and plan.files == 24 and plan.decoded_bytes == 24 * 3 * 16 * 16
    assert plan.budget_bytes == 1000 * 1024**2 and plan.describe() == "in memory, 18 KB"
    monkeypatch.setenv("LAB_MEMORY_BUDGET_MB", "0.01")  # 10 KB: the decoded images do not fit
    plan = data_plan(cfg)
    assert plan.mode == "streamed" and not plan.forced and plan.describe() == "streamed from disk, 2 workers"
    assert data_plan(_with(cfg, stream=False)).mode == "memory"
    monkeypatch.setenv("LAB_MEMORY_BUDGET_MB", "1000")
    forced = data_plan(_with(cfg, stream=True, disk_cache=True, workers=1))
    assert forced.streamed and forced.forced and forced.describe() == "streamed from disk, 1 worker, decoded cache on disk"
    assert data_plan(_with(cfg, workers=None, stream=True)).workers in range(1, 5)
    assert data_plan(DataConfig(name="digits", stream=True)).mode == "memory"  # nothing to stream: in memory


def _with(cfg, **changes):
    import dataclasses
    return dataclasses.replace(cfg, **changes)


def test_streamed_and_in_memory_runs_split_the_same_files(folder):
    from core.data import load_dataset
    cfg = DataConfig(name="folder", path=str(folder), image_size=8, val_fraction=0.25, stream=True)
    streamed = StreamedSplits(data_plan(cfg, seed=4))
    memory = load_dataset(_with(cfg, stream=False), seed=4)
    assert streamed.classes == memory.classes == ["blue", "red"]
    assert torch.equal(streamed.train_y, memory.train_y) and torch.equal(streamed.val_y, memory.val_y)
    val = list(batches(streamed.val_files, image_size=8, shuffle=False, augment_crop=False, augment_flip=False,
                       mean=[0.0] * 3, std=[1 / 255] * 3, batch_size=64).epoch(0))[0][0]  # back in 0..255
    assert (val - memory.val_x.float()).abs().mean() < 2  # the same files, decoded alike
    limited = StreamedSplits(data_plan(_with(cfg, limit=5), seed=4))
    assert limited.train_files == streamed.train_files[:5]
    mean, std = streamed.mean_std()
    assert mean[0] < mean[2] + 0.3 and all(0 < s < 0.5 for s in std) and streamed.skipped == 0


def test_a_streamed_run_learns_and_its_model_classifies(tmp_path, lab_home, one_torch_thread, monkeypatch):
    from core.store import RunStore
    from core.tasks.checkpoints import load_run_model
    from core.tasks.classification.predictor import load_run_predictor
    root = make_folder(tmp_path / "colours", per_class=40, bad=2, noise=60)
    config = RunConfig().replace(**{"data.name": "folder", "data.path": str(root), "data.image_size": 16,
                                    "data.stream": True, "data.workers": 2, "data.augment_flip": True,
                                    "model.name": "cnn", "optim.epochs": 3, "optim.batch_size": 16, "optim.lr": 3e-3})
    run_id = train_in_process(config)
    metrics = RunStore().metrics(run_id)
    val_acc = metrics[metrics.key == "val_acc"].value
    assert len(val_acc) == 3 and val_acc.max() >= 0.9  # two colours: far above chance (0.5)
    metadata = load_run_model(run_id).metadata
    assert metadata["data"]["loading"] == "streamed from disk, 2 workers"
    assert RunStore().get_run(run_id).summary["data"]["loading"] == "streamed from disk, 2 workers"
    assert metadata["data"]["train"] + metadata["data"]["val"] == 82 and metadata["classes"] == ["blue", "red"]
    predictor = load_run_predictor(run_id)
    probs = predictor.predict([Image.new("RGB", (40, 30), RED), Image.new("RGB", (40, 30), BLUE)])
    assert probs.argmax(dim=1).tolist() == [1, 0]
    # the confusion matrix decodes the validation files only, as training did: the accuracy training recorded
    import core.tasks.classification.evaluation as evaluation
    import core.data
    monkeypatch.setattr(core.data, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded all")))
    report = evaluation.evaluate_run(run_id, "best")
    assert 0 < report.num_samples <= metadata["data"]["val"]  # unreadable files left out, as training left them
    best = RunStore().get_run(run_id).summary["best_val_acc"]
    assert report.accuracy == pytest.approx(best, abs=1e-6)
    assert evaluation.val_images(run_id, [0])[0].shape == (16, 16, 3)


def test_the_cli_says_when_a_folder_is_streamed(tmp_path, lab_home, capsys, one_torch_thread):
    from core.cli import main
    root = make_folder(tmp_path / "cli", per_class=6)
    code = main(["train", "--dataset", "folder", "--data-path", str(root), "--model", "cnn", "--epochs", "1",
                 "--set", "data.stream=true", "--set", "data.workers=0", "--set", "data.image_size=16"])
    out = capsys.readouterr().out
    assert code == 0 and "data: streamed from disk, in the training process" in out
    code = main(["train", "--dataset", "folder", "--data-path", str(root), "--model", "cnn", "--epochs", "1",
                 "--set", "data.image_size=16"])
    assert code == 0 and "data: in memory, 9 KB" in capsys.readouterr().out


def test_the_train_form_says_whether_a_folder_is_held_in_memory_or_streamed(tmp_path, lab_home, monkeypatch):
    root = make_folder(tmp_path / "form", per_class=6)
    at = open_page("app_pages/train.py", preset="digits-cnn")
    at.selectbox(key="cfg.data.name").set_value("folder").run()
    at.text_input(key="cfg.data.path").set_value(str(root)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Held in memory: the decoded images take" in c.value for c in at.caption)
    monkeypatch.setenv("LAB_MEMORY_BUDGET_MB", "0.001")
    at.run()
    notes = [c.value for c in at.caption if "Streamed from disk" in c.value]
    assert notes and "more than the 1 KB memory budget" in notes[0]
    at = open_page("app_pages/train.py", preset="digits-cnn", lang="zh")
    at.selectbox(key="cfg.data.name").set_value("folder").run()
    at.text_input(key="cfg.data.path").set_value(str(root)).run()
    assert any("训练时从磁盘流式读取" in c.value for c in at.caption)


def test_jpegs_decoded_in_one_batched_call_on_the_device_match_the_workers_decode(tmp_path, lab_home):
    # On CUDA, JPEGs leave the workers undecoded and decode_jpeg decodes the whole batch on the GPU; the same path
    # runs here with the CPU as the device. PNGs and unreadable files still go through the workers.
    root = make_folder(tmp_path / "mixed", per_class=8, size=(40, 30), bad=2)
    (root / "train" / "red" / "truncated.jpg").write_bytes((root / "train" / "red" / "001.jpg").read_bytes()[:60])
    files = files_of(root, bad=True)  # the truncated JPEG included: its header reads, its data does not
    in_workers = batches(files, workers=2, device_decode=False)
    on_device = batches(files, workers=2, device_decode=True)
    assert on_device.dataset.jpeg_bytes and not in_workers.dataset.jpeg_bytes
    for epoch in (0, 1):
        assert same(list(on_device.epoch(epoch)), list(in_workers.epoch(epoch)))
    assert on_device.skipped == in_workers.skipped == 3
    # a decoded cache needs pixels from the workers: it turns device decoding off
    assert not batches(files, device_decode=True, disk_cache=True, cache_identity=str(root)).dataset.jpeg_bytes
