"""Data at scale: the full CIFAR-10 folder in memory and streamed, and a generated ImageNet-layout tree streamed.

    python bench/data_scale.py [--files 100000] [--samples 2000] [--skip-tree] [--skip-cifar]

Prints figures, asserts nothing (targets are in issue 13):
  1. The full CIFAR-10 in ../shared/data/cifar10-jpg-full.zip (60,000 JPEGs): for the in-memory and the streamed
     path, seconds from launch to the first training step (cold: a fresh LAB_HOME, so the zip is unpacked and
     decoded; warm: the unpacked copy and decoded tensors cached), peak memory, and training samples/s of the
     `cnn` model at the folder's native 32 px.
  2. A generated tree of --files JPEGs (256-500 px sides, 100 classes, made in a temporary folder and deleted
     after): samples/s of the streamed loader alone with 0 and 2 workers beside the decode-only rate of the same
     number of processes measured in the same run (the limit), and peak memory of a loader over all the files
     against one over a fifth of them (it must not grow with the number of files).
Each measurement runs in a child process of its own; memory is the peak proportional set size (PSS) of
that process and its workers together, sampled every 0.5 s. The tree's rates are the median of three
alternating runs (this machine's other work moves single runs by 10-20%).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR_FULL = ROOT.parent / "shared" / "data" / "cifar10-jpg-full.zip"
BATCH = 64


class TreeMemory(threading.Thread):
    """Samples the memory of this process and all its descendants (DataLoader workers included) every 0.5 s;
    `result()` gives the largest total seen. ru_maxrss would miss the workers, and summing RSS would count torch's
    shared libraries once per worker."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0
        self.start()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_pss(os.getpid()))
            time.sleep(0.5)  # reading smaps costs the measured process a little: a few percent at 0.1 s

    def result(self) -> dict:
        self.peak = max(self.peak, tree_pss(os.getpid()))
        return {"rss_mb": round(self.peak / 2**20)}


def tree_pss(root: int) -> int:
    """Bytes of proportional set size (shared pages split between their sharers) of `root` and its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += pss(pid)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---- child measurements (python bench/data_scale.py --child NAME JSON) ----------------------------------------

def child_train(args: dict) -> dict:
    """Launch to first step (torch's import included), then training samples/s over `steps` steps, of a folder
    run as the worker builds it."""
    started = time.perf_counter()
    rss = TreeMemory()
    import torch

    from core.config import RunConfig
    from core.data.plan import data_plan
    from core.jobs.assemble import assemble
    from core.tasks import pin_image_size, validate

    torch.set_num_threads(os.cpu_count() or 1)
    config = pin_image_size(validate(RunConfig.from_dict(args["config"])))
    plan = data_plan(config.data, config.seed)
    trainer = assemble(config, device=torch.device("cpu"))
    batches = trainer.train_batches.epoch(0)
    model, optimizer = trainer.forward_model, trainer.optimizer

    def step(batch):
        loss, _ = trainer.task.training_step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(next(batches))
    first_step_s = time.perf_counter() - started
    timed_from, samples = time.perf_counter(), 0
    for _, batch in zip(range(args["steps"]), batches):
        step(batch)
        samples += len(batch[1])
    rate = samples / (time.perf_counter() - timed_from)
    return {"plan": plan.describe(), "first_step_s": round(first_step_s, 1), "samples_per_s": round(rate),
            **rss.result()}


def child_stream(args: dict) -> dict:
    """The streamed loader alone (no model): samples/s of decoded uint8 batches (StreamedBatches.decoded, what the
    workers deliver; normalising on the device comes after) over `samples` training images of the tree."""
    rss = TreeMemory()
    import torch

    from core.data.folder import image_files
    from core.data.stream import StreamedBatches
    from core.config import DataConfig

    cfg = DataConfig(name="folder", path=args["path"], image_size=args["size"], val_fraction=0.01,
                     limit=args.get("limit"))
    files = image_files(cfg, 0).train
    loader = StreamedBatches(files, image_size=args["size"], batch_size=BATCH, device=torch.device("cpu"),
                             mean=[0.5] * 3, std=[0.25] * 3, augment_crop=True, augment_flip=True,
                             workers=args["workers"])
    batches = loader.decoded(0)
    next(batches)  # workers started, first batch in: the steady state is what is timed
    timed_from, samples = time.perf_counter(), 0
    for images, _ in batches:
        samples += len(images)
        if samples >= args["samples"]:
            break
    rate = samples / (time.perf_counter() - timed_from)
    loader.close()
    return {"files": len(files), "samples_per_s": round(rate), **rss.result()}


def _decode_some(paths_and_size):
    import torch

    from core.data.stream import decode_file
    torch.set_num_threads(1)  # as in a DataLoader worker
    paths, size = paths_and_size
    for path in paths:
        decode_file(path, size)
    return len(paths)


def child_decode(args: dict) -> dict:
    """The limit: the same decode and resize the loader's workers do, with nothing else, in `processes` processes."""
    from concurrent.futures import ProcessPoolExecutor

    from core.config import DataConfig
    from core.data.folder import image_files

    cfg = DataConfig(name="folder", path=args["path"], image_size=args["size"], val_fraction=0.01)
    paths = [str(p) for p, _ in image_files(cfg, 0).train[: args["samples"]]]
    processes = max(1, args["processes"])
    chunks = [(paths[i::processes], args["size"]) for i in range(processes)]
    warm_up = [(paths[:1], args["size"])] * processes  # imports and first-call set-up, not timed
    if processes == 1:
        _decode_some(warm_up[0])
        started = time.perf_counter()
        done = _decode_some(chunks[0])
    else:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_decode_some, warm_up))
            started = time.perf_counter()
            done = sum(pool.map(_decode_some, chunks))
    return {"samples_per_s": round(done / (time.perf_counter() - started))}


CHILDREN = {"train": child_train, "stream": child_stream, "decode": child_decode}


def run_child(name: str, args: dict, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, json.dumps(args)], capture_output=True,
                         text=True, env=env, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the generated tree ---------------------------------------------------------------------------------------

def _make_images(job):
    """Pictures of 256-500 px: a gradient, shapes and mild sensor-like noise, so the JPEGs weigh what photos of
    that size weigh (tens of KB), not what flat colour or pure noise would."""
    import random

    import numpy as np
    from PIL import Image, ImageDraw
    folder, start, count, seed = job
    rng = random.Random(seed)
    noise_rng = np.random.default_rng(seed)
    for i in range(start, start + count):
        width, height = rng.randint(256, 500), rng.randint(256, 500)
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = rng.randrange(width), rng.randrange(height)
            colour = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse([x, y, x + rng.randint(20, 200), y + rng.randint(20, 200)], fill=colour)
        pixels = np.asarray(image, dtype=np.int16) + noise_rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        target = Path(folder) / f"class_{i % 100:03d}"
        image.save(target / f"img_{i:06d}.jpg", quality=85)
    return count


def make_tree(root: Path, files: int) -> None:
    from concurrent.futures import ProcessPoolExecutor
    for k in range(100):
        (root / "train" / f"class_{k:03d}").mkdir(parents=True, exist_ok=True)
    chunk = 500
    jobs = [(str(root / "train"), start, min(chunk, files - start), start) for start in range(0, files, chunk)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_make_images, jobs))


# ---- main -----------------------------------------------------------------------------------------------------

def bench_cifar(env: dict, steps: int) -> None:
    if not CIFAR_FULL.exists():
        print(f"skipped CIFAR-10: {CIFAR_FULL} is absent")
        return
    print(f"== full CIFAR-10 ({CIFAR_FULL.name}), model cnn at the native size, batch {BATCH}, {steps} steps timed")
    for stream in (False, True):
        config = {"task": "classification", "data": {"name": "folder", "path": str(CIFAR_FULL), "stream": stream},
                  "model": {"name": "cnn"}, "optim": {"batch_size": BATCH}, "device": "cpu"}
        for state in ("cold", "warm"):
            if state == "cold":
                shutil.rmtree(env["LAB_HOME"], ignore_errors=True)
            result = run_child("train", {"config": config, "steps": steps}, env)
            print(f"{'streamed' if stream else 'in memory':>9} {state}: first step after {result['first_step_s']:5.1f} s,"
                  f" peak memory {result['rss_mb']:5d} MB (PSS, workers included), {result['samples_per_s']:5d} samples/s"
                  f"  [{result['plan']}]")


def bench_tree(env: dict, files: int, samples: int, size: int = 224) -> None:
    tree = Path(tempfile.mkdtemp(prefix="imagenet-layout-", dir=env.get("BENCH_TMP")))
    try:
        started = time.perf_counter()
        make_tree(tree, files)
        megabytes = sum(f.stat().st_size for f in tree.rglob("*.jpg")) / 2**20
        print(f"== generated tree: {files:,} JPEGs of 256-500 px ({megabytes:,.0f} MB) in "
              f"{time.perf_counter() - started:.0f} s; streamed at {size} px, batch {BATCH}, {samples} samples timed")
        env = {**env, "LAB_DATA_ROOTS": os.pathsep.join(filter(None, [str(tree), env.get("LAB_DATA_ROOTS")]))}
        common = {"path": str(tree), "size": size, "samples": samples}
        for workers in (0, 2):
            limits, rates, memory = [], [], []
            for _ in range(3):
                limits.append(run_child("decode", {**common, "processes": max(1, workers)}, env)["samples_per_s"])
                streamed = run_child("stream", {**common, "workers": workers}, env)
                rates.append(streamed["samples_per_s"])
                memory.append(streamed["rss_mb"])
            limit, rate = sorted(limits)[1], sorted(rates)[1]
            print(f"workers {workers}: streamed {rate:4d} samples/s (runs {rates}), decode-only limit {limit:4d}/s "
                  f"(runs {limits}, {max(1, workers)} process{'es' if workers > 1 else ''}): {rate / limit:.0%} of the "
                  f"limit; peak memory {max(memory)} MB (PSS, workers included)")
        fifth = run_child("stream", {**common, "workers": 2, "limit": files // 5}, env)
        whole = run_child("stream", {**common, "workers": 2}, env)
        print(f"peak memory over {fifth['files']:,} files: {fifth['rss_mb']} MB; over {whole['files']:,} files: "
              f"{whole['rss_mb']} MB (ratio {whole['rss_mb'] / fifth['rss_mb']:.2f})")
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skip-cifar", action="store_true")
    parser.add_argument("--skip-tree", action="store_true")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        name, payload = args.child
        print(json.dumps(CHILDREN[name](json.loads(payload))))
        return
    home = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    env = {**os.environ, "LAB_HOME": str(home),
           "LAB_DATA_ROOTS": os.pathsep.join(filter(None, [str(CIFAR_FULL.parent), os.environ.get("LAB_DATA_ROOTS")]))}
    print(f"{os.cpu_count()} cores")
    try:
        if not args.skip_cifar:
            bench_cifar(env, args.steps)
        if not args.skip_tree:
            bench_tree(env, args.files, args.samples)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
