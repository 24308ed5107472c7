"""Attacking a finished run (core/toolkit/attack.py): the accuracy-vs-ε curve against the run's own clean
accuracy and the primitives, the gallery of flipped predictions, the report stored and read back (both methods
kept), the same numbers for the same seed, bad requests refused with nothing written, and the CLI."""

from __future__ import annotations

import io
import json

import pytest
import torch
from conftest import train_in_process

from core.errors import ConfigError, LabError, RunNotFound

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"mlp": id, "autoencoder": id}: tiny finished runs under one module-wide LAB_HOME."""
    from core.presets import preset
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield {"mlp": train_in_process(preset("digits-mlp").replace(**{"optim.epochs": 3})),
                   "autoencoder": train_in_process(preset("digits-autoencoder").replace(**{"optim.epochs": 1}))}
        finally:
            torch.set_num_threads(threads)


def _attack_files(run_id: str) -> list[str]:
    from core.paths import run_dir
    folder = run_dir(run_id) / "attacks"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_pgd_curve_falls_from_the_clean_accuracy_and_the_gallery_shows_flips(runs):
    from PIL import Image

    from core.store import RunStore
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    from core.toolkit.attack import attack_report, attack_run, gallery_path

    run_id = runs["mlp"]
    report = attack_run(run_id, method="pgd", eps=[16, 4, 0, 8], steps=10)
    curve = report.results["pgd"]["curve"]
    assert [row["eps"] for row in curve] == [0.0, 4.0, 8.0, 16.0]  # sorted, ε = 0 once: the clean accuracy
    run_model = load_run_model(run_id)
    val_acc = task_spec("classification").entry("run_data")(run_model).evaluate(run_model.model)
    assert curve[0]["acc"] == pytest.approx(val_acc, abs=1e-6)  # all the digits' validation images, as training
    accs = [row["acc"] for row in curve]
    assert accs == sorted(accs, reverse=True) and accs[-1] < accs[0] - 0.05, accs
    summary = report.summary()
    assert (summary["eps"], summary["clean_acc"], summary["robust_acc"]) == (16.0, accs[0], accs[-1])
    assert report.images > 300 and report.note == f"all {report.images} validation images"

    gallery = report.results["pgd"]["gallery"]
    assert 1 <= len(gallery) <= 8
    for item in gallery:
        assert item["true"] != item["predicted"] and item["eps"] == 16.0
        shown = [Image.open(io.BytesIO(gallery_path(run_id, item[k]).read_bytes())) for k in
                 ("original", "adversarial", "perturbation")]
        assert all(image.size == (96, 96) for image in shown)  # 8x8 digits, enlarged 12x
    assert "report.json" in _attack_files(run_id)
    assert RunStore().events(run_id).message.str.contains("attacked best.pt with pgd").any()

    again = attack_report(run_id)  # what a reopened page reads
    assert again is not None and again.to_dict() == report.to_dict()


def test_a_second_method_is_kept_beside_the_first_and_the_same_seed_repeats(runs):
    from core.toolkit.attack import attack_report, attack_run

    run_id = runs["mlp"]
    pgd = attack_run(run_id, method="pgd", eps=8, steps=5)
    fgsm = attack_run(run_id, method="fgsm", eps=8)
    stored = attack_report(run_id)
    assert set(stored.results) == {"pgd", "fgsm"} and stored.requested == "fgsm"
    assert stored.results["pgd"]["curve"] == pgd.results["pgd"]["curve"]
    assert fgsm.summary()["robust_acc"] < fgsm.summary()["clean_acc"]
    assert pgd.summary()["robust_acc"] <= fgsm.summary()["robust_acc"] + 0.01  # PGD at least about as strong
    repeat = attack_run(run_id, method="pgd", eps=8, steps=5)
    assert repeat.results["pgd"]["curve"] == pgd.results["pgd"]["curve"]  # random starts seeded
    names = {row[k] for result in stored.results.values() for row in result["gallery"]
             for k in ("original", "adversarial", "perturbation")}
    assert set(_attack_files(run_id)) == names | {"report.json"}  # no stale gallery files


@pytest.mark.parametrize("kwargs, error, words", [
    ({"eps": 300}, ConfigError, "eps: 300"),
    ({"eps": -1}, ConfigError, "eps: -1"),
    ({"eps": []}, ConfigError, "eps: give 1 to"),
    ({"eps": float("nan")}, ConfigError, "eps: nan"),
    ({"steps": 0}, ConfigError, "steps"),
    ({"method": "cw"}, ConfigError, "method: 'cw'"),
    ({"step_size": 0}, ConfigError, "step_size"),
    ({"which": "middle"}, LabError, "checkpoint 'middle'"),
])
def test_bad_requests_are_refused_with_nothing_written(runs, kwargs, error, words):
    from core.toolkit.attack import attack_run
    run_id = runs["autoencoder"]  # never attacked: its folder must stay without attacks/
    with pytest.raises(error, match=words):
        attack_run(run_id, **{"method": "pgd", "eps": 8, **kwargs})
    assert _attack_files(run_id) == []


def test_unknown_running_and_unsupported_runs_say_why(runs):
    from core import jobs
    from core.presets import preset
    from core.toolkit.attack import attack_run
    with pytest.raises(RunNotFound):
        attack_run("000000-000000-0000")
    queued = jobs.create(preset("digits-mlp"))
    with pytest.raises(LabError, match="queued; attack it once it has finished"):
        attack_run(queued)
    with pytest.raises(LabError, match="need a classifier of images; autoencoder.* are not supported"):
        attack_run(runs["autoencoder"])
    assert _attack_files(runs["autoencoder"]) == [] and _attack_files(queued) == []


def test_cli_prints_clean_and_robust_accuracy_and_refuses_bad_input(runs, capsys):
    from core.cli import main
    run_id = runs["mlp"]
    assert main(["attack", run_id, "--method", "fgsm", "--eps", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eps"] == 8.0 and out["method"] == "fgsm" and 0 <= out["robust_acc"] < out["clean_acc"] <= 1

    assert main(["attack", run_id, "--eps", "2", "8", "--steps", "3"]) == 0
    text = capsys.readouterr().out
    assert "(clean)" in text and "8/255" in text

    assert main(["attack", run_id, "--eps", "256", "--json"]) != 0
    captured = capsys.readouterr()
    assert "eps: 256" in captured.err and captured.out == ""
    assert main(["attack", "000000-000000-0000", "--eps", "8"]) != 0
    assert "000000-000000-0000" in capsys.readouterr().err
