"""Runs as TensorBoard event files (core.analysis.tensorboard), read back with TensorBoard's own reader: every
scalar at its step (as the float32 TensorBoard keeps), the samples as images and text, the config as HParams."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import train_in_process
from core.cli import main
from core.errors import RunNotFound
from core.paths import run_dir
from core.presets import preset
from core.store import RunStore

pytest.importorskip("tensorboard")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from core.engine.samples import write_samples
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("tb") / "lab"))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            ids = [train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 2, "name": "first run"})),
                   train_in_process(preset("digits-cnn").replace(**{"optim.epochs": 1, "optim.lr": 3e-3,
                                                                    "name": "cnn/π"}))]
        finally:
            torch.set_num_threads(threads)
        grid = (np.arange(12 * 16 * 3) % 251).astype(np.uint8).reshape(12, 16, 3)
        png = io.BytesIO()
        Image.fromarray(grid).save(png, format="PNG")
        write_samples(run_dir(ids[0]), 7, {"grid": png.getvalue(), "text": "hello, 世界"})
        yield ids, grid, patch


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_scalars_samples_and_hparams_read_back_exactly(runs, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    from core.analysis.tensorboard import write_tensorboard
    ids, grid, _ = runs
    store = RunStore()
    folders = write_tensorboard(store, ids, tmp_path / "tb")
    assert [f.name for f in folders] == [f"first-run-{ids[0]}", f"cnn-{ids[1]}"]  # names made safe for a folder
    for run_id, folder in zip(ids, folders):
        metrics = store.metrics([run_id])
        read = events(folder)
        assert set(read.Tags()["scalars"]) >= set(metrics["key"])
        for key, rows in metrics.groupby("key"):
            got = read.Scalars(key)
            assert [e.step for e in got] == rows["step"].tolist()
            assert [e.value for e in got] == [float(np.float32(v)) for v in rows["value"]]
            assert [e.wall_time for e in got] == pytest.approx(rows["time"].tolist())

        # the config as HParams, with the best watched metric
        content = read.PluginTagToContent("hparams")
        info = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                   for k, v in info.session_start_info.hparams.items()}
        config = store.get_run(run_id).config
        assert hparams["optim.lr"] == pytest.approx(config["optim"]["lr"])
        assert hparams["model.name"] == config["model"]["name"] and hparams["seed"] == config["seed"]
        summary = store.get_run(run_id).summary
        assert read.Scalars("hparams/best_val_acc")[0].value == pytest.approx(summary["best_val_acc"], abs=1e-7)

    first = events(folders[0])
    image = first.Images("samples/grid")[0]
    assert image.step == 7
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB")), grid)
    text = first.Tensors("samples/text/text_summary")[0]
    assert text.step == 7 and text.tensor_proto.string_val[0].decode() == "hello, 世界"


def test_cli_and_the_zip_the_runs_page_downloads(runs, tmp_path, capsys):
    from core.analysis.tensorboard import tensorboard_zip
    ids, _, _ = runs
    assert main(["runs", "export", *ids, "--tensorboard", str(tmp_path / "out"), "--csv", str(tmp_path / "m.csv")]) == 0
    printed = capsys.readouterr().out
    assert "tensorboard --logdir" in printed and (tmp_path / "m.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([f"first-run-{ids[0]}", f"cnn-{ids[1]}"])
    with zipfile.ZipFile(io.BytesIO(tensorboard_zip(RunStore(), ids))) as archive:
        names = archive.namelist()
    assert {name.split("/")[0][-len(ids[0]):] for name in names} == set(ids)
    assert all("tfevents" in name.rsplit("/", 1)[-1] for name in names)

    assert main(["runs", "export", ids[0]]) == 2
    assert "--tensorboard DIR" in capsys.readouterr().err
    with pytest.raises(RunNotFound):
        tensorboard_zip(RunStore(), [ids[0], "261202-000000-dead"])
