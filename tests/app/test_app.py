"""The app's pages driven without a browser (streamlit.testing.v1.AppTest)."""

import io
import time

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import open_page
from core.store import RunStore

PAGES = ["app_pages/home.py", "app_pages/train.py", "app_pages/runs.py", "app_pages/media.py",
         "app_pages/concepts.py"]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error] + [i.value for i in at.info]
    parts += [s.value for s in at.subheader] + [c.value for c in at.caption] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_lab(lab_home, page):
    at = open_page(page)
    assert at.title[0].value


def test_train_form_rejects_a_bad_value_with_the_message_from_core(lab_home):
    at = open_page("app_pages/train.py")
    at.number_input(key="cfg.optim.batch_size").set_value(0).run()
    assert any("optim.batch_size: 0 is out of range; allowed 1 to 65,536" in e.value for e in at.error)
    launch = next(b for b in at.button if b.label == "Launch")
    assert launch.disabled
    assert RunStore().list_runs().empty


def _digit_png(label: int) -> tuple[bytes, Image.Image]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    index = int((digits.target == label).nonzero()[0][0])
    image = Image.fromarray((digits.images[index] * 255 / 16).astype("uint8"), mode="L").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image


def test_launch_from_train_page_then_see_it_on_runs_and_classify_an_upload_on_media(lab_home):
    at = open_page("app_pages/train.py")
    at.selectbox(key="preset_choice").set_value("digits-mlp").run()
    at.number_input(key="cfg.optim.epochs").set_value(4).run()
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.exception
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    deadline = time.time() + 120
    while RunStore().get_run(run_id).status != "completed" and time.time() < deadline:
        time.sleep(0.5)
    assert RunStore().get_run(run_id).status == "completed"

    runs = open_page("app_pages/runs.py")
    table = runs.dataframe[0].value
    assert run_id in set(table["id"]) and table.loc[table["id"] == run_id, "status"].item() == "completed"

    media = open_page("app_pages/media.py")
    assert media.selectbox(key="media_source").value == 0  # the newest run comes first
    png, image = _digit_png(3)
    media.file_uploader(key="media_images").set_value(("three.png", png, "image/png")).run()
    assert not media.exception
    from core.tasks.classification.predictor import load_run_predictor
    expected = load_run_predictor(run_id, "best").top_k(image, k=1)[0][0]
    assert f"**{expected}**" in texts(media)

    media.file_uploader(key="media_images").set_value(
        [("broken.png", b"this is not an image", "image/png"), ("three.png", png, "image/png")]).run()
    assert not media.exception
    assert any("broken.png" in e.value for e in media.error)
    assert f"**{expected}**" in texts(media)  # the good file in the same batch still works


def test_media_classifies_a_video_and_rejects_a_broken_one(lab_home, tmp_path):
    from conftest import make_video
    from core import jobs
    from core.presets import preset
    from core.jobs.runner import execute_run
    run_id = jobs.create(preset("shapes-cnn").replace(**{"data.num_samples": 600, "optim.epochs": 1}))
    assert execute_run(run_id) == "completed"
    clip = tmp_path / "clip.mp4"
    make_video(clip, [(255, 0, 0), (0, 200, 0), (0, 0, 255)], size=(64, 64))

    media = open_page("app_pages/media.py")
    media.file_uploader(key="media_video").set_value(("clip.mp4", clip.read_bytes(), "video/mp4")).run()
    assert not media.exception
    assert "**Clip:" in texts(media) and "of 3 frames" in texts(media)
    assert any(getattr(e, "key", None) == "timeline" for e in media.get("plotly_chart"))

    media.file_uploader(key="media_video").set_value(("broken.mp4", b"\x00" * 4096, "video/mp4")).run()
    assert not media.exception
    assert any("broken.mp4" in e.value for e in media.error)


def test_train_form_takes_an_uploaded_folder_zip_and_turns_off_weights_for_models_without_them(lab_home, tmp_path):
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
            for index in range(6):
                image = io.BytesIO()
                Image.new("RGB", (20, 20), colour).save(image, format="PNG")
                archive.writestr(f"train/{label}/{index}.png", image.getvalue())
    at = open_page("app_pages/train.py")
    at.selectbox(key="preset_choice").set_value("folder-transfer-resnet18").run()
    assert at.toggle(key="cfg.model.pretrained").value is True
    at.file_uploader(key="folder_zip").set_value(("photos.zip", buffer.getvalue(), "application/zip")).run()
    assert not at.exception
    assert at.text_input(key="cfg.data.path").value.endswith(".zip")
    preview = texts(at)
    assert "12 images" not in preview and "training and" in preview, preview  # the preview read the zip
    import re
    train, val = map(int, re.search(r"(\d+) training and (\d+) validation images", preview).groups())
    assert train + val == 12 and val >= 1  # no val/ folder: a seeded split
    at.selectbox(key="cfg.model.name").set_value("cnn").run()
    assert at.toggle(key="cfg.model.pretrained").value is False
    assert not any("model.pretrained" in e.value for e in at.error)


def test_runs_page_compares_the_runs_in_its_link(lab_home):
    from core import jobs
    from core.presets import preset
    from core.jobs.runner import execute_run
    ids = []
    for lr in (0.003, 0.01):
        run_id = jobs.create(preset("digits-mlp").replace(**{"optim.epochs": 2, "optim.lr": lr}))
        assert execute_run(run_id) == "completed"
        ids.append(run_id)
    at = open_page("app_pages/runs.py", compare=",".join(ids))
    assert any(getattr(e, "key", None) == "cmp_chart-val_acc" for e in at.get("plotly_chart"))
    frames = [d.value for d in at.dataframe]
    stats = next(f for f in frames if "step_of_best" in f.columns)
    assert sorted(stats.run_id) == sorted(ids) and (stats["count"] == 2).all()  # two epochs of val_acc each
    diff = next(f for f in frames if "optim.lr" in f.index)
    assert list(diff.index) == ["optim.lr"]  # the only field that differs


def test_train_form_switches_to_every_task_with_its_own_fields_and_a_valid_preset(lab_home):
    """Choosing a task loads its first preset; the form draws that family's option widgets and the
    preset validates (no error box, Launch enabled). Classification comes back the same way."""
    from core.presets import list_presets
    from core.tasks import list_tasks, task_spec
    at = open_page("app_pages/train.py")
    tasks = list_tasks()
    assert len(tasks) >= 2
    for task in tasks[1:] + tasks[:1]:
        at.selectbox(key="cfg.task").set_value(task).run()
        assert not at.exception, (task, [e.value for e in at.exception])
        assert at.selectbox(key="preset_choice").value == list_presets(task)[0]
        assert at.selectbox(key="cfg.data.name").value in __import__("core.data", fromlist=["x"]).list_datasets(
            kind=task_spec(task).data_kind)
        # a preset that needs a finished run (a distillation's teacher) is refused in an empty lab, saying why
        refusal = _refusal(list_presets(task)[0])
        assert [e.value for e in at.error] == ([refusal] if refusal else []), task
        launch = [b for b in at.button if b.label == "Launch"][0]
        assert launch.disabled == bool(refusal), task
        option_keys = [w.key for w in list(at.number_input) + list(at.selectbox) + list(at.toggle) + list(at.text_input)
                       if w.key and (".options." in w.key or w.key.startswith("cfg.task_options."))]
        if task != "classification":
            assert option_keys, f"{task}: no option widgets drawn"
    # a bad value in a family's form is caught with the message from core, and Launch is disabled
    at.selectbox(key="cfg.task").set_value("language_model").run()
    at.number_input(key="cfg.optim.lr").set_value(0.0).run()
    assert any("optim.lr" in e.value for e in at.error)
    assert [b for b in at.button if b.label == "Launch"][0].disabled


def _refusal(name: str) -> str | None:
    """core's message refusing the preset `name` in this lab, or None when it validates."""
    from core.errors import ConfigError
    from core.presets import preset
    from core.tasks import validate
    try:
        validate(preset(name))
    except ConfigError as exc:
        return str(exc)
    return None


def test_home_cards_show_each_runs_best_value_and_curve_and_escape_names(lab_home):
    from core.presets import preset
    store = RunStore()
    run_id = store.create_run(preset("digits-mlp").to_dict(), name="<img src=x onerror=alert(1)> [see](https://x.example)")
    store.log_metrics([(run_id, step, step, "val_acc", acc, time.time()) for step, acc in ((1, 0.5), (2, 0.8), (3, 0.9))])
    store.update_summary(run_id, {"best_val_acc": 0.9})
    store.finish(run_id, "completed")
    at = open_page("app_pages/home.py")
    card = next(m.value for m in at.markdown if "validation accuracy" in m.value)
    # a typed name is text: no HTML, and no markdown link either
    name = "<div style='font-weight:600'>&lt;img src=x onerror=alert(1)&gt; [see](https://x.example)</div>\n\n"
    assert card.startswith(name) and "<img" not in card  # an HTML block: markdown leaves it as text
    assert "90.0%" in card and "completed" in card
    assert card.count("<polyline") == 1 and "validation accuracy by epoch" in card  # the sparkline of three epochs
    assert any(link.proto.label == "Open" and link.proto.query_string == f"run={run_id}" for link in at.get("page_link"))


def test_the_sidebar_follows_the_chosen_language(lab_home):
    english = texts(open_page("app_pages/home.py"))
    chinese = texts(open_page("app_pages/home.py", lang="zh"))
    assert "Job queue" in english and "Nothing running." in english
    assert "任务队列" in chinese and "没有正在运行的任务。" in chinese and "Job queue" not in chinese
