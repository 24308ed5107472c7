"""The Media paths on the GPU: a tiny run of each family, trained on the suite's device, loaded there through the
one loader (or the family's own loader that takes a device) and run through the family's inference entry points.

Every entry point takes a loaded model (or a `device=`) and follows it onto the GPU; the pages load models with
`ui.resources.MEDIA_DEVICE` ("auto": the GPU when there is one). RL's `play_run` takes no device (its `play` follows
the model it is given)."""

from __future__ import annotations

import io

import pytest

from conftest import noise_image, train_in_process
from core.presets import preset
from suite import free_gpu, suite_device, suite_home  # noqa: F401

# suite_home: one LAB_HOME for the module (suite.py)
pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("suite_home")]


@pytest.fixture(autouse=True)
def _release_memory():
    yield
    from core.inference import clear_caches
    clear_caches()
    free_gpu()


def tiny_run(name: str, device, **overrides) -> str:
    """A finished run of preset `name` on `device`: one epoch on a few hundred samples."""
    config = preset(name).replace(**{"optim.epochs": 1, "device": str(device), "amp": "off", **overrides})
    return train_in_process(config)


def on_device(run_model, device) -> None:
    assert {p.device.type for p in run_model.model.parameters()} == {device.type}


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_image_classification_predicts_classifies_and_explains_on_the_gpu():
    from core.inference import load_source
    from core.tasks.classification.explain import explain
    from core.tasks.classification.predictor import classify_images, classify_video, load_run_predictor
    device = suite_device()
    run_id = tiny_run("digits-cnn", device, **{"data.limit": 256})
    predictor = load_run_predictor(run_id, "best", device=device)
    assert predictor.device.type == device.type
    table = classify_images(predictor, [("a.png", noise_image((8, 8), mode="L")), ("b.png", noise_image((30, 20)))])
    assert len(table) == 2 and table["error"].fillna("").eq("").all() and table["p1"].between(0, 1).all()
    frames, summary = classify_video(predictor, [(0.0, noise_image(seed=1)), (0.5, noise_image(seed=2))])
    assert len(frames) == 2 and len(summary) > 0
    heat = explain(predictor, noise_image((8, 8), mode="L"), "gradcam")
    assert heat.shape == (8, 8) and 0 <= heat.min() <= heat.max() <= 1
    source = load_source({"kind": "run", "run_id": run_id, "which": "best"}, device=device)
    assert source.device.type == device.type


def test_captioning_captions_on_the_gpu():
    from core.tasks.captioning.caption import load_captioner, scene
    device = suite_device()
    run_id = tiny_run("scenes-captioning", device, **{"data.limit": 256, "data.num_samples": 600})
    captioner = load_captioner(run_id, "best", device=device)
    assert next(captioner.model.parameters()).device.type == device.type
    image, _ = scene(7, 32)
    assert isinstance(captioner.greedy(image)["caption"], str)
    assert captioner.beam(image, width=2)


def test_gan_generates_and_interpolates_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.gan.generate import generate_grid, interpolate
    device = suite_device()
    run_id = tiny_run("digits-dcgan", device, **{"data.limit": 256})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    assert generate_grid(run_model, seed=1, count=4)[:8] == b"\x89PNG\r\n\x1a\n"
    assert interpolate(run_model, 1, 2, steps=3).shape[0] == 3


def test_autoencoder_reconstructs_encodes_walks_and_samples_on_the_gpu():
    from core.tasks.autoencoder.reconstruct import encode_validation, latent_walk, prior_samples, reconstruct_upload
    from core.tasks.checkpoints import load_run_model
    device = suite_device()
    run_id = tiny_run("digits-vae", device, **{"data.limit": 256})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    shown, rebuilt = reconstruct_upload(run_model, png(noise_image((16, 16), mode="L")), "digit.png")
    assert shown.shape == rebuilt.shape
    codes = encode_validation(run_model, limit=100)
    assert latent_walk(run_model, steps=3, codes=codes) is not None
    assert prior_samples(run_model, count=4).shape[0] == 4


def test_a_language_model_generates_and_shows_attention_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.language_model.generate import attention_map, generate
    device = suite_device()
    run_id = tiny_run("pydocs-char-gpt", device, **{"task_options.steps_per_epoch": 10, "task_options.eval_batches": 2,
                                                      "task_options.sample_every": 0})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    text = "".join(generate(run_model, "the ", length=30, seed=1))
    assert len(text) == 30
    assert attention_map(run_model, "return the") is not None


def test_a_policy_plays_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.rl.play import play, play_run
    device = suite_device()
    run_id = tiny_run("cartpole-actor-critic", device, **{"task_options.updates_per_epoch": 3,
                                                            "task_options.eval_episodes": 2})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    episode = play(run_model.model, run_model.metadata["env"]["name"], seed=3, max_steps=50, draw=False)
    assert 0 < len(episode.actions) <= 50
    assert play_run(run_id, "best", seed=3, max_steps=50, draw=False).actions  # its own loader: the CPU


def test_a_video_classifier_classifies_a_clip_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.video.clips import classify_clip, decode_clip, example_video
    device = suite_device()
    run_id = tiny_run("moving-shapes-early-fusion", device, **{"data.limit": 128})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    size = int(run_model.metadata["preprocessing"]["image_size"])
    frames = decode_clip(example_video("up", frames=12), name="up.mp4", size=size, every_s=0.1)
    prediction = classify_clip(run_model, frames, stride=2)
    assert prediction is not None


def test_seq2seq_translates_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.seq2seq.translate import translate
    device = suite_device()
    run_id = tiny_run("numbers-en-transformer", device, **{"data.limit": 512, "task_options.eval_examples": 64})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    assert isinstance(translate(run_model, "42").text, str)
    assert isinstance(translate(run_model, "42", beam=3).text, str)


def test_text_classification_classifies_and_explains_on_the_gpu():
    from core.tasks.checkpoints import load_run_model
    from core.tasks.text_classification.predict import classify_text, explain_text
    device = suite_device()
    run_id = tiny_run("docstrings-cnn", device, **{"data.limit": 256})
    run_model = load_run_model(run_id, "best", device=device)
    on_device(run_model, device)
    sentence = "Return the number of items in a container."
    assert classify_text(run_model, sentence, top_k=3).top
    assert explain_text(run_model, sentence, steps=8) is not None
