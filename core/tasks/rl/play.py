"""Play episodes with a trained policy (or a random one) and draw them: frames made with PIL from the
environment's physical state (gymnasium's pygame renderer is never used), per-step action probabilities,
rewards and the return.

    from core.tasks.rl.play import play_run, random_baseline, to_gif
    episode = play_run(run_id, "best", greedy=True, seed=3)
    episode.total, episode.probs.shape        # 500.0, (500, 2)
    gif = to_gif(episode.frames)              # bytes for st.image
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

FRAME_SIZE = (360, 240)  # (width, height) in pixels
MAX_GIF_FRAMES = 200  # longer episodes are shown with every k-th frame


@dataclass
class Playback:
    env: str
    frames: list  # PIL images, one per state (length + 1: the start and after every step)
    probs: np.ndarray  # (T, A) action probabilities the policy gave at each step
    actions: list[int]
    rewards: list[float]
    action_names: list[str]
    greedy: bool
    seed: int
    truncated: bool  # stopped by the step limit rather than by the environment

    @property
    def total(self) -> float:
        return float(sum(self.rewards))

    @property
    def length(self) -> int:
        return len(self.actions)


class UniformPolicy(torch.nn.Module):
    """The random baseline: equal logits for every action, whatever it sees."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.n_actions = n_actions
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)  # gives it a device

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(obs.shape[0], self.n_actions)  # (B, A)


def play(model, env_name: str, *, greedy: bool = True, seed: int = 0, max_steps: int | None = None,
         draw: bool = True) -> Playback:
    """One episode of `model` (an nn.Module giving logits, or (logits, values)) from the start fixed by `seed`."""
    from core.data.environments import env_spec, make_env
    from core.tasks.rl import rollout

    spec = env_spec(env_name)  # ConfigError naming the known environments
    env = make_env(env_name, max_steps)
    try:
        generator = torch.Generator().manual_seed(int(seed))
        (episode,) = rollout(model, [env], [int(seed)], generator=generator, greedy=greedy, record=True)
    finally:
        env.close()
    frames = [draw_frame(env_name, state) for state in episode.states] if draw else []
    return Playback(env_name, frames, episode.probs, episode.actions.tolist(),
                    [float(r) for r in episode.rewards], list(spec.action_names), greedy, int(seed),
                    episode.truncated)


def play_run(run_id: str, which: str = "best", *, greedy: bool = True, seed: int = 0,
             max_steps: int | None = None, draw: bool = True) -> Playback:
    """Load a run's policy (core.tasks.checkpoints.load_run_model) and play one episode in its environment."""
    from core.tasks.checkpoints import load_run_model
    loaded = load_run_model(run_id, which)
    env = loaded.metadata["env"]
    return play(loaded.model, env["name"], greedy=greedy, seed=seed, max_steps=max_steps or env["max_steps"],
                draw=draw)


def random_baseline(env_name: str, *, episodes: int = 20, seed: int = 0, max_steps: int | None = None) -> dict:
    """Returns of a uniformly random policy over `episodes` episodes (played side by side)."""
    from core.data.environments import env_spec, make_env, seeds_from
    from core.tasks.rl import rollout

    spec = env_spec(env_name)
    envs = [make_env(env_name, max_steps) for _ in range(episodes)]
    try:
        played = rollout(UniformPolicy(spec.n_actions), envs, seeds_from(seed, 99, count=episodes),
                         generator=torch.Generator().manual_seed(int(seed)))
    finally:
        for env in envs:
            env.close()
    returns = [e.total for e in played]
    return {"returns": returns, "mean": float(np.mean(returns)), "std": float(np.std(returns)),
            "lengths": [len(e) for e in played]}


# ---- drawing ------------------------------------------------------------------------------------------

SKY, INK, CART, POLE, AXLE, GOAL = "#f8fafc", "#334155", "#4f46e5", "#f97316", "#0f172a", "#10b981"


def draw_frame(env_name: str, state, size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    if env_name.startswith("CartPole"):
        return draw_cartpole(state, size)
    if env_name.startswith("Acrobot"):
        return draw_acrobot(state, size)
    from core.errors import ConfigError
    raise ConfigError(f"no drawing for environment '{env_name}'")


def draw_cartpole(state, size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    """state = (x, ẋ, θ, θ̇); x in metres on a ±2.4 m track, θ from upright (positive leans right)."""
    width, height = size
    x, _, theta, _ = (float(v) for v in state[:4])
    image = Image.new("P", size, SKY)  # palette mode: GIFs need no quantising
    pen = ImageDraw.Draw(image)
    scale = width / 5.6  # the track spans ±2.4 m (the episode ends beyond it), with a margin
    track_y = int(height * 0.72)
    pen.line([(0, track_y), (width, track_y)], fill=INK, width=2)
    for edge in (-2.4, 2.4):  # the limits
        ex = int(width / 2 + edge * scale)
        pen.line([(ex, track_y - 8), (ex, track_y + 8)], fill="#e11d48", width=2)
    cx = width / 2 + x * scale
    cart_w, cart_h = 0.5 * scale, 0.3 * scale
    pen.rectangle([cx - cart_w / 2, track_y - cart_h / 2, cx + cart_w / 2, track_y + cart_h / 2], fill=CART)
    pole = 1.0 * scale  # the pole is 1 m long (gymnasium's half-length 0.5)
    top = (cx + pole * math.sin(theta), track_y - pole * math.cos(theta))
    pen.line([(cx, track_y), top], fill=POLE, width=max(3, int(0.06 * scale)))
    r = max(3, int(0.04 * scale))
    pen.ellipse([cx - r, track_y - r, cx + r, track_y + r], fill=AXLE)
    return image


def draw_acrobot(state, size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    """state = (θ1, θ2, θ̇1, θ̇2): θ1 from hanging straight down, θ2 relative to the first link; links 1 m."""
    width, height = size
    theta1, theta2 = float(state[0]), float(state[1])
    image = Image.new("P", size, SKY)  # palette mode: GIFs need no quantising
    pen = ImageDraw.Draw(image)
    scale = min(width, height) / 4.6  # both links reach 2 m from the pivot
    pivot = (width / 2, height / 2)

    def at(px: float, py: float) -> tuple[float, float]:  # world metres (y up) -> pixels
        return pivot[0] + px * scale, pivot[1] - py * scale

    goal_y = at(0, 1.0)[1]  # the tip must rise above this line
    pen.line([(0, goal_y), (width, goal_y)], fill=GOAL, width=2)
    elbow = (math.sin(theta1), -math.cos(theta1))
    tip = (elbow[0] + math.sin(theta1 + theta2), elbow[1] - math.cos(theta1 + theta2))
    link = max(4, int(0.1 * scale))
    pen.line([at(0, 0), at(*elbow)], fill=CART, width=link)
    pen.line([at(*elbow), at(*tip)], fill=POLE, width=link)
    for point, radius in ((at(0, 0), link), (at(*elbow), link * 0.7), (at(*tip), link * 0.6)):
        pen.ellipse([point[0] - radius, point[1] - radius, point[0] + radius, point[1] + radius], fill=AXLE)
    return image


def frame_strip(frames: list, count: int = 8) -> Image.Image:
    """`count` frames evenly spread over the episode, side by side."""
    picks = [frames[round(i * (len(frames) - 1) / max(1, count - 1))] for i in range(min(count, len(frames)))]
    width, height = picks[0].size
    strip = Image.new("RGB", (width * len(picks), height), "white")
    for index, frame in enumerate(picks):
        strip.paste(frame.convert("RGB"), (index * width, 0))
    return strip


def to_gif(frames: list, *, fps: int = 30, max_frames: int = MAX_GIF_FRAMES) -> bytes:
    """An animated GIF (bytes); long episodes keep every k-th frame so the file stays small."""
    if not frames:
        raise ValueError("no frames to animate")
    stride = max(1, math.ceil(len(frames) / max_frames))
    kept = frames[::stride]
    if kept[-1] is not frames[-1]:
        kept.append(frames[-1])  # always show how it ended
    buffer = io.BytesIO()
    palette = [f if f.mode == "P" else f.convert("P", palette=Image.Palette.ADAPTIVE, colors=32) for f in kept]
    palette[0].save(buffer, format="GIF", save_all=True, append_images=palette[1:],
                    duration=max(20, int(1000 * stride / fps)), loop=0, optimize=False)
    return buffer.getvalue()


# ---- training history ------------------------------------------------------------------------------

def episode_history(folder) -> dict:
    """Every training episode's return and length, in order, from a run folder's `episodes` samples
    (written by the rl task every `sample_every` updates): {"returns": [...], "lengths": [...], "steps": [...]},
    where steps[i] is the update count at which episode i had been recorded."""
    from core.engine.samples import list_samples
    returns, lengths, steps = [], [], []
    for sample in list_samples(folder, "episodes"):
        try:
            payload = sample.load()
        except (OSError, ValueError):  # a file being replaced right now: the next refresh reads it
            continue
        returns.extend(float(r) for r in payload.get("returns", []))
        lengths.extend(int(n) for n in payload.get("lengths", []))
        steps.extend([sample.step] * len(payload.get("returns", [])))
    return {"returns": returns, "lengths": lengths, "steps": steps}
