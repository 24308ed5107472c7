"""GAN family: DCGAN shapes, the one-step two-player update, the Fréchet distance against scipy, learning
on the digits, checkpoints through core.inference, bad input, and the Media page."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.presets import preset
from core.errors import ConfigError, InputError
from core.tasks import validate

ROOT = Path(__file__).resolve().parents[3]
APP, MEDIA_PAGE = str(ROOT / "app.py"), str(ROOT / "app_pages" / "media.py")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**overrides):
    """DCGAN on the digits at 16px: small enough to learn in seconds on a CPU."""
    return validate(preset("digits-dcgan").replace(**{
        "data.image_size": 16, "model.options.width": 16, "model.options.latent_dim": 16, "optim.lr": 1e-3,
        "optim.epochs": 3, "task_options.fd_samples": 256, "task_options.sample_every": 30, "log_every": 11,
        **overrides}))


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (8, 1), (64, 3)])
def test_dcgan_maps_noise_to_images_and_images_to_one_logit(size, channels):
    from core.models.gan import build_dcgan
    model = build_dcgan(in_channels=channels, image_size=size, latent_dim=10, width=8)
    images = model(torch.randn(5, 10))
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1  # tanh
    assert model.discriminator(images).shape == (5,)
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in model.modules())


def test_frechet_distance_matches_the_scipy_formula():
    from scipy import linalg

    from core.tasks.gan import frechet_distance
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(loc=0.5, size=(300, 6)) @ rng.normal(size=(6, 6))
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0.0, abs=1e-8)


def test_one_step_gives_d_only_its_loss_gradient_and_g_only_its_own(lab_home):
    """loss = D loss + G loss, but G's term reaches only G and D's term only D: simultaneous descent."""
    import torch.nn.functional as F

    from core.jobs.assemble import assemble
    trainer = assemble(tiny_config(), device=torch.device("cpu"))
    model, task = trainer.model, trainer.task
    batch = next(iter(trainer.train_batches.epoch(0)))
    real = batch[0]

    torch.manual_seed(5)
    loss, sums = task.training_step(model, batch)
    total = torch.autograd.grad(loss, list(model.parameters()))
    grads = dict(zip([n for n, _ in model.named_parameters()], total))

    torch.manual_seed(5)  # the same noise again, by hand
    gen, disc = model.generator, model.discriminator
    fake = gen(torch.randn(len(real), task.latent_dim))
    real_logits, fake_logits = disc(real), disc(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    g_logits = disc(fake)
    g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
    d_only = torch.autograd.grad(d_loss, list(disc.parameters()))
    g_only = torch.autograd.grad(g_loss, list(gen.parameters()))
    for (name, _), expected in zip(disc.named_parameters(), d_only):
        torch.testing.assert_close(grads[f"discriminator.{name}"], expected)
    for (name, _), expected in zip(gen.named_parameters(), g_only):
        torch.testing.assert_close(grads[f"generator.{name}"], expected)
    assert float(sums["loss"]) / len(real) == pytest.approx(float((d_loss + g_loss).detach()), rel=1e-5)


def test_gan_learns_the_digits_without_the_discriminator_winning(lab_home):
    from core.jobs.assemble import assemble
    from core.engine.callbacks import Callback

    class Logs(Callback):
        def __init__(self):
            self.rows = []

        def on_train_log(self, trainer, metrics):
            self.rows.append(metrics)

    logs = Logs()
    trainer = assemble(tiny_config(**{"optim.epochs": 5}), device=torch.device("cpu"), callbacks=[logs])
    before = trainer.task.evaluate(trainer.model, trainer.val_batches)
    real_mean = float(trainer.val_batches.x.float().mean() / 127.5 - 1)  # the data's mean pixel in [-1, 1]
    with torch.no_grad():
        trainer.model.eval()
        gap_before = abs(float(trainer.model(trainer.task.grid_noise).mean()) - real_mean)
    summary = trainer.fit()
    after = summary["last"]
    with torch.no_grad():
        trainer.model.eval()
        gap_after = abs(float(trainer.model(trainer.task.grid_noise).mean()) - real_mean)

    # samples move towards the data: the fixed-feature Fréchet distance and the mean pixel
    assert after["val_fd"] < 0.25 * before["val_fd"], (before["val_fd"], after["val_fd"])
    assert after["val_fd"] > after["val_fd_real"] > 0  # real vs real is the floor
    assert gap_after < 0.5 * gap_before, (gap_before, gap_after)
    # the game stays a game: D neither wins outright nor is fooled completely; losses finite
    last = logs.rows[-3:]
    for row in last:
        assert all(np.isfinite(row[k]) for k in ("train_d_loss", "train_g_loss", "train_loss"))
        assert row["train_loss"] == pytest.approx(row["train_d_loss"] + row["train_g_loss"], rel=1e-4)
    assert 0.05 < np.mean([r["train_d_fake"] for r in last]) < 0.8
    assert 0.2 < np.mean([r["train_d_real"] for r in last]) < 0.95
    assert summary["best_metric"] == "val_fd"


def test_config_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"data.image_size: dcgan needs an even image size"):
        validate(preset("digits-dcgan").replace(**{"data.image_size": 27}))
    with pytest.raises(ConfigError, match=r"model.options.depth: unknown option"):
        validate(preset("digits-dcgan").replace(**{"model.options.depth": 3}))
    with pytest.raises(ConfigError, match=r"model.name: 'cnn' is not one of: dcgan"):
        validate(preset("digits-dcgan").replace(**{"model.name": "cnn"}))
    for name in ("shapes-dcgan", "mnist-dcgan", "digits-dcgan"):
        assert validate(preset(name)).task == "gan"


def train_tiny_run(**overrides) -> str:
    """A completed run in the store, trained in this process exactly as a worker would."""
    from core import jobs
    from core.jobs.runner import execute_run
    run_id = jobs.create(tiny_config(**{"optim.epochs": 1, "data.limit": 256, **overrides}))
    assert execute_run(run_id) == "completed"
    return run_id


def test_a_completed_run_generates_and_its_grids_evolve_and_the_media_page_draws_them(lab_home):
    from streamlit.testing.v1 import AppTest

    from core.engine.samples import list_samples
    from core.tasks.checkpoints import load_run_model
    from core.tasks.gan.generate import generate, generate_grid, interpolate
    from core.paths import run_dir

    run_id = train_tiny_run()
    grids = list_samples(run_dir(run_id), "grid")
    assert [s.step for s in grids] == [0, 4]  # at the start and at the end
    assert grids[0].load() != grids[-1].load()

    run_model = load_run_model(run_id, "best")
    png = generate_grid(run_model, seed=3, count=9)
    assert Image.open(io.BytesIO(png)).size == (3 * 32 + 4 * 2,) * 2  # 3x3 cells enlarged to 32px, padding 2
    assert torch.equal(generate(run_model, 3, 4), generate(run_model, 3, 4))  # a seed is a fixed picture
    path = interpolate(run_model, 1, 2, steps=5)
    assert path.shape == (5, 1, 16, 16)
    torch.testing.assert_close(path[0], generate(run_model, 1, 1)[0])
    torch.testing.assert_close(path[-1], generate(run_model, 2, 1)[0])
    for bad in ({"seed": -1}, {"count": 0}, {"count": 10_000}, {"seed": 1.5}):
        with pytest.raises(InputError, match="must be a whole number"):
            generate(run_model, **{"seed": 0, "count": 4, **bad})

    at = AppTest.from_file(MEDIA_PAGE, default_timeout=60)
    at.run()
    sources = at.selectbox(key="media_source")
    assert sources.value == 0 and at.session_state["media_source"] == 0  # the newest run comes first
    assert not at.exception, [e.value for e in at.exception]
    first = at.number_input(key="gan_seed")
    assert first.value == 0 and len(at.get("image")) >= 2  # the grid and the interpolation strip
    grid_before = at.get("image")[0].proto.imgs[0].url
    at.number_input(key="gan_seed").set_value(7).run()
    at.number_input(key="gan_steps").set_value(4).run()
    assert not at.exception and not at.error
    assert at.get("image")[0].proto.imgs[0].url != grid_before  # a new seed, a new grid
    captions = [i.proto.imgs[0].caption for i in at.get("image")]
    assert "16 images from seed 7" in captions and "from seed 1 (left) to seed 2 (right)" in captions

    # the live view of the run: the latest grid, and a slider back to the first one
    watch = AppTest.from_file(APP, default_timeout=60)
    watch.query_params["run"] = run_id
    watch.run()
    watch.switch_page("app_pages/train.py").run()
    assert [e.proto.imgs[0].caption for e in watch.get("image")] == ["step 4 of 4"]
    watch.toggle(key=f"grid_follow_{run_id}").set_value(False).run()
    watch.select_slider(key=f"grid_step_{run_id}").set_value(0).run()
    assert not watch.exception
    assert [e.proto.imgs[0].caption for e in watch.get("image")] == ["step 0 of 4"]

    runs = AppTest.from_function(_runs_extra_page, args=(run_id,), default_timeout=60)
    runs.run()
    assert not runs.exception and [e.proto.imgs[0].caption for e in runs.get("image")] == ["step 4"]


def _runs_extra_page(run_id):
    from ui.families.gan import runs_extra
    runs_extra([run_id])


def test_an_autoencoder_run_cannot_be_used_to_generate(lab_home):
    from core.config import RunConfig
    from core.tasks.checkpoints import RunModel
    from core.tasks.gan.generate import generate

    autoencoder = RunModel(model=torch.nn.Linear(2, 2), config=RunConfig(task="autoencoder"), metadata={},
                           run_id="r1", which="best", epoch=None)
    with pytest.raises(InputError, match="run r1 was trained for the task 'autoencoder'; this needs a 'gan' run"):
        generate(autoencoder)


def test_grad_clip_bounds_each_players_gradient_on_its_own(lab_home):
    from core.jobs.assemble import assemble
    from core.engine.callbacks import Callback

    class Norms(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer):
            if len(self.seen) < 3:
                model = trainer.model
                self.seen.append([torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in player.parameters()]))
                                  .item() for player in (model.generator, model.discriminator)])

    norms = Norms()
    trainer = assemble(tiny_config(**{"optim.grad_clip": 0.01, "optim.epochs": 1}), device=torch.device("cpu"),
                       callbacks=[norms])
    trainer.fit()
    # each player's norm sits at the bound; clipped together, their joint norm would, and each would fall below it
    for generator, discriminator in norms.seen:
        assert generator == pytest.approx(0.01, rel=1e-3) and discriminator == pytest.approx(0.01, rel=1e-3)
