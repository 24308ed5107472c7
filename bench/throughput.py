"""Training throughput: the engine against a bare loop and the usual tutorial loop.

    python bench/throughput.py [--device auto|cpu|cuda] [--amp off|bf16] [--steps N]

Trains the classic CNN and the small-image ResNet-18 on the CIFAR-10 JPEG subset in ../shared/data
for a fixed number of steps, three ways, in one process:
  (a) engine:   core's Trainer with its store logging on (in-memory uint8 tensors on the device),
  (b) bare:     a hand-written loop over the same in-memory tensors,
  (c) tutorial: torchvision ImageFolder + DataLoader + per-sample transforms over the JPEG files.
Prints samples/s for each and the ratios; the last line is `engine/bare RATIO` (the lower of the two models).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR_ZIP = ROOT.parent / "shared" / "data" / "cifar10-jpg-subset.zip"
BATCH = 128


def sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_rate(config, splits, device, steps):
    """The engine's own epoch loop (store logging on) over exactly `steps` batches; the first epoch warms up."""
    from dataclasses import replace
    from core.jobs.assemble import assemble
    from core.engine.callbacks import StoreLogger
    from core.store import RunStore
    store = RunStore()
    run_id = store.create_run(config.to_dict(), name="bench")
    subset = replace(splits, train_x=splits.train_x[: steps * BATCH], train_y=splits.train_y[: steps * BATCH])
    trainer = assemble(config, device=device, splits=subset, callbacks=[StoreLogger(store, run_id)])
    assert trainer.steps_per_epoch == steps
    trainer._train_epoch()  # warm-up: allocator, cudnn autotuning, compilation
    trainer.epoch, trainer.batch_in_epoch = trainer.epoch + 1, 0
    sync(device)
    started = time.perf_counter()
    trainer._train_epoch()
    sync(device)
    elapsed = time.perf_counter() - started
    assert trainer.step == 2 * steps, "the timed epoch did not run every step"
    trainer.callbacks[0].buffer.flush()
    assert len(store.metrics(run_id)) > 0, "the engine logged nothing"
    return steps * BATCH / elapsed


def bare_rate(model_name, splits, device, steps, warmup, mean, std, amp):
    import torch
    from torch.nn import functional as F
    from core.models import build
    torch.manual_seed(0)
    model = build(model_name, num_classes=10, in_channels=3, image_size=32).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = splits.train_x.to(device), splits.train_y.to(device)
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    order = torch.randperm(len(y), device=device)

    def step(i):
        idx = order[(i * BATCH) % (len(y) - BATCH):][:BATCH]
        inputs = (x[idx].float() / 255 - mean_t) / std_t
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp == "bf16" and device.type == "cuda"):
            loss = F.cross_entropy(model(inputs), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    sync(device)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(device)
    return steps * BATCH / (time.perf_counter() - started)


def tutorial_rate(model_name, folder, device, steps, warmup, mean, std, amp):
    import torch
    from torch.nn import functional as F
    from torchvision import datasets, transforms
    from core.models import build
    torch.manual_seed(0)
    dataset = datasets.ImageFolder(folder, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean, std)]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=min(4, os.cpu_count()),
                                         pin_memory=device.type == "cuda", drop_last=True, persistent_workers=True)
    model = build(model_name, num_classes=10, in_channels=3, image_size=32).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    done, started = 0, None
    while done < warmup + steps:
        for inputs, targets in loader:
            if done == warmup:
                sync(device)
                started = time.perf_counter()
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp == "bf16" and device.type == "cuda"):
                loss = F.cross_entropy(model(inputs), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + steps:
                break
    sync(device)
    return steps * BATCH / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="off")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per model (default: by device)")
    args = parser.parse_args()
    if not CIFAR_ZIP.exists():
        print(f"needs {CIFAR_ZIP}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        os.environ.setdefault("LAB_DATA_ROOTS", str(CIFAR_ZIP.parent))  # data paths are read under allowed roots
        from core.config import RunConfig
        from core.data import load_dataset
        from core.engine.devices import describe, resolve_device
        from core.tasks import validate
        device = resolve_device(args.device)
        print(f"device {describe(device)}, batch {BATCH}, amp {args.amp}")
        with zipfile.ZipFile(CIFAR_ZIP) as archive:
            archive.extractall(tmp)
        train_folder = next(Path(tmp).rglob("train"))
        base = RunConfig().replace(**{"data.name": "folder", "data.path": str(CIFAR_ZIP), "data.image_size": 32,
                                      "optim.batch_size": BATCH, "optim.optimizer": "adam", "amp": args.amp,
                                      "device": args.device, "log_every": 10})
        splits = load_dataset(base.data)
        mean, std = splits.mean_std()
        ratios = []
        for model_name, cpu_steps, gpu_steps in (("cnn", 60, 300), ("resnet18_small", 8, 200)):
            steps = args.steps or (gpu_steps if device.type == "cuda" else cpu_steps)
            warmup = max(2, steps // 10)
            config = validate(base.replace(**{"model.name": model_name, "name": f"bench-{model_name}"}))
            a = engine_rate(config, splits, device, steps)
            b = bare_rate(model_name, splits, device, steps, warmup, mean, std, args.amp)
            c = tutorial_rate(model_name, str(train_folder), device, steps, warmup, mean, std, args.amp)
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
