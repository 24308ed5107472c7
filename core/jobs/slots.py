"""Device slots: at most N jobs per device at once (default one per GPU and one on the CPU).

A slot is an exclusive flock on LAB_HOME/slots/<device>-<k>.lock. The kernel releases it when the
holding process dies, however it dies, so a killed worker never leaves a slot taken.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

from core.paths import lab_home


def slot_limit(device_slot: str) -> int:
    """LAB_SLOTS_CPU, LAB_SLOTS_CUDA0, ... override the default of one job per device."""
    return max(1, int(os.environ.get(f"LAB_SLOTS_{device_slot.upper()}", "1")))


@contextmanager
def device_slot(device_slot: str, *, poll_s: float = 1.0, while_waiting=lambda: True):
    """Hold a free slot of the device for the duration of the block; yields False if waiting was abandoned.

    `while_waiting()` is called between polls; returning False stops waiting (e.g. the run was cancelled).
    """
    folder = lab_home() / "slots"
    folder.mkdir(exist_ok=True)
    while True:
        for index in range(slot_limit(device_slot)):
            handle = open(folder / f"{device_slot}-{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not while_waiting():
            yield False
            return
        time.sleep(poll_s)
