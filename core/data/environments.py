"""Environments for reinforcement learning: gymnasium's classic-control tasks as "data sets" of kind "env".

There is no fixed data here: the agent makes its own by acting. What the registry holds is how to build
an environment (`make_env`) and the batch sources the engine iterates: a training "batch" is one integer,
the seed of one policy update (its episodes' starting states and its action sampling all derive from it),
so an epoch is a fixed list of seeds and a resumed run replays exactly the same episodes.

Frames are drawn by core.tasks.rl.play from the state with PIL; gymnasium's pygame renderer is never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.data import register_dataset
from core.errors import ConfigError
from core.options import Option

GYMNASIUM_PIN = "gymnasium==1.4.0"  # the line in requirements.txt


@dataclass(frozen=True)
class EnvSpec:
    """What a task and a page need to know about one environment (plain data; saved in checkpoints)."""
    name: str
    description: str
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    max_steps: int  # episodes are truncated after this many steps
    reward_note: str  # one line: what a return means
    random_return: float  # a uniformly random policy's mean return (measured over 200 episodes, 500 steps)
    options: dict = field(default_factory=dict)

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    def to_metadata(self) -> dict:
        return {"name": self.name, "obs_names": list(self.obs_names), "action_names": list(self.action_names),
                "max_steps": self.max_steps, "random_return": self.random_return}


def _steps_option(default: int) -> Option:
    return Option(default, "Episodes end (truncated) after this many steps", low=10, high=5000,
                  label="max steps per episode")


ENVIRONMENTS: dict[str, EnvSpec] = {
    "CartPole-v1": EnvSpec(
        "CartPole-v1", "Balance a pole on a cart by pushing it left or right (+1 per step upright)",
        ("cart position", "cart velocity", "pole angle", "pole angular velocity"), ("push left", "push right"),
        500, "+1 for every step the pole stays up; 500 is a perfect episode", 22.0,
        options={"max_steps": _steps_option(500)}),
    "Acrobot-v1": EnvSpec(
        "Acrobot-v1", "Swing a two-link pendulum's tip above the bar by torquing its joint (-1 per step)",
        ("cos θ1", "sin θ1", "cos θ2", "sin θ2", "θ1 velocity", "θ2 velocity"),
        ("torque -1", "no torque", "torque +1"),
        500, "-1 for every step until the tip is above the line; about -80 is good, -500 never reached it",
        -499.0, options={"max_steps": _steps_option(500)}),
}


def known_names() -> str:
    return ", ".join(ENVIRONMENTS)


def env_spec(name: str) -> EnvSpec:
    if name not in ENVIRONMENTS:
        raise ConfigError(f"environment: '{name}' is not one of: {known_names()}")
    return ENVIRONMENTS[name]


def make_env(name: str, max_steps: int | None = None):
    """A gymnasium environment (no render mode, no env checker: frames are drawn from the state)."""
    spec = env_spec(name)
    try:
        import gymnasium
    except ImportError:
        raise ConfigError(f"environment '{name}' needs gymnasium: run `python -m pip install {GYMNASIUM_PIN}` "
                          "(it is listed in requirements.txt)") from None
    try:
        return gymnasium.make(name, max_episode_steps=int(max_steps or spec.max_steps), disable_env_checker=True)
    except Exception as exc:  # gymnasium's own errors (a renamed environment, a version mismatch)
        raise ConfigError(f"environment '{name}' could not be created by gymnasium ({exc}); "
                          f"known environments: {known_names()}; tested with {GYMNASIUM_PIN}") from None


@dataclass(frozen=True)
class EnvSource:
    """What the data registry builds for an env 'data set': the spec plus the options chosen."""
    spec: EnvSpec
    max_steps: int

    def make(self):
        return make_env(self.spec.name, self.max_steps)

    def metadata(self) -> dict:
        return {**self.spec.to_metadata(), "max_steps": self.max_steps}


def _register(spec: EnvSpec) -> None:
    def build(cfg, *, seed: int = 0) -> EnvSource:
        from core.options import resolve
        options = resolve(cfg.options, spec.options)
        return EnvSource(spec, int(options["max_steps"]))

    register_dataset(spec.name, description=spec.description, kind="env", options=spec.options)(build)


for _spec in ENVIRONMENTS.values():
    _register(_spec)


# ---- batch sources ---------------------------------------------------------------------------------

def seeds_from(*entropy: int, count: int) -> list[int]:
    """`count` well-mixed 31-bit seeds from integers (numpy's SeedSequence: nearby inputs give unrelated seeds)."""
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(count, dtype=np.uint32)
    return [int(s) & 0x7FFFFFFF for s in state]


class UpdateSeeds:
    """Training batches: one integer per policy update, fixed by (run seed, epoch, update index)."""

    def __init__(self, *, seed: int, updates_per_epoch: int):
        self.seed, self.updates_per_epoch = int(seed), int(updates_per_epoch)

    def __len__(self) -> int:
        return self.updates_per_epoch

    def epoch(self, index: int, start_batch: int = 0):
        for batch in range(start_batch, self.updates_per_epoch):
            yield seeds_from(self.seed, index, batch, count=1)[0]


class EvalEpisodes:
    """Validation: the same K starting states every epoch, so val_return compares like with like."""

    def __init__(self, *, seed: int, episodes: int, greedy: bool = True):
        self.seeds = seeds_from(self.EVAL_STREAM, seed, count=episodes)
        self.greedy = greedy

    EVAL_STREAM = 7_777_777  # keeps validation seeds apart from the training stream

    def __len__(self) -> int:
        return 1

    def epoch(self, index: int = 0, start_batch: int = 0):
        if start_batch == 0:
            yield self.seeds
