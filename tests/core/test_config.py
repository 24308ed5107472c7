import json

import pytest

from core.config import RunConfig, apply_overrides, parse_set_args
from core.presets import PRESETS, preset
from core.errors import ConfigError
from core.tasks import validate


def test_every_preset_validates_and_round_trips_through_json():
    for name in PRESETS:
        config = preset(name)
        if config.data.name == "folder":
            config.data.path = "/some/photos"
        if config.task == "distillation":  # a student's teacher is a run of this lab: chosen at launch, refused till then
            with pytest.raises(ConfigError, match="task_options.teacher: no teacher chosen; train one first"):
                validate(config)
        else:
            validate(config)
        again = RunConfig.from_json(config.to_json())
        assert again == config
        assert json.loads(again.to_json()) == json.loads(config.to_json())


@pytest.mark.parametrize("override, message", [
    ({"optim.batch_size": 0}, "optim.batch_size: 0 is out of range; allowed 1 to"),
    ({"optim.lr": -0.1}, "optim.lr: -0.1 is out of range; must be greater than 0.0"),
    ({"optim.epochs": 10_001}, "optim.epochs: 10001 is out of range; allowed 1 to 10,000"),
    ({"model.name": "alexnet9000"}, "model.name: 'alexnet9000' is not one of: "),
    ({"data.name": "imagenet22k"}, "data.name: 'imagenet22k' is not one of: "),
    ({"model.name": "resnet18"}, "data.image_size: model 'resnet18' needs images of at least 32px, but 'digits' gives 8px"),
    ({"optim.optimizer": "lion"}, "optim.optimizer: 'lion' is not one of: sgd, adam, adamw"),
    ({"device": "tpu"}, "device: 'tpu' is not one of auto, cpu, cuda, cuda:N, mps"),
    ({"amp": "fp8"}, "amp: 'fp8' is not one of: off, bf16, fp16"),
    ({"optim.nesterov": True}, "optim.nesterov: needs optimizer 'sgd' with momentum > 0"),
    ({"model.pretrained": True}, "model.pretrained: 'cnn' has no pretrained weights"),
    ({"data.name": "folder"}, "data.path: the 'folder' data set needs a folder or .zip path"),
    ({"optim.batch_size": 2.5}, "optim.batch_size: expected a whole number, got 2.5"),
])
def test_bad_values_name_the_field_and_the_allowed_range(override, message):
    with pytest.raises(ConfigError) as err:
        validate(RunConfig().replace(**override))
    assert message in str(err.value)


def test_overrides_convert_strings_to_the_field_type_and_accept_short_names():
    config = apply_overrides(preset("digits-cnn"), parse_set_args(["lr=0.05", "optim.epochs=3", "augment_flip=true",
                                                                   "grad_clip=1", "data.path=/x/y"]))
    assert config.optim.lr == 0.05 and config.optim.epochs == 3 and config.data.augment_flip is True
    assert config.optim.grad_clip == 1 and config.data.path == "/x/y"
    assert preset("digits-cnn").optim.lr != 0.05  # the preset itself is untouched


def test_unknown_and_ambiguous_override_keys_are_errors():
    with pytest.raises(ConfigError, match="nonsense: unknown config field"):
        apply_overrides(RunConfig(), {"nonsense": "1"})
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set_args(["lr"])
    with pytest.raises(ConfigError, match="expected true or false"):
        apply_overrides(RunConfig(), {"compile": "maybe"})


def test_from_dict_rejects_unknown_fields_with_their_path():
    raw = RunConfig().to_dict()
    raw["optim"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError, match="optim.learning_rate: unknown field"):
        RunConfig.from_dict(raw)


def test_wrong_types_are_config_errors_not_crashes():
    with pytest.raises(ConfigError, match="optim.epochs: expected a whole number, got None"):
        validate(RunConfig().replace(**{"optim.epochs": "none"}))
    with pytest.raises(ConfigError, match="device: "):
        validate(RunConfig().replace(device=3))
