"""One-line, user-facing descriptions of why a run failed."""

from __future__ import annotations

from core.errors import LabError


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, LabError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] + " (see the run's log.txt for details)"
