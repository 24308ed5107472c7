"""Image captioning: BLEU against hand-worked values, the data sets, decoding, training, checkpoints, Media page."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import pytest
import torch

from core.data.scenes import COLOURS, Vocabulary, describe, generate_scenes, tokenize
from core.errors import DataError
from core.models.captioning import beam_search, greedy_decode
from core.tasks import validate
from core.tasks.captioning import corpus_bleu


def words(text: str) -> list[str]:
    return tokenize(text)


# ---- BLEU ---------------------------------------------------------------------------------------

# Papineni et al. 2002, Example 1 (section 2.1)
P1 = words("It is a guide to action which ensures that the military always obeys the commands of the party.")
P2 = words("It is to insure the troops forever hearing the activity guidebook that party direct.")
PAPER_REFS = [words("It is a guide to action that ensures that the military will forever heed Party commands."),
              words("It is the guiding principle which guarantees the military forces always being under the "
                    "command of the Party."),
              words("It is the practical guide for the army always to heed the directions of the party.")]


def test_modified_precision_matches_the_worked_examples_of_the_bleu_paper():
    # Example 2: "the the the the the the the" scores 2/7, not 7/7, because "the" is clipped to 2
    refs = [words("The cat is on the mat."), words("There is a cat on the mat.")]
    assert corpus_bleu([words("the the the the the the the")], [refs])["bleu1"] == pytest.approx(2 / 7)
    # Example 1: unigram precision 17/18 and 8/14, bigram precision 10/17 and 1/13. P1 has the length of
    # its closest reference (18 words); P2 (14 words) pays the brevity penalty of its closest one (16).
    p1 = corpus_bleu([P1], [PAPER_REFS])
    assert p1["bleu1"] == pytest.approx(17 / 18)
    assert p1["bleu2"] == pytest.approx(math.sqrt(17 / 18 * 10 / 17))
    p2, bp = corpus_bleu([P2], [PAPER_REFS]), math.exp(1 - 16 / 14)
    assert p2["bleu1"] == pytest.approx(bp * 8 / 14)
    assert p2["bleu2"] == pytest.approx(bp * math.sqrt(8 / 14 * 1 / 13))


def test_corpus_bleu_pools_counts_over_sentences_and_applies_the_brevity_penalty():
    # pooled: p1 = (3 + 1) / 5, p2 = (2 + 0) / 3; c = r = 5, no penalty
    scores = corpus_bleu([words("the cat sat"), words("a dog")], [[words("the cat sat")], [words("the dog")]])
    assert scores["bleu1"] == pytest.approx(0.8)
    assert scores["bleu2"] == pytest.approx(math.sqrt(0.8 * 2 / 3))
    assert scores["bleu3"] == pytest.approx((0.8 * 2 / 3 * 1.0) ** (1 / 3))  # one trigram, matched
    assert scores["bleu4"] == 0.0  # no 4-gram at all: no smoothing, as in the paper

    # three words against an eight-word reference: every n-gram matches, but BP = exp(1 - 8/3)
    short = corpus_bleu([words("a red circle")], [[words("a red circle left of a blue square")]])
    assert short["bleu1"] == pytest.approx(math.exp(1 - 8 / 3))
    assert short["bleu3"] == pytest.approx(math.exp(1 - 8 / 3))
    exact = corpus_bleu([words("a red circle left of a blue square")],
                        [[words("a blue square right of a red circle"), words("a red circle left of a blue square")]])
    assert exact == pytest.approx({"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0})


def test_brevity_penalty_uses_the_closest_reference_length_and_handles_edge_cases():
    assert corpus_bleu([words("a b c d e f")], [[words("a b c d e")]])["bleu1"] == pytest.approx(5 / 6)  # BP 1
    assert corpus_bleu([words("a b c d e")], [[words("a b c d e")]])["bleu1"] == pytest.approx(1.0)
    assert corpus_bleu([words("a b c d")], [[words("a b c d e f g h")]])["bleu1"] == pytest.approx(math.exp(-1))
    # lengths 3 and 5 are equally close to 4: the shorter counts, so a 4-word hypothesis is not penalised
    hyp = words("a b c d")
    assert corpus_bleu([hyp], [[words("a b c"), words("a b c d e")]])["bleu1"] == pytest.approx(1.0)
    assert corpus_bleu([[]], [[words("a red circle")]])["bleu1"] == 0.0  # an empty caption
    with pytest.raises(ValueError):
        corpus_bleu([hyp], [])
    with pytest.raises(ValueError):
        corpus_bleu([hyp], [[]])


# ---- data -----------------------------------------------------------------------------------------

def test_scenes_are_deterministic_and_their_captions_name_what_is_drawn():
    x1, o1 = generate_scenes(60, seed=3)
    x2, o2 = generate_scenes(60, seed=3)
    assert x1.shape == (60, 3, 64, 64) and x1.dtype == torch.uint8
    assert torch.equal(x1, x2) and o1 == o2
    assert not torch.equal(x1, generate_scenes(60, seed=4)[0])
    seen = {1: 0, 2: 0}
    for image, objects in zip(x1, o1):
        captions = describe(objects)
        seen[len(objects)] = seen.get(len(objects), 0) + 1
        assert 3 <= len(captions) <= 4 and len(set(captions)) == len(captions)
        for colour, shape, *_ in objects:
            assert all(shape in c for c in captions) and all(colour in c for c in captions)
        if len(objects) == 1:  # the pixels unlike the background are the named colour
            pixels = image.reshape(3, -1).float()
            background = pixels.median(dim=1, keepdim=True).values
            bright = pixels[:, (pixels - background).abs().sum(0) > 60].mean(1)
            nearest = min(COLOURS, key=lambda c: sum((bright[i] - COLOURS[c][i]) ** 2 for i in range(3)))
            assert nearest == objects[0][0]
        if len(objects) == 2:  # "left of" / "above" follow the grid cells: the first-named shape is that one
            first, second = sorted(objects, key=lambda o: (o[4], o[3]))  # by column, then row
            relation = "left of" if first[4] != second[4] else "above"
            phrased = [c for c in captions if relation in c]
            assert phrased and all(c.index(f"{first[0]} {first[1]}") < c.index(relation)
                                   < c.index(f"{second[0]} {second[1]}") for c in phrased), (objects, captions)
    assert seen[1] >= 5 and seen[2] >= 5  # both kinds of scene were checked


def test_vocabulary_keeps_specials_first_and_maps_rare_words_to_unk():
    assert tokenize("A red Circle, left of a BLUE square.") == ["a", "red", "circle", "left", "of", "a", "blue",
                                                                "square"]
    vocab = Vocabulary.build([words("a red circle"), words("a blue circle"), words("a red square")], min_count=2)
    assert vocab.words == ["<pad>", "<start>", "<end>", "<unk>", "a", "circle", "red"]
    ids = vocab.encode(words("a blue circle"), max_length=20)
    assert ids == [1, 4, 3, 5, 2]
    assert vocab.decode(ids + [0, 0]) == ["a", "<unk>", "circle"]
    assert vocab.encode(words("a red circle"), max_length=2) == [1, 4, 6, 2]


def _scene_png(seed: int) -> tuple[bytes, list[str]]:
    from PIL import Image
    images, objects = generate_scenes(1, seed, image_size=32)
    buffer = io.BytesIO()
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(buffer, format="PNG")
    return buffer.getvalue(), describe(objects[0])


def _write_folder(root, count: int, extra_rows=(), bad_images=()):
    root.mkdir(parents=True, exist_ok=True)
    rows = ["image,caption"]
    for i in range(count):
        png, captions = _scene_png(i)
        (root / f"scene{i}.png").write_bytes(png)
        rows.append(f"scene{i}.png,\"{captions[0]}\"")
    for name in bad_images:
        (root / name).write_bytes(b"not an image")
        rows.append(f"{name},a broken picture")
    (root / "captions.csv").write_text("\n".join([*rows, *extra_rows]) + "\n")
    return root


def _folder_config(path, **options):
    from core.config import RunConfig
    return validate(RunConfig.from_dict({"task": "captioning", "data": {"name": "captions-folder", "path": str(path),
                                                              "options": {"image_size": 32, **options}},
                                "model": {"name": "cnn_lstm_captioner"}}))


def test_captions_folder_reads_a_folder_and_a_zip_and_skips_bad_images(lab_home, tmp_path):
    from core.tasks.captioning import load_data
    folder = _write_folder(tmp_path / "mine", 5, extra_rows=["scene0.png,a second caption"],
                           bad_images=["broken.png"])
    data = load_data(_folder_config(folder, val_fraction=0.2))
    assert data.skipped == 1 and len(data.train_captions) + len(data.val_captions) == 5
    assert data.train_x.shape[1:] == (3, 32, 32)
    assert sorted(len(c) for c in data.train_captions + data.val_captions) == [1, 1, 1, 1, 2]

    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"wrapped/{path.name}")  # inside one folder, as zipping a folder gives
    zipped = load_data(_folder_config(archive, val_fraction=0.2))
    assert torch.equal(zipped.train_x, data.train_x) and zipped.train_captions == data.train_captions


def test_captions_folder_explains_missing_images_and_broken_csv_files(lab_home, tmp_path):
    from core.tasks.captioning import load_data
    missing = [f"gone{i}.png,a caption" for i in range(7)]
    folder = _write_folder(tmp_path / "missing", 3, extra_rows=missing)
    with pytest.raises(DataError, match=r"names 7 image\(s\) that are not there: gone0.png, gone1.png, gone2.png, "
                                        r"gone3.png, gone4.png and 2 more"):
        load_data(_folder_config(folder))

    cases = {"": "is empty", "file,text\na.png,hello\n": "columns image and caption",
             "image,caption\n": "no captions", "image,caption\nscene0.png,\n": "lack an image or a caption",
             "image,caption\n../outside.png,sneaky\n": "outside its folder"}
    for text, message in cases.items():
        bad = _write_folder(tmp_path / f"bad{len(message)}", 1)
        (bad / "captions.csv").write_text(text)
        with pytest.raises(DataError, match=message):
            load_data(_folder_config(bad))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no captions.csv"):
        load_data(_folder_config(empty))


# ---- model, decoding, training ----------------------------------------------------------------------

def _tiny_model(vocab_size=12, inject="init"):
    from core.models.captioning import CNNLSTMCaptioner
    torch.manual_seed(0)
    return CNNLSTMCaptioner(vocab_size=vocab_size, width=8, embed_dim=16, hidden_size=32, inject=inject).eval()


@pytest.mark.parametrize("inject", ["init", "first_input"])
def test_beam_width_one_is_greedy_and_beams_are_sorted_with_true_log_probabilities(inject):
    model = _tiny_model(inject=inject)
    images = torch.randn(4, 3, 32, 32)
    tokens, log_probs = greedy_decode(model, images, max_length=6)
    for i in range(4):
        (only,) = beam_search(model, images[i:i + 1], width=1, max_length=6)
        assert only["tokens"] == tokens[i] and only["log_prob"] == pytest.approx(float(log_probs[i]), abs=1e-5)
        beams = beam_search(model, images[i:i + 1], width=4, max_length=6, alpha=0.7)
        assert 1 <= len(beams) <= 4
        assert [b["score"] for b in beams] == sorted((b["score"] for b in beams), reverse=True)
        assert len({tuple(b["tokens"]) for b in beams}) == len(beams)
        for beam in beams:  # the reported log-probability is the model's, recomputed with teacher forcing
            sequence = torch.tensor([[1, *beam["tokens"]]])
            with torch.no_grad():
                logp = torch.log_softmax(model(images[i:i + 1], sequence), dim=-1)[0]
            targets = [*beam["tokens"], 2]
            expected = sum(float(logp[t, w]) for t, w in enumerate(targets))
            assert beam["log_prob"] == pytest.approx(expected, abs=1e-4)
            assert beam["score"] == pytest.approx(beam["log_prob"] / (len(beam["tokens"]) + 1) ** 0.7)


def test_the_captioner_overfits_a_few_scenes_word_for_word(lab_home, tmp_path):
    from core.jobs.assemble import assemble
    from core.engine.callbacks import Callback

    class Losses(Callback):
        def __init__(self):
            self.values = []

        def on_train_log(self, trainer, metrics):
            self.values.append(metrics["train_loss"])

    folder = _write_folder(tmp_path / "few", 7)
    config = _folder_config(folder, val_fraction=0.1).replace(**{
        "model.options.width": 8, "model.options.hidden_size": 128, "model.options.embed_dim": 32,
        "optim.lr": 1e-2, "optim.batch_size": 8, "optim.epochs": 40, "log_every": 1,
        "task_options.sample_every": 0})
    losses = Losses()
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[losses])
    trainer.fit()
    assert losses.values[0] > 2.0  # about ln(vocabulary size) at the start
    assert losses.values[-1] < 0.05 * losses.values[0], (losses.values[0], losses.values[-1])

    batches = trainer.train_batches
    images = batches.normalise(batches.x)
    trainer.model.eval()
    greedy = trainer.task.captions(trainer.model, images)
    # one caption per image: the training caption of every image, word for word
    truth = [[] for _ in range(len(images))]
    for row, owner in zip(batches.tokens.tolist(), batches.image_of.tolist()):
        truth[owner] = trainer.task.vocab.decode(row)
    assert len(greedy) == 6 and greedy == truth


# ---- runs, checkpoints and the Media page ---------------------------------------------------------------

def _completed_run() -> str:
    from core import jobs
    from core.presets import preset
    from core.jobs.runner import execute_run
    config = preset("scenes-captioning").replace(**{
        "data.options.num_samples": 40, "data.options.image_size": 32, "model.options.width": 8,
        "model.options.hidden_size": 32, "model.options.embed_dim": 16, "optim.epochs": 2, "optim.batch_size": 16,
        "task_options.sample_every": 1})
    run_id = jobs.create(config)
    assert execute_run(run_id) == "completed"
    return run_id


def test_a_run_checkpoints_and_loads_through_load_run_model_and_records_sample_captions(lab_home):
    from core.engine.samples import latest_samples, list_samples
    from core.tasks.checkpoints import load_run_model
    from core.tasks.captioning.caption import load_captioner, scene
    from core.models.captioning import CNNLSTMCaptioner
    from core.paths import run_dir
    from core.store import RunStore

    run_id = _completed_run()
    summary = RunStore().get_run(run_id).summary
    assert summary["best_metric"] == "val_bleu4" and "val_bleu1" in summary["last"]
    assert 0.0 <= summary["last"]["val_bleu1"] <= 1.0 and summary["last"]["val_loss"] > 0

    loaded = load_run_model(run_id, "best")
    assert isinstance(loaded.model, CNNLSTMCaptioner) and loaded.task == "captioning"
    assert loaded.metadata["vocab"][:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert loaded.metadata["preprocessing"]["image_size"] == 32

    captioner = load_captioner(run_id, "last")
    image, truth = scene(7, 32)
    result = captioner.greedy(image)
    assert set(result["caption"].split()) <= set(captioner.vocab.words) and result["log_prob"] <= 0
    assert captioner.beam(image, width=1)[0]["caption"] == result["caption"]

    folder = run_dir(run_id)
    assert len(list_samples(folder, "captions")) >= 3  # at the start, every step, at the end
    items = latest_samples(folder)["captions"].load()["items"]
    assert len(items) == 4 and all(item["references"] and item["image"] for item in items)


def test_media_page_captions_an_uploaded_png_and_a_generated_scene(lab_home):
    from streamlit.testing.v1 import AppTest

    from core.tasks.captioning.caption import load_captioner, scene
    run_id = _completed_run()
    image, _ = scene(11, 32)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    expected = load_captioner(run_id, "best").greedy(image)["caption"] or "(empty caption)"

    at = AppTest.from_file(str(Path(__file__).resolve().parents[3] / "app_pages" / "media.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="media_source").value == 0  # the run
    at.file_uploader(key="caption_upload").set_value(("scene.png", buffer.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**{expected}**" in [m.value for m in at.markdown]
    assert len(at.dataframe[0].value) == 3  # beam width 3 by default

    at.slider(key="caption_beam_width").set_value(1).run()
    assert at.dataframe[0].value["caption"].tolist() == [expected.replace("(empty caption)", "")]

    at.file_uploader(key="caption_upload").set_value(("broken.png", b"not a picture", "image/png")).run()
    assert not at.exception and any("broken.png" in e.value for e in at.error)

    at.button(key="caption_scene").click().run()
    assert not at.exception and any(c.value.startswith("True captions:") for c in at.caption)


def test_train_page_previews_captioned_scenes_and_shows_live_sample_captions(lab_home, tmp_path):
    from streamlit.testing.v1 import AppTest
    app = str(Path(__file__).resolve().parents[3] / "app.py")
    at = AppTest.from_file(app, default_timeout=60)
    at.run()
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="cfg.task").set_value("captioning").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="preset_choice").value == "scenes-captioning"
    captions = [c.value for c in at.caption]
    assert any("2,700 training images" in c and "vocabulary" in c for c in captions)
    assert any(" left of " in c or " above " in c for c in captions)  # scenes shown with their captions

    folder = _write_folder(tmp_path / "mine", 4)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, path.name)
    at.selectbox(key="cfg.data.name").set_value("captions-folder").run()
    at.file_uploader(key="captions_zip").set_value(("mine.zip", archive.getvalue(), "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="cfg.data.path").value.endswith(".zip")
    assert any(c.value.startswith("captioned folder") and "3 training images" in c.value for c in at.caption)

    run_id = _completed_run()
    watch = AppTest.from_file(app, default_timeout=60)
    watch.query_params["run"] = run_id
    watch.run()
    watch.switch_page("app_pages/train.py").run()
    assert not watch.exception, [e.value for e in watch.exception]
    assert any(m.value.startswith("**Greedy captions of validation images**") for m in watch.markdown)
    assert any(c.value.startswith("**") and "true: " in c.value for c in watch.caption)
