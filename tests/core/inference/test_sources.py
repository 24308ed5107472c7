"""What Media preselects: the run named in the link, else the newest completed run's best weights; and
Compare starts with two different runs, not two checkpoints of one."""

import torch

from core.inference import default_comparison, default_source


def run(run_id, which="best", status="completed"):
    return {"kind": "run", "task": "classification", "run_id": run_id, "which": which, "status": status,
            "label": f"{run_id} · {which}"}


def pretrained(name, cached):
    return {"kind": "pretrained", "task": "classification", "name": name, "label": name, "cached": cached}


def test_the_newest_completed_run_is_preselected_not_a_newer_cancelled_one():
    sources = [run("c", "last", "cancelled"), run("b"), run("b", "last"), run("a"), pretrained("resnet18", False)]
    assert default_source(sources) == 1
    assert default_source(sources, run_id="a") == 3  # a link that names a run wins
    assert default_source(sources, run_id="unknown") == 1
    assert default_source([run("c", "last", "cancelled")]) == 0
    assert default_source([pretrained("resnet18", False), pretrained("mobilenet", True)]) == 1
    assert default_source([pretrained("resnet18", False)]) is None


def test_compare_starts_with_two_different_runs_best_weights_first():
    sources = [run("b"), run("b", "last"), run("a", "last"), run("a"), pretrained("resnet18", False)]
    assert default_comparison(sources, 0) == [0, 3]
    assert default_comparison(sources, 1) == [1, 3]  # the current one, then another run
    assert default_comparison([run("b"), run("b", "last")], 0) == [0]  # one run: nothing else to pair
    assert default_comparison([run("b"), pretrained("resnet18", True)], 0) == [0, 1]


class TwoClasses:
    classes = ["cat", "dog"]

    def predict(self, images):
        return torch.tensor([[0.8, 0.2]] * len(images))


def test_a_two_class_model_gets_two_ranks_and_no_empty_columns():
    from PIL import Image

    from core.tasks.classification.predictor import classify_images
    table = classify_images(TwoClasses(), [("a.png", Image.new("RGB", (8, 8)))], k=3)
    assert list(table.columns) == ["file", "top1", "p1", "top2", "p2", "error"]
    assert table.iloc[0]["top1"] == "cat" and abs(table.iloc[0]["p2"] - 0.2) < 1e-6
