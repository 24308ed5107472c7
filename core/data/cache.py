"""Decode once, load fast: a small on-disk cache of decoded tensors under LAB_HOME/cache/tensors.

Decoding 70,000 gzipped MNIST images or 15,000 JPEGs takes seconds; loading the same uint8 tensors
back with torch.load takes milliseconds. Files are written to a temp file and renamed, so a
crash or a second worker writing the same entry never leaves a half-written file that looks whole,
and they are read with `weights_only=True`: the cache holds only tensors, lists, ints and strings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from core.paths import atomic_write, cache_dir

_FORMAT = 1  # bump when the layout of cached entries changes, to ignore old files


def cache_path(key: str) -> Path:
    """Where the entry for `key` lives; the key itself may hold paths, so it is hashed."""
    digest = hashlib.sha1(f"v{_FORMAT}:{key}".encode("utf-8")).hexdigest()
    return cache_dir("tensors") / f"{digest}.pt"


def cached_tensors(key: str, build: Callable[[], dict]) -> dict:
    """The dict that `build()` returns, from the cache when present and readable.

    `build` must return a dict of str -> tensor | list | int | str (what `weights_only` loads).
    An unreadable or foreign file (truncated, older torch, wrong content) is rebuilt, never fatal.
    Errors raised by `build` itself (a failed download, say) propagate unchanged.
    """
    path = cache_path(key)
    if path.exists():
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001  any unreadable cache entry is just a cache miss
            value = None
        if isinstance(value, dict) and value.get("__key__") == key:
            value.pop("__key__")
            return value
    value = build()
    try:
        _atomic_save({**{k: _compact(v) for k, v in value.items()}, "__key__": key}, path)
    except OSError:
        pass  # a full or read-only disk costs the next load its speed, not this load its data
    return value


def _compact(value):
    # A tensor that is a view into a larger one would save the whole underlying storage.
    if isinstance(value, torch.Tensor) and value.untyped_storage().nbytes() != value.nbytes:
        return value.clone()
    return value


def _atomic_save(obj: dict, path: Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def clear_cache() -> int:
    """Delete every cached tensor file; returns how many were removed (for a 'free disk' button)."""
    removed = 0
    for entry in cache_dir("tensors").glob("*.pt"):
        try:
            entry.unlink()
            removed += 1
        except OSError:
            pass
    return removed
