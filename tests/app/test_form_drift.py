"""The Train form follows what the user does (issue: the form drifted): a data-set switch forgets the
preset's run name, a cloned run is named as such in the preset box, turning pretrained weights off turns
freezing off, an empty data path is guidance rather than an error, and missing weights without network
are reported before Launch."""


import pytest
from streamlit.testing.v1 import AppTest

from conftest import open_page
from core import jobs
from core.models import imagenet
from core.presets import preset
from core.store import RunStore
from ui.forms import CLONED



def train_page(**query):
    return open_page("app_pages/train.py", **query)


def launch(at: AppTest):
    return [b for b in at.button if b.label == "Launch"][0]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty hub cache, whatever the machine running the tests has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(imagenet, "_REACHABLE", {})
    monkeypatch.setattr(imagenet, "reachable", lambda url, timeout_s=3.0: False)
    return tmp_path / "torch"


def test_switching_the_data_set_forgets_the_presets_run_name_but_not_a_typed_one(lab_home):
    at = train_page()
    assert at.text_input(key="cfg.name").value == "digits-cnn"
    at.selectbox(key="cfg.data.name").set_value("shapes").run()
    assert at.text_input(key="cfg.name").value == ""
    at.text_input(key="cfg.name").set_value("my shapes").run()
    at.selectbox(key="cfg.data.name").set_value("digits").run()
    assert at.text_input(key="cfg.name").value == "my shapes"


def test_clone_into_form_names_the_clone_in_the_preset_box(lab_home):
    run_id = jobs.create(preset("shapes-cnn").replace(**{"optim.lr": 0.0042}))
    RunStore().finish(run_id, "cancelled")
    at = train_page(run=run_id)
    next(b for b in at.button if b.label == "Clone into form").click().run()
    assert not at.exception
    assert at.selectbox(key="preset_choice").value == CLONED
    assert at.session_state["cfg.optim.lr"] == 0.0042 and at.session_state["cfg.data.name"] == "shapes"
    # picking a preset again loads it
    at.selectbox(key="preset_choice").set_value("digits-mlp").run()
    assert at.session_state["cfg.model.name"] == "mlp"


def test_turning_pretrained_off_turns_freezing_off_and_leaves_launch_usable(lab_home, offline):
    at = train_page(preset="folder-transfer-resnet18")
    assert at.toggle(key="cfg.model.freeze_backbone").value is True
    at.text_input(key="cfg.data.path").set_value(str(lab_home)).run()  # some folder: only the model matters
    at.toggle(key="cfg.model.pretrained").set_value(False).run()
    assert at.toggle(key="cfg.model.freeze_backbone").value is False
    assert at.toggle(key="cfg.model.freeze_backbone").disabled
    assert not any("freez" in e.value for e in at.error), [e.value for e in at.error]


def test_an_empty_data_path_is_guidance_not_an_error(lab_home):
    at = train_page()
    at.selectbox(key="cfg.data.name").set_value("folder").run()
    assert not [e.value for e in at.error if "data.path" in e.value]
    assert any("Upload a .zip or name a folder" in i.value for i in at.info)
    assert launch(at).disabled


def test_missing_weights_without_network_are_reported_before_launch(lab_home, offline):
    (lab_home / "data" / "pets" / "train" / "cat").mkdir(parents=True)
    at = train_page(preset="folder-transfer-resnet18")
    at.text_input(key="cfg.data.path").set_value(str(lab_home / "data" / "pets")).run()
    errors = [e.value for e in at.error]
    assert any("cannot be reached" in e and "resnet18-" in e and "model.pretrained off" in e for e in errors), errors
    assert launch(at).disabled
    # the same file placed in the hub cache: no complaint about the weights
    weights = imagenet.weights_for("resnet18")
    cached = offline / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"placed by hand")
    at.run()
    assert not any("cannot be reached" in e.value for e in at.error)


def test_the_cli_and_jobs_refuse_the_same_launch_before_any_run_is_recorded(lab_home, offline):
    from core.errors import ConfigError
    (lab_home / "data" / "pets" / "train" / "cat").mkdir(parents=True)
    config = preset("folder-transfer-resnet18").replace(**{"data.path": str(lab_home / "data" / "pets")})
    with pytest.raises(ConfigError, match="cannot be reached"):
        jobs.create(config)
    assert RunStore().count_runs() == 0
