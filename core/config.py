"""Typed run configuration: defaults in one place, validated once, round-tripped through JSON.

A `RunConfig` is stored with every run and every checkpoint, so any run can be rebuilt exactly.
This module imports no torch and nothing above core.options: it checks the fields every task shares
(`RunConfig.check_common`); each family checks its own (core.tasks.validate runs both).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.errors import ConfigError
from core.options import parse_option

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "triangle")
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
    stream: bool | None = None  # None: stream from disk only when the decoded images exceed the memory budget
    workers: int | None = None  # streamed data: DataLoader worker processes (None: one per core, at most 4)
    disk_cache: bool = False  # streamed data: keep decoded images on disk so later epochs skip decoding
    options: dict[str, Any] = field(default_factory=dict)  # the data set's own options (core.options)


@dataclass
class ModelConfig:
    name: str = "cnn"
    pretrained: bool = False  # torchvision ImageNet weights (downloaded on first use)
    freeze_backbone: bool = False  # train only the new head: transfer learning
    hidden: int = 256  # width of the fully connected layer(s) of mlp and cnn
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)  # the model's own options (layers, heads, ...)
    init_from: str | None = None  # a finished run whose best checkpoint initialises the model (core.tasks.finetune)
    lora_rank: int = 0  # LoRA adapters of this rank on the targeted layers; 0: train the weights themselves
    lora_alpha: float = 16.0  # adapters are scaled by lora_alpha / lora_rank (Hu et al. 2021)
    lora_dropout: float = 0.0  # dropout on the adapters' input
    lora_targets: list[str] = field(default_factory=list)  # layer-name patterns ("conv*", "stages.2"); empty: all but the head


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    beta1: float = 0.9  # adam/adamw first-moment decay; GANs train better with 0.5 (Radford et al., 2015)
    beta2: float = 0.999  # adam/adamw second-moment decay; nanoGPT's small char model uses 0.99
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0  # linear warm-up from 0, before any schedule
    step_size: int = 10  # "step" schedule: multiply the rate by gamma every step_size epochs
    gamma: float = 0.1
    min_lr_fraction: float = 0.0  # "cosine" decays to lr x this (nanoGPT: min_lr = lr / 10)
    label_smoothing: float = 0.0
    grad_clip: float | None = None  # max global gradient norm; None leaves gradients alone
    # learning-rate multiplier for normalisation layers' parameters, their weight decay divided by it (the same
    # absolute shrink per step as the weights): the speedruns' "bias scaler", 64 in Jordan 2024
    norm_lr_scale: float = 1.0
    batch_size: int = 64
    epochs: int = 5


@dataclass
class RunConfig:
    name: str = ""  # empty: derived from data set and model
    task: str = "classification"  # the family: what a step computes (core.tasks.list_tasks())
    task_options: dict[str, Any] = field(default_factory=dict)  # the task's own options (core.options)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    device: str = "auto"  # auto, cpu, cuda, cuda:N, mps
    devices: int = 1  # processes (one per GPU) trained together by torchrun; optim.batch_size is the global batch
    amp: str = "off"  # autocast precision on CUDA: bf16 or fp16
    channels_last: bool = False
    compile: bool = False  # torch.compile the model on CUDA (first steps are slow while it compiles); no-op elsewhere
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
    def check_common(self) -> "RunConfig":
        """Raise ConfigError naming the first bad field shared by every task (optimisation, device, seed...);
        return self. The task, data and model fields are the family's to check: core.tasks.validate runs both."""
        o = self.optim
        check_choice("optim.optimizer", o.optimizer, OPTIMIZERS)
        check_float("optim.lr", o.lr, 0.0, 10.0, low_open=True)
        check_float("optim.momentum", o.momentum, 0.0, 0.999)
        check_float("optim.beta1", o.beta1, 0.0, 0.999)
        check_float("optim.beta2", o.beta2, 0.0, 0.99999)
        check_float("optim.min_lr_fraction", o.min_lr_fraction, 0.0, 1.0)
        if o.nesterov and (o.optimizer != "sgd" or o.momentum == 0):
            raise ConfigError("optim.nesterov: needs optimizer 'sgd' with momentum > 0")
        check_float("optim.weight_decay", o.weight_decay, 0.0, 1.0)
        check_choice("optim.schedule", o.schedule, SCHEDULES)
        check_int("optim.epochs", o.epochs, 1, MAX_EPOCHS)  # before warmup_epochs, which it bounds
        check_float("optim.warmup_epochs", o.warmup_epochs, 0.0, float(o.epochs))
        check_int("optim.step_size", o.step_size, 1, MAX_EPOCHS)
        check_float("optim.gamma", o.gamma, 0.0, 1.0, low_open=True)
        check_float("optim.label_smoothing", o.label_smoothing, 0.0, 0.5)
        if o.grad_clip is not None:
            check_float("optim.grad_clip", o.grad_clip, 0.0, 1e6, low_open=True)
        check_int("optim.batch_size", o.batch_size, 1, 65_536)
        check_float("optim.norm_lr_scale", o.norm_lr_scale, 0.0, 1e4, low_open=True)

        dev = self.device if isinstance(self.device, str) else repr(self.device)
        if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError(f"device: '{dev}' is not one of auto, cpu, cuda, cuda:N, mps")
        check_choice("amp", self.amp, AMP_MODES)
        check_int("seed", self.seed, 0, 2**31 - 1)
        if self.early_stopping_patience is not None:
            check_int("early_stopping_patience", self.early_stopping_patience, 1, MAX_EPOCHS)
        check_int("log_every", self.log_every, 1, 100_000)
        check_int("devices", self.devices, 1, 1024)
        check_finetune_fields(self.model)
        if self.devices > 1 and o.batch_size % self.devices:
            raise ConfigError(f"optim.batch_size: {o.batch_size} is the global batch and must split evenly over "
                              f"{self.devices} devices; try {o.batch_size - o.batch_size % self.devices or self.devices}")
        return self


def task_of(raw: dict) -> str:
    """The family of a stored config dict; configs saved before tasks were configurable name none and are
    the default task's."""
    task = raw.get("task") if isinstance(raw, dict) else None
    if isinstance(task, dict):  # an early format wrote {"name": ...}
        task = task.get("name")
    return str(task) if task else RunConfig.task


# ---- helpers (also used by the tasks' own validation) ------------------------------------------

def check_finetune_fields(m: ModelConfig) -> None:
    """The types and ranges of the start-from-a-run and LoRA fields (core.tasks.finetune checks the rest)."""
    if m.init_from is not None and (not isinstance(m.init_from, str) or not m.init_from.strip()):
        raise ConfigError(f"model.init_from: expected a run id, got {m.init_from!r}")
    check_int("model.lora_rank", m.lora_rank, 0, 4096)
    check_float("model.lora_alpha", m.lora_alpha, 0.0, 10_000.0, low_open=True)
    check_float("model.lora_dropout", m.lora_dropout, 0.0, 0.9)
    if not isinstance(m.lora_targets, list) or not all(isinstance(p, str) and p.strip() for p in m.lora_targets):
        raise ConfigError(f"model.lora_targets: expected a list of layer names or patterns, got {m.lora_targets!r}")


def check_choice(name: str, value: Any, allowed) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}: '{value}' is not one of: {', '.join(map(str, allowed))}")


def check_image_data(d, min_size: int = 4, max_size: int = 1024) -> None:
    """The DataConfig fields every image task reads: size, validation share, sample count, limit, padding."""
    if d.image_size is not None:
        check_int("data.image_size", d.image_size, min_size, max_size)
    check_float("data.val_fraction", d.val_fraction, 0.0, 0.9, low_open=True)
    check_int("data.num_samples", d.num_samples, 10, 1_000_000)
    if d.limit is not None:
        check_int("data.limit", d.limit, 1, 100_000_000)
    check_int("data.crop_padding", d.crop_padding, 0, 64)
    if d.stream is not None and not isinstance(d.stream, bool):
        raise ConfigError(f"data.stream: expected true, false or none (decide from the data's size), got {d.stream!r}")
    if d.workers is not None:
        check_int("data.workers", d.workers, 0, 64)


def check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; allowed {low} to {high:,}")


def check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
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


def apply_overrides(config: RunConfig, overrides: dict[str, Any], option_schema=None) -> RunConfig:
    """Copy `config` with dotted keys set ("optim.lr" or the unique short form "lr").

    String values are converted to the field's type, so `--set lr=0.1` works from a shell; option values
    (`model.options.layers=4`) to their Option's type when `option_schema(config, owner)` is given
    (core.tasks.apply_overrides passes the registries'), else to the most natural type.
    """
    result = copy.deepcopy(config)
    for key, value in overrides.items():
        if _set_option(result, key, value, option_schema):
            continue
        parent, attr = _resolve_key(result, key)
        current = getattr(parent, attr)
        if isinstance(value, str) and isinstance(current, list):  # lora_targets=conv1,stages.2 (empty: none)
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, str) and attr == "init_from" and value.strip().lower() in ("", "none", "null"):
            value = None
        elif isinstance(value, str) and not (isinstance(current, str) or (current is None and attr in _STR_NONE)):
            try:
                value = _parse_value(value, False if current is None and attr in _BOOL_NONE else current)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        setattr(parent, attr, value)
    return result


_STR_NONE = {"path", "init_from"}  # optional string fields: keep the text as is
_BOOL_NONE = {"stream"}  # optional yes/no fields: None means "decide for me"


def _set_option(config: RunConfig, key: str, value: Any, option_schema) -> bool:
    """`model.options.layers=4`, `data.options.frames=8`, `task_options.env=CartPole-v1`: True when handled."""
    parts = key.split(".")
    if parts[0] == "task_options" and len(parts) == 2:
        target, name, owner = config.task_options, parts[1], "task_options"
    elif len(parts) == 3 and parts[0] in ("data", "model") and parts[1] == "options":
        target, name, owner = getattr(config, parts[0]).options, parts[2], parts[0] + ".options"
    else:
        return False
    if isinstance(value, str):
        schema = option_schema(config, owner) if option_schema else {}
        try:
            value = parse_option(value, schema.get(name))
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    target[name] = value
    return True


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
