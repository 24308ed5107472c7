"""The CIFAR-10 speedrun: our `cifar10-speedrun` preset against airbench94 on the same GPU, in one process.

    python bench/speedrun.py [--device cuda] [--seeds 5] [--epochs 10,11,12] [--data ZIP]
    python bench/speedrun.py --device cpu --tiny     # a few steps of our preset on the CPU subset (no airbench)

Both systems train on the same decoded tensors: the JPEGs of ../shared/data/cifar10-jpg-full.zip are decoded
once, handed to our engine as uint8 tensors and written as the `train.pt` / `test.pt` files airbench's
CifarLoader reads (so the JPEG round-off costs both alike). airbench is the `airbench` package from the
registry (Jordan 2024, arXiv:2404.00498); it needs CUDA.

Timed region, for both: from the call that trains until the final test-time-augmented accuracy is known,
data already decoded, validating after every epoch as the app does. Ours goes through the app's own path
(core.jobs.assemble + the engine + the store logger writing every metric row); airbench through
`train94()` in its verbose mode, which also validates every epoch and ends with its TTA evaluation (its
output is swallowed). airbench's time without the per-epoch validation (`train94(verbose=False)`, then
`evaluate(tta_level=2)`, one seed) is printed beside it.
Each system gets one untimed warm-up run first (CUDA context, cuDNN autotuning, torch.compile).

Prints each system's mean accuracy and mean wall time over the seeds, then `ours/airbench time RATIO` at
airbench's mean accuracy: our preset is trained at each epoch count of --epochs in turn until its mean
accuracy reaches airbench's; the ratio uses that count's time (or says MISS when none does). Last, our time
with a second process polling the store as the app's live view does (every 1.5 s: run, progress, metrics),
to show what watching costs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
LIVE_VIEW_EVERY_S = 1.5  # ui/live.py's fragment interval while a run is active


def sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_splits(zip_path: Path, tiny: bool):
    from dataclasses import replace
    from core.config import DataConfig
    from core.data import load_dataset
    splits = load_dataset(DataConfig(name="folder", path=str(zip_path), image_size=32))
    if tiny:  # 1,024 training and 512 test images drawn at random (the folder lists them class by class)
        import torch
        g = torch.Generator().manual_seed(0)
        train = torch.randperm(len(splits.train_y), generator=g)[:1024]
        val = torch.randperm(len(splits.val_y), generator=g)[:512]
        splits = replace(splits, train_x=splits.train_x[train], train_y=splits.train_y[train],
                         val_x=splits.val_x[val], val_y=splits.val_y[val])
    return splits


def our_config(args, epochs: int, seed: int):
    from core.presets import preset
    from core.tasks import validate
    overrides = {"data.name": "folder", "data.path": str(args.data), "data.image_size": 32, "device": args.device,
                 "optim.epochs": epochs, "seed": seed, "name": f"speedrun-{epochs}ep-seed{seed}"}
    if args.tiny:
        overrides["optim.batch_size"] = 256
    return validate(preset("cifar10-speedrun").replace(**overrides))


def train_ours(config, splits, device, store, watched_id_file: str | None = None) -> tuple[float, float, str]:
    """(TTA accuracy, seconds, run id): one run through the app's own assembly, engine and store logger.
    `watched_id_file`: where the watcher process learns the run's id."""
    from core.engine.callbacks import StoreLogger
    from core.jobs.assemble import assemble
    run_id = store.create_run(config.to_dict(), name=config.name)
    store.set_status(run_id, "running")
    if watched_id_file:
        Path(watched_id_file).write_text(run_id)
    sync(device)
    started = time.perf_counter()
    trainer = assemble(config, device=device, splits=splits, callbacks=[StoreLogger(store, run_id)])
    trainer.fit()
    sync(device)
    seconds = time.perf_counter() - started
    return trainer.last_metrics["val_tta_acc"], seconds, run_id


def watch_like_live_view(home: str, run_id_file: str, stop) -> None:
    """A second process reading the store as ui/live.py's fragment does, every LIVE_VIEW_EVERY_S, while runs train."""
    os.environ["LAB_HOME"] = home
    from core.analysis import run_progress
    from core.store import RunStore
    store, reads = RunStore(), 0
    while not stop.is_set():
        run_id = Path(run_id_file).read_text().strip() if Path(run_id_file).exists() else ""
        if run_id:
            run = store.get_run(run_id)
            frame = store.metrics(run_id)
            run_progress(run.status, run.config, run.summary, frame)
            store.last_metrics(run_id)
            store.controls(run_id)
            reads += 1
        stop.wait(LIVE_VIEW_EVERY_S)
    print(f"  (the watcher read the store {reads} times)", flush=True)


def train_airbench(splits, device, seeds: list[int], folder: Path) -> dict[str, list[float]]:
    """airbench94 on the same decoded images, per seed: its TTA accuracy and its time as we time ours (validating
    every epoch, as its verbose mode does and as our engine always does); for the first seed also its time with
    no per-epoch validation (verbose off, then one TTA evaluation)."""
    import contextlib
    import io
    import torch
    import airbench
    folder.mkdir(parents=True, exist_ok=True)
    for name, x, y in (("train", splits.train_x, splits.train_y), ("test", splits.val_x, splits.val_y)):
        # CifarLoader's file format: uint8 images (N, H, W, C), labels (N,), class names
        torch.save({"images": x.permute(0, 2, 3, 1).contiguous(), "labels": y.clone(), "classes": list(splits.classes)},
                   folder / f"{name}.pt")
    here = os.getcwd()
    os.chdir(folder.parent)  # train94 reads ./cifar10/{train,test}.pt
    found = {"accuracy": [], "seconds": [], "quiet_seconds": []}
    try:
        test_loader = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
        with contextlib.redirect_stdout(io.StringIO()):
            airbench.warmup94()
        for seed in seeds:
            torch.manual_seed(seed)
            sync(device)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # its table of per-epoch accuracies, then the TTA one
                model = airbench.train94()
            sync(device)
            found["seconds"].append(time.perf_counter() - started)
            found["accuracy"].append(float(airbench.evaluate(model, test_loader, tta_level=2)))
            if seed == seeds[0]:  # once: what its per-epoch validation costs it (the GPU lease is short)
                sync(device)
                started = time.perf_counter()
                model = airbench.train94(verbose=False)
                airbench.evaluate(model, test_loader, tta_level=2)
                sync(device)
                found["quiet_seconds"].append(time.perf_counter() - started)
            print(f"airbench94 seed {seed}: accuracy {found['accuracy'][-1]:.4f}, {found['seconds'][-1]:.2f} s",
                  flush=True)
        return found
    finally:
        os.chdir(here)


def run_ours(args, splits, device, store, epochs: int, seeds: list[int], label: str) -> tuple[list[float], list[float]]:
    accuracies, times = [], []
    for seed in seeds:
        accuracy, seconds, _ = train_ours(our_config(args, epochs, seed), splits, device, store)
        accuracies.append(accuracy)
        times.append(seconds)
        print(f"{label} {epochs} epochs seed {seed}: accuracy {accuracy:.4f}, {seconds:.2f} s", flush=True)
    return accuracies, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", default="10,11,12", help="our epoch counts to try, until airbench's accuracy")
    parser.add_argument("--data", type=Path, default=None, help="CIFAR-10 JPEG zip (default: the full one)")
    parser.add_argument("--tiny", action="store_true", help="1,024 images of the subset, one epoch: a CPU check")
    args = parser.parse_args()
    args.data = args.data or DATA / ("cifar10-jpg-subset.zip" if args.tiny else "cifar10-jpg-full.zip")
    if not args.data.exists():
        print(f"needs {args.data}", file=sys.stderr)
        return 1
    ladder = [1] if args.tiny else [int(e) for e in args.epochs.split(",")]
    seeds = list(range(2 if args.tiny else args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        os.environ.setdefault("LAB_DATA_ROOTS", str(args.data.parent))
        import torch
        from core.engine.devices import describe, resolve_device
        from core.store import RunStore
        device = resolve_device(args.device)
        print(f"device {describe(device)}, torch {torch.__version__}, data {args.data.name}", flush=True)
        started = time.perf_counter()
        splits = load_splits(args.data, args.tiny)
        print(f"decoded {len(splits.train_y):,} training and {len(splits.val_y):,} test images "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        store = RunStore()

        reference = None
        if device.type == "cuda":
            try:
                import airbench  # noqa: F401
            except ImportError:
                print("airbench is not installed (pip install airbench): no reference", flush=True)
            else:
                found = train_airbench(splits, device, seeds, Path(tmp) / "cifar10")
                reference = statistics.mean(found["accuracy"]), statistics.mean(found["seconds"])
                quiet = statistics.mean(found["quiet_seconds"])
                print(f"airbench94: mean accuracy {reference[0]:.4f} over {len(seeds)} seeds, mean time "
                      f"{reference[1]:.2f} s ({quiet:.2f} s without per-epoch validation)", flush=True)
        else:
            print("airbench94 needs a CUDA GPU: no reference on this device", flush=True)

        # warm-up: compile (also the recompile when the whitening bias freezes, and the final TTA pass), cuDNN
        from core.models.speedrun import WHITEN_BIAS_EPOCHS
        train_ours(our_config(args, 1 if args.tiny else WHITEN_BIAS_EPOCHS + 1, 1000), splits, device, store)
        chosen = None
        for epochs in ladder:
            acc, secs = run_ours(args, splits, device, store, epochs, seeds, "ours")
            ours = statistics.mean(acc), statistics.mean(secs)
            print(f"ours ({epochs} epochs): mean accuracy {ours[0]:.4f} over {len(seeds)} seeds, "
                  f"mean time {ours[1]:.2f} s", flush=True)
            chosen = (epochs, *ours)
            if reference is None or ours[0] >= reference[0]:
                break

        # the same runs with the live view's reads going on in another process, as when the app watches
        stop = multiprocessing.get_context("spawn").Event()
        id_file = str(Path(tmp) / "watched-run")
        watcher = multiprocessing.get_context("spawn").Process(
            target=watch_like_live_view, args=(os.environ["LAB_HOME"], id_file, stop))
        watcher.start()
        watched = []
        for seed in seeds:
            accuracy, seconds, _ = train_ours(our_config(args, chosen[0], seed), splits, device, store, id_file)
            watched.append(seconds)
            print(f"ours watched {chosen[0]} epochs seed {seed}: accuracy {accuracy:.4f}, {seconds:.2f} s", flush=True)
        stop.set()
        watcher.join(timeout=30)

        print("---")
        if reference is not None:
            print(f"airbench94 mean accuracy {reference[0]:.4f}, mean time {reference[1]:.2f} s "
                  f"({quiet:.2f} s without per-epoch validation)")
        print(f"ours ({chosen[0]} epochs) mean accuracy {chosen[1]:.4f}, mean time {chosen[2]:.2f} s")
        print(f"ours watched by the live view: mean time {statistics.mean(watched):.2f} s "
              f"(watched/unwatched {statistics.mean(watched) / chosen[2]:.3f})")
        if reference is not None:
            verdict = "at airbench's accuracy" if chosen[1] >= reference[0] else "MISS: below airbench's accuracy"
            print(f"ours/airbench time {chosen[2] / reference[1]:.3f} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
