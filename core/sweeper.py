"""Sweep driver entry point: `python -m core.sweeper SWEEP_ID`, started by core.jobs.sweeps for random
search and Optuna (a grid needs no driver: all its runs are submitted at once)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.sweeper")
    parser.add_argument("sweep_id")
    args = parser.parse_args(argv)
    from core.jobs.sweeps import drive
    status = drive(args.sweep_id, on_trial=lambda r: print(f"trial {r['trial'] + 1}: {r['state']} {r['value']}",
                                                          flush=True))
    print(f"sweep {args.sweep_id} finished: {status}", flush=True)
    return 0 if status in ("completed", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
