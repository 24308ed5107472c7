"""Every task family's presets trained for a fixed small time budget: the figure each reached.

    python bench/families.py [--budget 20] [--device cpu|cuda|auto] [--tasks gan,rl] [--presets a,b]
    python bench/families.py --full --tasks seq2seq,text_classification   # each preset's whole schedule
    python bench/families.py --shakespeare [--device cuda]   # nanoGPT's baby GPT on Tiny Shakespeare

For each preset of each task other than image classification, trains in-process through core's
engine (the same Trainer the app uses) until the budget (seconds of training) is spent, then
evaluates the model on the validation split and prints one row: steps done, the task's watched
validation metric (val loss, accuracy, BLEU, mean return...), the other validation figures and the
training throughput (samples, characters or environment steps per second). Presets whose data must
be downloaded are skipped with the reason when offline. With --full each preset trains its own schedule
(epochs and learning-rate schedule as a user gets it) and the row is what a user of the preset gets, in the
time it took.

--shakespeare trains the `shakespeare-char-gpt` preset for its full schedule (meant for a GPU) and
prints the validation loss reached and the wall time; nanoGPT reports about 1.47 in about 3 minutes
on an A100. Tiny Shakespeare is read from ../shared/data/tinyshakespeare.txt when present.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


class Budget:
    """A callback that asks the trainer to stop once `seconds` of training have passed."""

    def __init__(self, seconds: float, stop_event: threading.Event):
        self.seconds, self.stop_event = seconds, stop_event
        self.started = None
        self.rates: list[float] = []

    def __getattr__(self, name):  # every other hook is a no-op
        if name.startswith("on_"):
            return lambda *args: None
        raise AttributeError(name)

    def on_fit_start(self, trainer):
        self.started = time.perf_counter()

    def on_train_log(self, trainer, metrics):
        self.rates.append(metrics["samples_per_s"])

    def on_train_batch_end(self, trainer):
        if time.perf_counter() - self.started > self.seconds:
            self.stop_event.set()


def train_for(config, budget_s: float, device):
    """(trainer, seconds trained, throughputs logged) after `budget_s` seconds or the whole schedule."""
    from core.jobs.assemble import assemble
    from core.errors import Cancelled

    stop = threading.Event()
    meter = Budget(budget_s, stop)
    trainer = assemble(config, device=device, callbacks=[meter], stop_event=stop)
    started = time.perf_counter()
    try:
        trainer.fit()
    except Cancelled:
        pass
    return trainer, time.perf_counter() - started, meter.rates


def evaluate(trainer) -> dict[str, float]:
    return trainer.task.evaluate(trainer.model, trainer.val_batches, trainer.autocast)


def bench_preset(name: str, budget_s: float, device, full: bool = False) -> dict:
    from core.presets import preset
    from core.errors import DataError, LabError

    config = preset(name)
    config.device = str(device)
    if full:
        budget_s = float("inf")
    else:
        config.optim.epochs = max(config.optim.epochs, 10_000)  # the budget, not the schedule, ends the run
        config.optim.schedule = "constant" if config.optim.schedule == "onecycle" else config.optim.schedule
    try:
        trainer, seconds, rates = train_for(config, budget_s, device)
    except DataError as exc:
        return {"preset": name, "skipped": str(exc).splitlines()[0][:100]}
    except LabError as exc:
        return {"preset": name, "skipped": f"{type(exc).__name__}: {str(exc)[:100]}"}
    metrics = evaluate(trainer)
    watched = trainer.task.best_metric
    return {"preset": name, "task": config.task, "steps": trainer.step, "seconds": seconds, "watched": watched,
            "value": metrics.get(watched), "metrics": metrics,
            "per_s": statistics.median(rates[1:] or rates) if rates else float("nan")}


def print_rows(rows: list[dict], header: bool = True) -> None:
    if header:
        print(f"{'preset':30s} {'task':15s} {'steps':>6s} {'secs':>6s} {'watched metric':>24s} {'per s':>9s}  others")
    for row in rows:
        if "skipped" in row:
            print(f"{row['preset']:30s} skipped: {row['skipped']}")
            continue
        value = row["value"]
        shown = f"{row['watched']} {value:.4f}" if value is not None else f"{row['watched']} –"
        others = ", ".join(f"{k} {v:.3f}" for k, v in row["metrics"].items() if k != row["watched"])
        print(f"{row['preset']:30s} {row['task']:15s} {row['steps']:6d} {row['seconds']:6.1f} {shown:>24s} "
              f"{row['per_s']:9.0f}  {others}")


def shakespeare(device) -> None:
    from core.presets import preset
    config = preset("shakespeare-char-gpt")
    config.device = str(device)
    if SHAKESPEARE.exists() and not config.data.path:
        config.data.path = str(SHAKESPEARE)  # the preset's own loader reads a local copy first
    started = time.perf_counter()
    trainer, seconds, rates = train_for(config, float("inf"), device)
    metrics = evaluate(trainer)
    print(f"shakespeare-char-gpt on {device}: {trainer.step} steps in {time.perf_counter() - started:.0f} s, "
          f"val_loss {metrics.get('val_loss', float('nan')):.4f} (nanoGPT reference: about 1.47 in about 3 min "
          f"on an A100), {statistics.median(rates) if rates else float('nan'):,.0f} characters/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per preset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", default="", help="comma-separated task names (default: all but classification)")
    parser.add_argument("--presets", default="", help="comma-separated preset names (default: all of the tasks)")
    parser.add_argument("--shakespeare", action="store_true", help="only the char-GPT on Tiny Shakespeare")
    parser.add_argument("--full", action="store_true", help="train each preset's whole schedule (no budget)")
    args = parser.parse_args()
    os.environ.setdefault("LAB_HOME", tempfile.mkdtemp(prefix="lab-bench-"))
    os.environ.setdefault("LAB_DATA_ROOTS", str(SHAKESPEARE.parent))  # data paths are read under allowed roots

    from core.presets import list_presets
    from core.engine.devices import resolve_device
    from core.tasks import list_tasks

    device = resolve_device(args.device)
    if args.shakespeare:
        shakespeare(device)
        return
    tasks = [t for t in (args.tasks.split(",") if args.tasks else list_tasks()) if t and t != "classification"]
    names = [p for p in args.presets.split(",") if p] or [p for t in tasks for p in list_presets(t)]
    names = [n for n in names if n != "shakespeare-char-gpt"]  # a GPU run of its own (--shakespeare)
    plan = "each preset's whole schedule" if args.full else f"{args.budget:g} s of training per preset"
    print(f"device {device}, {plan}, torch threads {__import__('torch').get_num_threads()}")
    rows = []
    for name in names:
        row = bench_preset(name, args.budget, device, full=args.full)
        rows.append(row)
        print_rows([row], header=not rows[:-1])
    print("\nsummary")
    print_rows(rows)


if __name__ == "__main__":
    main()
