"""Fine-tuning from a run and LoRA (core.tasks.finetune, core.models.lora): LoRA leaves the base bit for bit (batch
norms included) and its merge matches the adapters, the trainable count is the hand count, a LoRA checkpoint
reloads and predicts as trained, init-from copies matching tensors exactly and gives new classes a new head, a
frozen backbone stays bit for bit, and bad requests (unknown or running run, rank too large, another family or
model) are refused with a message and nothing recorded. Tiny real runs, trained once for the module."""

from __future__ import annotations

import pytest
import torch

from conftest import train_in_process
from core.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"optim.epochs": 1, "data.limit": 300, "device": "cpu"}
SHAPES = {"data.name": "shapes", "data.num_samples": 240, "optim.epochs": 1, "optim.batch_size": 32, "device": "cpu"}


def _folder(root, classes=("red", "green", "blue"), per_class=12):
    """A tiny 32 px RGB image folder with three classes (one colour each, some noise)."""
    from PIL import Image
    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(classes):
        folder = root / "train" / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            pixels = torch.randint(0, 80, (32, 32, 3), generator=generator, dtype=torch.uint8)
            pixels[..., index] += 150
            Image.fromarray(pixels.numpy()).save(folder / f"{n}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Source runs under one module-wide LAB_HOME: the digits CNN, the CNN and ResNet-20 on shapes (6 classes)."""
    from core.presets import preset
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        torch.set_num_threads(1)
        cnn = preset("digits-cnn").replace(**TINY)
        shapes = preset("digits-cnn").replace(**SHAPES, **{"model.hidden": 32})
        ids = {"cnn": train_in_process(cnn), "shapes-cnn": train_in_process(shapes),
               "shapes-resnet": train_in_process(shapes.replace(**{"model.name": "resnet20"}))}
        ids["configs"] = {"cnn": cnn, "shapes-cnn": shapes}
        ids["folder"] = str(_folder(tmp_path_factory.mktemp("colours")))
        yield ids


def _state(run_id: str, which: str = "best") -> dict:
    from core.tasks.finetune import plain_state
    from core.tasks.checkpoints import load_run_model
    return plain_state(load_run_model(run_id, which).model)


def _val_batch(run_id: str):
    from core.tasks import task_spec
    from core.tasks.checkpoints import load_run_model
    run_model = load_run_model(run_id)
    return task_spec(run_model.task).entry("run_data")(run_model).example(64)


def _summary(run_id: str) -> dict:
    from core.store import RunStore
    return RunStore().get_run(run_id).summary


def test_lora_leaves_every_base_tensor_bit_identical_and_merges_to_the_same_outputs(runs):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.finetune import merged_model
    from core.presets import preset

    source = runs["shapes-resnet"]
    config = preset("digits-cnn").replace(**SHAPES, **{"model.name": "resnet20", "model.init_from": source,
                                                       "model.lora_rank": 4, "optim.lr": 5e-3})
    run_id = train_in_process(config)
    trained = load_run_model(run_id, "last").model
    names = {name for name, _ in trained.named_parameters()}
    assert any(".lora_A." in name for name in names) and any(".base_layer." in name for name in names)
    lora_b = [p for name, p in trained.named_parameters() if ".lora_B." in name]
    assert any(p.abs().max() > 0 for p in lora_b), "the adapters trained (B starts at zero)"

    before, after = load_run_model(source).model.state_dict(), trained.state_dict()
    base = {name: tensor for name, tensor in after.items() if ".lora_" not in name and not name.startswith("head.")}
    assert len(base) == len(before) - 2  # every tensor but the head's weight and bias, batch-norm buffers included
    for name, tensor in base.items():
        assert torch.equal(tensor, before[name.replace(".base_layer.", ".")]), name

    images = _val_batch(run_id)
    merged = merged_model(run_id, "last")
    assert not any(".lora_" in name or "base_layer" in name for name in merged.state_dict())
    with torch.no_grad():
        difference = (merged(images) - trained(images)).abs().max().item()
    assert difference <= 1e-5, difference


def test_trainable_parameters_are_the_hand_count_and_the_lora_checkpoint_predicts_as_trained(runs):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.finetune import plan

    config = runs["configs"]["cnn"].replace(**{"model.init_from": runs["cnn"], "model.lora_rank": 4})
    run_id = train_in_process(config)
    r, hidden = 4, 128
    # digits: 1 x 8 x 8; conv 1->32 5x5, conv 32->64 5x5, fc 64*2*2 -> hidden, head hidden -> 10
    adapters = r * (1 * 25 + 32) + r * (32 * 25 + 64) + r * (64 * 2 * 2 + hidden)
    head = hidden * 10 + 10
    plain = (32 * 25 + 32) + (64 * 32 * 25 + 64) + (256 * hidden + hidden) + head
    summary = _summary(run_id)
    assert summary["trainable_params"] == adapters + head
    assert summary["params"] == plain + adapters
    assert summary["finetune"]["lora"]["layers"] == ["0", "3", "7"]
    counts = plan(config)
    assert (counts["trainable"], counts["total"]) == (adapters + head, plain + adapters)

    # the best checkpoint, rebuilt by the one loader (adapters and all), scores what the run logged at its best epoch
    run_model = load_run_model(run_id)
    from core.tasks import task_spec
    data = task_spec("classification").entry("run_data")(run_model)
    assert data.evaluate(run_model.model) == pytest.approx(summary["best_val_acc"], abs=1e-9)


def test_init_from_copies_matching_tensors_and_gives_new_classes_a_new_head(runs):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.finetune import adapt
    from core.tasks import task_spec
    from core.presets import preset

    source = runs["shapes-cnn"]
    config = preset("digits-cnn").replace(**{"data.name": "folder", "data.path": runs["folder"],
                                             "data.image_size": 32, "model.hidden": 32, "model.init_from": source,
                                             "optim.epochs": 1, "device": "cpu"})
    metadata = task_spec("classification").example_input(config)[0]
    metadata["classes"] = ["blue", "green", "red"]
    torch.manual_seed(0)
    model = task_spec("classification").build_model(config.replace(**{"model.init_from": None}), metadata)
    fresh_head = model[-1].weight.clone()
    model, report = adapt(config, model, metadata)
    before = load_run_model(source).model.state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith("10."):
            assert tensor.shape[0] == 3 and name not in before or before[name].shape != tensor.shape
        else:
            assert torch.equal(tensor, before[name]), name
    assert torch.equal(model[-1].weight, fresh_head)  # left as initialised
    assert report["copied_tensors"] == 6 and report["tensors"] == 8 and report["head"].startswith("new")

    # a whole run with a frozen backbone: everything but the head bit for bit the source's after training
    run_id = train_in_process(config.replace(**{"model.freeze_backbone": True}))
    after = _state(run_id, "last")
    for name, tensor in after.items():
        if not name.startswith("10."):
            assert torch.equal(tensor, before[name]), name
    summary = _summary(run_id)
    assert summary["trainable_params"] == 32 * 3 + 3
    assert summary["finetune"]["init_from"] == source


def test_init_from_with_the_same_classes_keeps_the_head(runs):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.finetune import adapt
    from core.tasks import task_spec
    config = runs["configs"]["cnn"].replace(**{"model.init_from": runs["cnn"]})
    metadata = load_run_model(runs["cnn"]).metadata
    model = task_spec("classification").build_model(config.replace(**{"model.init_from": None}), metadata)
    model, report = adapt(config, model, metadata)
    before = load_run_model(runs["cnn"]).model.state_dict()
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    assert report["copied_tensors"] == report["tensors"] == 8 and report["head"].startswith("kept")


def _refused(config, *needles):
    from core import jobs
    from core.store import RunStore
    count = len(RunStore().get_runs())
    with pytest.raises(ConfigError) as caught:
        jobs.create(config)
    for needle in needles:
        assert needle in str(caught.value), str(caught.value)
    assert len(RunStore().get_runs()) == count  # nothing recorded
    return str(caught.value)


def test_bad_requests_are_refused_with_a_message_and_nothing_recorded(runs):
    from core import jobs
    from core.presets import preset
    cnn = runs["configs"]["cnn"]
    _refused(cnn.replace(**{"model.init_from": "no-such-run"}), "model.init_from", "no-such-run")
    _refused(cnn.replace(**{"model.init_from": runs["cnn"], "model.lora_rank": 26}),
             "model.lora_rank", "layer '0'", "Conv2d 1→32, 5x5", "at most 25")
    _refused(cnn.replace(**{"model.init_from": runs["cnn"], "model.lora_rank": 2, "model.lora_targets": ["nope*"]}),
             "model.lora_targets", "nope*")
    _refused(cnn.replace(**{"model.init_from": runs["cnn"], "model.name": "mlp"}), "model.name", "'cnn'")
    _refused(cnn.replace(**{"model.lora_rank": 4}), "model.lora_rank", "model.init_from")
    _refused(cnn.replace(**{"model.lora_rank": -1}), "model.lora_rank")
    _refused(cnn.replace(**{"model.lora_dropout": 1.5}), "model.lora_dropout")
    _refused(cnn.replace(**{"model.init_from": runs["cnn"], "model.pretrained": True}), "model.pretrained")
    lm = preset("pydocs-char-lstm").replace(**{"model.init_from": runs["cnn"]})
    _refused(lm, "model.init_from", "image classification")
    queued = jobs.create(cnn)  # recorded, no worker: it stays queued
    _refused(cnn.replace(**{"model.init_from": queued}), "model.init_from", "still queued")


def test_the_cli_and_set_take_the_fields(runs):
    from core.cli import build_parser, config_from_args
    args = build_parser().parse_args(["train", "--preset", "digits-cnn", "--init-from", "123-abc", "--set",
                                      "model.lora_rank=8", "--set", "model.lora_targets=0, 7", "--set",
                                      "lora_alpha=8"])
    config = config_from_args(args)
    m = config.model
    assert (m.init_from, m.lora_rank, m.lora_targets, m.lora_alpha) == ("123-abc", 8, ["0", "7"], 8.0)
    assert config.replace(**{"model.init_from": "none"}).model.init_from is None
    assert config.replace(**{"model.init_from": "20240101"}).model.init_from == "20240101"  # digits stay text
    from core.config import RunConfig
    assert RunConfig.from_json(config.to_json()) == config
