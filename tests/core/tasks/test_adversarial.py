"""FGSM and PGD (core/tasks/adversarial.py) against hand-computed gradients and their own guarantees, and
adversarial training of the classification family: a digits MLP trained with PGD keeps more accuracy under
attack than the same MLP trained plainly, and its run logs val_robust_acc every epoch."""

from __future__ import annotations

import pytest
import torch
from conftest import train_in_process
from torch import nn
from torch.nn import functional as F

from core.errors import ConfigError
from core.tasks.adversarial import channel_bounds, fgsm, pgd

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MEAN, STD = [0.3, 0.6], [0.2, 0.25]  # two channels with different statistics: ε scales per channel


def linear_model(seed: int = 0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 2, 3))  # (B, 2, 2, 2) -> (B, 3)


def normalised_images(n: int, seed: int = 1) -> torch.Tensor:
    """(n, 2, 2, 2) images of [0, 1] pixels, normalised with MEAN and STD; a few pixels sit at 0 or 1."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 2, 2, 2, generator=g)
    pixels[:, 0, 0, 0], pixels[:, 1, 1, 1] = 0.0, 1.0  # where the clamp to the valid image must bind
    m, s = torch.tensor(MEAN).view(1, 2, 1, 1), torch.tensor(STD).view(1, 2, 1, 1)
    return (pixels - m) / s


def pixels_of(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(STD).view(1, 2, 1, 1) + torch.tensor(MEAN).view(1, 2, 1, 1)


def test_fgsm_is_the_hand_computed_sign_gradient_step_per_channel_and_clamped():
    model = linear_model()
    x, y = normalised_images(6), torch.tensor([0, 1, 2, 0, 1, 2])
    eps = 12.0  # pixels of 255
    adv = fgsm(model, x, y, eps, MEAN, STD)

    # for logits W x + b, dL/dx = Wᵀ (softmax - onehot): the gradient of the summed cross-entropy, by hand
    W, b = model[1].weight.detach(), model[1].bias.detach()  # (3, 8), (3,)
    flat = x.flatten(1)  # (6, 8)
    probs = torch.softmax(flat @ W.T + b, dim=1)  # (6, 3)
    grad = ((probs - F.one_hot(y, 3).float()) @ W).view_as(x)  # (6, 2, 2, 2)
    step = eps / 255 / torch.tensor(STD).view(1, 2, 1, 1)  # ε in each channel's normalised units
    low, high = (0 - torch.tensor(MEAN)) / torch.tensor(STD), (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    expected = torch.max(torch.min(x + step * grad.sign(), high.view(1, 2, 1, 1)), low.view(1, 2, 1, 1))
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-6)

    moved = (pixels_of(adv) - pixels_of(x)).abs()
    inside = (pixels_of(x) > 0.05) & (pixels_of(x) < 0.95)
    assert torch.allclose(moved[inside], torch.full_like(moved[inside], eps / 255), atol=1e-6)  # a full ε step
    assert float(pixels_of(adv).min()) >= -1e-6 and float(pixels_of(adv).max()) <= 1 + 1e-6
    assert all(p.grad is None for p in model.parameters())  # only the input's gradient was taken


def test_channel_bounds_are_one_pixel_and_the_normalised_image_range():
    scale, low, high = channel_bounds(MEAN, STD, torch.zeros(1, 2, 4, 4))
    assert scale.shape == (1, 2, 1, 1)
    torch.testing.assert_close(scale.flatten(), torch.tensor([1 / 255 / 0.2, 1 / 255 / 0.25]))
    torch.testing.assert_close(low.flatten(), torch.tensor([-1.5, -2.4]))
    torch.testing.assert_close(high.flatten(), torch.tensor([3.5, 1.6]))
    scale, _, _ = channel_bounds([0.5], [0.5], torch.zeros(1, 3, 2, 2))  # one statistic for every channel
    assert scale.shape == (1, 3, 1, 1)


def small_trained_classifier():
    """A 2-layer MLP fitted to three Gaussian blobs of 2x2x2 'images' (pixels kept in [0, 1])."""
    torch.manual_seed(0)
    centres = torch.rand(3, 8) * 0.6 + 0.2
    labels = torch.arange(3).repeat_interleave(200)
    pixels = (centres[labels] + 0.06 * torch.randn(600, 8)).clamp(0, 1).view(-1, 2, 2, 2)
    x = (pixels - torch.tensor(MEAN).view(1, 2, 1, 1)) / torch.tensor(STD).view(1, 2, 1, 1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model.eval(), x, labels


def test_pgd_stays_in_the_eps_ball_and_the_image_and_is_at_least_as_strong_as_fgsm():
    model, x, y = small_trained_classifier()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.95
    eps = 30.0
    generator = torch.Generator().manual_seed(0)
    adv = pgd(model, x, y, eps, MEAN, STD, steps=20, generator=generator)
    change = (pixels_of(adv) - pixels_of(x)).abs()
    assert float(change.max()) <= eps / 255 + 1e-6
    assert float(pixels_of(adv).min()) >= -1e-6 and float(pixels_of(adv).max()) <= 1 + 1e-6

    one_step = fgsm(model, x, y, eps, MEAN, STD)
    with torch.no_grad():
        loss_pgd, loss_fgsm = (F.cross_entropy(model(a), y).item() for a in (adv, one_step))
        acc_pgd, acc_fgsm, acc = ((model(a).argmax(1) == y).float().mean().item() for a in (adv, one_step, x))
    assert loss_pgd >= loss_fgsm and acc_pgd <= acc_fgsm < acc, (loss_pgd, loss_fgsm, acc_pgd, acc_fgsm, acc)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training  # the attack leaves the model's mode alone

    again = pgd(model, x, y, eps, MEAN, STD, steps=20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adv, again)  # the same seed, the same adversarial inputs


def test_fgsm_with_random_start_stays_in_the_ball():
    model, x, y = small_trained_classifier()
    adv = fgsm(model, x, y, 16.0, MEAN, STD, random_start=True, generator=torch.Generator().manual_seed(3))
    assert float((pixels_of(adv) - pixels_of(x)).abs().max()) <= 16 / 255 + 1e-6


# ---- adversarial training -----------------------------------------------------------------------------

ADVERSARIAL = {"adversarial": True, "adv_method": "pgd", "adv_eps": 25.0, "adv_steps": 5}
EPOCHS = 5


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """{"plain": id, "robust": id}: the digits MLP trained plainly and with PGD at ε = 25/255, same seed."""
    from core.presets import preset
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        patch.setenv("LAB_HEARTBEAT_S", "0.2")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        base = preset("digits-mlp").replace(**{"optim.epochs": EPOCHS})
        try:
            yield {"plain": train_in_process(base),
                   "robust": train_in_process(base.replace(task_options=dict(ADVERSARIAL)))}
        finally:
            torch.set_num_threads(threads)


def test_adversarial_training_gives_higher_robust_accuracy_at_eps_25(digits_runs):
    from core.tasks import task_spec
    from core.tasks.adversarial import pgd as attack_pgd
    from core.tasks.checkpoints import load_run_model

    robust_acc, clean_acc = {}, {}
    for kind, run_id in digits_runs.items():
        run_model = load_run_model(run_id)
        x, y = task_spec("classification").entry("run_data")(run_model).labelled(10_000)
        pre = run_model.metadata["preprocessing"]
        model = run_model.model.eval()
        adv = attack_pgd(model, x, y, 25.0, pre["mean"], pre["std"], steps=10,
                         generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            robust_acc[kind] = (model(adv).argmax(1) == y).float().mean().item()
            clean_acc[kind] = (model(x).argmax(1) == y).float().mean().item()
    print(f"digits MLP, PGD-10 at 25/255: robust acc plain {robust_acc['plain']:.3f}, adversarially trained "
          f"{robust_acc['robust']:.3f}; clean {clean_acc['plain']:.3f} / {clean_acc['robust']:.3f}")
    assert robust_acc["robust"] >= robust_acc["plain"] + 0.1
    assert clean_acc["robust"] > 0.85  # robustness did not cost the task itself


def test_the_adversarial_run_logs_clean_and_robust_accuracy_every_epoch(digits_runs):
    from core.store import RunStore
    store = RunStore()
    robust = store.metrics(digits_runs["robust"], keys=["val_acc", "val_robust_acc"])
    for key in ("val_acc", "val_robust_acc"):
        rows = robust[robust.key == key]
        assert sorted(rows.epoch.astype(int)) == list(range(1, EPOCHS + 1))
        assert rows.value.between(0, 1).all()
    by_epoch = robust.pivot_table(index="epoch", columns="key", values="value")
    assert (by_epoch.val_robust_acc <= by_epoch.val_acc + 1e-9).all()  # an attack never helps
    plain = store.metrics(digits_runs["plain"], keys=["val_robust_acc"])
    assert plain.empty  # only adversarial training measures it


def test_adversarial_options_are_validated(lab_home):
    from core.presets import preset
    from core.tasks import validate
    base = preset("digits-mlp")
    validate(base.replace(task_options=dict(ADVERSARIAL)))
    validate(base.replace(task_options={"adv_eps": 0.0}))  # ε 0 is fine while adversarial training is off
    for options, field in (({"adversarial": True, "adv_eps": 0.0}, "adv_eps"),
                           ({"adv_eps": 300.0}, "adv_eps"), ({"adv_method": "cw"}, "adv_method"),
                           ({"adv_steps": 0}, "adv_steps")):
        with pytest.raises(ConfigError, match=f"task_options.{field}"):
            validate(base.replace(task_options=options))
