"""Two demos that actually learn, small enough to train while the page waits: a GAN on a 2-D ring of
Gaussians, and REINFORCE on a short corridor. Both are seeded, so the page shows the same story each time.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# ---- a GAN in two dimensions ------------------------------------------------------------------------

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.08


def ring_modes() -> np.ndarray:
    angles = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (8, 2)


def mode_distance(points: np.ndarray) -> float:
    """Mean distance from each point to its nearest mode: 0 means every sample sits on a mode."""
    return float(np.linalg.norm(points[:, None, :] - ring_modes()[None], axis=-1).min(axis=1).mean())


def modes_covered(points: np.ndarray, share: float = 0.25) -> int:
    """Modes that got at least `share` of a fair 1/8 of the samples within 3 std: a collapsed
    generator can have a small mode distance while covering two modes out of eight."""
    distances = np.linalg.norm(points[:, None, :] - ring_modes()[None], axis=-1)
    near = (distances.min(axis=1) < 3 * RING_STD)
    counts = np.bincount(distances.argmin(axis=1)[near], minlength=RING_MODES)
    return int((counts >= share * len(points) / RING_MODES).sum())


def gan_2d(steps: int = 500, seed: int = 0, batch: int = 256, checkpoints: int = 5, samples: int = 512,
           lr: float = 4e-3) -> dict:
    """Train a small generator (noise (B, 4) -> point (B, 2)) against a discriminator (point -> logit)
    with the non-saturating loss of Goodfellow et al.; return the real points, the generator's samples
    at evenly spaced steps (same noise each time, so the cloud's movement is visible), and the losses."""
    return _cached_gan(steps, seed, batch, checkpoints, samples, lr)  # positional: one cache key per setting


@lru_cache(maxsize=8)  # the slowest demo, and seeded: the same arguments give the same (read-only) result
def _cached_gan(steps: int, seed: int, batch: int, checkpoints: int, samples: int, lr: float) -> dict:
    from core.engine.devices import single_threaded_torch
    with single_threaded_torch():
        return _train_gan(steps, seed, batch, checkpoints, samples, lr)


def _train_gan(steps: int, seed: int, batch: int, checkpoints: int, samples: int, lr: float) -> dict:
    import torch
    from torch import nn
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded init without disturbing anyone else's global RNG
        torch.manual_seed(seed)
        gen = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
        disc = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2),
                             nn.Linear(64, 1))
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999), fused=True)
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999), fused=True)
    modes = torch.as_tensor(ring_modes(), dtype=torch.float32)
    bce = nn.functional.binary_cross_entropy_with_logits
    ones, labels = torch.ones(batch, 1), torch.cat([torch.ones(batch, 1), torch.zeros(batch, 1)])

    def real_batch(n: int) -> torch.Tensor:
        which = torch.randint(0, RING_MODES, (n,), generator=generator)
        return modes[which] + RING_STD * torch.randn(n, 2, generator=generator)

    fixed_noise = torch.randn(samples, 4, generator=generator)
    marks = {round(i * steps / (checkpoints - 1)) for i in range(checkpoints)}
    snapshots, d_losses, g_losses = [], [], []
    for step in range(steps + 1):
        if step in marks:
            with torch.no_grad():
                points = gen(fixed_noise).numpy()
            snapshots.append({"step": step, "samples": points, "mode_distance": mode_distance(points),
                              "modes_covered": modes_covered(points)})
        if step == steps:
            break
        fake = gen(torch.randn(batch, 4, generator=generator))
        # Discriminator: real -> 1, fake -> 0, in one forward pass (x2: the sum of the two halves' means).
        # detach: this step must not move the generator.
        d_loss = 2 * bce(disc(torch.cat([real_batch(batch), fake.detach()])), labels)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # Generator: make the discriminator say "real" (maximise log D(G(z)), which has strong
        # gradients early on, unlike minimising log(1 - D(G(z)))).
        g_loss = bce(disc(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d_losses.append(d_loss.item())
        g_losses.append(g_loss.item())
    return {"real": real_batch(samples).numpy(), "modes": ring_modes(), "checkpoints": snapshots,
            "d_loss": np.array(d_losses), "g_loss": np.array(g_losses)}


# ---- REINFORCE on a corridor ------------------------------------------------------------------------

CORRIDOR = 7  # cells 0..6: the left end pays a little and is near, the right end pays more and is far
START, LEFT_REWARD, RIGHT_REWARD, STEP_COST, MAX_STEPS, GAMMA = 2, 0.3, 1.0, 0.02, 40, 0.97


def _episode(theta: list[float], rng: np.random.Generator) -> tuple[list[tuple[int, int]], list[float]]:
    """One walk with the policy p(right | s) = sigmoid(theta[s]); returns ((state, action) pairs, rewards)."""
    state, trajectory, rewards = START, [], []
    for _ in range(MAX_STEPS):
        right = int(rng.random() < 1 / (1 + math.exp(-theta[state])))
        trajectory.append((state, right))
        state += 1 if right else -1
        reward = -STEP_COST + (LEFT_REWARD if state == 0 else RIGHT_REWARD if state == CORRIDOR - 1 else 0.0)
        rewards.append(reward)
        if state in (0, CORRIDOR - 1):
            break
    return trajectory, rewards


def reinforce(episodes: int, seed: int, baseline: bool, lr: float = 0.2) -> tuple[np.ndarray, list[float]]:
    """Williams' REINFORCE with a tabular sigmoid policy. Per step, theta[s] += lr * (G_t - b(s)) *
    d log pi(a|s) / d theta[s], where that derivative is (a - p(right|s)). With `baseline`, b(s) is a
    running average of the returns seen from s: same expected update, much less noise."""
    rng = np.random.default_rng(seed)
    theta, value, returns = [0.0] * CORRIDOR, [0.0] * CORRIDOR, []
    for _ in range(episodes):
        trajectory, rewards = _episode(theta, rng)
        g, to_go = 0.0, []
        for reward in reversed(rewards):
            g = reward + GAMMA * g
            to_go.append(g)
        to_go.reverse()
        for (state, right), g_t in zip(trajectory, to_go):
            advantage = g_t - (value[state] if baseline else 0.0)
            if baseline:
                value[state] += 0.1 * (g_t - value[state])
            theta[state] += lr * advantage * (right - 1 / (1 + math.exp(-theta[state])))
        returns.append(to_go[0])
    return np.array(returns), theta


def policy_gradient(episodes: int = 300, seeds: int = 8) -> dict:
    """Discounted return per episode averaged over `seeds` independent learners, with and without a
    baseline; plus what a random policy and the best policy earn, for reference lines."""
    curves = {"reinforce": [], "baseline": []}
    policies = []
    for seed in range(seeds):
        plain, _ = reinforce(episodes, seed, baseline=False)
        with_baseline, theta = reinforce(episodes, seed, baseline=True)
        curves["reinforce"].append(plain)
        curves["baseline"].append(with_baseline)
        policies.append([1 / (1 + math.exp(-t)) for t in theta])
    rng = np.random.default_rng(12345)
    random_return = float(np.mean([reinforce(1, int(rng.integers(1 << 30)), False, lr=0.0)[0][0]
                                   for _ in range(400)]))
    steps_right = CORRIDOR - 1 - START
    best = sum(-STEP_COST * GAMMA ** t for t in range(steps_right)) + RIGHT_REWARD * GAMMA ** (steps_right - 1)
    return {"episode": np.arange(1, episodes + 1),
            "returns": {name: np.mean(runs, axis=0) for name, runs in curves.items()},
            "random_return": random_return, "best_return": best,
            "p_right": np.mean(policies, axis=0)}  # final policy, per cell (ends included, never used)
