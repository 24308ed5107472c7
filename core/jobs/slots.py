"""Device slots: at most N jobs per device at once (default one per GPU and one on the CPU), handed out
in the order the runs were submitted.

A slot is an exclusive flock on LAB_HOME/slots/<device>-<k>.lock. A waiting worker holds a flock on its
ticket, LAB_HOME/slots/<kind>.queue/<ticket>-<pid> (one line per kind of device: all GPU runs queue in
"cuda"), where the ticket is the time its run was submitted (or resumed); only the oldest living ticket may
take free slots, so a run that needs four GPUs is not overtaken by one-GPU runs behind it. A GPU run names the
GPUs it may take ('cuda0,cuda1,cuda2') and how many it needs; it takes them all at once or none. The kernel
releases the locks when the holding process dies, however it dies, so a killed worker never keeps a slot or a
place in the line.
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
def device_slot(device_slot: str, *, count: int = 1, ticket: int | None = None, poll_s: float = 0.5,
                while_waiting=lambda: True):
    """Hold free slots of `count` different devices among `device_slot` ('cpu', 'cuda1', 'cuda0,cuda1,...') for
    the duration of the block; yields the names of the devices held, or False if waiting was abandoned.

    `ticket` orders the waiting line (default: now). `while_waiting()` is called between polls; returning
    False stops waiting (e.g. the run was cancelled).
    """
    candidates = device_slot.split(",")
    if count > len(candidates):
        raise ValueError(f"{count} devices asked for among {len(candidates)}: {device_slot}")
    folder = lab_home() / "slots"
    line = folder / f"{candidates[0].rstrip('0123456789')}.queue"
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
            held = _free_slots(folder, candidates, count) if _first_in_line(line, place) else []
            if held:
                _leave(place, place_handle)
                place_handle = None
                try:
                    yield [name for name, _ in held]
                finally:
                    for _, handle in held:
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


def _free_slots(folder: Path, candidates: list[str], count: int) -> list:
    """[(device, locked handle)] for `count` devices with a free slot, or [] (nothing kept locked)."""
    held = []
    for name in candidates:
        handle = _first_free_slot(folder, name)
        if handle is not None:
            held.append((name, handle))
            if len(held) == count:
                return held
    for _, handle in held:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
    return []


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
