"""Knowledge distillation against no teacher: a distillation preset's student, its teacher and the same student
trained without a teacher (same data, model, optimisation and seed), per seed, and the mean difference.

    python bench/distillation.py [--preset digits-distill] [--seeds 0,1,2] [--epochs N] [--device cpu]

Each seed trains its own teacher (the preset's teacher preset, core.presets.distillation.TEACHER_PRESETS) with that
seed, so teacher and student split the data the same way: none of the student's validation images is among the
teacher's training images. Runs go through core's engine in this process, in a temporary LAB_HOME.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(config) -> tuple[str, float]:
    """(run id, best val_acc) of `config` trained to completion in this process."""
    from core import jobs
    from core.jobs.runner import execute_run
    from core.store import RunStore
    run_id = jobs.create(config)
    status = execute_run(run_id)
    if status != "completed":
        raise SystemExit(f"run {run_id} ended {status}")
    return run_id, float(RunStore().get_run(run_id).summary["best_val_acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="digits-distill")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=0, help="student and baseline epochs (0: the preset's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    os.environ.setdefault("LAB_HOME", tempfile.mkdtemp(prefix="lab-bench-distill-"))

    from core.presets import preset
    from core.presets.distillation import TEACHER_PRESETS
    from core.tasks.distillation.runs import baseline_config

    student = preset(args.preset).replace(device=args.device)
    if args.epochs:
        student = student.replace(**{"optim.epochs": args.epochs})
    teacher_preset = TEACHER_PRESETS[student.data.name]
    options = student.task_options
    print(f"{args.preset}: student {student.model.name} (hidden {student.model.hidden}), {student.optim.epochs} epochs, "
          f"T = {options['temperature']:g}, α = {options['alpha']:g}; teacher {teacher_preset}; device {args.device}")
    print(f"{'seed':>4s} {'teacher':>8s} {'student':>8s} {'no teacher':>10s} {'difference':>10s}")
    gains = []
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        teacher_id, teacher_acc = train(preset(teacher_preset).replace(seed=seed, device=args.device))
        distilled = student.replace(seed=seed, **{"task_options.teacher": teacher_id})
        _, student_acc = train(distilled)
        _, plain_acc = train(baseline_config(distilled))
        gains.append(student_acc - plain_acc)
        print(f"{seed:4d} {teacher_acc:8.4f} {student_acc:8.4f} {plain_acc:10.4f} {100 * gains[-1]:+9.2f}p", flush=True)
    print(f"mean difference (student − no teacher): {100 * statistics.mean(gains):+.2f} points of val_acc over "
          f"{len(gains)} seeds")


if __name__ == "__main__":
    main()
