"""The one checkpoint module: atomic writes, and loads restricted to tensors and plain data.

A checkpoint holds model, optimiser and scheduler state, epoch and step counters, RNG states,
the run config, class names and preprocessing. It is loaded only with weights_only=True, so a
file carrying a malicious pickle is refused instead of executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from core.errors import CheckpointError
from core.paths import atomic_write
from core.paths import BEST_CHECKPOINT as BEST, LAST_CHECKPOINT as LAST  # noqa: F401  (re-exported)


def save_checkpoint(payload: dict, path: Path) -> Path:
    """Written whole or not at all (temp file, fsync, rename), so a crash never leaves half a checkpoint."""
    return atomic_write(Path(path), lambda handle: torch.save(payload, handle), fsync=True)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # what torch says of a pickled class or function
            raise CheckpointError(f"refused to load {path.name}: it is not a checkpoint the lab can read, or it "
                                  "is corrupt") from None
        # torch's own message advises loading with weights_only=False, which would run the file's code:
        # never repeat that advice to a user.
        raise CheckpointError(f"refused to load {path.name}: besides weights it holds Python objects that could "
                              "run code when loaded; only checkpoints the lab wrote (plain tensors and "
                              "numbers) are loaded") from None
    except Exception as exc:
        raise CheckpointError(f"refused to load {path.name}: it is not a checkpoint the lab can read, or it is "
                              f"corrupt ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointError(f"{path.name} is not a lab checkpoint (no model state)")
    return payload


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
