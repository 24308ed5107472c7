"""The Attack panel (ui/attack_panel.py) on a finished digits run, driven by AppTest in a one-panel script: the
button measures and draws the accuracy-vs-ε chart and the gallery, a reopened page draws the stored report again,
and in 中文 nothing English is shown (the lead wires the panel into the Tools section of ui/toolkit.py)."""

import json

import pytest
import torch
from conftest import train_in_process
from streamlit.testing.v1 import AppTest
from test_chinese import registry_names
from visible_text import WORD, english_words, visible_strings

from core.presets import preset

SCRIPT = """
import streamlit as st
from core.store import RunStore
from ui.attack_panel import attack_panel
if st.query_params.get("lang"):
    st.session_state["lang"] = st.query_params["lang"]
attack_panel(RunStore().get_run(st.query_params["run"]))
"""


@pytest.fixture
def finished_run(lab_home):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 2}))
    finally:
        torch.set_num_threads(threads)


def panel(run_id: str, lang: str = "en") -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.query_params["run"], at.query_params["lang"] = run_id, lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_attack_draws_the_curve_and_gallery_and_the_reopened_panel_shows_them(finished_run):
    run_id = finished_run
    at = panel(run_id)
    assert not at.get("plotly_chart")  # nothing measured yet
    at.selectbox(key=f"attack_method-{run_id}").set_value("fgsm")
    at.slider(key=f"attack_eps-{run_id}").set_value(32)
    at.button(key=f"attack-{run_id}").click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    (trace,) = chart(at)["data"]
    assert trace["name"] == "FGSM" and trace["x"] == [0.0, 4.0, 8.0, 16.0, 24.0, 32.0]
    assert trace["y"][-1] < trace["y"][0]  # accuracy falls as ε grows
    images = at.get("image")
    assert images and any("true" in caption.value and "→ predicted" in caption.value for caption in at.caption)

    again = panel(run_id)  # the stored report, without clicking
    assert chart(again)["data"][0]["y"] == trace["y"] and len(again.get("image")) == len(images)

    chinese = panel(run_id, "zh")
    names = set(WORD.findall(run_id)) | registry_names()
    english = [text for text in visible_strings(chinese) if english_words(text, names)]
    assert not english, english
