"""Autoencoder / VAE family: losses against torch references, the reparameterisation, learning on the
digits, checkpoints through core.inference, bad uploads, and the Media and Runs pages."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from core.presets import preset
from core.errors import ConfigError, InputError
from core.tasks import validate

ROOT = Path(__file__).resolve().parents[3]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(name="digits-vae", **overrides):
    return validate(preset(name).replace(**{"model.options.width": 8, "model.options.hidden": 64, "optim.epochs": 1,
                                   "task_options.sample_every": 10, **overrides}))


@pytest.mark.parametrize("size, channels", [(8, 1), (28, 1), (32, 3), (7, 3)])
def test_models_reconstruct_the_input_shape_and_share_one_interface(size, channels):
    from core.models.autoencoder import build_conv_autoencoder, build_conv_vae
    x = torch.rand(4, channels, size, size)
    plain = build_conv_autoencoder(in_channels=channels, image_size=size, latent_dim=3, width=4, hidden=16)
    logits, mu, logvar = plain(x)
    assert logits.shape == x.shape and mu.shape == (4, 3) and logvar is None
    vae = build_conv_vae(in_channels=channels, image_size=size, latent_dim=3, width=4, hidden=16)
    logits, mu, logvar = vae(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (4, 3)
    assert vae.decode(torch.zeros(2, 3)).shape == (2, channels, size, size)


def test_reparameterisation_is_mu_plus_sigma_times_noise_and_carries_gradients():
    from core.models.autoencoder import ConvAutoencoder
    mu = torch.tensor([[0.5, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, np.log(0.25)]], dtype=torch.float32, requires_grad=True)
    noise = torch.tensor([[1.0, -1.0]])
    z = ConvAutoencoder.reparameterize(mu, logvar, noise)
    torch.testing.assert_close(z, torch.tensor([[1.5, -2.5]]))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, torch.tensor([[0.5, -0.25]]))  # dz/dlogvar = sigma * eps / 2
    torch.manual_seed(0)
    draws = ConvAutoencoder.reparameterize(mu.detach().expand(20000, 2), logvar.detach().expand(20000, 2))
    torch.testing.assert_close(draws.mean(0), torch.tensor([0.5, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.tensor([1.0, 0.5]), atol=0.03, rtol=0)


def test_vae_samples_while_training_and_uses_the_mean_in_eval_mode():
    from core.models.autoencoder import build_conv_vae
    vae = build_conv_vae(in_channels=1, image_size=8, latent_dim=2, width=4, hidden=16)
    x = torch.rand(3, 1, 8, 8)
    vae.train()
    assert not torch.equal(vae(x)[0], vae(x)[0])
    vae.eval()
    logits, mu, _ = vae(x)
    torch.testing.assert_close(logits, vae.decode(mu))


def test_losses_match_torch_references():
    from core.tasks.autoencoder import kl_to_standard_normal, reconstruction_loss
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    normal = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    reference = torch.distributions.kl_divergence(normal, torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), reference)
    logits, target = torch.randn(5, 1, 4, 4), torch.rand(5, 1, 4, 4)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(reconstruction_loss(logits, target, "bce"), expected)
    expected = F.mse_loss(torch.sigmoid(logits), target, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(reconstruction_loss(logits, target, "mse"), expected)


@pytest.mark.parametrize("name", ["digits-autoencoder", "digits-vae"])
def test_validation_loss_falls_well_below_its_start(lab_home, name):
    from core.jobs.assemble import assemble
    trainer = assemble(tiny_config(name, **{"optim.epochs": 6, "optim.lr": 1e-2}), device=torch.device("cpu"))
    start = trainer.task.evaluate(trainer.model, trainer.val_batches)
    summary = trainer.fit()
    end = summary["last"]
    assert start["val_loss"] > 40  # about 64 ln 2: every pixel a coin flip
    assert end["val_loss"] < 0.65 * start["val_loss"], (start, end)
    assert summary["best_metric"] == "val_loss" and summary["best_val_loss"] <= end["val_loss"]
    if name == "digits-vae":
        assert end["val_kl"] > 0.5  # the code carries information about the image
        assert end["val_loss"] == pytest.approx(end["val_recon"] + end["val_kl"])
        assert end["epoch_train_loss"] == pytest.approx(end["epoch_train_recon"] + end["epoch_train_kl"], rel=1e-4)
    else:
        assert "val_kl" not in end


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"task_options.loss: 'l1' is not one of: bce, mse"):
        validate(preset("digits-vae").replace(**{"task_options.loss": "l1"}))
    with pytest.raises(ConfigError, match=r"task_options.beta: -1 is out of range"):
        validate(preset("digits-vae").replace(**{"task_options.beta": -1}))
    with pytest.raises(ConfigError, match=r"model.name: 'dcgan' is not one of: conv_autoencoder, conv_vae"):
        validate(preset("digits-vae").replace(**{"model.name": "dcgan"}))
    for name in ("digits-autoencoder", "digits-vae"):
        assert validate(preset(name)).model.options["latent_dim"] == 2


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _digit_on_paper() -> Image.Image:
    """A digit as people photograph it: dark ink on white paper, larger than the training images."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    ink = digits.images[int((digits.target == 0).nonzero()[0][0])] * 255 / 16
    return Image.fromarray((255 - ink).astype("uint8"), mode="L").resize((64, 64), Image.Resampling.NEAREST)


def train_tiny_run(name="digits-vae", **overrides) -> str:
    from core import jobs
    from core.jobs.runner import execute_run
    run_id = jobs.create(tiny_config(name, **overrides))
    assert execute_run(run_id) == "completed"
    return run_id


def test_a_completed_vae_reconstructs_uploads_encodes_and_walks(lab_home):
    from core.engine.samples import list_samples
    from core.tasks.checkpoints import load_run_model
    from core.tasks.autoencoder.reconstruct import encode_validation, latent_walk, prepare_image, reconstruct, reconstruct_upload
    from core.paths import run_dir

    run_id = train_tiny_run()
    names = {s.name for s in list_samples(run_dir(run_id))}
    assert names == {"reconstructions", "prior"}
    grid = Image.open(io.BytesIO(list_samples(run_dir(run_id), "reconstructions")[-1].load()))
    assert grid.size == (16 * 32 + 17 * 2, 2 * 32 + 3 * 2)  # 16 inputs over 16 reconstructions

    run_model = load_run_model(run_id, "best")
    shown, rebuilt = reconstruct_upload(run_model, _png(_digit_on_paper()), "zero.png")
    assert shown.shape == rebuilt.shape == (8, 8) and shown.dtype == rebuilt.dtype == np.uint8
    assert shown.mean() < 128  # inverted automatically: the training digits are light on dark
    plain = prepare_image(run_model, _digit_on_paper(), invert=False)
    assert float(plain.mean()) > 0.5 and plain.shape == (1, 1, 8, 8)
    colour = np.zeros((20, 30, 3), dtype=np.uint8)
    assert reconstruct(run_model, colour, invert=False)[0].shape == (8, 8)  # squashed and turned grey

    codes = encode_validation(run_model)
    assert codes.coords.shape == (359, 2) and codes.labels.shape == (359,) and codes.axes == ("z1", "z2")
    assert set(codes.labels.tolist()) == set(range(10)) and codes.classes[3] == "3"
    walk = latent_walk(run_model, steps=5)
    assert walk.xs == [-2.0, -1.0, 0.0, 1.0, 2.0] and walk.ys[0] == 2.0
    assert Image.open(io.BytesIO(walk.png)).size == (5 * 32 + 6, 5 * 32 + 6)


def test_bad_uploads_get_a_clear_message(lab_home):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.autoencoder.reconstruct import encode_validation, latent_walk, prior_samples, reconstruct, reconstruct_upload

    run_model = load_run_model(train_tiny_run("digits-autoencoder", **{"data.limit": 128}), "last")
    with pytest.raises(InputError, match="notes.png is not an image in a supported format"):
        reconstruct_upload(run_model, b"just some text, not a picture", "notes.png")
    with pytest.raises(InputError, match="empty.png is empty"):
        reconstruct_upload(run_model, b"", "empty.png")
    with pytest.raises(InputError, match="the picture is 3x2 pixels; it needs at least 4 pixels on each side"):
        reconstruct_upload(run_model, _png(Image.new("L", (3, 2))), "tiny.png")
    with pytest.raises(InputError, match=r"expected a uint8 picture of shape .* got float64 \(8, 8\)"):
        reconstruct(run_model, np.zeros((8, 8)))
    with pytest.raises(InputError, match=r"got uint8 \(8, 8, 2\)"):
        reconstruct(run_model, np.zeros((8, 8, 2), dtype=np.uint8))
    with pytest.raises(InputError, match="only a VAE has a prior"):
        prior_samples(run_model)
    with pytest.raises(InputError, match="steps must be a whole number from 2 to 32"):
        latent_walk(run_model, steps=100)
    # a plain autoencoder walks where its validation codes are, not the prior
    walk = latent_walk(run_model, steps=3)
    low, high = np.percentile(encode_validation(run_model).coords[:, 0], [2, 98])
    assert walk.xs == pytest.approx([low, (low + high) / 2, high])


def test_media_page_reconstructs_an_uploaded_png_and_the_runs_page_plots_the_latent_space(lab_home):
    from streamlit.testing.v1 import AppTest

    run_id = train_tiny_run()
    at = AppTest.from_file(str(ROOT / "app_pages" / "media.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="media_source").value == 0
    captions = [e.proto.imgs[0].caption for e in at.get("image")]
    assert any(c.startswith("z1 from -2.00 (left)") for c in captions)  # the latent walk
    assert "codes drawn from N(0, I), decoded" in captions

    at.file_uploader(key="ae_upload").set_value(("zero.png", _png(_digit_on_paper()), "image/png")).run()
    assert not at.exception and not at.error
    captions = [e.proto.imgs[0].caption for e in at.get("image")]
    assert "input as the model sees it (8x8)" in captions and "reconstruction" in captions

    at.file_uploader(key="ae_upload").set_value(("notes.png", b"not a picture", "image/png")).run()
    assert any("notes.png is not an image in a supported format" in e.value for e in at.error)

    runs = AppTest.from_function(_runs_extra_page, args=(run_id,), default_timeout=60)
    runs.run()
    assert not runs.exception, [e.value for e in runs.exception]
    assert any(getattr(e, "key", None) == f"latent-{run_id}" for e in runs.get("plotly_chart"))


def _runs_extra_page(run_id):
    from ui.families.autoencoder import runs_extra
    runs_extra([run_id])
