"""Shared fixtures: every test gets its own LAB_HOME, so runs, caches and slots never leak between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    home = tmp_path / "lab"
    monkeypatch.setenv("LAB_HOME", str(home))
    monkeypatch.setenv("LAB_HEARTBEAT_S", "0.2")
    monkeypatch.setenv("LAB_HEARTBEAT_STALE_S", "1")
    return home


def shared_file(*parts: str) -> Path:
    """A file from ../shared/data, or skip the test when it is absent (e.g. on a user's machine)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path
