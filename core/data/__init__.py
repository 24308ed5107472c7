"""Data sets: a registry of plain-string names, each with class names, native size and channels.

`load_dataset(cfg)` returns every split as uint8 tensors (N, C, H, W) decoded once and cached under
LAB_HOME/cache; `core.data.loader.DeviceBatches` slices and augments them on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.errors import ConfigError


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


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str, classes, channels: int, image_size: int,
                     needs_path: bool = False, offline: bool = True):
    """Decorator: register `builder(cfg: DataConfig, *, seed: int) -> ImageSplits` under `name`."""
    def wrap(builder):
        _REGISTRY[name] = DatasetInfo(name, description, tuple(classes) if classes else None, channels,
                                      image_size, needs_path, offline, builder)
        return builder
    return wrap


_LOADED = False


def _ensure_loaded() -> None:
    # A flag, not `if not _REGISTRY`: importing one data set module first (say core.data.digits)
    # must not hide the others. The modules import no torch at import time, so this stays cheap.
    global _LOADED
    if not _LOADED:
        # Import order is listing order (what the UI shows): built-in sets first, your own folder last.
        from core.data import digits, shapes, torchvision_sets  # noqa: F401, I001  (registers)
        from core.data import folder  # noqa: F401, E402
        _LOADED = True


def list_datasets() -> list[str]:
    _ensure_loaded()
    return list(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ConfigError(f"data.name: '{name}' is not one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def load_dataset(cfg, seed: int = 0):
    """Build the ImageSplits for a DataConfig (see core.data.splits)."""
    from core.data.splits import finalize
    info = dataset_info(cfg.name)
    return finalize(info.builder(cfg, seed=seed), cfg, info)
