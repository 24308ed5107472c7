"""Explaining predictions on the Media page (the method choice, what the layers see) and the layers panel of a finished
run's page, on a real tiny CNN run, in English and in 中文."""

import io

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import open_page, train_in_process
from test_chinese import LANGUAGE_SWITCH, registry_names, run_names
from visible_text import english_words, visible_strings


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("explain") / "lab"))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        from core.presets import preset
        try:
            run_id = train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 300}))
        finally:
            torch.set_num_threads(threads)
        yield run_id
        from core.inference import clear_caches
        clear_caches()


def digit_png() -> bytes:
    from sklearn.datasets import load_digits
    image = Image.fromarray((load_digits().images[3] * 255 / 16).astype("uint8"), mode="L").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_each_method_draws_its_map_and_the_layers_show_every_convolution(cnn_run):
    at = open_page("app_pages/media.py")
    at.file_uploader(key="media_images").set_value(("three.png", digit_png(), "image/png")).run()
    no_errors(at)
    assert at.radio(key="media_explain").value == ""  # nothing computed until asked
    assert "three.png" in captions(at) and len(captions(at)) == 1
    for method, title in [("gradcam", "Grad-CAM"), ("ig", "Integrated gradients"), ("saliency", "Saliency"),
                          ("occlusion", "Occlusion")]:
        at.radio(key="media_explain").set_value(method).run()
        no_errors(at)
        assert captions(at) == ["three.png", title]

    at.toggle(key="media_layers").set_value(True).run()
    no_errors(at)
    shown = "\n".join(m.value for m in at.markdown)
    assert "First layer's filters" in shown and "Activation maps" in shown
    assert "`0` · `Conv2d` · 32×8×8" in shown and "`3` · `Conv2d` · 64×4×4" in shown  # digits-cnn's two convolutions
    assert "the first 16 of 32 channels" in captions(at)


def test_in_chinese(cnn_run):
    at = open_page("app_pages/media.py", lang="zh")
    at.file_uploader(key="media_images").set_value(("three.png", digit_png(), "image/png")).run()
    at.radio(key="media_explain").set_value("ig").run()
    at.toggle(key="media_layers").set_value(True).run()
    no_errors(at)
    names = registry_names() | run_names({"cnn": cnn_run}) | {"three"}
    english = [text for text in visible_strings(at) if text != LANGUAGE_SWITCH and english_words(text, names)]
    assert not english, english


def panel_page(run_id: str) -> None:
    from core.store import RunStore
    from ui.explain_panel import layers_panel
    layers_panel(RunStore().get_run(run_id))


def test_the_run_page_panel_shows_a_validation_image_through_the_layers(cnn_run):
    at = AppTest.from_function(panel_page, args=(cnn_run,), default_timeout=60).run()
    no_errors(at)
    assert not at.get("image")  # nothing loaded until asked
    at.toggle(key=f"layers_show-{cnn_run}").set_value(True).run()
    no_errors(at)
    assert "validation image 0" in captions(at)
    assert any("`3` · `Conv2d`" in m.value for m in at.markdown)
    at.number_input(key=f"layers_index-{cnn_run}").set_value(10_000_000).run()
    assert not at.exception
    assert any("out of range" in e.value for e in at.error)


def test_a_compressed_variant_is_a_media_model_that_classifies_and_says_what_it_cannot_explain(cnn_run):
    from core.inference import list_model_sources
    from core.toolkit.compress import compress_run
    compress_run(cnn_run, quantize="dynamic", max_repeats=5)
    at = open_page("app_pages/media.py")
    sources = list_model_sources()
    variant = next(i for i, s in enumerate(sources) if s["kind"] == "variant" and s["variant"] == "int8-dynamic")
    assert "int8-dynamic" in at.selectbox(key="media_source").options[variant]
    at.selectbox(key="media_source").set_value(variant).run()
    at.file_uploader(key="media_images").set_value(("three.png", digit_png(), "image/png")).run()
    no_errors(at)
    charts = [c for c in at.get("plotly_chart") if str(getattr(c, "key", "")).startswith("topk-")]
    assert charts  # the int8 model's top classes
    at.radio(key="media_explain").set_value("gradcam").run()
    assert not at.exception
    said = [m.value for m in at.info] + [e.value for e in at.error]
    assert any("int8 model does not have" in text for text in said), said
    at.radio(key="media_explain").set_value("occlusion").run()
    no_errors(at)
    assert captions(at) == ["three.png", "Occlusion"]
