"""What exporting a trained run means for its family (core.toolkit.export), as the family declares it through
the entry point "export" (`SPEC.entry("export")(run_model) -> ExportSpec`): which part of the model leaves
the lab, what it takes and gives, which formats apply, and the real inputs every export is checked on.

A family without the entry point cannot be exported yet; `core.toolkit.export` says so and lists those that can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class ExportSpec:
    describe: str  # what the exported model is, for the model card: "An image classifier"
    part: Any  # the nn.Module that is exported (the whole model, or a GAN's generator)
    # n -> (inputs, "validation" or "random", note): a batch of n inputs the export is checked on, the run's
    # own validation inputs where they can be read
    inputs: Callable[[int], tuple[Any, str, str]]
    input_name: str  # the ONNX graph's input and output names
    output_name: str
    interface: dict  # the card's description of input and output (shapes, preprocessing, classes, vocabulary)
    formats: tuple[str, ...] = ("onnx", "torchscript", "safetensors")
    # input axes beyond the batch whose length may vary in the exported graph (a text window's length)
    varying_axes: tuple[int, ...] = ()
    # True: outputs are scores over the last axis, so the check also needs the same argmax everywhere
    # (a classifier's top class, a language model's next character); False for images
    argmax_check: bool = True
    # rebuild(fresh model) -> the same part of a freshly built model, to reload safetensors weights into
    rebuild: Callable[[Any], Any] = field(default=lambda model: model)
