"""The Train form says which size a folder's images will train at before launch (issue 13: "The form shows the size
it chose")."""

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
