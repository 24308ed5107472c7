"""Training throughput: the engine against a bare loop and the usual tutorial loop.

    python bench/throughput.py [--device auto|cpu|cuda] [--amp off|bf16|fp16] [--steps N] [--repeats R] [--tiny]

Trains the classic CNN and the small-image ResNet-18 on the CIFAR-10 JPEG subset in ../shared/data
for a fixed number of steps, three ways, in one process:
  (a) engine:   core's Trainer with its store logging on (in-memory uint8 tensors on the device),
  (b) bare:     a hand-written loop doing the engine's useful work and nothing else: the same model (the task's
                config, seed and memory format), the same batch source (core.data.loader.DeviceBatches over the
                same tensors: the same gather and normalisation), the same optimiser (core.engine.optim) and
                the same autocast (and GradScaler for fp16); forward, cross-entropy, backward, step. No metrics,
                schedule, callbacks or logging, so engine/bare is the engine's own overhead (at most 1, give or take
                noise),
  (c) tutorial: torchvision ImageFolder + DataLoader + per-sample transforms over the JPEG files (same model,
                optimiser and autocast).
(a) and (b) each warm up for one epoch of N steps, then are timed for R epochs in turns (engine, bare, then bare,
engine, ...), the best epoch of each counting: on a shared machine the best of a few is the steadiest figure.
Prints samples/s for each and the ratios; the last line is `engine/bare RATIO` (the lower of the two models).
--tiny: two steps of 32 images each way, to check that the script runs (on a CPU in a few minutes), not to measure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR_ZIP = ROOT.parent / "shared" / "data" / "cifar10-jpg-subset.zip"
BATCH = 128
TINY_BATCH = 32
# (model, timed steps per epoch on the CPU, on a GPU); the ResNet is ~50x the CNN's work per image
MODELS = (("cnn", 60, 300), ("resnet18_small", 8, 200))
TINY_STEPS = 2


def sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(loop, device) -> float:
    """Seconds for one epoch of `loop`, device work included."""
    sync(device)
    started = time.perf_counter()
    loop.epoch()
    sync(device)
    return time.perf_counter() - started


class EngineLoop:
    """The engine's own epoch loop (store logging on) over exactly `steps` batches."""

    def __init__(self, config, subset, device, steps):
        from core.engine.callbacks import StoreLogger
        from core.jobs.assemble import assemble
        from core.store import RunStore
        self.store = RunStore()
        self.run_id = self.store.create_run(config.to_dict(), name="bench")
        self.trainer = assemble(config, device=device, splits=subset, callbacks=[StoreLogger(self.store, self.run_id)])
        assert self.trainer.steps_per_epoch == steps
        self.epochs = 0

    def epoch(self):
        trainer = self.trainer
        trainer._train_epoch()
        trainer.epoch, trainer.batch_in_epoch = trainer.epoch + 1, 0
        self.epochs += 1

    def check(self):
        trainer = self.trainer
        assert trainer.step == self.epochs * trainer.steps_per_epoch, "an epoch did not run every step"
        trainer.callbacks[0].buffer.flush()
        assert len(self.store.metrics(self.run_id)) > 0, "the engine logged nothing"


class BareLoop:
    """A hand-written loop over the engine's model, batches, optimiser and precision, and nothing else."""

    def __init__(self, config, subset, device):
        import torch
        from core.engine.devices import autocast_context
        from core.engine.optim import build_optimizer
        from core.models import build_from_config
        from core.tasks.classification import image_batches, preprocessing_for
        torch.manual_seed(config.seed)  # as core.jobs.assemble: the same initial weights as the engine's
        pre = preprocessing_for(config, subset)
        self.batches, _ = image_batches(config, subset, device, pre)
        model = build_from_config(config.model, num_classes=subset.num_classes, in_channels=subset.channels,
                                  image_size=subset.image_size).to(device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = torch.compile(model) if config.compile else model
        self.optimizer = build_optimizer(model, config.optim)
        self.autocast = autocast_context(device, config.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and device.type == "cuda")
        self.channels_last = config.channels_last
        self.epochs = 0
        model.train()

    def epoch(self):
        import torch
        from torch.nn import functional as F
        model, optimizer, scaler = self.model, self.optimizer, self.scaler
        for inputs, targets in self.batches.epoch(self.epochs):
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        self.epochs += 1


def tutorial_rate(config, folder, device, steps, warmup, mean, std, num_classes):
    batch = config.optim.batch_size
    import torch
    from torch.nn import functional as F
    from torchvision import datasets, transforms
    from core.engine.devices import autocast_context
    from core.engine.optim import build_optimizer
    from core.models import build_from_config
    torch.manual_seed(config.seed)
    dataset = datasets.ImageFolder(folder, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean, std)]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=min(4, os.cpu_count()),
                                         pin_memory=device.type == "cuda", drop_last=True, persistent_workers=True)
    model = build_from_config(config.model, num_classes=num_classes, in_channels=3, image_size=32).to(device)
    optimizer = build_optimizer(model, config.optim)
    autocast = autocast_context(device, config.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and device.type == "cuda")
    done, started = 0, None
    while done < warmup + steps:
        for inputs, targets in loader:
            if done == warmup:
                sync(device)
                started = time.perf_counter()
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with autocast():
                loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            done += 1
            if done == warmup + steps:
                break
    sync(device)
    return steps * batch / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"],
                        help="autocast on CUDA, the same for all three loops (ignored on the CPU, as the engine does)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per epoch (default: by device and model)")
    parser.add_argument("--repeats", type=int, default=0, help="timed epochs of engine and bare, in turns "
                                                               "(default: 3 on a GPU, 2 on the CPU)")
    parser.add_argument("--data", type=Path, default=CIFAR_ZIP, help="a CIFAR-10 JPEG zip (default: the subset)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"{TINY_STEPS} steps of {TINY_BATCH} images, one timed epoch: a quick check")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"needs {args.data}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        os.environ.setdefault("LAB_DATA_ROOTS", str(args.data.parent))  # data paths are read under allowed roots
        from core.config import RunConfig
        from core.data import load_dataset
        from core.engine.devices import describe, resolve_device
        from core.tasks import validate
        device = resolve_device(args.device)
        repeats = args.repeats or (1 if args.tiny else 3 if device.type == "cuda" else 2)
        batch = TINY_BATCH if args.tiny else BATCH
        print(f"device {describe(device)}, batch {batch}, amp {args.amp}, best of {repeats} timed epoch(s)")
        with zipfile.ZipFile(args.data) as archive:
            archive.extractall(tmp)
        train_folder = next(Path(tmp).rglob("train"))
        base = RunConfig().replace(**{"data.name": "folder", "data.path": str(args.data), "data.image_size": 32,
                                      "optim.batch_size": batch, "optim.optimizer": "adam", "amp": args.amp,
                                      "device": str(device), "log_every": 10})
        splits = load_dataset(base.data)
        mean, std = splits.mean_std()
        ratios = []
        for model_name, cpu_steps, gpu_steps in MODELS:
            steps = TINY_STEPS if args.tiny else args.steps or (gpu_steps if device.type == "cuda" else cpu_steps)
            warmup = max(2, steps // 10)
            config = validate(base.replace(**{"model.name": model_name, "name": f"bench-{model_name}"}))
            subset = replace(splits, train_x=splits.train_x[: steps * batch], train_y=splits.train_y[: steps * batch])
            engine, bare = EngineLoop(config, subset, device, steps), BareLoop(config, subset, device)
            engine.epoch()  # warm-up: allocator, cudnn autotuning, compilation
            bare.epoch()
            best = {"engine": float("inf"), "bare": float("inf")}
            for turn in range(repeats):  # in turns, each going first every other time: neither gets the quieter slot
                for name, loop in (("engine", engine), ("bare", bare))[:: 1 if turn % 2 == 0 else -1]:
                    best[name] = min(best[name], timed(loop, device))
            engine.check()
            a, b = steps * batch / best["engine"], steps * batch / best["bare"]
            del engine, bare
            c = tutorial_rate(config, str(train_folder), device, steps, warmup, mean, std, splits.num_classes)
            print(f"{model_name} engine samples/s {a:.1f}")
            print(f"{model_name} bare samples/s {b:.1f}")
            print(f"{model_name} tutorial samples/s {c:.1f}")
            print(f"{model_name} engine/tutorial {a / c:.3f}")
            print(f"{model_name} engine/bare {a / b:.3f}")
            ratios.append(a / b)
        print(f"engine/bare {min(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
