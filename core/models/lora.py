"""Low-rank adaptation (LoRA, Hu et al. 2021, arXiv:2106.09685) of a model's Linear and Conv2d layers, through
Hugging Face PEFT (Mangrulkar et al. 2022, https://github.com/huggingface/peft).

A LoRA layer keeps its base weight W frozen and learns ΔW = (alpha / r) · B A, with A (r x in) and B (out x r),
B starting at zero so training starts from the base model. `add_lora` injects the adapters into a plain
nn.Module in place (PEFT's `inject_adapter_in_model`: no transformers model needed); `merge_lora` folds every
ΔW back into W and returns the plain architecture again. PEFT is imported only here and only when LoRA is asked
for: it takes seconds to import.
"""

from __future__ import annotations

import fnmatch
import re

from torch import nn

from core.errors import ConfigError, ModelError

ADAPTER = "default"  # PEFT's adapter name: one adapter per run


def adaptable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers LoRA can adapt here, by name: Linear, and Conv2d without groups (PEFT cannot merge a grouped
    convolution's adapter back)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)}


def head_name(model: nn.Module) -> str:
    """The classification (or next-token) head: the model's last Linear layer, as torchvision's models and ours
    are written."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ModelError("the model has no linear head")
    return names[-1]


def matches(name: str, pattern: str) -> bool:
    """A glob `pattern` names layer `name` when it matches the whole dotted name, a dotted tail of it ("conv1"
    names "stages.0.conv1") or a module the layer sits in ("stages.2" names every layer of that stage)."""
    parts = name.split(".")
    candidates = {".".join(parts[i:]) for i in range(len(parts))} | {".".join(parts[:i]) for i in range(1, len(parts))}
    return any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates)


def select_layers(model: nn.Module, patterns: list[str], *, exclude: str | None = None) -> list[str]:
    """Names of the layers LoRA adapts: those `patterns` name (every adaptable layer when empty), never `exclude`
    (the head, trained in full). A ConfigError naming model.lora_targets when a pattern names nothing."""
    layers = adaptable_layers(model)
    if not patterns:
        chosen = [name for name in layers if name != exclude]
    else:
        chosen = []
        for pattern in patterns:
            hits = [name for name in layers if matches(name, pattern)]
            if not hits:
                raise ConfigError(f"model.lora_targets: '{pattern}' names no Linear or Conv2d layer; the layers are: "
                                  + ", ".join(layers))
            if exclude in hits and len(hits) == 1:
                raise ConfigError(f"model.lora_targets: '{pattern}' names only the head '{exclude}', which is "
                                  "trained in full; name other layers")
            chosen += [name for name in hits if name != exclude and name not in chosen]
    if not chosen:
        raise ConfigError("model.lora_targets: the model has no Linear or Conv2d layer besides its head to adapt")
    return chosen


def rank_limit(module: nn.Module) -> int:
    """The largest rank ΔW of this layer can have: min(out, in) for a Linear, min(out channels, in channels x
    kernel area) for a Conv2d, whose weight is an (out, in·kh·kw) matrix."""
    if isinstance(module, nn.Linear):
        return min(module.in_features, module.out_features)
    kh, kw = module.kernel_size
    return min(module.out_channels, module.in_channels // module.groups * kh * kw)


def describe_layer(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}"
    kh, kw = module.kernel_size
    return f"Conv2d {module.in_channels}→{module.out_channels}, {kh}x{kw}"


def check_rank(model: nn.Module, names: list[str], rank: int) -> None:
    """A ConfigError naming the first layer whose weight cannot have rank `rank`."""
    for name in names:
        module = model.get_submodule(name)
        if rank > rank_limit(module):
            raise ConfigError(f"model.lora_rank: {rank} is larger than layer '{name}' ({describe_layer(module)}) "
                              f"allows, at most {rank_limit(module)}; lower the rank or leave that layer out of "
                              "model.lora_targets")


def add_lora(model: nn.Module, names: list[str], *, rank: int, alpha: float, dropout: float) -> nn.Module:
    """Inject LoRA adapters into the layers `names` of `model` (in place; returned). Afterwards only the adapters
    require gradients: PEFT freezes everything else, the caller unfreezes what should train in full (the head)."""
    check_rank(model, names, rank)
    from peft import LoraConfig, inject_adapter_in_model
    pattern = "^(?:" + "|".join(re.escape(name) for name in names) + ")$"  # PEFT full-matches a string pattern
    config = LoraConfig(target_modules=pattern, r=rank, lora_alpha=alpha, lora_dropout=dropout)
    return inject_adapter_in_model(config, model, adapter_name=ADAPTER)


def lora_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The adapted layers of `model` by name (empty when PEFT is not even loaded: no adapters then)."""
    import sys
    if "peft" not in sys.modules:
        return {}
    from peft.tuners.lora import LoraLayer
    return {name: module for name, module in model.named_modules() if isinstance(module, LoraLayer)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (W + alpha/r · B A) and put the base layers back in place: the
    plain architecture, with the state dict a model without LoRA has. In place; returned."""
    for name, module in lora_modules(model).items():
        module.merge(adapter_names=[ADAPTER])
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    return model


def base_name(name: str) -> str:
    """A parameter's name in the plain model: 'stages.0.conv1.base_layer.weight' -> 'stages.0.conv1.weight'."""
    return name.replace(".base_layer.", ".")


def is_adapter(name: str) -> bool:
    return ".lora_" in name
