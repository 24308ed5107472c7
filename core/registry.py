"""Plain-string registries (as torchvision's `list_models` / `get_model`): data sets and models share this.

Each entry is registered by a decorator in the module that defines it; the registry imports its
modules on first look-up, in listing order, so the UI lists what the registry holds and adding a
data set or a model is one decorated builder. No torch here.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Callable, Generic, TypeVar

from core.errors import ConfigError

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    def __init__(self, field: str, modules: tuple[str, ...]):
        self.field = field  # the config field that names an entry, e.g. "data.name", for messages
        self.modules = modules  # imported on first look-up, in this order (which is listing order)
        self.entries: dict[str, Entry] = {}
        self.loaded = False

    def add(self, name: str, entry: Entry) -> None:
        self.entries[name] = entry

    def load(self) -> None:
        # A flag, not `if not self.entries`: importing one module first (say core.data.digits) must
        # not hide the others. A module not built yet is simply absent; one that fails to import raises.
        if self.loaded:
            return
        for module in self.modules:
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
        self.loaded = True

    def names(self, keep: Callable[[Entry], bool] | None = None) -> list[str]:
        self.load()
        return [name for name, entry in self.entries.items() if keep is None or keep(entry)]

    def get(self, name: str) -> Entry:
        self.load()
        if name not in self.entries:
            raise ConfigError(f"{self.field}: '{name}' is not one of: {', '.join(self.entries)}")
        return self.entries[name]
