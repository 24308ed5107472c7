"""Import the heavy libraries in the background once the first page has painted, so the first visit
to Train or Media does not wait for torch to load."""

from __future__ import annotations

import gc
import os
import threading

_started = False
_done = threading.Event()


def _load() -> None:
    try:
        _import_all()
    finally:
        # torch, torchvision and plotly leave some million long-lived objects; the collector's full
        # passes walked all of them, freezing the server for 0.3-0.5 s on every visit. Collect once,
        # then freeze what is left: the collector skips frozen objects from then on. (Everything alive
        # now is frozen, sessions open at this moment included; they are never collected again, a
        # small one-time cost.)
        gc.collect()
        gc.freeze()
        _done.set()


def _import_all() -> None:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    import core.data  # noqa: F401
    import core.models
    import core.models.imagenet  # noqa: F401
    core.models.list_models()
    core.data.list_datasets()
    import core.inference  # noqa: F401
    import core.analysis  # noqa: F401  (pandas and the Runs page's comparison)
    import plotly.graph_objects  # noqa: F401


def start_background_imports() -> None:
    global _started
    if os.environ.get("LAB_BACKGROUND_IMPORTS", "1") == "0":  # tests that run the app in their own process
        return
    if not _started:
        _started = True
        # a short delay: importing holds the GIL, and the first page's messages should go out first
        timer = threading.Timer(2.0, _load)
        timer.daemon = True
        timer.start()


def wait(timeout: float = 120.0) -> bool:
    """Block until the background imports have finished; True if they have (benchmarks measure after them)."""
    return _done.wait(timeout) if _started else True
