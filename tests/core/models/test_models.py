import urllib.error

import pytest
import torch

from core.data import dataset_info, list_datasets
from core.errors import ModelError
from core.models import build, list_models, model_info, parameter_count


def _accepted_datasets(model_name):
    for name in list_datasets():
        info = dataset_info(name)
        if info.image_size >= model_info(model_name).min_image_size:
            yield info


@pytest.mark.parametrize("model_name", list_models(task="classification"))
def test_every_model_gives_one_logit_per_class_for_every_data_set_it_accepts(model_name):
    accepted = list(_accepted_datasets(model_name))
    assert accepted, f"{model_name} accepts no registered data set"
    for info in accepted:
        classes = len(info.classes) if info.classes else 5  # folder data sets: whatever the folder holds
        model = build(model_name, num_classes=classes, in_channels=info.channels, image_size=info.image_size).eval()
        with torch.no_grad():
            out = model(torch.randn(2, info.channels, info.image_size, info.image_size))
        assert out.shape == (2, classes), (model_name, info.name)
        assert torch.isfinite(out).all()


def test_parameter_counts_match_published_figures():
    # ResNet-18 for CIFAR (3x3 stem, no max-pool), 10 classes: the widely quoted 11,173,962
    assert parameter_count(build("resnet18_small", num_classes=10, in_channels=3, image_size=32)) == 11_173_962
    # torchvision's documented count for ImageNet ResNet-18 (1000 classes)
    assert parameter_count(build("resnet18", num_classes=1000, in_channels=3, image_size=224)) == 11_689_512
    # He et al. 2016, table 6: ResNet-20 has 0.27M parameters
    assert 0.26e6 < parameter_count(build("resnet20", num_classes=10, in_channels=3, image_size=32)) < 0.28e6


def test_residual_block_adds_the_shortcut_before_the_final_relu():
    from core.models.resnet_small import BasicBlock
    block = BasicBlock(16, 32, stride=2).eval()
    x = torch.randn(3, 16, 8, 8)
    with torch.no_grad():
        main_path = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        expected = torch.relu(main_path + block.shortcut(x))
        assert torch.allclose(block(x), expected)
        assert block(x).shape == (3, 32, 4, 4)  # the 1x1 projection matched the new shape
    identity = BasicBlock(16, 16, stride=1)
    assert isinstance(identity.shortcut, torch.nn.Identity)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_pretrained_weights_load_from_the_hub_cache_and_the_head_is_replaced(torch_home):
    from torchvision.models import get_model
    from core.models.imagenet import hub_checkpoint_dir, weights_for
    reference = get_model("mobilenet_v3_small", weights=None)
    file_name = weights_for("mobilenet_v3_small").url.rsplit("/", 1)[-1]
    hub_checkpoint_dir().mkdir(parents=True)
    torch.save(reference.state_dict(), hub_checkpoint_dir() / file_name)

    model = build("mobilenet_v3_small", num_classes=4, in_channels=3, image_size=64, pretrained=True,
                  freeze_backbone=True)
    loaded = model.net.state_dict()
    assert torch.equal(loaded["features.0.0.weight"], reference.state_dict()["features.0.0.weight"])
    assert model.net.classifier[-1].out_features == 4
    trainable = [name for name, p in model.net.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.3.weight", "classifier.3.bias"]
    assert parameter_count(model, trainable_only=True) == 1024 * 4 + 4

    # A training step changes the head only: the frozen backbone's batch-norm statistics stay as loaded.
    head_before = model.net.classifier[3].weight.detach().clone()
    model.train()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 64, 64) * 3 + 1), torch.randint(0, 4, (8,)))
    loss.backward()
    optimiser.step()
    after = model.net.state_dict()
    assert torch.equal(after["features.0.1.running_mean"], reference.state_dict()["features.0.1.running_mean"])
    assert not torch.equal(after["classifier.3.weight"], head_before)
    assert model.net.classifier.training  # dropout in the head still trains

    from torchvision.ops import StochasticDepth
    from core.models.imagenet import build_imagenet
    efficientnet = build_imagenet("efficientnet_b0", num_classes=3, in_channels=3, freeze_backbone=True).train()
    drops = [m for m in efficientnet.modules() if isinstance(m, StochasticDepth)]
    assert drops and not any(m.training for m in drops)  # no frozen residual branch is dropped at random


def test_pretrained_weights_offline_give_a_message_saying_where_to_put_the_file(torch_home, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelError) as err:
        build("resnet18", num_classes=3, in_channels=3, image_size=64, pretrained=True)
    message = str(err.value)
    assert "could not get the pretrained weights for 'resnet18'" in message
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message


def test_importing_one_model_family_first_does_not_hide_the_others():
    import subprocess
    import sys
    code = ("import core.models.resnet_small\nfrom core.models import list_models\n"
            "names = list_models()\nassert {'mlp', 'cnn', 'resnet20', 'resnet18'} <= set(names), names\n"
            "assert names.index('mlp') < names.index('resnet18')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_model_card_counts_what_the_registry_builds():
    from core.models.summary import model_card
    card = model_card("cnn", num_classes=10, in_channels=1, image_size=8, hidden=128)
    model = build("cnn", num_classes=10, in_channels=1, image_size=8, hidden=128)
    assert card.params == card.trainable_params == parameter_count(model)
    assert card.layers["parameters"].sum() == card.params and card.description == model_info("cnn").description
    frozen = model_card("resnet18", num_classes=3, in_channels=3, image_size=32, freeze_backbone=True)
    assert frozen.trainable_params < frozen.params


def test_steps_per_epoch_is_what_the_training_batches_serve(lab_home):
    # against the batches a classification run really trains on (1,438 digits in its training split)
    import torch

    from core.data.loader import steps_per_epoch
    from core.jobs.assemble import assemble
    from core.presets import preset
    for batch in (32, 479, 1437, 4096):
        trainer = assemble(preset("digits-mlp").replace(**{"optim.batch_size": batch}), device=torch.device("cpu"))
        train_size = trainer.metadata["data"]["train"]
        assert steps_per_epoch(train_size, batch) == len(trainer.train_batches), (train_size, batch)
