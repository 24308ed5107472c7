"""Data sets: a registry of plain-string names, each with class names, native size and channels.

`load_dataset(cfg)` returns every split as uint8 tensors (N, C, H, W) decoded once and cached under
LAB_HOME/cache; `core.data.loader.DeviceBatches` slices and augments them on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    classes: tuple[str, ...] | None  # None: known only once loaded (folder data sets)
    channels: int  # native channel count (1 or 3)
    image_size: int  # native (or default) square size in pixels
    needs_path: bool = False  # True: DataConfig.path must name a folder or zip
    offline: bool = True  # False: downloaded on first use
    builder: Callable | None = None
    kind: str = "images"  # images (ImageSplits), text, video, captions or env: which tasks can use it
    options: dict = field(default_factory=dict)  # name -> core.options.Option
    generated: bool = False  # True: made on the fly (shapes, clips), nothing to download or point at
    preview: Callable | None = None  # preview(cfg, *, per_class, seed): a few examples per class, quickly
    # native_size(cfg) -> int: the size its images suggest (a folder's median shorter side), when data.image_size
    # is left unset; None: `image_size` is the native size
    native_size: Callable | None = None
    # files(cfg, seed) -> core.data.folder.ImageFiles: each split as a list of (path, label), found by listing
    # directories; a data set that declares it can be streamed from disk (core.data.stream), others are always
    # decoded into memory
    files: Callable | None = None


# Import order is listing order (what the UI shows): built-in sets first, your own folder, then the
# data sets of the other task families. The modules import no torch at import time, so loading is cheap.
DATASETS: Registry[DatasetInfo] = Registry("data.name", tuple(f"core.data.{name}" for name in (
    "digits", "shapes", "torchvision_sets", "folder",
    "text", "moving_shapes", "video_folder", "scenes", "captions_folder", "environments", "pairs",
    "labelled_text")))


def register_dataset(name: str, *, description: str, classes=None, channels: int = 0, image_size: int = 0,
                     needs_path: bool = False, offline: bool = True, kind: str = "images", options=None,
                     generated: bool = False, preview: Callable | None = None, native_size: Callable | None = None,
                     files: Callable | None = None):
    """Decorator: register `builder(cfg: DataConfig, *, seed: int)` under `name`.

    Image data sets (kind "images") return ImageSplits; other kinds return what their task expects.
    """
    def wrap(builder):
        DATASETS.add(name, DatasetInfo(name, description, tuple(classes) if classes else None, channels,
                                       image_size, needs_path, offline, builder, kind, dict(options or {}),
                                       generated, preview, native_size, files))
        return builder
    return wrap


def list_datasets(kind: str | None = "images") -> list[str]:
    """Registered names of one kind (image data sets by default; None for all)."""
    return DATASETS.names(lambda info: kind is None or info.kind == kind)


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


NATIVE_CAP = 224  # a folder of photos trains at 224 px unless asked otherwise (ImageNet models' usual size)


def image_size_of(cfg, low: int = 1, high: int = NATIVE_CAP) -> int:
    """The square size a run of this DataConfig trains at: data.image_size when set, else the data set's size;
    for a data set with a native-size probe (a folder), what its images suggest, kept within what the model
    accepts (`low`..`high`)."""
    info = dataset_info(cfg.name)
    if cfg.image_size or info.native_size is None or not getattr(cfg, "path", None):
        return int(cfg.image_size or info.image_size)
    from core.errors import DataError
    try:
        size = info.native_size(cfg) or info.image_size
    except DataError:
        return int(info.image_size)  # a missing or unreadable folder: its own error comes when it is loaded
    return int(min(max(size, low), max(low, min(high, NATIVE_CAP))))


def with_image_size(cfg, low: int = 1, high: int = NATIVE_CAP):
    """`cfg` with the size image_size_of chose written in, so the loaded data matches what was validated."""
    if cfg.image_size or dataset_info(cfg.name).native_size is None:
        return cfg
    import dataclasses
    return dataclasses.replace(cfg, image_size=image_size_of(cfg, low, high))


def load_dataset(cfg, seed: int = 0):
    """Build the ImageSplits for a DataConfig (see core.data.splits)."""
    from core.data.splits import finalize
    info = dataset_info(cfg.name)
    if info.kind != "images":
        return info.builder(cfg, seed=seed)
    return finalize(info.builder(cfg, seed=seed), cfg, info)
