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


# Import order is listing order (what the UI shows): built-in sets first, your own folder, then the
# data sets of the other task families. The modules import no torch at import time, so loading is cheap.
DATASETS: Registry[DatasetInfo] = Registry("data.name", tuple(f"core.data.{name}" for name in (
    "digits", "shapes", "torchvision_sets", "folder",
    "text", "moving_shapes", "video_folder", "scenes", "captions_folder", "environments")))


def register_dataset(name: str, *, description: str, classes=None, channels: int = 0, image_size: int = 0,
                     needs_path: bool = False, offline: bool = True, kind: str = "images", options=None,
                     generated: bool = False, preview: Callable | None = None):
    """Decorator: register `builder(cfg: DataConfig, *, seed: int)` under `name`.

    Image data sets (kind "images") return ImageSplits; other kinds return what their task expects.
    """
    def wrap(builder):
        DATASETS.add(name, DatasetInfo(name, description, tuple(classes) if classes else None, channels,
                                       image_size, needs_path, offline, builder, kind, dict(options or {}),
                                       generated, preview))
        return builder
    return wrap


def list_datasets(kind: str | None = "images") -> list[str]:
    """Registered names of one kind (image data sets by default; None for all)."""
    return DATASETS.names(lambda info: kind is None or info.kind == kind)


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.get(name)


def load_dataset(cfg, seed: int = 0):
    """Build the ImageSplits for a DataConfig (see core.data.splits)."""
    from core.data.splits import finalize
    info = dataset_info(cfg.name)
    if info.kind != "images":
        return info.builder(cfg, seed=seed)
    return finalize(info.builder(cfg, seed=seed), cfg, info)
