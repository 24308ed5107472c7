"""Collections gathered in the browser: classes as folders, photos stored safely, and a run that learns them."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import encode_image, zip_bytes
from PIL import Image

from core.data import collection as c
from core.errors import DataError, InputError


def square(colour, seed: int, size: int = 96) -> Image.Image:
    """A coloured square on a noisy grey background, at a random place: two colours are two classes."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    side = int(rng.integers(size // 3, size // 2))
    x, y = rng.integers(0, size - side, 2)
    shade = np.clip(np.array(colour) + rng.integers(-30, 30, 3), 0, 255).astype(np.uint8)
    pixels[y:y + side, x:x + side] = shade
    return Image.fromarray(pixels)


def jpeg(img: Image.Image) -> bytes:
    return encode_image(img, "JPEG", quality=92)


@pytest.fixture
def collection(lab_home):
    return c.create_collection("fruit")


def test_a_new_collection_is_a_folder_data_set_under_the_labs_data_root(lab_home, collection):
    assert collection.path == (lab_home / "data" / "collections" / "fruit").resolve()
    assert collection.train_dir.is_dir()
    assert c.list_collections() == ["fruit"]
    assert c.open_collection("fruit") == collection
    with pytest.raises(DataError, match="already exists"):
        c.create_collection("FRUIT")
    with pytest.raises(DataError, match="no collection called 'vegetables'"):
        c.open_collection("vegetables")
    c.delete_collection(collection)
    assert c.list_collections() == [] and not collection.path.exists()


def test_images_land_in_their_class_folder_as_jpegs_with_unique_names(collection):
    assert c.add_class(collection, "  apple ") == "apple"
    c.add_class(collection, "香蕉")  # Chinese names are fine
    png = encode_image(square((200, 30, 30), 0, size=900), "PNG")
    first = c.add_image(collection, "apple", png, "shot.png")
    second = c.add_image(collection, "apple", png, "shot.png")  # the same bytes twice: two photos
    assert first != second
    stored = collection.train_dir / "apple" / first
    with Image.open(stored) as img:
        assert img.format == "JPEG" and max(img.size) == c.KEEP_SIDE  # shrunk from 900 px
    added = c.add_images(collection, "香蕉", [("a.jpg", jpeg(square((230, 220, 40), 1))),
                                             ("b.zip", zip_bytes({"in/c.png": png, "in/d.jpg": png}))])
    assert len(added.saved) == 3 and not added.errors
    assert (collection.train_dir / "香蕉").is_dir()
    assert c.counts(collection) == {"apple": 2, "香蕉": 3}
    assert c.class_names(collection) == ["apple", "香蕉"]  # the order they were added in
    newest = c.image_files(collection, "apple")[0].name
    c.remove_image(collection, "apple", newest)
    assert c.counts(collection)["apple"] == 1
    with pytest.raises(DataError):
        c.remove_image(collection, "apple", "../../collection.json")


def test_bad_bytes_are_refused_with_a_message_and_the_good_files_still_count(collection):
    c.add_class(collection, "apple")
    with pytest.raises(InputError, match="shot.jpg is not an image"):
        c.add_image(collection, "apple", b"definitely not a jpeg", "shot.jpg")
    with pytest.raises(InputError, match="empty"):
        c.add_image(collection, "apple", b"", "empty.jpg")
    added = c.add_images(collection, "apple", [("good.jpg", jpeg(square((200, 0, 0), 3))),
                                               ("broken.png", b"\x89PNG\r\n\x1a\n broken")])
    assert len(added.saved) == 1
    assert len(added.errors) == 1 and "broken.png" in added.errors[0]
    assert c.counts(collection) == {"apple": 1}


@pytest.mark.parametrize("name", ["../escape", "a/b", "a\\b", "..", ".hidden", "", "   ", "nul\x00here", "bell\x07",
                                  "x" * 61, "what?", "__MACOSX"])
def test_class_names_that_could_leave_the_folder_or_hide_are_refused(collection, name):
    with pytest.raises(DataError):
        c.add_class(collection, name)
    assert c.class_names(collection) == []
    assert sorted(p.name for p in collection.path.rglob("*")) == ["collection.json", "train"]


def test_path_escaping_names_are_refused_everywhere(collection):
    c.add_class(collection, "apple")
    with pytest.raises(DataError):
        c.add_images(collection, "../apple", [("a.jpg", jpeg(square((1, 2, 3), 0)))])
    with pytest.raises(DataError):
        c.create_collection("../outside")
    with pytest.raises(DataError):
        c.open_collection("../../runs")
    with pytest.raises(DataError):
        c.rename_class(collection, "apple", "../pear")


def test_duplicate_rename_and_remove(collection):
    c.add_class(collection, "Apple")
    with pytest.raises(DataError, match="already a class called 'Apple'"):
        c.add_class(collection, "apple")
    c.add_class(collection, "pear")
    with pytest.raises(DataError, match="already a class called 'pear'"):
        c.rename_class(collection, "Apple", "PEAR")
    c.add_image(collection, "Apple", jpeg(square((200, 0, 0), 0)))
    assert c.rename_class(collection, "Apple", "红苹果") == "红苹果"
    assert c.counts(collection) == {"红苹果": 1, "pear": 0}  # photos and place in the order kept
    c.remove_class(collection, "pear")
    assert c.class_names(collection) == ["红苹果"]
    with pytest.raises(DataError, match="no class called 'pear'"):
        c.remove_class(collection, "pear")


def test_training_needs_two_classes_with_enough_photos_each(collection):
    c.add_class(collection, "red")
    with pytest.raises(DataError, match="add at least 2 classes"):
        c.training_config(collection)
    c.add_class(collection, "blue")
    for i in range(c.MIN_IMAGES):
        c.add_image(collection, "red", jpeg(square((220, 20, 20), i)))
    for i in range(3):
        c.add_image(collection, "blue", jpeg(square((20, 20, 220), i)))
    with pytest.raises(DataError, match=f"at least {c.MIN_IMAGES} photos to train: 'blue' has 3"):
        c.training_config(collection)
    assert c.shortfalls(c.counts(collection)) == {"blue": 3}


def test_the_config_is_a_flipping_classifier_of_the_collection_folder(collection):
    for name in ("red", "blue"):
        c.add_class(collection, name)
        for i in range(c.MIN_IMAGES):
            c.add_image(collection, name, jpeg(square((200, 0, 0), i)))
    config = c.training_config(collection)
    assert config.data.name == "folder" and config.data.path == str(collection.path)
    assert config.data.augment_flip and config.data.augment_crop
    assert config.model.name == "cnn" and not config.model.pretrained
    assert not c.training_config(collection, mirror=False).data.augment_flip
    tuned = c.training_config(collection, pretrained=True)
    assert tuned.model.pretrained and tuned.model.freeze_backbone and tuned.model.name == c.PRETRAINED_MODEL
    from core.tasks import validate
    validate(config)
    validate(tuned)


def test_red_and_blue_squares_train_to_a_predictor_that_tells_them_apart(collection, one_torch_thread):
    from core import jobs
    from core.jobs.collection import classify, collection_runs, latest_model
    from core.jobs.runner import execute_run
    from core.store import RunStore
    from core.tasks.classification.predictor import load_run_predictor

    colours = {"red": (210, 30, 30), "blue": (30, 40, 210)}
    for name, colour in colours.items():
        c.add_class(collection, name)
        added = c.add_images(collection, name, [(f"{i}.jpg", jpeg(square(colour, i))) for i in range(12)])
        assert len(added.saved) == 12
    config = c.training_config(collection, device="cpu")
    run_id = jobs.create(config)
    c.remember_run(collection, run_id)
    started = time.time()
    assert execute_run(run_id, slot="cpu") == "completed", RunStore().get_run(run_id).error
    assert time.time() - started < 50

    predictor = load_run_predictor(run_id)
    assert sorted(predictor.classes) == ["blue", "red"]
    for name, colour in colours.items():
        top = predictor.top_k(square(colour, seed=1000), k=2)
        assert top[0][0] == name, top
    assert [run.id for run, _ in collection_runs(collection)] == [run_id]
    assert latest_model(collection)[0].id == run_id
    image, top = classify(run_id, jpeg(square(colours["blue"], seed=2000)), "test.jpg")
    assert top[0][0] == "blue" and image.size == (96, 96)


def test_folders_made_by_hand_with_names_the_page_cannot_use_are_not_classes(lab_home):
    from core.data import collection as c
    coll = c.create_collection("Pets")
    c.add_class(coll, "cat")
    (coll.train_dir / ("x" * 80)).mkdir()  # longer than a class name may be
    (coll.train_dir / "a:b").mkdir()
    assert c.class_names(coll) == ["cat"] and c.counts(coll) == {"cat": 0}
