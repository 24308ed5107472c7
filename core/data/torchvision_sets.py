"""Classic benchmark data sets, downloaded on first use through torchvision into LAB_HOME/cache/torchvision.

The official train split trains and the official test split validates. Decoded splits are cached as
uint8 tensors (core.data.cache), so only the first load pays for decoding. Without a network, the
error says exactly which files to put where; MNIST-style sets are then read by the same IDX reader
that reads downloaded files, one split at a time.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from core.data import register_dataset
from core.errors import DataError
from core.paths import cache_dir

DIGITS = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Fine labels in the order of the official `meta` file (alphabetical); replaced by the file's own names on load.
CIFAR100_CLASSES = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle
caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant
flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree
motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate
poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider
squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
wardrobe whale willow_tree wolf woman worm""".split())

_MNIST_PREFIX = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08


def torchvision_root() -> Path:
    return cache_dir("torchvision")


def mnist_raw_dir(folder: str) -> Path:
    """Where torchvision's MNIST-style classes keep their files: <root>/<ClassName>/raw."""
    path = torchvision_root() / folder / "raw"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- MNIST-style IDX files ---------------------------------------------------------------------

def mnist_files(split: str) -> tuple[str, str]:
    prefix = _MNIST_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx(raw_dir: Path, name: str) -> Path | None:
    for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):  # plain first: no decompression
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, ndim: int):
    """An IDX file of unsigned bytes as a numpy array of `ndim` dimensions (gzipped or plain)."""
    import numpy as np

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}; delete it to download it again") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE or data[3] != ndim:
        raise DataError(f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = 1
    for dim in shape:
        count *= dim
    if len(data) - header != count:
        raise DataError(f"{path} is truncated or corrupt: header says {shape}, file holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist_split(raw_dir: Path, split: str):
    """One split of an MNIST-style data set from its IDX files in `raw_dir`.

    Returns (images (N, 1, 28, 28) uint8, labels (N,) int64). Reads only that split's two files
    (`t10k-*` for "test", `train-*` for "train"), each either gzipped (.gz) or plain.
    """
    import numpy as np
    import torch

    if split not in _MNIST_PREFIX:
        raise DataError(f"split must be 'train' or 'test', got '{split}'")
    raw_dir = Path(raw_dir)
    image_name, label_name = mnist_files(split)
    image_path, label_path = _find_idx(raw_dir, image_name), _find_idx(raw_dir, label_name)
    missing = [n for n, p in ((image_name, image_path), (label_name, label_path)) if p is None]
    if missing:
        raise DataError(f"missing {', '.join(missing)} (or .gz) in {raw_dir}")
    images = _read_idx(image_path, 3)  # (N, H, W)
    labels = _read_idx(label_path, 1)  # (N,)
    if len(images) != len(labels):
        raise DataError(f"{image_path.name} holds {len(images)} images but {label_path.name} {len(labels)} labels")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, H, W); copy: frombuffer is read-only
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def _mnist_like(cfg, seed: int, *, name: str, folder: str, tv_class: str, mirror: str, classes):
    from core.data.cache import cached_tensors
    from core.data.splits import ImageSplits, shuffle_pairs

    raw_dir = mnist_raw_dir(folder)
    needed = [n for split in ("train", "test") for n in mnist_files(split)]
    if any(_find_idx(raw_dir, n) is None for n in needed):
        files = ", ".join(f"{n}.gz" for n in needed)
        _download(name, lambda tv: getattr(tv.datasets, tv_class)(str(torchvision_root()), train=False, download=True),
                  f"place {files} (from {mirror}; gzipped or not) in {raw_dir}")

    def build():
        train_x, train_y = read_mnist_split(raw_dir, "train")
        val_x, val_y = read_mnist_split(raw_dir, "test")
        return {"train_x": train_x, "train_y": train_y, "val_x": val_x, "val_y": val_y}

    data = cached_tensors(f"{name}:{_signature(raw_dir, needed)}", build)
    train_x, train_y = shuffle_pairs(data["train_x"], data["train_y"], seed)
    return ImageSplits(train_x, train_y, data["val_x"], data["val_y"], classes=list(classes), channels=1,
                       image_size=28, source=f"{name} (official train / test splits) in {raw_dir}")


def _signature(raw_dir: Path, names: list[str]) -> str:
    """Cheap identity of the files read: path, size and mtime, so replaced files are decoded again."""
    parts = []
    for n in names:
        path = _find_idx(raw_dir, n)
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


@register_dataset("mnist", description="Handwritten digits, 28x28 grey (70,000 images; downloaded on first use)",
                  classes=DIGITS, channels=1, image_size=28, offline=False)
def build_mnist(cfg, *, seed: int):
    return _mnist_like(cfg, seed, name="mnist", folder="MNIST", tv_class="MNIST",
                       mirror="https://ossci-datasets.s3.amazonaws.com/mnist/", classes=DIGITS)


@register_dataset("fashion-mnist", description="Zalando clothing, 28x28 grey (70,000 images; downloaded on first use)",
                  classes=FASHION_CLASSES, channels=1, image_size=28, offline=False)
def build_fashion_mnist(cfg, *, seed: int):
    return _mnist_like(cfg, seed, name="fashion-mnist", folder="FashionMNIST", tv_class="FashionMNIST",
                       mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", classes=FASHION_CLASSES)


# ---- CIFAR and SVHN through torchvision's own readers -------------------------------------------

def _download(name: str, make, how_offline: str):
    """Run `make(torchvision)`, which may download; any failure becomes a DataError saying what to do."""
    import torchvision

    try:
        return make(torchvision)
    except DataError:
        raise
    except ImportError as exc:  # svhn's .mat files need scipy: not a network problem
        raise DataError(f"reading the '{name}' data set needs the Python package '{exc.name}'; "
                        f"install it with pip install {exc.name}") from None
    except Exception as exc:  # noqa: BLE001  URLError, HTTPError, timeouts, md5 mismatch, RuntimeError...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not download the '{name}' data set ({reason[:300]}). "
                        f"To use it without a network, {how_offline}, then try again.") from None


def _cifar(cfg, seed: int, *, name: str, tv_class: str, archive: str, url: str, classes):
    from core.data.cache import cached_tensors
    from core.data.splits import ImageSplits, shuffle_pairs

    import torch

    root = torchvision_root()
    how = f"place {archive} (from {url}) in {root}; it is unpacked there on first use"

    def build():
        splits = {}
        for split, train in (("train", True), ("val", False)):
            ds = _download(name, lambda tv: getattr(tv.datasets, tv_class)(str(root), train=train, download=True), how)
            # (N, 32, 32, 3) -> (N, 3, 32, 32)
            splits[f"{split}_x"] = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            splits[f"{split}_y"] = torch.as_tensor(ds.targets, dtype=torch.int64)
            splits["classes"] = list(ds.classes)
        return splits

    data = cached_tensors(f"{name}:{root}", build)
    train_x, train_y = shuffle_pairs(data["train_x"], data["train_y"], seed)
    return ImageSplits(train_x, train_y, data["val_x"], data["val_y"], classes=list(data["classes"] or classes),
                       channels=3, image_size=32, source=f"{name} (official train / test splits) in {root}")


@register_dataset("cifar10", description="CIFAR-10 photos, 32x32 RGB, 10 classes (60,000; downloaded on first use)",
                  classes=CIFAR10_CLASSES, channels=3, image_size=32, offline=False)
def build_cifar10(cfg, *, seed: int):
    return _cifar(cfg, seed, name="cifar10", tv_class="CIFAR10", archive="cifar-10-python.tar.gz",
                  url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", classes=CIFAR10_CLASSES)


@register_dataset("cifar100", description="CIFAR-100 photos, 32x32 RGB, 100 classes (60,000; downloaded on first use)",
                  classes=CIFAR100_CLASSES, channels=3, image_size=32, offline=False)
def build_cifar100(cfg, *, seed: int):
    return _cifar(cfg, seed, name="cifar100", tv_class="CIFAR100", archive="cifar-100-python.tar.gz",
                  url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", classes=CIFAR100_CLASSES)


@register_dataset("svhn", description="Street View house numbers, 32x32 RGB (99,289 images; downloaded on first use)",
                  classes=DIGITS, channels=3, image_size=32, offline=False)
def build_svhn(cfg, *, seed: int):
    from core.data.cache import cached_tensors
    from core.data.splits import ImageSplits, shuffle_pairs

    import torch

    root = torchvision_root() / "svhn"
    root.mkdir(parents=True, exist_ok=True)
    how = (f"place train_32x32.mat and test_32x32.mat (from http://ufldl.stanford.edu/housenumbers/) in {root}")

    def build():
        splits = {}
        for split, tv_split in (("train", "train"), ("val", "test")):
            ds = _download("svhn", lambda tv: tv.datasets.SVHN(str(root), split=tv_split, download=True), how)
            splits[f"{split}_x"] = torch.from_numpy(ds.data).contiguous()  # already (N, 3, 32, 32) uint8
            splits[f"{split}_y"] = torch.as_tensor(ds.labels, dtype=torch.int64)  # torchvision maps label 10 to 0
        return splits

    data = cached_tensors(f"svhn:{root}", build)
    train_x, train_y = shuffle_pairs(data["train_x"], data["train_y"], seed)
    return ImageSplits(train_x, train_y, data["val_x"], data["val_y"], classes=list(DIGITS), channels=3,
                       image_size=32, source=f"svhn (official train / test splits) in {root}")
