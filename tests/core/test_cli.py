import json

import pandas as pd
import pytest

from core.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_then_list_show_and_export(lab_home, capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--dataset", "digits", "--model", "mlp", "--epochs", "2",
                             "--set", "log_every=5")
    assert code == 0, err
    run_id = out.split()[1]
    assert f"run {run_id} completed: best val_acc" in out
    assert str(lab_home / "runs" / run_id / "best.pt") in out

    code, out, _ = run_cli(capsys, "runs", "list")
    assert code == 0 and run_id in out and "digits-mlp" in out and "completed" in out

    code, out, _ = run_cli(capsys, "runs", "list", "--json")
    rows = json.loads(out)
    assert rows[0]["id"] == run_id and rows[0]["best_val_acc"] > 0.5 and rows[0]["model"] == "mlp"

    code, out, _ = run_cli(capsys, "runs", "show", run_id, "--json")
    shown = json.loads(out)
    assert shown["config"]["optim"]["epochs"] == 2 and "last.pt" in shown["artifacts"]
    assert shown["last_metrics"]["val_acc"] == pytest.approx(rows[0]["best_val_acc"], abs=0.2)

    csv = tmp_path / "out.csv"
    code, out, _ = run_cli(capsys, "runs", "export", run_id, "--csv", str(csv))
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["run_id", "step", "epoch", "key", "value", "time"]
    assert set(frame.run_id) == {run_id} and (frame.key == "val_acc").sum() == 2


def test_presets_override_with_set_and_bad_values_are_reported(lab_home, capsys):
    code, out, err = run_cli(capsys, "train", "--preset", "digits-cnn", "--set", "optim.batch_size=0")
    assert code == 2
    assert "error: optim.batch_size: 0 is out of range; allowed 1 to 65,536" in err
    code, out, err = run_cli(capsys, "train", "--dataset", "folder", "--data-path", "/nowhere/photos",
                             "--model", "cnn", "--epochs", "1")
    assert code == 1
    assert "/nowhere/photos" in err
    code, _, err = run_cli(capsys, "runs", "show", "nonexistent-run")
    assert code == 2 and "nonexistent-run" in err


@pytest.mark.parametrize("kind, expected", [("presets", "digits-cnn"), ("models", "resnet18_small"),
                                            ("datasets", "cifar10")])
def test_registries_list_one_line_each_and_as_json(capsys, kind, expected):
    code, out, _ = run_cli(capsys, kind)
    assert code == 0 and any(line.startswith(expected + " ") for line in out.splitlines())
    code, out, _ = run_cli(capsys, kind, "--json")
    assert expected in [row["name"] for row in json.loads(out)]


def test_a_missing_gpu_is_reported_before_any_run_is_recorded(lab_home, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, "train", "--preset", "digits-cnn", "--device", "cuda", "--amp", "bf16")
    assert code == 2 and "device: 'cuda' was asked for, but this machine has no usable CUDA GPU" in err
    code, out, _ = run_cli(capsys, "runs", "list")
    assert "no runs yet" in out


def test_set_name_names_the_run(lab_home, capsys):
    from core.cli import build_parser, config_from_args
    args = build_parser().parse_args(["train", "--dataset", "digits", "--model", "mlp", "--set", "name=my-run"])
    assert config_from_args(args).name == "my-run"
