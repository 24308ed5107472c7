"""The concept demos that teach with the reader's own trained run: with none yet, a message and "Train this"; with a
finished sequence-to-sequence run, its output and attention map for the source the reader types."""

from __future__ import annotations

import pytest

from conftest import open_page, train_in_process

NO_RUN = "No finished sequence-to-sequence run yet"


def train_links(at) -> list[str]:
    return [link.proto.query_string for link in at.get("page_link") if link.proto.page == "train"]


@pytest.mark.parametrize("concept", ["seq2seq", "encoder-decoder-attention"])
def test_without_a_finished_run_the_demo_says_so_and_offers_the_presets(lab_home, concept):
    at = open_page("app_pages/concepts.py", concept=concept)
    assert not at.error, [e.value for e in at.error]
    assert any(NO_RUN in info.value for info in at.info)
    # the side column's links, then the same presets again under the demo
    assert train_links(at)[-2:] == ["preset=numbers-en-gru-attention", "preset=dates-gru-attention"]
    assert not at.get("plotly_chart")  # no heatmap without a run

    zh = open_page("app_pages/concepts.py", concept=concept, lang="zh")
    assert any("还没有已完成的序列到序列训练" in info.value for info in zh.info)


def test_the_text_demo_waits_for_the_family_or_draws_it(lab_home):
    from ui.families import hook
    at = open_page("app_pages/concepts.py", concept="text-classification")
    assert not at.exception and not at.error, [e.value for e in at.error]
    if hook("text_classification", "concept_demo") is None:  # until the family's page code lands
        assert any("Text-classification runs appear here once trained" in info.value for info in at.info)


def tiny_dates_run() -> str:
    from core.config import RunConfig
    from core.tasks import validate
    raw = {"task": "seq2seq", "data": {"name": "dates", "options": {"examples": 600, "val_fraction": 0.1}},
           "model": {"name": "gru_attention", "options": {"embed": 8, "hidden": 16}},
           "task_options": {"eval_examples": 50},
           "optim": {"optimizer": "adam", "lr": 1e-2, "batch_size": 64, "epochs": 1}, "log_every": 5}
    return train_in_process(validate(RunConfig.from_dict(raw)))


def test_with_a_finished_run_the_demo_decodes_what_is_typed_and_draws_the_attention(lab_home, one_torch_thread):
    run_id = tiny_dates_run()
    at = open_page("app_pages/concepts.py", concept="encoder-decoder-attention")
    assert not at.error, [e.value for e in at.error]
    assert not any(NO_RUN in info.value for info in at.info)
    assert at.selectbox(key="demo.s2s.run").value == run_id
    source = at.text_input(key=f"demo.s2s.source.{run_id}")
    assert source.value  # pre-filled with one of the run's validation examples
    assert len(at.get("plotly_chart")) == 1  # the heatmap
    assert any("Where the decoder attends" in s.value for s in at.subheader)
    source.set_value("3 March 2021").run()
    assert not at.error and at.text_input(key=f"demo.s2s.source.{run_id}").value == "3 March 2021"
    assert at.code[-1].value.strip()  # the decoded output (a tiny run's guess at 2021-03-03)
    assert len(at.get("plotly_chart")) == 1
    examples = at.button_group(key=f"demo.s2s.examples.{run_id}")
    picked = examples.proto.options[1].content  # a click on an example puts it in the box
    examples.select(picked).run()
    assert at.text_input(key=f"demo.s2s.source.{run_id}").value == picked
    assert at.button_group(key=f"demo.s2s.examples.{run_id}").value in (None, [])  # released: it can be clicked again
    at.text_input(key=f"demo.s2s.source.{run_id}").set_value("").run()
    assert any("Type a source sequence" in info.value for info in at.info)
