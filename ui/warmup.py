"""Import the heavy libraries in the background once the first page has painted, so the first visit
to Train or Media does not wait for torch to load."""

from __future__ import annotations

import threading

_started = False


def _load() -> None:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    import core.data  # noqa: F401
    import core.models
    import core.models.imagenet  # noqa: F401
    core.models.list_models()
    core.data.list_datasets()
    import core.inference  # noqa: F401
    import plotly.graph_objects  # noqa: F401


def start_background_imports() -> None:
    global _started
    if not _started:
        _started = True
        # a short delay: importing holds the GIL, and the first page's messages should go out first
        timer = threading.Timer(2.0, _load)
        timer.daemon = True
        timer.start()
