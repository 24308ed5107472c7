"""Data sets, the tensor cache and device batches: behaviour checked against plain references."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from core.config import DataConfig
from core.data import dataset_info, list_datasets, load_dataset
from core.data.cache import cache_path, cached_tensors
from core.data.loader import DeviceBatches
from core.data.shapes import SHAPE_CLASSES, generate_shapes
from core.data.splits import ImageSplits, finalize, split_train_val
from core.errors import DataError
from core.paths import cache_dir

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR_ZIP = SHARED_DATA / "cifar10-jpg-subset.zip"
MNIST_T10K = SHARED_DATA / "mnist-t10k"


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    home = tmp_path / "lab"
    monkeypatch.setenv("LAB_HOME", str(home))
    return home


# ---- registry ----------------------------------------------------------------------------------

def test_registry_lists_every_data_set_without_importing_torch(lab_home):
    names = {"digits", "shapes", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "folder"}
    assert names <= set(list_datasets())
    assert dataset_info("folder").needs_path and dataset_info("folder").image_size == 64
    assert not dataset_info("cifar10").offline and dataset_info("digits").offline
    assert len(dataset_info("cifar100").classes) == 100
    code = "import sys, core.data as d; d.list_datasets(); print('torch' in sys.modules, 'PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---- digits, shapes, finalize -------------------------------------------------------------------

def test_digits_match_scikit_learn_and_follow_val_fraction(lab_home):
    from sklearn.datasets import load_digits

    cfg = DataConfig(name="digits", val_fraction=0.25)
    s = load_dataset(cfg, seed=3)
    assert len(s.train_y) + len(s.val_y) == 1797
    assert len(s.val_y) == round(1797 * 0.25)
    assert s.train_x.shape[1:] == (1, 8, 8) and s.train_x.dtype == torch.uint8 and s.train_y.dtype == torch.int64
    assert s.classes == [str(d) for d in range(10)] and s.channels == 1 and s.image_size == 8
    # Same images as scikit-learn's (0..16 stretched to 0..255), in some order.
    ref = np.rint(load_digits().images * 255 / 16).astype(np.int64)
    ours = torch.cat([s.train_x, s.val_x]).squeeze(1).numpy().astype(np.int64)
    assert ours.sum() == ref.sum() and ours.max() == 255
    assert sorted(map(bytes, ours.astype(np.uint8))) == sorted(map(bytes, ref.astype(np.uint8)))
    again = load_dataset(cfg, seed=3)
    assert torch.equal(again.train_x, s.train_x) and torch.equal(again.val_y, s.val_y)
    other = load_dataset(cfg, seed=4)
    assert not torch.equal(other.val_y, s.val_y)


def test_split_is_a_seeded_partition():
    x = torch.arange(50).view(50, 1, 1, 1).to(torch.uint8)
    y = torch.arange(50)
    tx, ty, vx, vy = split_train_val(x, y, 0.2, seed=1)
    assert len(vy) == 10 and len(ty) == 40
    assert sorted(torch.cat([ty, vy]).tolist()) == list(range(50))
    assert torch.equal(tx.flatten().long(), ty)  # images stay with their labels
    assert torch.equal(split_train_val(x, y, 0.2, seed=1)[3], vy)
    assert not torch.equal(split_train_val(x, y, 0.2, seed=2)[3], vy)


def test_shapes_are_deterministic_balanced_and_learnable():
    x1, y1 = generate_shapes(600, seed=7)
    x2, y2 = generate_shapes(600, seed=7)
    x3, _ = generate_shapes(600, seed=8)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.shape == (600, 3, 32, 32) and x1.dtype == torch.uint8
    assert torch.bincount(y1, minlength=len(SHAPE_CLASSES)).tolist() == [100] * len(SHAPE_CLASSES)

    s = load_dataset(DataConfig(name="shapes", num_samples=1600, val_fraction=0.25), seed=0)
    assert set(s.train_y.tolist()) == set(s.val_y.tolist()) == set(range(len(SHAPE_CLASSES)))
    assert len(s.val_y) == 400
    # A small CNN beats chance (1/6) by far after one epoch. One thread: on a small shared CPU,
    # torch's thread pool fighting other processes makes this ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                            nn.Linear(16, len(SHAPE_CLASSES)))
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        mean, std = s.mean_std()
        for xb, yb in DeviceBatches(s.train_x, s.train_y, batch_size=16, device="cpu", mean=mean, std=std).epoch(0):
            loss = nn.functional.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        val = DeviceBatches(s.val_x, s.val_y, batch_size=400, device="cpu", mean=mean, std=std, shuffle=False)
        with torch.no_grad():
            xb, yb = next(val.epoch(0))
            accuracy = (net(xb).argmax(1) == yb).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy > 0.5


def test_mean_std_matches_torch():
    x = torch.randint(0, 256, (300, 3, 5, 7), dtype=torch.uint8)
    s = ImageSplits(x, torch.zeros(300, dtype=torch.int64), x[:2], torch.zeros(2, dtype=torch.int64),
                    classes=["a"], channels=3, image_size=5)
    mean, std = s.mean_std()
    f = x.double() / 255
    assert np.allclose(mean, f.mean(dim=(0, 2, 3)).numpy(), atol=1e-9)
    assert np.allclose(std, f.std(dim=(0, 2, 3), unbiased=False).numpy(), atol=1e-9)


def test_finalize_resizes_limits_and_refuses_empty_splits(lab_home):
    cfg = DataConfig(name="digits", image_size=16, limit=100)
    s = load_dataset(cfg, seed=0)
    full = load_dataset(DataConfig(name="digits"), seed=0)
    assert s.train_x.shape == (100, 1, 16, 16) and s.image_size == 16 and s.val_x.shape[1:] == (1, 16, 16)
    assert torch.equal(s.train_y, full.train_y[:100]) and len(s.val_y) == len(full.val_y)
    # Bilinear with antialias: a constant image stays exactly constant.
    flat = ImageSplits(torch.full((2, 3, 10, 10), 77, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64),
                       torch.full((1, 3, 10, 10), 77, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64),
                       classes=["a"], channels=3, image_size=10)
    out = finalize(flat, DataConfig(name="shapes", image_size=4), dataset_info("shapes"))
    assert out.train_x.shape == (2, 3, 4, 4) and bool((out.train_x == 77).all())
    empty_val = ImageSplits(flat.train_x, flat.train_y, flat.train_x[:0], flat.train_y[:0], ["a"], 3, 10)
    with pytest.raises(DataError, match="no validation images"):
        finalize(empty_val, DataConfig(name="shapes"), dataset_info("shapes"))


# ---- tensor cache -------------------------------------------------------------------------------

def test_cache_builds_once_and_rebuilds_unreadable_files(lab_home):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(6, dtype=torch.uint8).view(2, 3), "classes": ["a", "b"], "n": 2, "s": "src"}

    first = cached_tensors("key-1", build)
    second = cached_tensors("key-1", build)
    assert len(calls) == 1 and torch.equal(first["x"], second["x"]) and second["classes"] == ["a", "b"]
    assert second["n"] == 2 and second["s"] == "src"
    path = cache_path("key-1")
    assert path.parent == lab_home.resolve() / "cache" / "tensors" and not list(path.parent.glob("*.tmp"))
    path.write_bytes(b"truncated garbage")
    assert torch.equal(cached_tensors("key-1", build)["x"], first["x"]) and len(calls) == 2
    cached_tensors("key-2", build)
    assert len(calls) == 3


# ---- folder data sets ----------------------------------------------------------------------------

def _make_tree(root: Path, with_val: bool = True) -> dict:
    """Images of mixed sizes, modes and formats, plus bad files; returns what a loader should see."""
    cat, dog = root / "train" / "cat", root / "train" / "dog"
    for d in (cat, dog):
        d.mkdir(parents=True)
    Image.new("RGBA", (40, 30), (255, 0, 0, 255)).save(cat / "red.png")
    Image.new("RGBA", (20, 50), (0, 0, 0, 0)).save(cat / "clear.png")  # fully transparent: white
    Image.new("RGB", (64, 48), (200, 10, 10)).save(cat / "photo.jpg", quality=95)
    Image.new("L", (33, 17), 128).save(cat / "grey.png")
    (cat / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (cat / "empty.png").write_bytes(b"")
    (cat / "notes.txt").write_text("not an image: never considered")
    Image.new("RGB", (8, 8)).save(cat / ".hidden.png")  # hidden: never considered
    pal = Image.new("P", (25, 25), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.save(dog / "palette.gif")
    Image.fromarray(np.full((10, 12), 65535, dtype=np.uint16)).save(dog / "deep16.png")  # 16-bit grey white
    Image.new("CMYK", (30, 30), (0, 0, 0, 0)).save(dog / "cmyk.jpg")
    Image.new("RGB", (9, 9), (0, 0, 255)).save(dog / "blue.bmp")
    Image.new("RGB", (12, 8), (0, 255, 0)).save(dog / "green.tif")
    expected = {"classes": ["cat", "dog"], "train": 9, "train_per_class": [4, 5], "skipped": 2, "val": 0}
    if with_val:
        (root / "val" / "cat").mkdir(parents=True)
        (root / "val" / "dog").mkdir(parents=True)
        Image.new("RGB", (50, 50), (255, 0, 0)).save(root / "val" / "cat" / "r.png")
        Image.new("RGB", (5, 70), (0, 0, 255)).save(root / "val" / "dog" / "b.png")
        (root / "val" / "dog" / "bad.png").write_bytes(os.urandom(300))
        expected.update(val=2, skipped=3)
    return expected


def _colours(x: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in img.float().mean(dim=(1, 2)).round()) for img in x]


def test_folder_decodes_any_mode_and_skips_bad_files(lab_home, tmp_path):
    expected = _make_tree(tmp_path / "pets")
    s = load_dataset(DataConfig(name="folder", path=str(tmp_path / "pets"), image_size=16), seed=0)
    assert s.classes == expected["classes"] and s.skipped == expected["skipped"]
    assert s.train_x.shape == (expected["train"], 3, 16, 16) and s.train_x.dtype == torch.uint8
    assert s.val_x.shape == (expected["val"], 3, 16, 16)
    assert torch.bincount(s.train_y).tolist() == expected["train_per_class"]
    by_label = {}
    for colour, label in zip(_colours(s.train_x), s.train_y.tolist()):
        by_label.setdefault(label, []).append(colour)
    assert {(255, 0, 0), (255, 255, 255), (128, 128, 128)} <= set(by_label[0])  # RGBA, transparent, L
    assert {(0, 0, 255), (255, 255, 255), (0, 255, 0)} <= set(by_label[1])  # P/BMP, 16-bit, TIFF, CMYK white
    assert sorted(zip(_colours(s.val_x), s.val_y.tolist())) == [((0, 0, 255), 1), ((255, 0, 0), 0)]
    # Default size: the median shorter side of the training images (20 px in this tree), not a fixed 64.
    assert load_dataset(DataConfig(name="folder", path=str(tmp_path / "pets")), seed=0).train_x.shape[-1] == 20


def test_folder_cache_is_reused_and_invalidated_by_new_files(lab_home, tmp_path, monkeypatch):
    import core.data.folder as folder

    _make_tree(tmp_path / "pets")
    cfg = DataConfig(name="folder", path=str(tmp_path / "pets"), image_size=8)
    first = load_dataset(cfg, seed=0)
    decoded = []
    real_decode = folder.decode_files
    monkeypatch.setattr(folder, "decode_files",
                        lambda files, size: decoded.append(len(files)) or real_decode(files, size))
    assert torch.equal(load_dataset(cfg, seed=0).train_x, first.train_x) and decoded == []
    Image.new("RGB", (10, 10), (9, 9, 9)).save(tmp_path / "pets" / "train" / "dog" / "new.png")
    assert len(load_dataset(cfg, seed=0).train_y) == len(first.train_y) + 1 and decoded


def test_folder_without_train_folder_is_split_by_seed(lab_home, tmp_path):
    root = tmp_path / "flat"
    for name, colour in (("apple", (255, 0, 0)), ("banana", (255, 255, 0)), ("cherry", (128, 0, 0))):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (12 + i, 12), colour).save(root / name / f"{i}.png")
    cfg = DataConfig(name="folder", path=str(root), image_size=8, val_fraction=0.3)
    s = load_dataset(cfg, seed=5)
    assert s.classes == ["apple", "banana", "cherry"]
    assert len(s.train_y) == 21 and len(s.val_y) == 9
    assert torch.equal(load_dataset(cfg, seed=5).val_y, s.val_y)
    assert not torch.equal(load_dataset(cfg, seed=6).val_y, s.val_y)


def _zip_tree(tree: Path, zip_path: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(tree).as_posix())


def test_folder_zip_with_a_top_folder(lab_home, tmp_path):
    expected = _make_tree(tmp_path / "pets")
    _zip_tree(tmp_path / "pets", tmp_path / "pets.zip", prefix="pets/")
    cfg = DataConfig(name="folder", path=str(tmp_path / "pets.zip"), image_size=16)
    s = load_dataset(cfg, seed=0)
    assert s.classes == expected["classes"] and s.skipped == expected["skipped"]
    assert len(s.train_y) == expected["train"] and len(s.val_y) == expected["val"]
    load_dataset(cfg, seed=1)
    assert len(list((lab_home / "cache" / "folders").iterdir())) == 1  # unpacked once


@pytest.mark.parametrize("bad_name", ["../evil.txt", "/tmp/evil-absolute.png", "train/../../evil.png"])
def test_zip_slip_is_refused_before_anything_is_written(lab_home, tmp_path, bad_name):
    zip_path = tmp_path / "evil.zip"
    ok = tmp_path / "ok.png"
    Image.new("RGB", (8, 8)).save(ok)
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.write(ok, "train/a/ok.png")
        zf.write(ok, "train/b/ok.png")
        zf.writestr(zipfile.ZipInfo(bad_name), b"gotcha")
    with pytest.raises(DataError, match="refused"):
        load_dataset(DataConfig(name="folder", path=str(zip_path)), seed=0)
    assert list((lab_home / "cache" / "folders").iterdir()) == []
    assert not [p for p in tmp_path.parent.rglob("evil*") if p.suffix in (".txt", ".png")]
    assert not Path("/tmp/evil-absolute.png").exists()


def test_folder_errors_name_the_problem(lab_home, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(missing)):
        load_dataset(DataConfig(name="folder", path=str(missing)), seed=0)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="neither a folder nor a .zip"):
        load_dataset(DataConfig(name="folder", path=str(tmp_path / "notes.txt")), seed=0)
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError, match="not a readable zip"):
        load_dataset(DataConfig(name="folder", path=str(tmp_path / "fake.zip")), seed=0)
    (tmp_path / "loose").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "loose" / "a.png")
    with pytest.raises(DataError, match="no class folders"):
        load_dataset(DataConfig(name="folder", path=str(tmp_path / "loose")), seed=0)
    (tmp_path / "textonly" / "train" / "a").mkdir(parents=True)
    (tmp_path / "textonly" / "train" / "a" / "x.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        load_dataset(DataConfig(name="folder", path=str(tmp_path / "textonly")), seed=0)
    (tmp_path / "allbad" / "a").mkdir(parents=True)
    (tmp_path / "allbad" / "a" / "x.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no training images"):
        load_dataset(DataConfig(name="folder", path=str(tmp_path / "allbad")), seed=0)


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason="shared CIFAR-10 subset not present")
def test_cifar10_jpeg_subset_through_the_folder_data_set(lab_home):
    s = load_dataset(DataConfig(name="folder", path=str(CIFAR_ZIP), image_size=32), seed=0)
    assert s.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert s.train_x.shape == (10_000, 3, 32, 32) and s.val_x.shape == (5_000, 3, 32, 32)
    assert torch.bincount(s.train_y).tolist() == [1000] * 10 and torch.bincount(s.val_y).tolist() == [500] * 10
    assert s.skipped == 0
    mean, std = s.mean_std()
    assert all(0.4 < m < 0.55 for m in mean) and all(0.2 < v < 0.3 for v in std)  # CIFAR-10's known statistics


# ---- torchvision data sets ---------------------------------------------------------------------

@pytest.mark.skipif(not MNIST_T10K.is_dir(), reason="shared MNIST test files not present")
def test_mnist_test_split_read_from_placed_files(lab_home, tmp_path):
    from core.data.torchvision_sets import mnist_raw_dir, read_mnist_split

    raw = mnist_raw_dir("MNIST")
    assert raw == lab_home.resolve() / "cache" / "torchvision" / "MNIST" / "raw"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_T10K / name, raw / name)
    x, y = read_mnist_split(raw, "test")
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=10)
    assert len(counts) == 10 and bool(((counts >= 800) & (counts <= 1200)).all())
    assert x.float().mean().item() == pytest.approx(0.1325 * 255, rel=0.02)  # MNIST's well-known mean
    # Plain (un-gzipped) files read the same.
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (plain / name).write_bytes(gzip.decompress((raw / f"{name}.gz").read_bytes()))
    x2, y2 = read_mnist_split(plain, "test")
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        read_mnist_split(raw, "train")  # only the test split was placed


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_cifar100_and_svhn_load_from_placed_files(lab_home, monkeypatch):
    """The real torchvision readers on small files in the official formats, written here. torchvision
    checks the official files' md5 sums, which stand-ins cannot match, so only that check is bypassed."""
    import pickle

    import scipy.io
    import torchvision.datasets.cifar
    import torchvision.datasets.svhn
    import torchvision.datasets.utils
    from core.data.torchvision_sets import CIFAR100_CLASSES, torchvision_root
    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn, torchvision.datasets.utils):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)
    rng = np.random.default_rng(0)

    cifar = torchvision_root() / "cifar-100-python"
    cifar.mkdir(parents=True)
    rows = {"train": rng.integers(0, 256, (30, 3 * 32 * 32), dtype=np.uint8),
            "test": rng.integers(0, 256, (12, 3 * 32 * 32), dtype=np.uint8)}
    for split, data in rows.items():  # CIFAR's python format: rows of R, then G, then B planes
        (cifar / split).write_bytes(pickle.dumps({"data": data, "fine_labels": [i % 100 for i in range(len(data))]}))
    (cifar / "meta").write_bytes(pickle.dumps({"fine_label_names": list(CIFAR100_CLASSES)}))
    s = load_dataset(DataConfig(name="cifar100"), seed=0)
    assert s.classes == list(CIFAR100_CLASSES) and s.train_x.shape == (30, 3, 32, 32)
    assert s.val_y.tolist() == list(range(12))
    assert torch.equal(s.val_x[5], torch.from_numpy(rows["test"][5].reshape(3, 32, 32)))  # channels where they belong
    assert sorted(s.train_y.tolist()) == list(range(30))

    svhn = torchvision_root() / "svhn"
    svhn.mkdir(parents=True)
    images = {split: rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8) for split, n in (("train", 20), ("test", 10))}
    for split, x in images.items():  # SVHN's .mat: (32, 32, 3, N) pixels, labels 1..10 where 10 means the digit 0
        labels = np.array([[10 if i % 10 == 0 else i % 10] for i in range(x.shape[-1])], dtype=np.uint8)
        scipy.io.savemat(svhn / f"{split}_32x32.mat", {"X": x, "y": labels})
    s = load_dataset(DataConfig(name="svhn"), seed=0)
    assert s.train_x.shape == (20, 3, 32, 32) and s.val_y.tolist() == list(range(10))  # label 10 became 0
    assert torch.equal(s.val_x[3], torch.from_numpy(images["test"][..., 3]).permute(2, 0, 1))  # (H, W, C) as CHW


@pytest.mark.parametrize("name, must_mention", [
    ("cifar10", ["cifar-10-python.tar.gz"]),
    ("mnist", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "MNIST/raw"]),
    ("fashion-mnist", ["train-labels-idx1-ubyte", "FashionMNIST/raw"]),
])
def test_failed_download_says_where_to_put_the_files(lab_home, no_network, name, must_mention):
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name=name), seed=0)
    message = str(info.value)
    assert "could not download" in message
    assert str(cache_dir("torchvision")) in message
    for text in must_mention:
        assert text in message


# ---- device batches ----------------------------------------------------------------------------

def _indexed(n: int, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds their index, so any batch can be traced back to its samples."""
    y = torch.arange(n)
    return y.view(n, 1, 1, 1).expand(n, 1, size, size).to(torch.uint8).contiguous(), y


def test_batches_cover_each_sample_once_in_a_reproducible_order():
    x, y = _indexed(103)
    loader = DeviceBatches(x, y, batch_size=10, device="cpu", mean=(0.0,), std=(1 / 255,), seed=1)
    assert len(loader) == 11
    batches = list(loader.epoch(0))
    labels = torch.cat([b[1] for b in batches])
    assert sorted(labels.tolist()) == list(range(103)) and labels.tolist() != list(range(103))
    for xb, yb in batches:  # std 1/255, mean 0: images come back as their raw values
        assert xb.dtype == torch.float32 and torch.equal(xb[:, 0, 0, 0].long(), yb)
    assert torch.equal(torch.cat([b[1] for b in loader.epoch(0)]), labels)
    assert not torch.equal(torch.cat([b[1] for b in loader.epoch(1)]), labels)
    other_seed = DeviceBatches(x, y, batch_size=10, device="cpu", mean=(0.0,), std=(1 / 255,), seed=2)
    assert not torch.equal(torch.cat([b[1] for b in other_seed.epoch(0)]), labels)
    dropped = DeviceBatches(x, y, batch_size=10, device="cpu", mean=(0.0,), std=(1.0,), drop_last=True)
    assert len(dropped) == 10 and len(set(torch.cat([b[1] for b in dropped.epoch(0)]).tolist())) == 100


def test_resuming_mid_epoch_reproduces_the_same_augmented_batches():
    x = torch.randint(0, 256, (70, 3, 8, 8), dtype=torch.uint8)
    loader = DeviceBatches(x, torch.arange(70), batch_size=8, device="cpu", mean=(0.5,) * 3, std=(0.2,) * 3,
                           augment_crop=True, crop_padding=2, augment_flip=True, seed=9)
    full = list(loader.epoch(3))
    tail = list(loader.epoch(3, start_batch=4))
    assert len(full) == 9 and len(tail) == 5
    for (xa, ya), (xb, yb) in zip(full[4:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert list(loader.epoch(3, start_batch=9)) == []


def test_normalisation_matches_the_formula():
    x = torch.randint(0, 256, (37, 3, 5, 6), dtype=torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.2)
    loader = DeviceBatches(x, torch.zeros(37, dtype=torch.int64), batch_size=16, device="cpu", mean=mean, std=std,
                           shuffle=False)
    got = torch.cat([b[0] for b in loader.epoch(0)])
    ref = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert got.shape == x.shape and torch.allclose(got, ref, atol=1e-5)


def test_random_crop_takes_a_window_of_the_zero_padded_image():
    n, p = 40, 3
    x = torch.randint(1, 256, (n, 3, 7, 9), dtype=torch.uint8)  # no zeros: padding is recognisable
    loader = DeviceBatches(x, torch.arange(n), batch_size=16, device="cpu", mean=(0.0,) * 3, std=(1 / 255,) * 3,
                           augment_crop=True, crop_padding=p, seed=4)
    offsets = set()
    for xb, yb in loader.epoch(0):
        assert xb.shape[1:] == x.shape[1:]
        for img, label in zip(xb.round().to(torch.uint8), yb):
            padded = torch.nn.functional.pad(x[label], (p, p, p, p))
            matches = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                       if torch.equal(padded[:, dy:dy + 7, dx:dx + 9], img)]
            assert len(matches) == 1
            offsets.add(matches[0])
    assert len(offsets) > 10  # windows really vary


def test_flip_mirrors_a_random_half_and_nothing_else():
    n = 200
    x = torch.randint(0, 256, (n, 3, 4, 6), dtype=torch.uint8)
    loader = DeviceBatches(x, torch.arange(n), batch_size=64, device="cpu", mean=(0.0,) * 3, std=(1 / 255,) * 3,
                           augment_flip=True, seed=0)
    flipped = []
    for xb, yb in loader.epoch(0):
        for img, label in zip(xb.round().to(torch.uint8), yb):
            if torch.equal(img, x[label]):
                flipped.append(False)
            else:
                assert torch.equal(img, x[label].flip(-1))
                flipped.append(True)
    assert 60 < sum(flipped) < 140
    again = [not torch.equal(img.round().to(torch.uint8), x[label]) for xb, yb in loader.epoch(0)
             for img, label in zip(xb, yb)]
    assert again == flipped
