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


def test_translate_prints_the_output_its_log_probability_and_the_beam(lab_home, capsys, one_torch_thread):
    from conftest import train_in_process
    from core.config import RunConfig
    from core.tasks import validate
    config = validate(RunConfig.from_dict({
        "task": "seq2seq", "data": {"name": "dates", "options": {"examples": 400}},
        "model": {"name": "gru_attention", "options": {"embed": 8, "hidden": 16}},
        "task_options": {"eval_examples": 50}, "optim": {"batch_size": 64, "epochs": 1}, "log_every": 5}))
    run_id = train_in_process(config)
    code, out, err = run_cli(capsys, "translate", run_id, "3 March 2021", "--beam", "3", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["run_id"] == run_id and shown["source"] == "3 March 2021" and shown["beam"] == 3
    assert 1 <= len(shown["alternatives"]) <= 3
    assert shown["alternatives"][0] == {"text": shown["text"], "score": shown["score"]} and shown["score"] <= 0
    code, out, _ = run_cli(capsys, "translate", run_id, "3 March 2021", "--beam", "3")
    assert code == 0 and f"run {run_id}, best checkpoint, beam 3: '3 March 2021' -> " in out
    assert "log-probability" in out
    code, _, err = run_cli(capsys, "translate", run_id, "3 March 2021", "--beam", "0")
    assert code == 2 and "beam width" in err
    code, _, err = run_cli(capsys, "translate", "no-such-run", "1234")
    assert code == 2 and "no-such-run" in err


def test_classify_text_prints_the_top_classes_and_the_tokens_behind_them(lab_home, capsys, one_torch_thread,
                                                                         tmp_path):
    from conftest import train_in_process
    from core.config import RunConfig
    from core.tasks import validate
    config = validate(RunConfig.from_dict({
        "task": "text_classification", "data": {"name": "docstrings", "options": {"max_per_class": 20}},
        "model": {"name": "text_bag", "options": {"embed": 16}},
        "task_options": {"vocab_size": 300, "max_len": 64}, "optim": {"batch_size": 32, "epochs": 2}, "log_every": 5}))
    run_id = train_in_process(config)
    text = "Log a message with severity ERROR on the root logger."
    code, out, err = run_cli(capsys, "classify-text", run_id, text, "--top-k", "3", "--explain", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert len(shown["top"]) == 3 and shown["top"][0]["probability"] >= shown["top"][2]["probability"]
    tokens = shown["attributions"]["tokens"]
    assert shown["attributions"]["class"] == shown["top"][0]["class"] and len(tokens) == shown["tokens"]
    assert all(text[t["start"]:t["end"]] == t["text"] for t in tokens)
    (tmp_path / "doc.txt").write_text(text)
    code, out, _ = run_cli(capsys, "classify-text", run_id, "--file", str(tmp_path / "doc.txt"))
    assert code == 0 and f"run {run_id}, best checkpoint" in out and shown["top"][0]["class"] in out
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    code, _, err = run_cli(capsys, "classify-text", run_id, "--file", str(tmp_path / "bad.txt"))
    assert code == 2 and "not UTF-8" in err
    code, _, err = run_cli(capsys, "classify-text", run_id)
    assert code == 2 and "--file" in err
