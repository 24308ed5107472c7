"""The model toolkit's figures (issue 11): what compression does to a trained run, on this machine's CPU.

    python bench/toolkit.py [--no-cifar] [--cifar-epochs N] [--finetune-epochs N] [--only compress|finetune|export]

Trains, each in-process in a temporary LAB_HOME: digits-cnn and digits-mlp (a few epochs, seconds) and, when
../shared/data/cifar10-jpg-subset.zip is there, the classic CNN (fully-connected heavy: a 4096 x 1024 layer)
and ResNet-20 on the CIFAR-10 subset (minutes on a CPU). Then compresses every run with
core.toolkit.compress: dynamic int8, static int8, 50% unstructured pruning then dynamic int8, and 50%
channel pruning with a one-epoch fine-tune (models with convolutions). Prints one line per variant:

  size   state dict bytes, original / variant (2.00x = half the size); zip: the same, zlib-compressed
  b1 b32 CPU latency per input, original / variant (above 1 = faster), median of timed runs, ONE thread
  metric the run's val_acc before -> after, and the change in points

Then (issue 11, "Fine-tune efficiently") fine-tunes digits-cnn and ResNet-20 from their trained runs on the same
data three ways (core.tasks.finetune): every weight, the head only (frozen backbone) and LoRA rank 8 on every Linear
and Conv2d but the head (Hu et al. 2021, arXiv:2106.09685, through PEFT), printing each one's trainable share of
the parameters and its val_acc against the source run's.

Then (issue 11, "Export") exports every run to ONNX (checked against PyTorch by core.toolkit.export) and times
ONNX Runtime against PyTorch on the same validation inputs, both on ONE thread, taking turns: the ratio is
PyTorch's time / ONNX Runtime's (above 1 = ONNX Runtime faster; the issue's target: at least 1.0).

Figures only, nothing asserted. The issue's target for dynamic int8 on the fully-connected-heavy models
(at least 2x smaller, 1.3x faster, at most one point of accuracy lost) is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
CIFAR_ZIP = SHARED / "cifar10-jpg-subset.zip"
FC_HEAVY = ("digits-mlp", "cifar-cnn")  # the models the dynamic-int8 target is about


def train(config) -> tuple[str, float]:
    """(run id, seconds) of a run trained to completion in this process."""
    from core import jobs
    from core.jobs.runner import execute_run
    started = time.perf_counter()
    run_id = jobs.create(config)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = execute_run(run_id)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if status != "completed":
        raise SystemExit(f"run {run_id} ended {status}")
    return run_id, time.perf_counter() - started


def requests(has_convolutions: bool) -> list[dict]:
    asked = [{"quantize": "dynamic"}, {"quantize": "static"}, {"prune": 0.5, "quantize": "dynamic"}]
    if has_convolutions:
        asked.append({"prune": 0.5, "prune_kind": "channel", "finetune_epochs": 1})
    return asked


def compress_all(label: str, run_id: str, convolutions: bool) -> None:
    from core.errors import LabError
    from core.toolkit.compress import compress_run

    for request in requests(convolutions):
        started = time.time()
        try:
            report = compress_run(run_id, **request)
        except LabError as exc:
            print(f"{label:<14} {request}: refused: {exc}")
            continue
        spent = time.time() - started
        for row in report.rows[1:]:
            if row["measured_at"] < started:
                continue  # kept from an earlier request
            s = report.summary(row["variant"])
            target = ""
            if label in FC_HEAVY and row["variant"] == "int8-dynamic":
                met = s["size_ratio"] >= 2 and s["latency_ratio"] >= 1.3 and s["metric_change"] >= -0.01
                target = "  target (2x, 1.3x, -1pt): " + ("met" if met else "not met")
            print(f"{label:<14} {row['variant']:<40} size {s['size_ratio']:5.2f}x zip {s['zipped_size_ratio']:5.2f}x "
                  f"b1 {s['latency_ratio']:5.2f}x b32 {s['latency_ratio_b32']:5.2f}x "
                  f"{report.metric} {s['metric_before']:.4f} -> {s['metric_after']:.4f} "
                  f"({100 * s['metric_change']:+.1f} pt){target}")
        original = report.row("original")
        print(f"{label:<14} (original: {original['size_bytes'] / 1024:.0f} KB, {original['latency_ms_b1']:.3f} ms at "
              f"batch 1, {original['latency_ms_b32']:.3f} ms per input at batch 32; request took {spent:.0f} s)")


FINETUNED = ("digits-cnn", "cifar-resnet20")  # the runs fine-tuned three ways
FINETUNES = {"full": {}, "head-only": {"model.freeze_backbone": True},
             "lora-r8": {"model.lora_rank": 8, "model.lora_alpha": 16.0}}


def finetune_all(label: str, run_id: str, config, epochs: int) -> None:
    """Fine-tune the trained run on the same data (core.tasks.finetune) three ways: every weight, the head only
    (frozen backbone) and LoRA rank 8 (Hu et al. 2021, through PEFT); one line each: trainable share and metric."""
    from core.store import RunStore
    source = RunStore().get_run(run_id).summary
    print(f"{label:<14} {'source run':<12} trainable {source['trainable_params']:>9,} / {source['params']:>9,} "
          f"(100.00%)  val_acc {source['best_val_acc']:.4f}")
    for name, overrides in FINETUNES.items():
        tuned, seconds = train(config.replace(**{"model.init_from": run_id, "optim.epochs": epochs,
                                                 "name": f"{label}-{name}", **overrides}))
        s = RunStore().get_run(tuned).summary
        share = s["trainable_params"] / s["params"]
        print(f"{label:<14} {name:<12} trainable {s['trainable_params']:>9,} / {s['params']:>9,} ({share:7.2%})  "
              f"val_acc {s['best_val_acc']:.4f} ({100 * (s['best_val_acc'] - source['best_val_acc']):+.1f} pt), "
              f"{epochs} epoch(s) in {seconds:.0f} s")


def onnx_against_torch(label: str, run_id: str) -> None:
    """Export the run to ONNX and time ONNX Runtime against PyTorch at batch 1 and 32, one thread each."""
    import onnxruntime
    import torch

    from core.tasks.checkpoints import load_run_model
    from core.toolkit.compress import latencies_ms
    from core.toolkit.export import export_run, export_spec

    made = export_run(run_id, "onnx")
    spec = export_spec(load_run_model(run_id, "best", device="cpu"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(made.path, options, providers=["CPUExecutionProvider"])

    def ort(inputs):
        return session.run([spec.output_name], {spec.input_name: inputs.numpy()})[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        figures = []
        for batch in (1, 32):
            inputs = spec.inputs(batch)[0]
            torch_ms, ort_ms = latencies_ms([spec.part.eval(), ort], inputs)
            figures.append(f"b{batch} {torch_ms:.3f} / {ort_ms:.3f} ms = {torch_ms / ort_ms:4.2f}x")
    finally:
        torch.set_num_threads(threads)
    print(f"{label:<14} onnx         max |diff| {made.max_abs_diff:.1e}, top-1 {made.top1_agreement:.0%}; PyTorch / "
          f"ONNX Runtime per input: " + ", ".join(figures) + "  (target >= 1.0x)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-cifar", action="store_true", help="only the digits models")
    parser.add_argument("--cifar-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=1, help="epochs of each fine-tune (full, head, LoRA)")
    parser.add_argument("--only", choices=("compress", "finetune", "export"), help="one part of the bench (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LAB_HOME"] = str(Path(tmp) / "lab")
        roots = [r for r in os.environ.get("LAB_DATA_ROOTS", "").split(os.pathsep) if r]
        os.environ["LAB_DATA_ROOTS"] = os.pathsep.join(roots + [str(SHARED)])
        import torch
        from core.presets import preset
        print(f"torch {torch.__version__}, int8 engine {torch.backends.quantized.engine}, "
              f"{os.cpu_count()} CPU(s); latencies on 1 thread")
        runs = [("digits-cnn", preset("digits-cnn").replace(**{"optim.epochs": 5})),
                ("digits-mlp", preset("digits-mlp").replace(**{"optim.epochs": 5}))]
        if args.no_cifar:
            pass
        elif not CIFAR_ZIP.exists():
            print(f"skipping the CIFAR-10 models: {CIFAR_ZIP} is not there")
        else:
            cifar = {"data.name": "folder", "data.path": str(CIFAR_ZIP), "data.image_size": 32,
                     "optim.epochs": args.cifar_epochs, "optim.batch_size": 128, "optim.optimizer": "adam",
                     "optim.lr": 1e-3, "device": "cpu"}
            runs += [("cifar-cnn", preset("cifar10-cnn").replace(**{**cifar, "model.dropout": 0.0})),
                     ("cifar-resnet20", preset("cifar10-cnn").replace(**{**cifar, "model.name": "resnet20"}))]
        if args.only == "finetune":  # the models the fine-tuning rows are about
            runs = [(label, config) for label, config in runs if label in FINETUNED]
        for label, config in runs:
            run_id, seconds = train(config.replace(**{"device": "cpu", "name": label}))
            print(f"{label:<14} trained {config.optim.epochs} epoch(s) in {seconds:.0f} s")
            if args.only in (None, "compress"):
                compress_all(label, run_id, convolutions=config.model.name != "mlp")
            if args.only in (None, "export"):
                onnx_against_torch(label, run_id)
            if args.only in (None, "finetune") and label in FINETUNED:
                finetune_all(label, run_id, config.replace(device="cpu"), args.finetune_epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
