"""Fine-tuning on the pages: the Train form's "Start from a run" takes the run's model and, with a LoRA rank, shows
trainable / total parameters; a rank too large is named before launch; the finished run's Fine-tune panel opens the
form prefilled to start from it."""

import pytest
import torch
from streamlit.testing.v1 import AppTest

from conftest import open_page, train_in_process
from core.presets import preset


@pytest.fixture
def finished_run(lab_home):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1, "data.limit": 200}))
    finally:
        torch.set_num_threads(threads)


def test_start_from_a_run_with_lora_shows_trainable_of_total_and_refuses_a_rank_too_large(finished_run):
    at = open_page("app_pages/train.py")
    at.selectbox(key="cfg.model.name").set_value("mlp").run()
    at.selectbox(key="cfg.model.init_from").set_value(finished_run).run()
    assert at.session_state["cfg.model.name"] == "cnn"  # the run's architecture
    at.number_input(key="cfg.model.lora_rank").set_value(4).run()
    assert not at.exception, [e.value for e in at.exception]
    figures = {metric.label: metric.value for metric in at.metric}
    assert figures["trainable / total parameters"] == "6,510 / 91,502", figures
    at.number_input(key="cfg.model.lora_rank").set_value(40).run()
    shown = " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)
    assert "layer '0'" in shown and "at most 25" in shown, shown


def _panel(run_id):
    from core.store import RunStore
    from ui.finetune_panel import finetune_panel
    finetune_panel(RunStore().get_run(run_id))


def test_the_panel_fills_the_form_to_start_from_the_run(finished_run):
    at = AppTest.from_function(_panel, args=(finished_run,), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key=f"finetune-{finished_run}").click().run()
    assert at.session_state["cfg.model.init_from"] == finished_run
    assert at.session_state["cfg.model.lora_rank"] == 0 and at.session_state["_next_mode"] == "Configure"
