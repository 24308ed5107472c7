"""Tasks say what one training step computes, what it logs and how a model is evaluated; the engine
(core.engine.trainer) says how to run it. Every family of the lab (classification, language models,
GANs, autoencoders, video, captioning, reinforcement learning) is one package here, plus the models it
registers in core.models, the data sets in core.data and its presets in core/presets: never a second
training loop.

A family's package `core/tasks/<family>/` declares everything about it in its `__init__.py`:

    SPEC = TaskSpec(name=..., title=..., data_kind=..., options={...}, validate=..., setup=...,
                    build_model=..., entry_points={"generate": "generate:generate", ...})

- `options`: the typed task_options (core.options.Option), drawn as form fields on the Train page.
- `validate(config)`: raise ConfigError for a bad data/model/option choice of this family
  (`check_family_fields` does the checks all families share; `validate` below adds the common fields).
- `setup(config, device) -> Setup`: the task object, the model, the train and validation batch
  sources and the metadata saved in every checkpoint (vocabulary, classes, image size...).
- `build_model(config, metadata) -> nn.Module`: the same architecture rebuilt from a checkpoint's
  config and metadata, for inference (core.tasks.checkpoints.load_run_model, the one loader).
- `entry_points`: what pages and the CLI call on a trained run (predict, generate, play, explain...),
  as "module:function" inside the package; `SPEC.entry(name)` imports one.
- `SPEC.presets`: the family's presets (core/presets/<family>.py).

A batch source has `__len__` (batches per epoch) and `epoch(index, start_batch=0)` yielding batches
in a fixed order for a given epoch (so a resumed run replays the same sequence).

The task object (see `Task`) keeps running sums as device tensors so that the engine decides when
to synchronise with the device (once per log window). Its sums must include "count" (samples,
characters, or environment steps in that batch): the engine reports count per second.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from core.config import apply_overrides as config_overrides
from core.config import check_choice
from core.errors import ConfigError, InputError
from core.options import validate_options

# name -> package under core.tasks; listing order is the order the UI shows
TASK_MODULES = {
    "classification": "classification",
    "language_model": "language_model",
    "gan": "gan",
    "autoencoder": "autoencoder",
    "video": "video",
    "captioning": "captioning",
    "rl": "rl",
    "distillation": "distillation",
    "seq2seq": "seq2seq",
    "text_classification": "text_classification",
}


class Task(Protocol):
    name: str
    best_metric: str  # epoch metric the checkpointer and early stopping watch, e.g. "val_acc"
    best_mode: str  # "max" or "min"

    def training_step(self, model, batch) -> tuple[Any, dict[str, Any]]:
        """Return the loss to back-propagate and running sums (device tensors) for the log."""

    def summarize(self, sums: dict[str, Any]) -> dict[str, float]:
        """Turn accumulated sums into metrics; must include 'loss', e.g. {'loss': ..., 'acc': ...}."""

    def evaluate(self, model, batches, autocast=None) -> dict[str, float]:
        """Metrics over a whole validation split (keys start with 'val_'), under inference mode."""

    # Optional: `sample_every` (steps) and `samples(model) -> dict[str, str | bytes | dict]`, called
    # by core.engine.samples.SampleLogger to record generated text, image grids (PNG bytes) or
    # JSON-able dicts that the live view shows as training goes.


@dataclass
class Setup:
    task: Any
    model: Any
    train_batches: Any
    val_batches: Any
    metadata: dict = field(default_factory=dict)
    callbacks: list = field(default_factory=list)  # the family's own engine callbacks (e.g. lookahead), run first


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str  # shown in the UI, e.g. "Character language model"
    description: str
    data_kind: str  # which data sets it accepts: core.data.list_datasets(kind=data_kind)
    setup: Callable
    build_model: Callable
    validate: Callable
    # (metric, "max" or "min"): what its runs' best checkpoint, early stopping and sweeps watch (the task's
    # best_metric and best_mode, known here before any task object is built)
    watches: tuple[str, str] = ("val_acc", "max")
    options: dict = field(default_factory=dict)  # name -> core.options.Option (RunConfig.task_options)
    entry_points: dict = field(default_factory=dict)  # name -> "module:function" in the family's package
    # example_input(config) -> (metadata for build_model, input batch shape, dtype): lets core.tasks.memory
    # estimate a run's memory before its data is loaded; None when the shape is known only from the data
    example_input: Callable | None = None
    # check_ready(config): what this machine must have before a valid config can launch (weights cached or
    # downloadable...); raises a LabError saying what to do. Unlike validate, its answer depends on the machine.
    check_ready: Callable | None = None
    # sized_data(config) -> DataConfig: the data config with the image size the run trains at written in (a folder's
    # native size, within what the family's models take); None for families whose data has no such choice
    sized_data: Callable | None = None
    # True: its batch sources take a shard of every global batch (core.world), so `devices` > 1 trains it in
    # several processes; families that have not been taught that train on one device
    distributed: bool = False
    # True: its runs can start from another run of it (model.init_from) and train LoRA adapters (model.lora_rank);
    # its build_model applies core.tasks.finetune.rebuild and its model ends in a Linear head
    finetune: bool = False

    def entry(self, name: str) -> Callable:
        """The entry point `name` (e.g. "generate") of this family, imported from its package."""
        if name not in self.entry_points:
            raise LookupError(f"task '{self.name}' has no entry point '{name}'; it has: "
                              + ", ".join(self.entry_points))
        module, _, function = self.entry_points[name].partition(":")
        return getattr(importlib.import_module(f"core.tasks.{TASK_MODULES[self.name]}.{module}"), function)

    @property
    def presets(self) -> list[str]:
        from core.presets import list_presets
        return list_presets(self.name)


def list_tasks() -> list[str]:
    """Tasks whose module is present (a family not built yet is simply not listed)."""
    import importlib.util
    return [name for name, module in TASK_MODULES.items()
            if importlib.util.find_spec(f"core.tasks.{module}") is not None]


def task_spec(name: str) -> TaskSpec:
    if name not in TASK_MODULES or name not in list_tasks():
        raise ConfigError(f"task: '{name}' is not one of: {', '.join(list_tasks())}")
    return importlib.import_module(f"core.tasks.{TASK_MODULES[name]}").SPEC


def validate(config):
    """Raise ConfigError naming the first bad field (the family's own checks, then the shared ones); return
    the config. Every run is checked here before it is recorded."""
    check_choice("task", config.task, list_tasks())
    spec = task_spec(config.task)
    spec.validate(config)
    from core.tasks.finetune import check_config
    check_config(config)  # model.init_from and LoRA: the family can, and the fields fit together
    if config.devices > 1 and not spec.distributed:
        raise ConfigError(f"devices: {spec.title.lower()} trains on one device; set devices to 1 (families that "
                          "train on several: " + ", ".join(n for n in list_tasks() if task_spec(n).distributed) + ")")
    return config.check_common()


def pin_image_size(config):
    """The config with a folder's native image size written in, as the family will train it: stored so, the
    run's training, evaluation, Media and a resume all use the size chosen at launch, whatever the folder holds
    later."""
    spec = task_spec(config.task)
    if spec.sized_data is None or config.data.image_size:
        return config
    size = spec.sized_data(config).image_size
    return config if size is None else config.replace(**{"data.image_size": int(size)})


def check_ready(config) -> None:
    """Whether this machine can start the run now: the devices it asks for (more GPUs than there are, no
    torch.distributed), then the family's own check (see TaskSpec.check_ready)."""
    from core.engine.distributed import check_devices
    check_devices(config.devices, config.device)
    spec = task_spec(config.task)
    if spec.check_ready is not None:
        spec.check_ready(config)
    from core.tasks import finetune
    finetune.check_ready(config)  # the run to start from exists and has finished; LoRA's rank fits every layer


def check_family_fields(config, *, data_kind: str | None = None) -> None:
    """The checks every family shares: a data set of its kind (with a path if it needs one), one of its own
    models, and the data set's, model's and task's declared options."""
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info

    spec = task_spec(config.task)
    check_choice("data.name", config.data.name, list_datasets(kind=data_kind or spec.data_kind))
    info = dataset_info(config.data.name)
    if info.needs_path and not config.data.path:
        raise ConfigError(f"data.path: the '{config.data.name}' data set needs a file, folder or .zip path")
    check_choice("model.name", config.model.name, list_models(task=config.task))
    validate_options("data.options", config.data.options, info.options)
    validate_options("model.options", config.model.options, model_info(config.model.name).options)
    validate_options("task_options", config.task_options, spec.options)


def model_parameters(config, metadata: dict) -> dict[str, int]:
    """Parameters of the model a run of `config` trains, as its family builds it from checkpoint-style
    `metadata` (vocabulary, preprocessing, environment...): "total", "trainable", and one entry per top-level
    part (generator and discriminator, encoder and decoder...). For the Train form, before a run exists."""
    from core.models import parameter_count
    model = task_spec(config.task).build_model(config, metadata)
    parts = {name: parameter_count(child) for name, child in model.named_children()}
    return {"total": parameter_count(model), "trainable": parameter_count(model, trainable_only=True), **parts}


def check_input_int(name: str, value, low: int, high: int) -> int:
    """A whole number typed on a page (a seed, a count, steps), or an InputError naming it and its range."""
    import numbers
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high:,}, got {value!r}")
    return int(value)


def option_schema(config, owner: str) -> dict:
    """The Option schema for 'data.options', 'model.options' or 'task_options' of this config ({} if unknown)."""
    try:
        if owner == "task_options":
            return task_spec(config.task).options
        if owner == "model.options":
            from core.models import model_info
            return model_info(config.model.name).options
        from core.data import dataset_info
        return dataset_info(config.data.name).options
    except ConfigError:
        return {}


def apply_overrides(config, overrides: dict):
    """core.config.apply_overrides, with option values (`--set model.options.layers=4`) typed by their schema."""
    return config_overrides(config, overrides, option_schema=option_schema)
