"""Typed options for model, data and task families: a schema each family declares, checked in one place.

A family (say the character language model) needs settings the image classifier does not have:
context length, attention heads, an environment name. Rather than grow RunConfig for every family,
each registered model, data set and task declares `Option`s; the values live in plain dicts
(`model.options`, `data.options`, `task_options`) and are validated against the schema here.
The UI draws a widget per option from the same schema. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError


@dataclass(frozen=True)
class Option:
    default: Any
    help: str = ""
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple | None = None  # allowed values for strings
    label: str = ""  # form label; the option's name when empty

    @property
    def kind(self) -> type:
        return type(self.default) if self.default is not None else str


def defaults(schema: dict[str, Option]) -> dict[str, Any]:
    return {name: option.default for name, option in schema.items()}


def resolve(values: dict[str, Any] | None, schema: dict[str, Option]) -> dict[str, Any]:
    """Defaults overlaid with the given values (validated separately)."""
    return {**defaults(schema), **(values or {})}


def validate_options(prefix: str, values: dict[str, Any] | None, schema: dict[str, Option]) -> None:
    """Raise ConfigError naming `prefix.key` for an unknown key, a wrong type or a value out of range."""
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected an object of options, got {type(values).__name__}")
    for key, value in values.items():
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise ConfigError(f"{prefix}.{key}: unknown option; known options: {known}")
        option, name = schema[key], f"{prefix}.{key}"
        kind = option.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}: expected a whole number, got {value!r}")
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ConfigError(f"{name}: expected a number, got {value!r}")
        elif not isinstance(value, str):
            raise ConfigError(f"{name}: expected text, got {value!r}")
        if option.choices is not None and value not in option.choices:
            raise ConfigError(f"{name}: '{value}' is not one of: {', '.join(map(str, option.choices))}")
        if kind in (int, float):
            if option.low is not None and value < option.low or option.high is not None and value > option.high:
                raise ConfigError(f"{name}: {value} is out of range; allowed {option.low:g} to {option.high:g}")


def parse_option(text: str, option: Option | None) -> Any:
    """A command-line string as the option's type (or the most natural type when the schema is unknown)."""
    lowered = text.strip().lower()
    kind = option.kind if option else None
    if kind is bool or (kind is None and lowered in ("true", "false")):
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"expected true or false, got '{text}'")
    if kind is str:
        return text
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return float(value) if kind is float else value
    if kind in (int, float):
        raise ConfigError(f"expected a number, got '{text}'")
    return text
