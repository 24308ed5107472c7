"""Device slots: at most N jobs per device at once (default one per GPU and one on the CPU), handed out
in the order the runs were submitted.

A slot is an exclusive flock on LAB_HOME/slots/<device>-<k>.lock. A waiting worker holds a flock on its
ticket, LAB_HOME/slots/<device>.queue/<ticket>-<pid>, where the ticket is the time its run was submitted
(or resumed); only the oldest living ticket may take a free slot. The kernel releases both locks when the
holding process dies, however it dies, so a killed worker never keeps a slot or a place in the line.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from core.paths import lab_home


def slot_limit(device_slot: str) -> int:
    """LAB_SLOTS_CPU, LAB_SLOTS_CUDA0, ... override the default of one job per device."""
    return max(1, int(os.environ.get(f"LAB_SLOTS_{device_slot.upper()}", "1")))


@contextmanager
def device_slot(device_slot: str, *, ticket: int | None = None, poll_s: float = 0.5, while_waiting=lambda: True):
    """Hold a free slot of the device for the duration of the block; yields False if waiting was abandoned.

    `ticket` orders the waiting line (default: now). `while_waiting()` is called between polls; returning
    False stops waiting (e.g. the run was cancelled).
    """
    folder = lab_home() / "slots"
    line = folder / f"{device_slot}.queue"
    line.mkdir(parents=True, exist_ok=True)
    name = f"{ticket if ticket is not None else time.time_ns():020d}-{os.getpid()}"
    # Locked under a hidden name first, then renamed (the lock stays with the file): another worker never
    # sees our ticket unlocked and takes it for a dead one.
    place_handle = open(line / f".{name}", "a+")
    fcntl.flock(place_handle, fcntl.LOCK_EX)
    place = line / name
    os.replace(line / f".{name}", place)
    try:
        while True:
            handle = _first_free_slot(folder, device_slot) if _first_in_line(line, place) else None
            if handle is not None:
                _leave(place, place_handle)
                place_handle = None
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
    finally:
        if place_handle is not None:
            _leave(place, place_handle)


def _first_in_line(line: Path, place: Path) -> bool:
    return all(entry.name >= place.name for entry in _living(line))


def _living(line: Path) -> list[Path]:
    """The tickets whose worker still holds its lock; a dead worker's ticket is removed on the way."""
    alive = []
    for entry in sorted(e for e in line.iterdir() if not e.name.startswith(".")):
        try:
            handle = open(entry, "a+")
        except FileNotFoundError:
            continue  # left the line just now
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            alive.append(entry)  # its worker holds the lock: still waiting
        else:
            entry.unlink(missing_ok=True)  # nobody holds it: its worker died while waiting
        finally:
            handle.close()
    return alive


def _first_free_slot(folder: Path, device_slot: str):
    for index in range(slot_limit(device_slot)):
        handle = open(folder / f"{device_slot}-{index}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return handle
    return None


def _leave(place: Path, handle) -> None:
    place.unlink(missing_ok=True)
    handle.close()
