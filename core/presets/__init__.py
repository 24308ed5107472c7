"""Presets: tried configurations by name, one module per family (`core/presets/<family>.py`).

Each module holds `PRESETS = {name: (description, config_dict)}`, where config_dict is what
`RunConfig.from_dict` accepts (the name is filled in). Plain data, no torch.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil

from core.config import RunConfig
from core.errors import ConfigError


# Listing order (the Train form offers a family's first preset first); a module not listed here comes last.
MODULES = ("classification", "captioning", "generative", "language_model", "rl", "video", "seq2seq",
           "text_classification")


def _load() -> dict[str, tuple[str, RunConfig]]:
    present = [m.name for m in pkgutil.iter_modules(__path__)]
    presets = {}
    for module in [m for m in MODULES if m in present] + sorted(set(present) - set(MODULES)):
        for name, (description, raw) in importlib.import_module(f"core.presets.{module}").PRESETS.items():
            presets[name] = (description, RunConfig.from_dict({"name": name, **raw}))
    return presets


PRESETS: dict[str, tuple[str, RunConfig]] = _load()


def list_presets(task: str | None = None) -> list[str]:
    return [name for name, (_, config) in PRESETS.items() if task is None or config.task == task]


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"preset: '{name}' is not one of: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name][1])


def preset_description(name: str) -> str:
    return PRESETS[name][0]
