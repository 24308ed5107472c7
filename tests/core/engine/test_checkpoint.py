import os
import pickle

import pytest
import torch

from core.engine.checkpoint import load_checkpoint, save_checkpoint
from core.errors import CheckpointError


class _Exploit:
    """Unpickling this runs a shell command: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_keeps_tensors_and_plain_data(tmp_path):
    payload = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 12, "classes": ["a", "b"],
               "preprocessing": {"mean": [0.5], "std": [0.25]}, "rng": {"torch": torch.get_rng_state()}}
    path = save_checkpoint(payload, tmp_path / "run" / "last.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], payload["model"]["w"])
    assert loaded["step"] == 12 and loaded["classes"] == ["a", "b"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file left behind


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pt"
    with open(path, "wb") as handle:
        pickle.dump({"model": _Exploit(marker)}, handle)
    with pytest.raises(CheckpointError, match="refused to load hostile.pt"):
        load_checkpoint(path)
    assert not marker.exists()
    # the same file in torch's own zip format is refused too
    torch.save({"model": _Exploit(marker)}, tmp_path / "hostile2.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "hostile2.pt")
    assert not marker.exists()


def test_missing_truncated_and_foreign_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint({"model": {"w": torch.ones(1000)}}, tmp_path / "good.pt")
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a lab checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint({"model": {"w": torch.zeros(3)}, "step": 1}, tmp_path / "last.pt")

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({"model": {"w": torch.ones(3)}, "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
