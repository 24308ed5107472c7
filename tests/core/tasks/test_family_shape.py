"""Every family has one shape: a package under core/tasks whose SPEC declares its options, validation,
setup, model rebuild, presets and the inference entry points pages call."""

import pytest

from core.tasks import list_tasks, task_spec


@pytest.mark.parametrize("name", list_tasks())
def test_every_family_declares_entry_points_that_resolve_and_has_presets(name):
    spec = task_spec(name)
    assert spec.name == name and spec.title and spec.description
    assert spec.entry_points, f"{name} declares no inference entry point"
    for entry in spec.entry_points:
        assert callable(spec.entry(entry)), (name, entry)
    assert spec.presets, f"{name} has no preset in core/presets"
    from core.presets import preset
    assert {preset(p).task for p in spec.presets} == {name}


def test_an_unknown_entry_point_names_the_ones_there_are():
    with pytest.raises(LookupError, match="no entry point 'dance'; it has: generate, interpolate"):
        task_spec("gan").entry("dance")


def test_model_parameters_match_the_model_a_run_trains(lab_home):
    import torch

    from core.jobs.assemble import assemble
    from core.models import parameter_count
    from core.presets import preset
    from core.tasks import model_parameters

    config = preset("digits-dcgan")
    trainer = assemble(config, device=torch.device("cpu"))
    counts = model_parameters(config, {"preprocessing": trainer.metadata["preprocessing"]})
    assert counts["total"] == parameter_count(trainer.model) == trainer.metadata["params"]
    assert counts["generator"] == parameter_count(trainer.model.generator)
    assert counts["generator"] + counts["discriminator"] == counts["total"]
