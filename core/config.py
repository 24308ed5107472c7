"""Typed run configuration: defaults in one place, validated once, round-tripped through JSON.

A `RunConfig` is stored with every run and every checkpoint, so any run can be rebuilt exactly.
This module imports no torch; validation looks up the registries lazily.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
AMP_MODES = ("off", "bf16", "fp16")
MAX_EPOCHS = 10_000


@dataclass
class DataConfig:
    name: str = "digits"
    path: str | None = None  # folder data sets: a directory or a .zip with train/<class>/ inside
    image_size: int | None = None  # None: the data set's native size (folders: 64)
    val_fraction: float = 0.2  # used only when the source has no validation split of its own
    num_samples: int = 6000  # generated data sets (shapes) only
    limit: int | None = None  # cap on training samples, for quick experiments
    augment_crop: bool = False  # random crop after zero-padding by `crop_padding` pixels
    crop_padding: int = 4
    augment_flip: bool = False  # random horizontal flip (wrong for digits, right for photos)
    options: dict[str, Any] = field(default_factory=dict)  # the data set's own options (core.options)


@dataclass
class ModelConfig:
    name: str = "cnn"
    pretrained: bool = False  # torchvision ImageNet weights (downloaded on first use)
    freeze_backbone: bool = False  # train only the new head: transfer learning
    hidden: int = 256  # width of the fully connected layer(s) of mlp and cnn
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)  # the model's own options (layers, heads, ...)


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    beta1: float = 0.9  # adam/adamw first-moment decay; GANs train better with 0.5 (Radford et al., 2015)
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0  # linear warm-up from 0, before any schedule
    step_size: int = 10  # "step" schedule: multiply the rate by gamma every step_size epochs
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global gradient norm; None leaves gradients alone
    batch_size: int = 64
    epochs: int = 5


@dataclass
class RunConfig:
    name: str = ""  # empty: derived from data set and model
    task: str = "classification"  # what a step computes: see core.tasks.list_tasks()
    task_options: dict[str, Any] = field(default_factory=dict)  # the task's own options (core.options)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    amp: str = "off"  # autocast precision on CUDA: bf16 or fp16
    channels_last: bool = False
    compile: bool = False  # torch.compile the model (first steps are slow while it compiles)
    seed: int = 0
    early_stopping_patience: int | None = None  # epochs without val improvement before stopping
    log_every: int = 10  # steps between train-metric rows (each row costs a device sync)

    # ---- derived -------------------------------------------------------------------------
    def display_name(self) -> str:
        return self.name or f"{self.data.name}-{self.model.name}"

    # ---- JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        return _from_dict(cls, raw, "")

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **overrides: Any) -> "RunConfig":
        """A copy with dotted-key overrides applied, e.g. replace(**{"optim.lr": 0.1})."""
        return apply_overrides(self, overrides)

    # ---- validation ------------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Raise ConfigError naming the first bad field and its allowed range; return self."""
        from core.tasks import list_tasks, task_spec

        _choice("task", self.task, list_tasks())
        if self.task == "classification":
            self._validate_images()
        else:
            task_spec(self.task).validate(self)
        o = self.optim
        _choice("optim.optimizer", o.optimizer, OPTIMIZERS)
        _float_range("optim.lr", o.lr, 0.0, 10.0, low_open=True)
        _float_range("optim.momentum", o.momentum, 0.0, 0.999)
        _float_range("optim.beta1", o.beta1, 0.0, 0.999)
        if o.nesterov and (o.optimizer != "sgd" or o.momentum == 0):
            raise ConfigError("optim.nesterov: needs optimizer 'sgd' with momentum > 0")
        _float_range("optim.weight_decay", o.weight_decay, 0.0, 1.0)
        _choice("optim.schedule", o.schedule, SCHEDULES)
        _int_range("optim.epochs", o.epochs, 1, MAX_EPOCHS)  # before warmup_epochs, which it bounds
        _float_range("optim.warmup_epochs", o.warmup_epochs, 0.0, float(o.epochs))
        _int_range("optim.step_size", o.step_size, 1, MAX_EPOCHS)
        _float_range("optim.gamma", o.gamma, 0.0, 1.0, low_open=True)
        _float_range("optim.label_smoothing", o.label_smoothing, 0.0, 0.5)
        if o.grad_clip is not None:
            _float_range("optim.grad_clip", o.grad_clip, 0.0, 1e6, low_open=True)
        _int_range("optim.batch_size", o.batch_size, 1, 65_536)

        dev = self.device if isinstance(self.device, str) else repr(self.device)
        if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError(f"device: '{dev}' is not one of auto, cpu, cuda, cuda:N, mps")
        _choice("amp", self.amp, AMP_MODES)
        _int_range("seed", self.seed, 0, 2**31 - 1)
        if self.early_stopping_patience is not None:
            _int_range("early_stopping_patience", self.early_stopping_patience, 1, MAX_EPOCHS)
        _int_range("log_every", self.log_every, 1, 100_000)
        return self

    def _validate_images(self) -> None:
        """Data and model fields of image classification (other tasks validate their own: core.tasks)."""
        from core.data import dataset_info, list_datasets
        from core.models import list_models, model_info

        d, m = self.data, self.model
        _choice("data.name", d.name, list_datasets())
        info = dataset_info(d.name)
        if info.needs_path and not d.path:
            raise ConfigError(f"data.path: the '{d.name}' data set needs a folder or .zip path")
        check_image_data(d)

        _choice("model.name", m.name, list_models())
        spec = model_info(m.name)
        size = d.image_size or info.image_size
        if size < spec.min_image_size:
            raise ConfigError(
                f"data.image_size: model '{m.name}' needs images of at least {spec.min_image_size}px,"
                f" but '{d.name}' gives {size}px; set data.image_size to {spec.min_image_size} or more"
            )
        if m.pretrained and not spec.pretrained_available:
            raise ConfigError(f"model.pretrained: '{m.name}' has no pretrained weights; models with weights: "
                              + ", ".join(n for n in list_models() if model_info(n).pretrained_available))
        if m.freeze_backbone and not m.pretrained:
            raise ConfigError("model.freeze_backbone: freezing only makes sense with model.pretrained on")
        _int_range("model.hidden", m.hidden, 1, 65_536)
        _float_range("model.dropout", m.dropout, 0.0, 0.95)

        from core.options import validate_options
        validate_options("data.options", d.options, info.options)
        validate_options("model.options", m.options, spec.options)
        validate_options("task_options", self.task_options, {})


# ---- helpers (also used by the tasks' own validation) ------------------------------------------

def _choice(name: str, value: Any, allowed) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}: '{value}' is not one of: {', '.join(map(str, allowed))}")


def check_image_data(d, min_size: int = 4, max_size: int = 1024) -> None:
    """The DataConfig fields every image task reads: size, validation share, sample count, limit, padding."""
    if d.image_size is not None:
        _int_range("data.image_size", d.image_size, min_size, max_size)
    _float_range("data.val_fraction", d.val_fraction, 0.0, 0.9, low_open=True)
    _int_range("data.num_samples", d.num_samples, 10, 1_000_000)
    if d.limit is not None:
        _int_range("data.limit", d.limit, 1, 100_000_000)
    _int_range("data.crop_padding", d.crop_padding, 0, 64)


def _int_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; allowed {low} to {high:,}")


def _float_range(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bound = f"greater than {low}" if low_open else f"at least {low}"
        raise ConfigError(f"{name}: {value} is out of range; must be {bound} and at most {high}")


def _from_dict(cls, raw: dict[str, Any], prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field; known fields: {', '.join(known)}")
    kwargs = {}
    for key, value in raw.items():
        f = known[key]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[key] = _from_dict(f.default_factory, value, f"{prefix}{key}.")
        else:
            kwargs[key] = value
    return cls(**kwargs)


check_choice = _choice
check_int = _int_range
check_float = _float_range


def _parse_value(text: str, current: Any) -> Any:
    """Turn a command-line string into the type of the field it overrides."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if isinstance(current, bool):
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got '{text}'")
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        if isinstance(current, float) and cast is int:
            return float(value)
        return value
    return text


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Copy `config` with dotted keys set ("optim.lr" or the unique short form "lr").

    String values are converted to the field's type, so `--set lr=0.1` works from a shell.
    """
    result = copy.deepcopy(config)
    for key, value in overrides.items():
        if _set_option(result, key, value):
            continue
        parent, attr = _resolve_key(result, key)
        current = getattr(parent, attr)
        if isinstance(value, str) and not (isinstance(current, str) or (current is None and attr in _STR_NONE)):
            try:
                value = _parse_value(value, current)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        setattr(parent, attr, value)
    return result


_STR_NONE = {"path"}  # optional string fields: keep the text as is


def _set_option(config: RunConfig, key: str, value: Any) -> bool:
    """`model.options.layers=4`, `data.options.frames=8`, `task_options.env=CartPole-v1`: True when handled."""
    parts = key.split(".")
    if parts[0] == "task_options" and len(parts) == 2:
        target, name, owner = config.task_options, parts[1], "task_options"
    elif len(parts) == 3 and parts[0] in ("data", "model") and parts[1] == "options":
        target, name, owner = getattr(config, parts[0]).options, parts[2], parts[0] + ".options"
    else:
        return False
    if isinstance(value, str):
        from core.options import parse_option
        try:
            value = parse_option(value, option_schema(config, owner).get(name))
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    target[name] = value
    return True


def option_schema(config: RunConfig, owner: str) -> dict:
    """The Option schema for 'data.options', 'model.options' or 'task_options' of this config ({} if unknown)."""
    try:
        if owner == "task_options":
            from core.tasks import task_spec
            return task_spec(config.task).options
        if owner == "model.options":
            from core.models import model_info
            return model_info(config.model.name).options
        from core.data import dataset_info
        return dataset_info(config.data.name).options
    except (ConfigError, ImportError):
        return {}


def _resolve_key(config: RunConfig, key: str):
    parts = key.split(".")
    if len(parts) == 1:
        if key in {f.name for f in fields(config)} and key not in ("data", "model", "optim"):
            return config, key  # top-level fields win: "name" is the run's name
        matches = []
        for section in ("data", "model", "optim"):
            sub = getattr(config, section)
            if key in {f.name for f in fields(sub)}:
                matches.append((sub, key))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"{key}: ambiguous; write it with its section (e.g. data.{key} or model.{key})")
        raise ConfigError(f"{key}: unknown config field")
    if len(parts) == 2 and parts[0] in ("data", "model", "optim"):
        sub = getattr(config, parts[0])
        if parts[1] in {f.name for f in fields(sub)}:
            return sub, parts[1]
    raise ConfigError(f"{key}: unknown config field")


def parse_set_args(items: list[str]) -> dict[str, str]:
    """['optim.lr=0.1', 'epochs=3'] -> {'optim.lr': '0.1', 'epochs': '3'}."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item}: expected key=value, e.g. --set optim.lr=0.05")
        result[key.strip()] = value
    return result


# ---- presets -----------------------------------------------------------------------------------

def _preset(name: str, data: dict, model: dict, optim: dict, **run: Any) -> RunConfig:
    return RunConfig(name=name, data=DataConfig(**data), model=ModelConfig(**model), optim=OptimConfig(**optim), **run)


PRESETS: dict[str, tuple[str, RunConfig]] = {
    "digits-mlp": ("Two-layer perceptron on scikit-learn's 8x8 digits; offline, seconds on a CPU",
                   _preset("digits-mlp", {"name": "digits"}, {"name": "mlp", "hidden": 128},
                           {"optimizer": "adam", "lr": 3e-3, "epochs": 10, "batch_size": 64})),
    "digits-cnn": ("Classic conv-pool-conv-pool-fc network on the 8x8 digits; offline, seconds on a CPU",
                   _preset("digits-cnn", {"name": "digits"}, {"name": "cnn", "hidden": 128},
                           {"optimizer": "adam", "lr": 2e-3, "epochs": 10, "batch_size": 32})),
    "mnist-cnn": ("The classic CNN on MNIST (downloaded on first use)",
                  _preset("mnist-cnn", {"name": "mnist"}, {"name": "cnn", "hidden": 1024, "dropout": 0.5},
                          {"optimizer": "adam", "lr": 1e-3, "epochs": 5, "batch_size": 128})),
    "cifar10-cnn": ("conv-pool-conv-pool-fc1024-fc on CIFAR-10 with crop and flip (downloaded on first use)",
                    _preset("cifar10-cnn", {"name": "cifar10", "augment_crop": True, "augment_flip": True},
                            {"name": "cnn", "hidden": 1024, "dropout": 0.5},
                            {"optimizer": "adam", "lr": 1e-3, "epochs": 30, "batch_size": 128,
                             "schedule": "cosine"})),
    "cifar10-resnet18": ("ResNet-18 for 32x32 images on CIFAR-10, SGD with one-cycle (downloaded on first use)",
                         _preset("cifar10-resnet18", {"name": "cifar10", "augment_crop": True, "augment_flip": True},
                                 {"name": "resnet18_small"},
                                 {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                                  "weight_decay": 5e-4, "schedule": "onecycle", "epochs": 30, "batch_size": 256,
                                  "label_smoothing": 0.1})),
    "folder-transfer-resnet18": ("Fine-tune an ImageNet ResNet-18's new head on your own image folder",
                                 _preset("folder-transfer-resnet18",
                                         {"name": "folder", "image_size": 128, "augment_flip": True,
                                          "augment_crop": True, "crop_padding": 8},
                                         {"name": "resnet18", "pretrained": True, "freeze_backbone": True},
                                         {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4,
                                          "epochs": 5, "batch_size": 32, "schedule": "cosine"})),
    "shapes-cnn": ("The classic CNN on generated coloured shapes; offline, fast demo",
                   _preset("shapes-cnn", {"name": "shapes", "num_samples": 4000}, {"name": "cnn", "hidden": 256},
                           {"optimizer": "adam", "lr": 1e-3, "epochs": 5, "batch_size": 64})),
}


def _family_presets() -> None:
    """Presets of the other task families live beside them in core/presets/<family>.py as plain dicts."""
    import importlib
    import pkgutil

    import core.presets
    for module_info in sorted(pkgutil.iter_modules(core.presets.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"core.presets.{module_info.name}")
        for name, (description, raw) in module.PRESETS.items():
            PRESETS[name] = (description, RunConfig.from_dict({"name": name, **raw}))


_family_presets()


def list_presets(task: str | None = None) -> list[str]:
    return [n for n, (_, c) in PRESETS.items() if task is None or c.task == task]


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"preset: '{name}' is not one of: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name][1])


def preset_description(name: str) -> str:
    return PRESETS[name][0]
