"""The Train form's scale fields (issue 13): the size a folder trains at ("The form shows the size it chose"), and
the Devices field, checked against this machine before launch."""

from PIL import Image

from conftest import open_page


def test_the_form_names_the_native_size_of_a_folder_and_an_explicit_size_replaces_it(lab_home, tmp_path):
    for index, name in enumerate(("cat", "dog")):
        (tmp_path / "pets" / "train" / name).mkdir(parents=True)
        for number in range(6):
            Image.new("RGB", (40, 48), (200 * index, 60, 9 * number)).save(tmp_path / "pets" / "train" / name / f"{number}.png")
    at = open_page("app_pages/train.py", preset="digits-cnn")
    at.selectbox(key="cfg.data.name").set_value("folder").run()
    at.text_input(key="cfg.data.path").set_value(str(tmp_path / "pets")).run()
    assert not at.exception, [e.value for e in at.exception]
    notes = [c.value for c in at.caption if "Trains at" in c.value]
    assert notes and "Trains at 40 × 40 px" in notes[0]
    at.number_input(key="cfg.data.image_size").set_value(24).run()
    assert not [c.value for c in at.caption if "Trains at" in c.value]  # the user's size needs no note


def test_the_devices_field_is_checked_before_launch_and_launches_a_run_on_several_processes(lab_home, no_workers):
    from core.store import RunStore
    at = open_page("app_pages/train.py", preset="digits-mlp")
    at.number_input(key="cfg.devices").set_value(2).run()
    at.selectbox(key="cfg.device").set_value("auto").run()
    # this machine has no GPU: the form says what to do, and Launch waits
    assert any("has no GPU; set device to cpu" in e.value for e in at.error), [e.value for e in at.error]
    assert next(b for b in at.button if b.label == "Launch").disabled
    at.number_input(key="cfg.optim.batch_size").set_value(63).run()
    at.selectbox(key="cfg.device").set_value("cpu").run()
    assert any("must split evenly over 2 devices" in e.value for e in at.error)
    at.number_input(key="cfg.optim.batch_size").set_value(64).run()
    assert not at.error, [e.value for e in at.error]
    next(b for b in at.button if b.label == "Launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(no_workers) == 1
    assert RunStore().get_run(no_workers[0]).config["devices"] == 2
