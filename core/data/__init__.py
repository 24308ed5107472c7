"""Data sets: a registry of plain-string names, each with class names, native size and channels.

`load_dataset(cfg)` returns every split as uint8 tensors (N, C, H, W) decoded once and cached under
LAB_HOME/cache; `core.data.loader.DeviceBatches` slices and augments them on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    kind: str = "images"  # images (ImageSplits), text, video, captions or env: which tasks can use it
    options: dict = field(default_factory=dict)  # name -> core.options.Option


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str, classes=None, channels: int = 0, image_size: int = 0,
                     needs_path: bool = False, offline: bool = True, kind: str = "images", options=None):
    """Decorator: register `builder(cfg: DataConfig, *, seed: int)` under `name`.

    Image data sets (kind "images") return ImageSplits; other kinds return what their task expects.
    """
    def wrap(builder):
        _REGISTRY[name] = DatasetInfo(name, description, tuple(classes) if classes else None, channels,
                                      image_size, needs_path, offline, builder, kind, dict(options or {}))
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
        _import_family_modules("core.data", FAMILY_MODULES)
        _LOADED = True


# Data sets of the other task families; each module registers its own on import.
FAMILY_MODULES = ("text", "moving_shapes", "video_folder", "scenes", "captions_folder", "environments")


def _import_family_modules(package: str, names) -> None:
    import importlib
    import importlib.util
    for name in names:  # a family not built yet is simply absent; an existing one that fails to import raises
        if importlib.util.find_spec(f"{package}.{name}") is not None:
            importlib.import_module(f"{package}.{name}")


def list_datasets(kind: str | None = "images") -> list[str]:
    """Registered names of one kind (image data sets by default; None for all)."""
    _ensure_loaded()
    return [n for n, info in _REGISTRY.items() if kind is None or info.kind == kind]


def dataset_info(name: str) -> DatasetInfo:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ConfigError(f"data.name: '{name}' is not one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def load_dataset(cfg, seed: int = 0):
    """Build the ImageSplits for a DataConfig (see core.data.splits)."""
    from core.data.splits import finalize
    info = dataset_info(cfg.name)
    if info.kind != "images":
        return info.builder(cfg, seed=seed)
    return finalize(info.builder(cfg, seed=seed), cfg, info)
