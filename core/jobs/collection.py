"""A collection's runs: train one on it, find the runs trained on it, classify a picture with the newest model.

The collection (core.data.collection) remembers the ids of its runs in its own folder; the store says what
became of them. A deleted run is simply left out.
"""

from __future__ import annotations

from core.data.collection import (
    PRETRAINED_MODEL,
    Collection,
    counts,
    remember_run,
    remembered_runs,
    training_config,
)
from core.store.records import Run


def pretrained_problem() -> str | None:
    """None when the ImageNet weights the collections fine-tune are cached (or downloadable); else why not."""
    from core.models.imagenet import pretrained_weights_problem
    return pretrained_weights_problem(PRETRAINED_MODEL)


def submit_collection(collection: Collection, *, pretrained: bool = False, mirror: bool = True,
                      request_key: str | None = None) -> str:
    """Launch a classifier on the collection in a detached worker and remember it there; returns its id."""
    from core import jobs
    config = training_config(collection, pretrained=pretrained, mirror=mirror)
    run_id = jobs.submit(config, request_key=request_key)
    remember_run(collection, run_id, counts(collection))
    return run_id


def collection_runs(collection: Collection) -> list[tuple[Run, dict]]:
    """(run, what the collection noted at launch: {"id", "at", "counts"}) for its runs that still exist,
    newest first."""
    from core.store import RunStore
    noted = remembered_runs(collection)
    if not noted:
        return []
    found = RunStore().get_runs([entry["id"] for entry in noted])
    return [(found[entry["id"]], entry) for entry in noted if entry["id"] in found]


def latest_model(collection: Collection) -> tuple[Run, dict] | None:
    """The newest completed run of the collection (the model "Test it" uses), or None."""
    return next(((run, entry) for run, entry in collection_runs(collection) if run.status == "completed"), None)


def classify(run_id: str, data: bytes, name: str = "picture", k: int = 10) -> tuple[object, list[tuple[str, float]]]:
    """(the decoded picture, its k most probable classes) with the run's best checkpoint; InputError for
    bytes that are no usable image."""
    from core.data.media import open_image
    from core.tasks.classification.predictor import load_run_predictor
    image = open_image(data, name)
    return image, load_run_predictor(run_id, "best").top_k(image, k=k)
