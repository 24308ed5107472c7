"""Worker entry point: `python -m core.worker RUN_ID [--resume]`, started by core.jobs."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker")
    parser.add_argument("run_id")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--slot", help="the device slot to wait for (cpu, cuda0, ...); resolved here if absent")
    parser.add_argument("--ticket", type=int, help="place in the waiting line (submission time, ns)")
    parser.add_argument("--rank", action="store_true", help="one of torchrun's processes of a run on several devices")
    args = parser.parse_args(argv)
    if args.rank:
        from core.jobs.runner import execute_rank
        status = execute_rank(args.run_id, resume=args.resume)
        return 0 if status in ("completed", "cancelled") else 1
    from core.jobs.runner import execute_run
    status = execute_run(args.run_id, resume=args.resume, slot=args.slot, ticket=args.ticket)
    print(f"run {args.run_id} finished: {status}", flush=True)
    return 0 if status in ("completed", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
