"""A folder trains at its images' native size by default (the median shorter side, capped at 224), kept at
least as large as the model needs; an explicit data.image_size always wins."""

from pathlib import Path

import pytest
from PIL import Image

from conftest import shared_file

from core.config import RunConfig
from core.data import image_size_of
from core.tasks import validate
from core.tasks.classification import example_input, setup


def folder(root: Path, sizes: list[tuple[int, int]], classes=("cat", "dog")) -> Path:
    for index, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for number, (w, h) in enumerate(sizes):
            Image.new("RGB", (w, h), (200 * index, 80, 40 + number)).save(root / "train" / name / f"{number}.jpg")
    return root


def config(path, **overrides) -> RunConfig:
    base = RunConfig().replace(**{"data.name": "folder", "data.path": str(path), "model.name": "cnn",
                                  "optim.epochs": 1, "optim.batch_size": 4, "data.val_fraction": 0.25})
    return base.replace(**overrides)


def test_small_images_train_at_their_own_size(tmp_path, lab_home):
    path = folder(tmp_path / "tiny", [(32, 32), (32, 32), (30, 36), (32, 40)])
    run = validate(config(path))
    assert image_size_of(run.data) == 32
    built = setup(run, device=__import__("torch").device("cpu"))
    assert built.metadata["preprocessing"]["image_size"] == 32
    _, shape, _ = example_input(run)  # the memory and time estimates see the same size
    assert shape[-2:] == (32, 32)


def test_photos_are_capped_at_224_and_the_median_ignores_a_few_odd_ones(tmp_path, lab_home):
    path = folder(tmp_path / "photos", [(640, 480)] * 4 + [(40, 40)])
    assert image_size_of(config(path).data) == 224
    mixed = folder(tmp_path / "mixed", [(96, 120)] * 4 + [(2000, 2000)])
    assert image_size_of(config(mixed).data) == 96


def test_the_model_minimum_and_an_explicit_size_win(tmp_path, lab_home):
    path = folder(tmp_path / "icons", [(12, 12)] * 3)
    resnet = config(path, **{"model.name": "resnet18"})
    from core.models import model_info
    low = model_info("resnet18").min_image_size
    assert low > 12
    validate(resnet)  # no "needs images of at least" error: the native size is raised to what the model takes
    assert image_size_of(resnet.data, low=low) == low
    assert image_size_of(config(path, **{"data.image_size": 48}).data) == 48


def test_an_unreadable_folder_falls_back_and_leaves_the_error_to_loading(tmp_path, lab_home):
    missing = config(tmp_path / "nowhere")
    assert image_size_of(missing.data) == 64
    from core.errors import DataError
    with pytest.raises(DataError, match="not found"):
        setup(missing, device=__import__("torch").device("cpu"))


def test_the_cifar10_subset_folder_trains_at_32_px(lab_home):
    path = shared_file("cifar10-jpg-subset.zip")
    assert image_size_of(config(path).data) == 32


def test_the_size_chosen_at_launch_is_stored_with_the_run(tmp_path, lab_home):
    from core import jobs
    from core.store import RunStore
    path = folder(tmp_path / "tiny", [(32, 32)] * 4)
    run_id = jobs.create(config(path))
    assert RunStore().get_run(run_id).config["data"]["image_size"] == 32  # evaluation and resume read this
