"""torchvision ImageNet models, optionally with pretrained weights, re-headed for our classes.

Weights come through torchvision's weight enums and torch hub's cache (TORCH_HOME/hub/checkpoints).
A weight spec carries its own preprocessing (mean, std, sizes) and class names, so inference on
the pretrained model and fine-tuning both normalise exactly as the weights expect.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.errors import ModelError
from core.models import register_model

# name -> short description; all take 3-channel input of at least 32 px
IMAGENET_MODELS = {
    "resnet18": "ResNet-18 (torchvision, ImageNet layout), 11.7M parameters",
    "resnet34": "ResNet-34 (torchvision), 21.8M parameters",
    "resnet50": "ResNet-50 with bottleneck blocks (torchvision), 25.6M parameters",
    "mobilenet_v3_small": "MobileNetV3-Small (torchvision), 2.5M parameters, fast on a CPU",
    "mobilenet_v3_large": "MobileNetV3-Large (torchvision), 5.5M parameters",
    "efficientnet_b0": "EfficientNet-B0 (torchvision), 5.3M parameters",
    "convnext_tiny": "ConvNeXt-Tiny (torchvision), 28.6M parameters",
}


class ImagenetClassifier(nn.Module):
    """A torchvision model whose last linear layer is replaced by a head for `num_classes`.

    With a frozen backbone, its batch-norm and stochastic-depth layers stay in eval mode while the head
    trains: the norms keep the pretrained running statistics instead of drifting to the new data's
    batches, and no residual branch of the frozen part is dropped at random, so the head learns on
    the same features it will see at evaluation.
    """

    def __init__(self, net: nn.Module, in_channels: int, frozen_backbone: bool = False):
        super().__init__()
        self.net = net
        self.in_channels = in_channels
        self.frozen_backbone = frozen_backbone

    def train(self, mode: bool = True) -> ImagenetClassifier:
        super().train(mode)
        if mode and self.frozen_backbone:
            from torchvision.ops import StochasticDepth
            for module in self.net.modules():
                if isinstance(module, (nn.modules.batchnorm._BatchNorm, StochasticDepth)):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)  # grey (B,1,H,W) -> (B,3,H,W) without copying
        return self.net(x)


def weights_for(name: str):
    """The default torchvision weight enum entry for `name`."""
    from torchvision.models import get_model_weights
    return get_model_weights(name).DEFAULT


def weights_preprocessing(name: str) -> dict:
    """mean, std, resize and crop sizes and class names the pretrained weights expect."""
    weights = weights_for(name)
    preset = weights.transforms()
    return {"mean": list(preset.mean), "std": list(preset.std), "resize_size": list(preset.resize_size),
            "crop_size": list(preset.crop_size), "categories": list(weights.meta["categories"])}


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


REACHABILITY_TTL_S = 300.0  # how long an answer about the download host is trusted
_REACHABLE: dict[str, tuple[float, bool]] = {}  # url -> (when asked, whether it answered)


def pretrained_weights_problem(name: str) -> str | None:
    """None when the pretrained weights of `name` are in the hub cache or their download host answers;
    otherwise the message that says where to put the file. Asked before launch, so a run without network
    is refused at once instead of failing in its worker."""
    weights = weights_for(name)
    target = hub_checkpoint_dir() / weights.url.rsplit("/", 1)[-1]
    if target.is_file() or reachable(weights.url):
        return None
    host = weights.url.split("/")[2]
    return (f"model.pretrained: the ImageNet weights of '{name}' are not on this machine and {host} cannot be "
            f"reached. Download {weights.url} elsewhere and place it as {target}; or turn model.pretrained off")


def reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether `url` answers a HEAD request (remembered for a few minutes)."""
    import time
    import urllib.request
    asked = _REACHABLE.get(url)
    if asked and time.time() - asked[0] < REACHABILITY_TTL_S:
        return asked[1]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s):
            answered = True
    except Exception:  # noqa: BLE001  DNS, refused, timeout, HTTP errors: not reachable for our purpose
        answered = False
    _REACHABLE[url] = (time.time(), answered)
    return answered


def load_pretrained_state(name: str) -> dict:
    """Download (first use) or read from the hub cache the pretrained state dict, weights only."""
    weights = weights_for(name)
    file_name = weights.url.rsplit("/", 1)[-1]
    try:
        return torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, weights_only=True)
    except Exception as exc:  # URLError, HTTPError, hash mismatch, truncated file...
        raise ModelError(
            f"could not get the pretrained weights for '{name}' ({type(exc).__name__}: {exc}). "
            f"Without network access, download {weights.url} elsewhere and place it as "
            f"{hub_checkpoint_dir() / file_name}; or train without pretrained weights."
        ) from None


def last_linear_name(net: nn.Module) -> str:
    names = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ModelError("model has no linear classification head to replace")
    return names[-1]


def _replace_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def build_imagenet(name: str, *, num_classes: int, in_channels: int, pretrained: bool = False,
                   freeze_backbone: bool = False) -> ImagenetClassifier:
    from torchvision.models import get_model
    net = get_model(name, weights=None)
    if pretrained:
        net.load_state_dict(load_pretrained_state(name))
    head_name = last_linear_name(net)
    if num_classes != net.get_submodule(head_name).out_features or pretrained:
        old = net.get_submodule(head_name)
        _replace_module(net, head_name, nn.Linear(old.in_features, num_classes))
    if freeze_backbone:
        for param_name, param in net.named_parameters():
            param.requires_grad = param_name.startswith(head_name + ".")
    return ImagenetClassifier(net, in_channels, frozen_backbone=freeze_backbone)


def _register(name: str, description: str) -> None:
    @register_model(name, description=description, family="imagenet", task="classification", min_image_size=32,
                    pretrained_available=True)
    def builder(*, num_classes: int, in_channels: int, image_size: int, pretrained: bool = False,
                freeze_backbone: bool = False, **_):
        return build_imagenet(name, num_classes=num_classes, in_channels=in_channels, pretrained=pretrained,
                              freeze_backbone=freeze_backbone)


for _name, _description in IMAGENET_MODELS.items():
    _register(_name, _description)
