"""Errors whose message is meant for the user: the CLI prints them and the app shows them as is."""


class LabError(Exception):
    """Base class: a problem the user can fix, described in plain words."""


class ConfigError(LabError, ValueError):
    """An invalid configuration value; the message names the field and the allowed range."""


class DataError(LabError):
    """A data set that cannot be found, downloaded, read or unpacked."""


class ModelError(LabError):
    """A model that cannot be built (unknown name, weights that cannot be fetched...)."""


class CheckpointError(LabError):
    """A checkpoint that is missing, corrupt or unsafe to load."""


class RunNotFound(LabError, KeyError):
    """An unknown or malformed run id."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else "run not found"


class TrainingError(LabError):
    """Training stopped for a reason the user should see (non-finite loss, out of memory...)."""


class StorageError(LabError):
    """LAB_HOME cannot be written: read-only, not ours, or the disk is full (`full`)."""

    def __init__(self, message: str, *, full: bool = False):
        super().__init__(message)
        self.full = full


class Cancelled(Exception):
    """Raised inside a worker when the user asked for the run to stop."""


class InputError(LabError):
    """Uploaded media that cannot be used: empty, not an image, truncated, too large, undecodable."""


def describe_exception(exc: BaseException) -> str:
    """A one-line, user-facing description of why a run failed."""
    if isinstance(exc, LabError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] + " (see the run's log.txt for details)"
