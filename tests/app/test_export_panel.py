"""The Tools section of a finished classification run's page: Export makes a checked file, shows its figures and a
download, and the export is listed again when the run is reopened (in 中文 too)."""

import pytest
import torch

from conftest import open_page, train_in_process
from test_chinese import LANGUAGE_SWITCH, registry_names
from core.presets import preset
from visible_text import WORD, english_words, visible_strings


@pytest.fixture
def finished_run(lab_home):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 1}))
    finally:
        torch.set_num_threads(threads)


def downloads(at) -> list[str]:
    return [button.proto.label for button in at.get("download_button")]


def test_export_shows_the_figures_and_a_download_and_the_reopened_page_lists_it(finished_run):
    run_id = finished_run
    at = open_page("app_pages/train.py", run=run_id)
    assert at.radio(key=f"export_format-{run_id}").value == "onnx"
    assert "Download best.onnx" not in downloads(at)

    at.button(key=f"export-{run_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Exported and checked: best.onnx" in s.value for s in at.success)
    figures = {metric.label: metric.value for metric in at.metric}
    assert figures["top-1 agreement"] == "100%" and figures["inputs checked"] == "64"
    assert float(figures["largest output difference"]) <= 1e-4
    assert "Download best.onnx" in downloads(at)

    again = open_page("app_pages/train.py", run=run_id)
    assert any("Earlier exports" in m.value for m in again.markdown)
    assert "Download best.onnx" in downloads(again)

    chinese = open_page("app_pages/train.py", run=run_id, lang="zh")
    names = set(WORD.findall(run_id)) | registry_names()  # as tests/app/test_chinese.py allows them
    english = [text for text in visible_strings(chinese) if text != LANGUAGE_SWITCH and english_words(text, names)]
    assert not english, english
    assert "下载 best.onnx" in downloads(chinese)


def test_compress_makes_a_measured_int8_variant_and_the_reopened_page_shows_the_table(finished_run):
    run_id = finished_run
    at = open_page("app_pages/train.py", run=run_id)
    assert at.selectbox(key=f"compress_quantize-{run_id}").value == "dynamic"
    at.button(key=f"compress-{run_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    table = compress_table(at, "variant")
    assert list(table["variant"]) == ["original", "int8-dynamic"]
    assert table["smaller"].iloc[1] != "1.00×"  # int8 weights: the file shrinks
    assert abs(float(table["change"].iloc[1])) <= 2.0  # accuracy points lost or gained by int8
    # nothing asked for: the button waits
    at.selectbox(key=f"compress_quantize-{run_id}").set_value("").run()
    assert at.button(key=f"compress-{run_id}").disabled
    again = open_page("app_pages/train.py", run=run_id, lang="zh")
    assert list(compress_table(again, "变体")["变体"]) == ["original", "int8-dynamic"]


def compress_table(at, column: str):
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)
