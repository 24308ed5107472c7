"""`python -m core ...`: the app's operations from a terminal (train, runs, resume, cancel, control,
registries, and what you do with a finished run: export, compress, explain, attack, translate,
classify-text)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.store.records import best_of, watched_metric
from core.tasks import validate

# CLI flag -> config field; flags left unset keep the preset's (or the default) value
TRAIN_FLAGS = {
    "dataset": "data.name", "data_path": "data.path", "image_size": "data.image_size", "limit": "data.limit",
    "model": "model.name", "pretrained": "model.pretrained", "freeze_backbone": "model.freeze_backbone",
    "init_from": "model.init_from",
    "epochs": "optim.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr",
    "optimizer": "optim.optimizer", "schedule": "optim.schedule", "device": "device", "amp": "amp",
    "compile": "compile", "channels_last": "channels_last", "seed": "seed", "name": "name", "devices": "devices",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Deep Learning Lab from the terminal")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (in this terminal, or --detach as a background job)")
    train.add_argument("--preset", help="start from a named preset (see `presets`)")
    train.add_argument("--dataset")
    train.add_argument("--data-path", help="folder data set: a directory or .zip with train/<class>/ images")
    train.add_argument("--image-size", type=int)
    train.add_argument("--limit", type=int, help="use at most this many training samples")
    train.add_argument("--model")
    train.add_argument("--pretrained", action="store_true", default=None, help="start from ImageNet weights")
    train.add_argument("--freeze-backbone", action="store_true", default=None, help="train only the new head")
    train.add_argument("--init-from", metavar="RUN_ID", help="start from this finished run's weights (a new head "
                       "for new classes); LoRA: --set model.lora_rank=8 [lora_alpha, lora_dropout, lora_targets]")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer")
    train.add_argument("--schedule")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    train.add_argument("--amp", help="off, bf16 or fp16 (CUDA only)")
    train.add_argument("--devices", type=int, help="train in N processes through torchrun, one per GPU (gloo "
                       "processes on the CPU); --batch-size is the global batch, split evenly between them")
    train.add_argument("--compile", action="store_true", default=None)
    train.add_argument("--channels-last", action="store_true", default=None)
    train.add_argument("--seed", type=int)
    train.add_argument("--name")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field, e.g. --set optim.weight_decay=5e-4 (repeatable)")
    train.add_argument("--detach", action="store_true", help="submit as a background job and return")

    runs = sub.add_parser("runs", help="list, show, export or delete recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--status")
    show = runs_sub.add_parser("show")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    export = runs_sub.add_parser("export", help="tidy metrics of runs as CSV (run_id, step, epoch, key, value, time), "
                                 "and/or TensorBoard event files that `tensorboard --logdir DIR` opens")
    export.add_argument("run_ids", nargs="+")
    export.add_argument("--csv", help="write the metrics to this CSV file")
    export.add_argument("--tensorboard", metavar="DIR", help="write each run's scalars, samples and hyperparameters "
                        "(HParams) as event files under DIR/<name>-<run id>/")
    delete = runs_sub.add_parser("delete")
    delete.add_argument("run_ids", nargs="+")
    delete.add_argument("--yes", action="store_true", help="really delete (runs and their artifacts)")

    resume = sub.add_parser("resume", help="continue an interrupted or cancelled run from its last checkpoint")
    resume.add_argument("run_id")
    resume.add_argument("--detach", action="store_true")
    cancel = sub.add_parser("cancel", help="stop a queued or running run (gracefully, then by force)")
    cancel.add_argument("run_id")
    cancel.add_argument("--wait", type=float, default=30.0, help="seconds to wait before killing the worker")

    control = sub.add_parser("control", help="steer a queued or running run: more epochs, a new learning rate, "
                                              "stop after this epoch")
    control.add_argument("run_id")
    control.add_argument("--epochs", type=int, help="train this many epochs in all (the schedule stretches)")
    control.add_argument("--lr", type=float, help="new base learning rate for the rest of the run")
    control.add_argument("--stop-after-epoch", action="store_true", help="finish the epoch under way, then stop")
    control.add_argument("--no-wait", action="store_true", help="return without waiting for the worker")

    sweep = sub.add_parser("sweep", help="train many runs of one config with some fields varied (grid, random, Optuna)")
    sweep.add_argument("--preset", help="the base config: a named preset (see `presets`); --set changes it")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change the base config")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2|KEY=LOW:HIGH[:log]",
                       help="a field to vary: listed values, or a range for --random/--optuna (repeatable)")
    how = sweep.add_mutually_exclusive_group()
    how.add_argument("--random", type=int, metavar="N", help="N trials drawn at random (Optuna's RandomSampler)")
    how.add_argument("--optuna", type=int, metavar="N", help="N trials chosen by Optuna's TPE, bad ones pruned")
    sweep.add_argument("--parallel", type=int, default=1, help="trials in flight at once (random and Optuna)")
    sweep.add_argument("--name")
    sweep.add_argument("--detach", action="store_true", help="start it in the background and return")
    sweep.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    sweeps = sub.add_parser("sweeps", help="list, show or cancel sweeps")
    sweeps_sub = sweeps.add_subparsers(dest="sweeps_command", required=True)
    sweeps_sub.add_parser("list")
    sweep_show = sweeps_sub.add_parser("show")
    sweep_show.add_argument("sweep_id")
    sweep_show.add_argument("--json", action="store_true")
    sweep_cancel = sweeps_sub.add_parser("cancel")
    sweep_cancel.add_argument("sweep_id")

    export_run = sub.add_parser("export", help="export a finished run's model (ONNX, torch.export, safetensors or a zip "
                                "with predict.py), checked against PyTorch on its validation images")
    export_run.add_argument("run_id")
    export_run.add_argument("--format", required=True, metavar="onnx|torchscript|safetensors|bundle",
                            help="torchscript saves a torch.export program (.pt2): torch.jit is deprecated")
    export_run.add_argument("--out", help="file or folder to write (default: the run's folder, exports/)")
    export_run.add_argument("--which", default="best", help="checkpoint: best or last")
    export_run.add_argument("--json", action="store_true")

    compress = sub.add_parser("compress", help="int8-quantise and/or prune a finished run: size, CPU latency and the "
                                               "metric of each variant beside the original")
    compress.add_argument("run_id")
    compress.add_argument("--quantize", choices=["dynamic", "static"], help="int8: dynamic (Linear/LSTM/GRU weights) "
                          "or static (weights and activations, calibrated on training images)")
    compress.add_argument("--prune", type=float, metavar="SPARSITY", help="fraction of weights (or channels) to "
                          "remove by magnitude, e.g. 0.5")
    compress.add_argument("--prune-kind", default="unstructured", help="unstructured (single weights, all layers "
                          "together) or channel (whole convolution output channels)")
    compress.add_argument("--finetune-epochs", type=int, default=0, help="train the pruned model this many epochs, "
                          "masks kept")
    compress.add_argument("--which", default="best", help="checkpoint: best or last")
    compress.add_argument("--json", action="store_true")

    explain = sub.add_parser("explain", help="explain an image classification run's prediction for one picture: "
                                             "a heat map over it written as PNG, the predicted class printed")
    explain.add_argument("run_id")
    explain.add_argument("image", help="the picture file (jpg, png, webp, bmp, gif, tiff)")
    explain.add_argument("--method", default="gradcam", metavar="gradcam|ig|saliency|occlusion",
                         help="Grad-CAM, integrated gradients, saliency or occlusion (default: gradcam)")
    explain.add_argument("--out", required=True, help="the overlay PNG to write")
    explain.add_argument("--which", default="best", help="checkpoint: best or last")

    attack = sub.add_parser("attack", help="adversarial examples (L-inf FGSM or PGD) on a finished image classifier: "
                                           "clean and robust accuracy on its validation images")
    attack.add_argument("run_id")
    attack.add_argument("--method", default="pgd", help="fgsm (one step) or pgd (several steps from a random start)")
    attack.add_argument("--eps", type=float, nargs="+", default=[8.0], metavar="PIXELS",
                        help="largest change of a pixel in units of 1/255, one or more values (default 8)")
    attack.add_argument("--steps", type=int, default=10, help="PGD steps")
    attack.add_argument("--step-size", type=float, metavar="PIXELS", help="pixels of 255 per step (default: "
                        "2.5 eps / steps for PGD, eps for FGSM)")
    attack.add_argument("--images", type=int, default=500, help="attack the first N validation images")
    attack.add_argument("--which", default="best", help="checkpoint: best or last")
    attack.add_argument("--json", action="store_true")

    translate = sub.add_parser("translate", help="decode a source with a finished sequence-to-sequence run (greedy or "
                                                 "beam search): the output, its log-probability and the beam's other "
                                                 "hypotheses")
    translate.add_argument("run_id")
    translate.add_argument("text", help="the source sequence, e.g. \"1234\" or \"3 March 2021\"")
    translate.add_argument("--beam", type=int, default=3, help="beam width, 1 to 32 (1: greedy decoding; default 3)")
    translate.add_argument("--which", default="best", help="checkpoint: best or last")
    translate.add_argument("--json", action="store_true")

    classify = sub.add_parser("classify-text", help="classify a text with a finished text classification run: the "
                                                   "top classes and, with --explain, each token's integrated gradients")
    classify.add_argument("run_id")
    classify.add_argument("text", nargs="?", help="the text (or give --file)")
    classify.add_argument("--file", help="read the text from this UTF-8 file instead")
    classify.add_argument("--top-k", type=int, default=5, help="classes to list (default 5)")
    classify.add_argument("--explain", action="store_true", help="also attribute the top class to the tokens")
    classify.add_argument("--which", default="best", help="checkpoint: best or last")
    classify.add_argument("--json", action="store_true")

    for name in ("presets", "models", "datasets"):
        registry = sub.add_parser(name, help=f"list the {name} the registry holds")
        registry.add_argument("--json", action="store_true")
    return parser


def config_from_args(args) -> Any:
    from core.config import RunConfig, parse_set_args
    from core.tasks import apply_overrides
    from core.presets import preset
    config = preset(args.preset) if args.preset else RunConfig()
    if args.preset and args.dataset and args.dataset != config.data.name:
        config.data.path = None
    overrides = {field: getattr(args, flag) for flag, field in TRAIN_FLAGS.items() if getattr(args, flag) is not None}
    overrides.update(parse_set_args(args.set))
    return validate(apply_overrides(config, overrides))


def cmd_train(args) -> int:
    from core import jobs
    from core.jobs.runner import execute_run
    from core.paths import run_dir
    config = config_from_args(args)
    if args.detach:
        run_id = jobs.submit(config)
        print(f"submitted run {run_id} ({config.display_name()}); log: {run_dir(run_id) / 'log.txt'}")
        _print_memory(config)
        return 0
    run_id = jobs.create(config)
    folder = run_dir(run_id)
    print(f"run {run_id} ({config.display_name()}): {folder}")
    _print_memory(config)
    status = execute_run(run_id, progress=True)
    return _report_end(run_id, status, folder)


def _print_memory(config) -> None:
    """The image size a folder's run chose, whether its images are held in memory or streamed from disk
    (core.data.plan), and the memory estimate the launch was checked against (core.tasks.memory), with a
    warning when tight."""
    from core.data import dataset_info
    from core.tasks import task_spec
    from core.tasks.memory import estimate_memory
    spec = task_spec(config.task)
    example = spec.example_input
    if example and config.data.image_size is None and dataset_info(config.data.name).native_size:
        size = example(config)[1][-1]
        print(f"images: {size}x{size} px, the folder's native size (--image-size or --set data.image_size changes it)")
    if example and spec.sized_data and dataset_info(config.data.name).files and config.data.path:
        from core.data.plan import data_plan
        from core.errors import DataError
        try:  # memory or disk, as the run's setup will choose (core.data.plan); --set data.stream=... forces it
            print(f"data: {data_plan(spec.sized_data(config), seed=config.seed).describe()}")
        except DataError:
            pass  # an unreadable folder: the run reports it in its own words
    from core.tasks import finetune
    if finetune.wanted(config) and example:  # what starting from a run, freezing or LoRA leaves to train
        print(f"fine-tuning {finetune.summary_line(config)}")
    estimate = estimate_memory(config)
    if estimate is None:
        return
    print(f"memory: {estimate.describe()}")
    if estimate.tight:
        print("warning: that is most of the free memory; a smaller batch or image size is safer", file=sys.stderr)


def _report_end(run_id: str, status: str, folder) -> int:
    from core.store import RunStore
    run = RunStore().get_run(run_id)
    metric, best = watched_metric(run.summary), best_of(run.summary)
    line = f"run {run_id} {status}"
    if best is not None:
        line += f": best {metric} {best:.4f} at epoch {run.summary.get('best_epoch')}"
    print(line)
    if status == "failed":
        print(f"error: {run.error}", file=sys.stderr)
    checkpoints = [p.name for p in sorted(folder.glob("*.pt"))]
    if checkpoints:
        print(f"checkpoints: {', '.join(str(folder / c) for c in checkpoints)}")
    if status in ("cancelled", "interrupted"):
        print(f"continue it with: python -m core resume {run_id}")
    return 0 if status in ("completed", "cancelled") else 1


def cmd_runs(args) -> int:
    from core.store import RunStore
    store = RunStore()
    if args.runs_command == "list":
        frame = store.list_runs(status=args.status)
        if args.json:
            print(frame.to_json(orient="records", indent=2))
        elif frame.empty:
            print("no runs yet: try `python -m core train --preset digits-cnn`")
        else:
            print(format_runs_table(frame, {i: r.summary for i, r in store.get_runs().items()}))
        return 0
    if args.runs_command == "show":
        return show_run(store, args.run_id, as_json=args.json)
    if args.runs_command == "export":
        if not args.csv and not args.tensorboard:
            raise LabError("say where to export: --csv FILE, --tensorboard DIR, or both")
        if args.csv:
            from core.analysis import export_metrics_csv
            data = export_metrics_csv(store, args.run_ids)  # unknown ids are an error, not an empty export
            with open(args.csv, "wb") as handle:
                handle.write(data)
            rows = data.count(b"\n") - 1
            print(f"wrote {rows:,} metric rows of {len(args.run_ids)} run(s) to {args.csv}")
        if args.tensorboard:
            from core.analysis.tensorboard import write_tensorboard
            folders = write_tensorboard(store, args.run_ids, args.tensorboard)
            print(f"wrote TensorBoard event files of {len(folders)} run(s) under {args.tensorboard}: "
                  f"open them with  tensorboard --logdir {args.tensorboard}")
        return 0
    if args.runs_command == "delete":
        if not args.yes:
            raise LabError("deleting removes the runs and their checkpoints; add --yes to confirm")
        from core import jobs
        for run_id in args.run_ids:
            jobs.delete_run(run_id)
            print(f"deleted {run_id}")
        return 0
    return 2


def format_runs_table(frame, summaries: dict | None = None) -> str:
    """One line per run; `best` is each run's watched metric (val_acc, val_loss, val_return...)."""
    table = frame[["id", "name", "status", "dataset", "model", "duration_s"]].copy()
    summaries = summaries or {}

    def best(run_id: str) -> str:
        summary = summaries.get(run_id) or {}
        value = best_of(summary)
        return f"{watched_metric(summary)} {value:.4f}" if value is not None else ""
    table.insert(5, "best", table["id"].map(best))
    table["duration"] = table.pop("duration_s").map(_duration)
    return table.to_string(index=False)


def _duration(seconds) -> str:
    if seconds is None or seconds != seconds:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def show_run(store, run_id: str, *, as_json: bool) -> int:
    from core.paths import run_dir
    run = store.get_run(run_id)
    folder = run_dir(run_id)
    artifacts = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    info = {"id": run.id, "name": run.name, "status": run.status, "device": run.device, "error": run.error,
            "duration_s": run.duration_s, "summary": run.summary, "last_metrics": store.last_metrics(run_id),
            "config": run.config, "tags": run.tags, "notes": run.notes, "versions": run.versions,
            "folder": str(folder), "artifacts": artifacts}
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{run.id}  {run.name}  [{run.status}]  {run.device or ''}")
    if run.error:
        print(f"error: {run.error}")
    print(f"folder: {folder}   artifacts: {', '.join(artifacts) or 'none'}")
    print("summary:")
    for key, value in run.summary.items():
        if key != "last":
            print(f"  {key}: {value}")
    print("last metrics:")
    for key, value in sorted(info["last_metrics"].items()):
        print(f"  {key}: {value:.6g}")
    print("config:")
    print("  " + json.dumps(run.config, indent=2, sort_keys=True).replace("\n", "\n  "))
    return 0


def cmd_control(args) -> int:
    from core.jobs import control
    ids = control.request(args.run_id, epochs=args.epochs, lr=args.lr, stop_after_epoch=args.stop_after_epoch)
    changes = control.wait_applied(args.run_id, ids, timeout_s=0 if args.no_wait else 15)
    from core.store import ACTIVE_STATUSES, RunStore
    active = RunStore().get_run(args.run_id).status in ACTIVE_STATUSES
    for change in changes:
        print(f"run {args.run_id}: {control.describe(change, active)}")
    return 0


def cmd_sweep(args) -> int:
    from core.config import RunConfig, parse_set_args
    from core.jobs import sweeps
    from core.presets import preset
    from core.tasks import apply_overrides
    base = apply_overrides(preset(args.preset) if args.preset else RunConfig(), parse_set_args(args.set))
    method = sweeps.OPTUNA if args.optuna else sweeps.RANDOM if args.random else sweeps.GRID
    dimensions = [sweeps.parse_dimension(text) for text in args.grid]
    sweep_id = sweeps.start(base, dimensions, method=method, trials=args.optuna or args.random,
                            parallel=args.parallel, detach=args.detach, name=args.name)
    sweep = _run_store().get_sweep(sweep_id)
    print(f"sweep {sweep_id} ({sweep.name}): {method}, {sweep.trials} run(s), watching {sweep.metric} ({sweep.mode})",
          file=sys.stderr if args.json else sys.stdout)
    if args.detach:
        print(f"follow it with: python -m core sweeps show {sweep_id}")
        return 0

    def report(result: dict) -> None:
        value = "–" if result["value"] is None else f"{result['value']:.4f}"
        shown = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in result["params"].items())
        run = f" (run {result['run_id']})" if result["run_id"] else ""
        print(f"trial {result['trial'] + 1}/{sweep.trials} {result['state']}: {shown} -> {sweep.metric} {value}{run}",
              flush=True, file=sys.stderr if args.json else sys.stdout)

    status = sweeps.follow(sweep_id, report) if method == sweeps.GRID else sweeps.drive(sweep_id, report)
    return _print_sweep(sweep_id, args.json, status)


def _run_store():
    from core.store import RunStore
    return RunStore()


def _print_sweep(sweep_id: str, as_json: bool, status: str | None = None) -> int:
    from core.jobs import sweeps
    store = _run_store()
    sweep = sweeps.refresh(sweep_id)
    frame = sweeps.results(sweep_id)
    best = sweeps.best_run(sweep_id)
    if as_json:
        best_config = store.get_run(best).config if best else None
        print(json.dumps({"sweep_id": sweep_id, "status": status or sweep.status, "method": sweep.method,
                          "metric": sweep.metric, "mode": sweep.mode, "best_run": best, "best_config": best_config,
                          "trials": json.loads(frame.to_json(orient="records"))}, indent=2))
        return 0
    print(f"sweep {sweep_id} ({sweep.name}): {status or sweep.status}; {len(frame)}/{sweep.trials} trial(s)")
    if not frame.empty:
        print(frame.drop(columns=["duration_s"]).to_string(index=False))
    if best:
        print(f"best: run {best} ({sweep.metric} {frame.set_index('run_id').loc[best, sweep.metric]:.4f})")
    return 0


def cmd_sweeps(args) -> int:
    from core.jobs import sweeps
    store = _run_store()
    if args.sweeps_command == "list":
        for sweep in (sweeps.refresh(s.id) for s in store.list_sweeps()):
            print(f"{sweep.id}  {sweep.method:<7} {sweep.status:<10} {sweep.trials:>3} trial(s)  {sweep.name}")
        return 0
    if args.sweeps_command == "cancel":
        sweeps.cancel(args.sweep_id)
        print(f"sweep {args.sweep_id}: cancelled")
        return 0
    return _print_sweep(args.sweep_id, args.json)


def cmd_export(args) -> int:
    from core.toolkit.export import export_run
    result = export_run(args.run_id, args.format, out=args.out, which=args.which)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"run {result.run_id}: {result.format} export of the {result.which} checkpoint (epoch {result.epoch}) "
          f"written to {result.path} ({result.size_bytes:,} bytes) by {result.exporter}")
    agreement = f", top-1 agreement {result.top1_agreement:.1%}" if result.top1_agreement is not None else ""
    print(f"checked with {result.checked_with} on {result.images} {result.inputs} inputs: largest output difference "
          f"{result.max_abs_diff:.3g}{agreement}")
    for extra in result.files:
        print(f"  with {extra}")
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    return 0


def cmd_compress(args) -> int:
    from core.toolkit.compress import compress_run, format_table
    report = compress_run(args.run_id, quantize=args.quantize, prune=args.prune, prune_kind=args.prune_kind,
                          finetune_epochs=args.finetune_epochs, which=args.which)
    if args.json:
        print(json.dumps({"run_id": report.run_id, "which": report.which, **report.summary(), "note": report.note,
                          "table": report.rows}, indent=2))
    else:
        print(f"run {report.run_id}, {report.which} checkpoint; {report.note}")
        print(format_table(report))
    return 0


def cmd_attack(args) -> int:
    from core.toolkit.attack import attack_run
    report = attack_run(args.run_id, method=args.method, eps=args.eps, steps=args.steps, step_size=args.step_size,
                        images=args.images, which=args.which)
    summary = report.summary()
    if args.json:
        print(json.dumps({"run_id": report.run_id, "which": report.which, **summary, "note": report.note}, indent=2))
    else:
        print(f"run {report.run_id}, {report.which} checkpoint, {summary['method']} on {report.note}")
        for row in summary["curve"]:
            print(f"  eps {row['eps']:>6g}/255  accuracy {row['acc']:.4f}" + ("  (clean)" if not row["eps"] else ""))
    return 0


def cmd_explain(args) -> int:
    from core.tasks.classification.explain import METHOD_NAMES, explain_run
    result = explain_run(args.run_id, args.image, args.method, args.out, which=args.which)
    print(f"run {result.run_id}, {result.which} checkpoint: {result.label} ({result.probability:.1%}); "
          f"{METHOD_NAMES[result.method]} written to {result.path}")
    return 0


def cmd_translate(args) -> int:
    from core.errors import InputError
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    run = load_run_model(args.run_id, args.which)
    try:
        translate = task_spec(run.task).entry("translate")
    except LookupError:
        raise InputError(f"run {args.run_id} is a {run.task} run; translate works on sequence-to-sequence runs") \
            from None
    result = translate(run, args.text, beam=args.beam)
    if args.json:
        print(json.dumps({"run_id": args.run_id, "which": args.which, "source": result.source, "text": result.text,
                          "score": result.score, "beam": args.beam,
                          "alternatives": [{"text": text, "score": score} for text, score in result.alternatives],
                          "unknown": result.unknown, "cut": result.cut, "notices": result.notices},
                         indent=2, ensure_ascii=False))
        return 0
    print(f"run {args.run_id}, {args.which} checkpoint, beam {args.beam}: {result.source!r} -> {result.text!r} "
          f"(log-probability {result.score:.4f})")
    for note in result.notices:
        print(f"  note: {note}")
    if len(result.alternatives) > 1:
        print("  the beam's hypotheses, best first:")
        for rank, (text, score) in enumerate(result.alternatives, 1):
            print(f"  {rank:>3}. {text!r}  {score:.4f}")
    return 0


def cmd_classify_text(args) -> int:
    from core.errors import InputError
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    if (args.text is None) == (args.file is None):
        raise InputError("give the text to classify, or --file with a UTF-8 text file (one of the two)")
    text = args.text
    if args.file:
        try:
            text = Path(args.file).read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"{args.file} is not UTF-8 text; save it as UTF-8") from None
    run = load_run_model(args.run_id, args.which)
    spec = task_spec(run.task)
    if "classify_text" not in spec.entry_points:
        raise InputError(f"run {args.run_id} is a {run.task} run; classify-text works on text classification runs")
    prediction = spec.entry("classify_text")(run, text, top_k=args.top_k)
    why = spec.entry("explain_text")(run, text) if args.explain else None
    if args.json:
        out = {"run_id": args.run_id, "which": args.which, "top": [{"class": c, "probability": p}
                                                                   for c, p in prediction.top],
               "tokens": prediction.tokens, "cut": prediction.cut, "notices": prediction.notices}
        if why is not None:
            out["attributions"] = {"class": why.target, "delta": why.delta,
                                   "tokens": [{"text": why.text[a:b], "start": a, "end": b, "score": score}
                                              for (a, b), score in zip(why.spans, why.scores)]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print(f"run {args.run_id}, {args.which} checkpoint, {prediction.tokens} tokens:")
    for name, probability in prediction.top:
        print(f"  {name:<24} {probability:7.2%}")
    for note in prediction.notices:
        print(f"  note: {note}")
    if why is not None:
        ranked = sorted(zip(why.scores, why.spans), key=lambda pair: -abs(pair[0]))[:10]
        print(f"tokens that weigh most for {why.target!r} (integrated gradients; + for, - against):")
        for score, (a, b) in ranked:
            print(f"  {why.text[a:b]!r:<24} {score:+.4f}")
    return 0


def cmd_registry(args) -> int:
    rows = registry_rows(args.command)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(len(row["name"]) for row in rows)
        for row in rows:
            kind = row.get("task") or row.get("kind") or ""
            print(f"{row['name']:<{width}}  {kind:<15} {row['description']}")
    return 0


def registry_rows(kind: str) -> list[dict]:
    if kind == "presets":
        from core.presets import PRESETS
        return [{"name": name, "task": cfg.task, "description": text, "config": cfg.to_dict()}
                for name, (text, cfg) in PRESETS.items()]
    if kind == "models":
        from core.models import list_models, model_info
        return [{"name": n, "task": model_info(n).task, "description": model_info(n).description,
                 "family": model_info(n).family, "min_image_size": model_info(n).min_image_size,
                 "pretrained_available": model_info(n).pretrained_available,
                 "options": {k: o.default for k, o in model_info(n).options.items()}} for n in list_models(task=None)]
    from core.data import dataset_info, list_datasets
    rows = []
    for name in list_datasets(kind=None):
        info = dataset_info(name)
        rows.append({"name": name, "kind": info.kind, "description": info.description, "channels": info.channels,
                     "image_size": info.image_size, "classes": list(info.classes) if info.classes else None,
                     "offline": info.offline, "needs_path": info.needs_path})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "runs":
            return cmd_runs(args)
        if args.command == "resume":
            from core import jobs
            status = jobs.resume(args.run_id, detach=args.detach)
            if args.detach:
                print(f"resuming run {args.run_id} in the background")
                return 0
            from core.paths import run_dir
            return _report_end(args.run_id, status, run_dir(args.run_id))
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "sweeps":
            return cmd_sweeps(args)
        if args.command == "control":
            return cmd_control(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "compress":
            return cmd_compress(args)
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "attack":
            return cmd_attack(args)
        if args.command == "classify-text":
            return cmd_classify_text(args)
        if args.command == "translate":
            return cmd_translate(args)
        if args.command == "cancel":
            from core import jobs
            print(f"run {args.run_id}: {jobs.cancel(args.run_id, wait_s=args.wait)}")
            return 0
        return cmd_registry(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only or full LAB_HOME met outside the store: still one sentence
        from core.paths import storage_error
        translated = storage_error(exc)
        if translated is exc:
            raise
        print(f"error: {translated}", file=sys.stderr)
        return 2
