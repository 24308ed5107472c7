"""The Collect page driven by AppTest: make a collection, add classes, fill them from uploads and the camera."""

from __future__ import annotations

import pytest
from conftest import encode_image, open_page
from PIL import Image

from core.data import collection as c

PAGE = "app_pages/collect.py"


def photo(colour, size=(120, 90)) -> bytes:
    return encode_image(Image.new("RGB", size, colour), "JPEG")


def shown(at) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [s.value for s in at.success] + [cap.value for cap in at.caption]
    return "\n".join(str(p) for p in parts)


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def page(lab_home):
    """The page on an empty lab, after its first collection was made through the page."""
    at = open_page(PAGE)
    assert "Start a collection" in shown(at)
    name_box = next(box for box in at.text_input if box.label == "Name of the new collection")
    name_box.set_value("Hand signs")
    button(at, "Create collection").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert c.list_collections() == ["Hand signs"]
    return at


def add_class(at, name: str, label: str = "New class", submit: str = "Add class"):
    box = next(b for b in at.text_input if b.label == label)
    box.set_value(name)
    button(at, submit).click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_add_a_class_and_upload_photos_and_see_the_count(page):
    at = page
    add_class(at, "thumbs up")
    add_class(at, "手掌")
    assert c.class_names(c.open_collection("Hand signs")) == ["thumbs up", "手掌"]
    assert "0 photos" in shown(at)

    at.segmented_control(key="collect_src:Hand signs:thumbs up").set_value("upload").run()
    uploader = at.file_uploader(key="collect_up:Hand signs:thumbs up#0")
    uploader.set_value([("a.jpg", photo((200, 0, 0)), "image/jpeg"), ("b.png", encode_image(
        Image.new("RGB", (64, 64), (0, 200, 0)), "PNG"), "image/png"),
        ("broken.jpg", b"not a picture at all", "image/jpeg")]).run()
    assert not at.exception, [e.value for e in at.exception]
    text = shown(at)
    assert "2 photos" in text and "Added 2 photos." in text
    assert any("broken.jpg" in w.value for w in at.warning)
    assert c.counts(c.open_collection("Hand signs")) == {"thumbs up": 2, "手掌": 0}
    at.run()  # a rerun stores nothing again
    assert c.counts(c.open_collection("Hand signs"))["thumbs up"] == 2
    assert "Every class needs at least 8 photos to train" in shown(at)


def test_each_camera_shot_adds_one_photo_once(page):
    at = page
    add_class(at, "palm")
    at.segmented_control(key="collect_src:Hand signs:palm").set_value("webcam").run()
    for n in range(3):
        camera = at.camera_input(key=f"collect_cam:Hand signs:palm#{n}")
        camera.set_value((f"shot{n}.jpg", photo((10 * n, 100, 200)), "image/jpeg")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert ("1 photo]" if n == 0 else f"{n + 1} photos]") in shown(at)
    at.run()
    assert c.counts(c.open_collection("Hand signs")) == {"palm": 3}
    at.camera_input(key="collect_cam:Hand signs:palm#3").set_value(("bad.jpg", b"\xff\xd8 broken", "image/jpeg")).run()
    assert any("could not" in e.value or "not an image" in e.value or "corrupt" in e.value for e in at.error)
    assert c.counts(c.open_collection("Hand signs")) == {"palm": 3}


def test_bad_and_duplicate_class_names_are_explained(page):
    at = page
    add_class(at, "../escape")
    assert any("may not contain /" in e.value for e in at.error)
    add_class(at, "Palm")
    add_class(at, "palm")
    assert any("'Palm' already exists" in e.value for e in at.error)
    assert c.class_names(c.open_collection("Hand signs")) == ["Palm"]
    add_class(at, "Fist")
    box = next(b for b in at.text_input if b.label == "Class name" and b.value == "Fist")
    box.set_value("fist ✊")
    next(b for b in at.button if b.label == "Rename class" and b.form_id == "collect_rename:Hand signs:Fist").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert c.class_names(c.open_collection("Hand signs")) == ["Palm", "fist ✊"]
    assert "Renamed Fist to fist ✊." in shown(at)


def test_the_page_opens_the_collection_in_the_link_and_in_chinese(lab_home):
    other = c.create_collection("水果")
    c.add_class(other, "苹果")
    c.create_collection("Animals")
    at = open_page(PAGE, collection="水果", lang="zh")
    assert at.selectbox(key="collect_choice").value == "水果"
    assert "苹果" in shown(at)
    at.selectbox(key="collect_choice").set_value("Animals").run()  # the link no longer wins once you choose
    assert at.selectbox(key="collect_choice").value == "Animals"
    assert at.query_params["collection"] in ("Animals", ["Animals"])
    assert "苹果" not in shown(at)
    from ui.i18n import MISSING, catalogue
    keys = set(catalogue("zh"))
    assert not {k for k in MISSING if k in _page_keys()} - keys


def _page_keys() -> set[str]:
    """The English templates the Collect page's modules pass to t() or mark with N_()."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    found = set()
    for path in ("app_pages/collect.py", "ui/collect.py", "ui/collect_model.py"):
        for node in ast.walk(ast.parse((root / path).read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("t", "N_") and node.args \
                    and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return found


def test_every_string_of_the_page_has_its_chinese():
    from ui.i18n import catalogue
    missing = _page_keys() - set(catalogue("zh"))
    assert not missing, sorted(missing)


def test_the_chinese_page_shows_no_english(lab_home):
    """In 中文, the page's own words are Chinese in its main states: a first visit, classes still filling, ready to
    train, and a refused name (the user's own names are Chinese here, so any English left is ours)."""
    from visible_text import english_words, visible_strings

    from ui import i18n

    def english(at) -> list[str]:
        assert not at.exception, [e.value for e in at.exception]
        return [text for text in visible_strings(at) if text != "Language / 语言" and english_words(text)]

    i18n.MISSING.clear()
    at = open_page(PAGE, lang="zh")
    assert not english(at)
    fruit = c.create_collection("水果")
    for name in ("苹果", "香蕉"):
        c.add_class(fruit, name)
    c.add_images(fruit, "苹果", [(f"{i}.jpg", photo((200, 10 * i, 0))) for i in range(c.MIN_IMAGES)])
    at = open_page(PAGE, lang="zh", collection="水果")
    assert "还需补充" in "\n".join(visible_strings(at)) and not english(at)
    add_class(at, "苹果", "新类别", "添加类别")  # taken: the refusal is said in Chinese too
    assert any("已经存在" in e.value for e in at.error) and not english(at)
    c.add_images(fruit, "香蕉", [(f"{i}.jpg", photo((220, 220, 10 * i))) for i in range(c.MIN_IMAGES)])
    at.run()
    assert "准备就绪" in "\n".join(visible_strings(at)) and not english(at)
    assert not {k for k in i18n.MISSING if k in _page_keys()}
