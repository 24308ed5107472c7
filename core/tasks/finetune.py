"""Fine-tune efficiently: start a run from one of your finished runs (`model.init_from`), optionally with its
backbone frozen, and/or train low-rank adapters instead of the weights (`model.lora_rank`, LoRA: Hu et al.
2021, arXiv:2106.09685, through Hugging Face PEFT; see core.models.lora).

- Start from a run: its best checkpoint (else its last) initialises every tensor of the new model whose name
  and shape match. The head (the last Linear) is kept only when the two runs have the same classes in the
  same order; otherwise it starts fresh for the new classes. Transfer learning that works offline.
- LoRA: adapters on the Linear and Conv2d layers `model.lora_targets` names (empty: all but the head), the
  base weights frozen bit for bit, the head trained in full. `merged_model` folds the adapters back.
- A frozen part (frozen backbone, or LoRA's base) keeps its batch-norm statistics: they are part of the base
  model, so a LoRA run's base stays exactly the source run's, buffers included.

A family opts in with `TaskSpec.finetune`; `rebuild` is part of its `build_model`, so the one checkpoint
loader, the memory and time estimates and the exports rebuild a LoRA run's architecture; `adapt` is what
core.jobs.assemble applies to a new run's model (copy from the source run, then adapters or freezing).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from torch import nn

from core.errors import ConfigError, LabError

SOURCE_STATUSES = ("completed", "cancelled", "interrupted")  # stopped with usable weights (SETTLED_STATUSES)


def wanted(config) -> bool:
    """Whether the run starts from another run or trains adapters."""
    return bool(config.model.init_from) or config.model.lora_rank > 0


# ---- checks ------------------------------------------------------------------------------------------------

def check_config(config) -> None:
    """What the config alone says (core.tasks.validate): the family can do it, and the fields fit together."""
    if not wanted(config):
        return
    from core.tasks import list_tasks, task_spec
    spec = task_spec(config.task)
    m = config.model
    field = "model.init_from" if m.init_from else "model.lora_rank"
    if not spec.finetune:
        able = [task_spec(name).title.lower() for name in list_tasks() if task_spec(name).finetune]
        raise ConfigError(f"{field}: {spec.title.lower()} runs cannot start from a run or train LoRA adapters yet; "
                          f"{', '.join(able)} can")
    if m.init_from and m.pretrained:
        raise ConfigError(f"model.pretrained: turn it off; the weights come from run {m.init_from} (model.init_from)")
    if m.lora_rank and not (m.init_from or m.pretrained):
        raise ConfigError("model.lora_rank: LoRA adapts trained weights; set model.init_from to a finished run "
                          "(or turn model.pretrained on)")


def check_source(config):
    """The store's answer for model.init_from: an existing run, settled, with a checkpoint, of the same family
    and model. A ConfigError naming the field otherwise; returns the source's Run."""
    from core.config import RunConfig
    from core.errors import RunNotFound
    from core.store import RunStore
    run_id = config.model.init_from
    try:
        run = RunStore().get_run(run_id)
    except RunNotFound:
        raise ConfigError(f"model.init_from: there is no run '{run_id}'; pick one of your finished runs "
                          "(`python -m core runs`)") from None
    if run.status not in SOURCE_STATUSES:
        why = "it is still " + run.status + "; wait for it to finish" if run.is_active else \
            f"it {run.status}; start from a completed, cancelled or interrupted run"
        raise ConfigError(f"model.init_from: run {run_id} cannot be a starting point: {why}")
    try:
        source = RunConfig.from_dict(run.config)
    except LabError as exc:
        raise ConfigError(f"model.init_from: run {run_id} has no valid config ({exc})") from None
    if source.task != config.task:
        raise ConfigError(f"model.init_from: run {run_id} is a {source.task} run; this is a {config.task} run")
    if source.model.name != config.model.name:
        raise ConfigError(f"model.init_from: run {run_id} trained '{source.model.name}'; set model.name to "
                          f"'{source.model.name}' to start from it")
    source_checkpoint(run_id)
    return run


def source_checkpoint(run_id: str) -> str:
    """'best' or 'last': the checkpoint a new run starts from (best when there is one)."""
    from core.tasks.checkpoints import checkpoint_path
    for which in ("best", "last"):
        if checkpoint_path(run_id, which).exists():
            return which
    raise ConfigError(f"model.init_from: run {run_id} saved no checkpoint; it stopped before its first epoch ended")


def check_ready(config) -> None:
    """Before launch (core.tasks.check_ready): the source run, and that LoRA's rank fits every adapted layer."""
    if config.model.init_from:
        check_source(config)
    if config.model.lora_rank:
        plan(config)


# ---- the plan: which layers, how many parameters (no PEFT import, on the meta device) ------------------------

def plain_config(config):
    """The config without LoRA and without a source: the architecture before adapting."""
    return replace(config, model=replace(config.model, init_from=None, lora_rank=0))


def plan(config, metadata: dict | None = None) -> dict:
    """What fine-tuning does to the model, counted without building adapters: {"total", "trainable", "head",
    "lora_layers"}. `metadata` as build_model takes it (default: the family's example_input). Raises a
    ConfigError for a rank too large for a layer, or targets that name nothing."""
    import torch

    from core.models import parameter_count
    from core.models.lora import check_rank, head_name, select_layers
    from core.tasks import task_spec
    spec = task_spec(config.task)
    if metadata is None:
        if spec.example_input is None:
            raise ConfigError(f"{spec.title} does not declare its input before its data is loaded")
        metadata = spec.example_input(config)[0]
    with torch.device("meta"):
        model = spec.build_model(plain_config(config), metadata)
    head = head_name(model)
    head_params = parameter_count(model.get_submodule(head))
    total, trainable, layers = parameter_count(model), parameter_count(model, trainable_only=True), []
    m = config.model
    if m.lora_rank:
        layers = select_layers(model, m.lora_targets, exclude=head)
        check_rank(model, layers, m.lora_rank)
        added = sum(lora_parameters(model.get_submodule(name), m.lora_rank) for name in layers)
        total, trainable = total + added, added + head_params
    elif m.init_from and m.freeze_backbone:
        trainable = head_params
    return {"total": total, "trainable": trainable, "head": head, "lora_layers": layers}


def lora_parameters(module: nn.Module, rank: int) -> int:
    """Parameters LoRA adds to one layer: A (r x in·kh·kw) and B (out x r)."""
    if isinstance(module, nn.Linear):
        return rank * (module.in_features + module.out_features)
    kh, kw = module.kernel_size
    return rank * (module.in_channels // module.groups * kh * kw + module.out_channels)


def describe(counts: dict) -> str:
    """'12,345 of 1,234,567 parameters trainable (1.00%)'."""
    share = counts["trainable"] / max(1, counts["total"])
    return f"{counts['trainable']:,} of {counts['total']:,} parameters trainable ({share:.2%})"


def summary_line(config, metadata: dict | None = None) -> str:
    """'from run X, LoRA rank 8 on 3 layers (0, 3, 7): 6,510 of 91,502 parameters trainable (7.11%)'."""
    counts, m, parts = plan(config, metadata), config.model, []
    if m.init_from:
        parts.append(f"from run {m.init_from}" + (", backbone frozen" if m.freeze_backbone and not m.lora_rank else ""))
    if m.lora_rank:
        layers = counts["lora_layers"]
        shown = ", ".join(layers[:6]) + (", ..." if len(layers) > 6 else "")
        parts.append(f"LoRA rank {m.lora_rank} on {len(layers)} layer(s) ({shown})")
    return ", ".join(parts) + ": " + describe(counts)


# ---- building ----------------------------------------------------------------------------------------------

def rebuild(config, model: nn.Module) -> nn.Module:
    """The architecture a run of `config` trains and saves: adapters on the chosen layers (the head and adapters
    trainable, the rest frozen), or, starting from a run with model.freeze_backbone, all but the head frozen.
    Part of the family's build_model, so a checkpoint always finds its layers; a no-op for other runs and for a
    model already adapted."""
    from core.models.lora import add_lora, head_name, lora_modules, select_layers
    m = config.model
    if not wanted(config) or lora_modules(model):
        return model
    head = head_name(model)
    if m.lora_rank:
        layers = select_layers(model, m.lora_targets, exclude=head)
        model = add_lora(model, layers, rank=m.lora_rank, alpha=float(m.lora_alpha), dropout=float(m.lora_dropout))
        for param in model.get_submodule(head).parameters():  # PEFT froze everything but the adapters
            param.requires_grad = True
    elif m.freeze_backbone:
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(head + ".")
    else:
        return model
    keep_frozen_norms(model)
    return model


def keep_frozen_norms(model: nn.Module) -> None:
    """Batch norms whose parameters are all frozen run in eval mode even while the model trains: they keep
    the statistics they came with instead of drifting to the new data's batches (see core.models.imagenet)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and \
                not any(p.requires_grad for p in module.parameters(recurse=False)):
            module.register_forward_pre_hook(frozen_norm_hook)


def frozen_norm_hook(module: nn.Module, _inputs) -> None:
    module.training = False  # model.train() sets it again; every forward puts it back


def adapt(config, model: nn.Module, metadata: dict, *, initialise: bool = True) -> tuple[nn.Module, dict | None]:
    """A new run's model as the config asks: the source run's weights copied in (skipped when `initialise` is
    off: a resumed run loads its own checkpoint), then adapters or freezing. Returns the model and what was done
    (for the checkpoints and the run's summary), or None when the run does neither."""
    if not wanted(config):
        return model, None
    report: dict = {}
    if config.model.init_from and initialise:
        report.update(copy_from_run(config, model, metadata))
    elif config.model.init_from:
        report["init_from"] = config.model.init_from
    model = rebuild(config, model)
    from core.models import parameter_count
    from core.models.lora import lora_modules
    if config.model.lora_rank:
        m = config.model
        report["lora"] = {"rank": m.lora_rank, "alpha": float(m.lora_alpha), "dropout": float(m.lora_dropout),
                          "layers": list(lora_modules(model))}
    report["params"] = parameter_count(model)
    report["trainable_params"] = parameter_count(model, trainable_only=True)
    return model, report


def copy_from_run(config, model: nn.Module, metadata: dict) -> dict:
    """Copy the source run's tensors into `model` where name and shape match (the head only when the classes are
    the same); returns what was copied."""
    import torch

    from core.models.lora import base_name, head_name, is_adapter
    from core.tasks.checkpoints import load_run_model
    run_id = config.model.init_from
    check_source(config)
    which = source_checkpoint(run_id)
    source = load_run_model(run_id, which, device="cpu")
    state = plain_state(source.model)
    head = head_name(model)
    same_classes = source.metadata.get("classes") is not None and source.metadata.get("classes") == metadata.get("classes")
    copied, mismatched, targets = 0, [], model.state_dict()
    with torch.no_grad():
        for name, tensor in targets.items():
            if is_adapter(name):
                continue
            plain = base_name(name)
            if plain.startswith(head + ".") and not same_classes:
                continue  # new classes: a fresh head
            if plain in state and state[plain].shape == tensor.shape:
                tensor.copy_(state[plain])
                copied += 1
            else:
                mismatched.append(plain)
    if not copied:
        raise ConfigError(f"model.init_from: no tensor of run {run_id} fits this model; its input (channels, "
                          "image size) must match")
    return {"init_from": run_id, "checkpoint": which, "copied_tensors": copied,
            "tensors": sum(not is_adapter(name) for name in targets),
            "head": "kept (same classes)" if same_classes else "new (different classes)",
            "not_copied": mismatched[:20]}


def plain_state(model: nn.Module) -> dict:
    """The model's state dict as a model without adapters has it (a LoRA run's adapters merged in a copy)."""
    from core.models.lora import lora_modules, merge_lora
    if lora_modules(model):
        model = merge_lora(copy.deepcopy(model))
    return model.state_dict()


def merged_model(run_id: str, which: str = "best") -> nn.Module:
    """A LoRA run's model with its adapters folded into the weights (W + alpha/r · B A): the plain architecture,
    in eval mode on the CPU; other runs' models as they are (a copy: the loader's cached model stays as it is)."""
    from core.models.lora import merge_lora
    from core.tasks.checkpoints import load_run_model
    return merge_lora(copy.deepcopy(load_run_model(run_id, which, device="cpu").model)).eval()


def source_preprocessing(config, channels: int) -> dict | None:
    """The source run's input normalisation (mean, std) when this run starts from one with as many channels: its
    weights learnt on inputs scaled so. None otherwise (the family's own choice then)."""
    if not config.model.init_from:
        return None
    from core.tasks.checkpoints import load_run_model
    try:  # the loader caches the model: copy_from_run reads the same one
        source = load_run_model(config.model.init_from, source_checkpoint(config.model.init_from), device="cpu")
    except LabError:
        return None  # copy_from_run says what is wrong with the source
    pre = source.metadata.get("preprocessing") or {}
    if pre.get("channels") != channels or not pre.get("mean"):
        return None
    return {"mean": list(pre["mean"]), "std": list(pre["std"])}


def start_from(raw_config: dict, run_id: str):
    """The config of a new run that starts from run `run_id` (its stored config `raw_config`): the same settings,
    its weights instead of fresh or ImageNet ones, no adapters yet; the Train form opens with it."""
    from core.config import RunConfig
    config = RunConfig.from_dict(raw_config)
    model = replace(config.model, init_from=run_id, pretrained=False, freeze_backbone=False, lora_rank=0)
    return replace(config, model=model, name="")


def source_runs(runs: dict, task: str) -> dict:
    """{run id: Run} of the runs a new run of `task` can start from (settled, same family), newest first."""
    return {run_id: run for run_id, run in runs.items() if run.task == task and run.status in SOURCE_STATUSES}
