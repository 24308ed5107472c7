"""Reinforcement learning by policy gradients: REINFORCE (Williams, 1992) and actor-critic.

One training step = one policy update: play `episodes_per_update` episodes with the current policy
(on the CPU, all episodes side by side so the policy runs one batched forward per time step), then
return the policy-gradient loss for the engine to back-propagate:

    REINFORCE     loss = -mean_t[ log π(a_t|s_t) · A_t ],  A_t = G_t - mean(G)   (the mean return as baseline)
    actor-critic  A_t = GAE(λ) from a learned V(s) (λ = 1: G_t - V(s_t)),  + value_coef · ½(V(s_t) - target_t)²

minus entropy_coef · entropy (keeps the policy exploring); advantages are optionally normalised to unit
variance. G_t = r_t + γ r_{t+1} + γ² r_{t+2} + ... is the discounted return from step t on.

The rollout runs without gradients; the loss recomputes log-probabilities and values in one batched
forward over every visited state (same weights, so the same numbers) - far cheaper than keeping
hundreds of one-step graphs alive.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from core.engine.devices import single_threaded_torch
from core.options import Option

OPTIONS = {
    "episodes_per_update": Option(8, "Episodes played with the current policy for each gradient step",
                                  low=1, high=256, label="episodes per update"),
    "updates_per_epoch": Option(10, "Policy updates between two evaluations (one 'epoch')", low=1, high=10_000,
                                label="updates per epoch"),
    "gamma": Option(0.99, "Discount γ: how much a reward k steps later counts (γ^k)", low=0.0, high=1.0,
                    label="discount γ"),
    "gae_lambda": Option(0.95, "Actor-critic only: GAE λ (1 = Monte Carlo return minus V(s), 0 = one-step TD)",
                         low=0.0, high=1.0, label="GAE λ"),
    "entropy_coef": Option(0.01, "Bonus for the policy's entropy: keeps it exploring", low=0.0, high=1.0,
                           label="entropy bonus"),
    "value_coef": Option(0.5, "Actor-critic only: weight of the value loss", low=0.0, high=10.0,
                         label="value loss weight"),
    "normalize_advantages": Option(True, "Scale advantages to unit variance in each update",
                                   label="normalise advantages"),
    "eval_episodes": Option(10, "Episodes (fixed starts) played after each epoch for val_return", low=1, high=200,
                            label="evaluation episodes"),
    "eval_greedy": Option(True, "Evaluate with the most likely action (else sample from the policy)",
                          label="greedy evaluation"),
    "sample_every": Option(10, "Record the episodes' returns every this many updates (0 = never)", low=0,
                           high=100_000, label="record returns every"),
}


# ---- returns and advantages ----------------------------------------------------------------------

def discounted_returns(rewards, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G_t = r_t + γ G_{t+1}, with G_T = bootstrap (the value of the state an episode was cut off in)."""
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def gae(rewards, values, last_value: float, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al., 2016): (advantages, value targets), both (T,).

    δ_t = r_t + γ V(s_{t+1}) - V(s_t);  A_t = δ_t + γλ A_{t+1};  target_t = A_t + V(s_t).
    last_value is V of the state after the last step: 0 when the episode terminated.
    """
    values = np.asarray(values, dtype=np.float64)
    advantages = np.zeros(len(rewards), dtype=np.float64)
    running, next_value = 0.0, float(last_value)
    for t in range(len(rewards) - 1, -1, -1):
        delta = float(rewards[t]) + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


# ---- playing episodes ------------------------------------------------------------------------------

@dataclass
class Episode:
    obs: np.ndarray  # (T, D) observations the actions were chosen in
    actions: np.ndarray  # (T,) int64
    rewards: np.ndarray  # (T,) float32
    terminated: bool  # reached a terminal state (no value after it)
    truncated: bool  # cut off by the step limit (the future still had value)
    final_obs: np.ndarray  # (D,) observation after the last step
    probs: np.ndarray | None = None  # (T, A) action probabilities, when recorded
    states: list = field(default_factory=list)  # physical states (T + 1), when recorded: for drawing frames

    @property
    def total(self) -> float:
        return float(self.rewards.sum())

    def __len__(self) -> int:
        return len(self.actions)


def cpu_policy(model, cache: dict | None = None):
    """The model itself when it is on the CPU, else a CPU copy (kept in `cache` and refreshed in place)."""
    module = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: its module holds the weights
    if next(module.parameters()).device.type == "cpu":
        return module
    clone = cache.get("clone") if cache is not None else None
    if clone is None:
        clone = copy.deepcopy(module).cpu()
        if cache is not None:
            cache["clone"] = clone
    else:
        clone.load_state_dict(module.state_dict())
    return clone


def physical_state(env) -> list[float]:
    state = getattr(env.unwrapped, "state", None)
    return [float(v) for v in np.asarray(state, dtype=np.float64).ravel()] if state is not None else []


def sample_actions(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One action per row of (N, A) probabilities by inverting the CDF: faster than multinomial here."""
    u = torch.rand(probs.shape[0], 1, generator=generator)  # (N, 1)
    return (probs.cumsum(dim=-1) < u).sum(dim=-1).clamp_(max=probs.shape[1] - 1)  # (N,)


@torch.no_grad()
@single_threaded_torch()
def rollout(model, envs, seeds, *, generator: torch.Generator | None = None, greedy: bool = False,
            record: bool = False) -> list[Episode]:
    """Play one episode per (env, seed), side by side, with the policy `model` (logits or (logits, values))."""
    from core.models.policy import split_output
    policy = cpu_policy(model)
    obs = [np.asarray(env.reset(seed=int(seed))[0], dtype=np.float32) for env, seed in zip(envs, seeds)]
    trace = [{"obs": [], "actions": [], "rewards": [], "probs": [],
              "states": [physical_state(env)] if record else []} for env in envs]
    episodes: list[Episode | None] = [None] * len(envs)
    alive = list(range(len(envs)))
    while alive:
        x = torch.from_numpy(np.stack([obs[i] for i in alive]))  # (N_alive, D)
        logits, _ = split_output(policy(x))
        probs = torch.softmax(logits.float(), dim=-1)  # (N_alive, A)
        if greedy:
            actions = probs.argmax(dim=-1)
        else:
            actions = sample_actions(probs, generator)
        still = []
        for row, i in enumerate(alive):
            action, t = int(actions[row]), trace[i]
            t["obs"].append(obs[i])
            t["actions"].append(action)
            if record:
                t["probs"].append(probs[row].numpy())
            nxt, reward, terminated, truncated, _ = envs[i].step(action)
            t["rewards"].append(reward)
            obs[i] = np.asarray(nxt, dtype=np.float32)
            if record:
                t["states"].append(physical_state(envs[i]))
            if terminated or truncated:
                episodes[i] = Episode(np.stack(t["obs"]), np.asarray(t["actions"], dtype=np.int64),
                                      np.asarray(t["rewards"], dtype=np.float32), bool(terminated),
                                      bool(truncated and not terminated), obs[i],
                                      np.stack(t["probs"]) if record else None, t["states"])
            else:
                still.append(i)
        alive = still
    return episodes


# ---- the task ----------------------------------------------------------------------------------------

class RLTask:
    name = "rl"
    best_metric = "val_return"
    best_mode = "max"

    def __init__(self, source, *, episodes_per_update=8, updates_per_epoch=10, gamma=0.99, gae_lambda=0.95,
                 entropy_coef=0.01, value_coef=0.5, normalize_advantages=True, eval_episodes=10,
                 eval_greedy=True, sample_every=10):
        self.source = source  # core.data.environments.EnvSource
        self.episodes_per_update, self.gamma, self.gae_lambda = episodes_per_update, gamma, gae_lambda
        self.entropy_coef, self.value_coef = entropy_coef, value_coef
        self.normalize_advantages = normalize_advantages
        self.eval_greedy = eval_greedy
        self.sample_every = sample_every
        self._envs: list = []
        self._cpu_cache: dict = {}
        self._recent: list[tuple[float, int]] = []  # (return, length) of episodes since the last sample

    def envs(self, count: int) -> list:
        while len(self._envs) < count:
            self._envs.append(self.source.make())
        return self._envs[:count]

    def training_step(self, model, batch):
        from core.data.environments import seeds_from
        from core.models.policy import split_output

        seeds = seeds_from(int(batch), count=self.episodes_per_update + 1)
        generator = torch.Generator().manual_seed(seeds[0])  # action sampling: fixed by the batch, for resume
        policy = cpu_policy(model, self._cpu_cache)
        episodes = rollout(policy, self.envs(self.episodes_per_update), seeds[1:], generator=generator)

        device = next(getattr(model, "_orig_mod", model).parameters()).device
        obs = torch.from_numpy(np.concatenate([e.obs for e in episodes])).to(device)  # (T_all, D)
        actions = torch.from_numpy(np.concatenate([e.actions for e in episodes])).to(device)  # (T_all,)
        logits, values = split_output(model(obs))
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (T_all, A)
        chosen = log_probs.gather(1, actions[:, None]).squeeze(1)  # (T_all,)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)  # (T_all,)

        if values is None:  # REINFORCE: the batch's mean return is the baseline
            returns = np.concatenate([discounted_returns(e.rewards, self.gamma) for e in episodes])
            advantages = returns - returns.mean()
            value_loss = torch.zeros((), device=device)
        else:
            advantages, targets = self._advantages(policy, episodes, values.detach().float().cpu().numpy())
            target = torch.as_tensor(targets, dtype=torch.float32, device=device)
            value_loss = 0.5 * (values.float() - target).pow(2).mean()
        if self.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        advantage = torch.as_tensor(advantages, dtype=torch.float32, device=device)
        policy_loss = -(chosen * advantage).mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy.mean()

        totals = [e.total for e in episodes]
        self._recent.extend((r, len(e)) for r, e in zip(totals, episodes))
        del self._recent[:-5000]
        with torch.no_grad():
            sums = {"loss": loss.detach().float(), "updates": torch.tensor(1.0),
                    "count": torch.tensor(float(len(actions))), "episodes": torch.tensor(float(len(episodes))),
                    "return_sum": torch.tensor(float(sum(totals))), "entropy_sum": entropy.sum().float(),
                    "value_loss": value_loss.detach().float()}
        return loss, sums

    def _advantages(self, policy, episodes, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GAE per episode; an episode cut off by the step limit is bootstrapped with V(final state)."""
        from core.models.policy import split_output
        cut = [e.final_obs for e in episodes if e.truncated]
        last_values = iter(())
        if cut:
            with torch.no_grad():
                last_values = iter(split_output(policy(torch.from_numpy(np.stack(cut))))[1].float().tolist())
        advantages, targets, start = [], [], 0
        for e in episodes:
            last = next(last_values) if e.truncated else 0.0
            adv, tgt = gae(e.rewards, values[start:start + len(e)], last, self.gamma, self.gae_lambda)
            advantages.append(adv)
            targets.append(tgt)
            start += len(e)
        return np.concatenate(advantages), np.concatenate(targets)

    def summarize(self, sums):
        updates = max(float(sums["updates"]), 1.0)
        episodes = max(float(sums["episodes"]), 1.0)
        steps = max(float(sums["count"]), 1.0)
        metrics = {"loss": float(sums["loss"]) / updates, "return": float(sums["return_sum"]) / episodes,
                   "length": steps / episodes, "entropy": float(sums["entropy_sum"]) / steps}
        if float(sums["value_loss"]):
            metrics["value_loss"] = float(sums["value_loss"]) / updates
        return metrics

    def evaluate(self, model, batches, autocast=None):
        returns, lengths = [], []
        for seeds in batches.epoch(0):
            generator = torch.Generator().manual_seed(int(seeds[0]))
            policy = cpu_policy(model, self._cpu_cache)
            for e in rollout(policy, self.envs(len(seeds)), seeds, generator=generator, greedy=self.eval_greedy):
                returns.append(e.total)
                lengths.append(len(e))
        if not returns:
            return {}
        return {"val_return": float(np.mean(returns)), "val_length": float(np.mean(lengths))}

    def samples(self, model):
        """The returns and lengths of every training episode since the last call (for the live chart)."""
        if not self._recent:
            return {}
        returns, lengths = zip(*self._recent)
        self._recent = []
        return {"episodes": {"returns": [round(r, 3) for r in returns], "lengths": list(lengths)}}


# ---- the task's spec ---------------------------------------------------------------------------------

def setup(config, device):
    from core.data import load_dataset
    from core.data.environments import EvalEpisodes, UpdateSeeds
    from core.options import resolve
    from core.tasks import Setup

    source = load_dataset(config.data, seed=config.seed)  # an EnvSource
    options = resolve(config.task_options, OPTIONS)
    metadata = {"env": source.metadata()}
    model = build_model(config, metadata)
    task = RLTask(source, **options)
    train = UpdateSeeds(seed=config.seed, updates_per_epoch=options["updates_per_epoch"])
    val = EvalEpisodes(seed=config.seed, episodes=options["eval_episodes"], greedy=options["eval_greedy"])
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def build_model(config, metadata):
    from core.models import model_info
    from core.options import resolve
    info = model_info(config.model.name)
    env = metadata["env"]
    return info.builder(obs_dim=len(env["obs_names"]), n_actions=len(env["action_names"]),
                        **resolve(config.model.options, info.options))


def _validate(config) -> None:
    from core.data.environments import make_env
    from core.tasks import check_family_fields
    check_family_fields(config)
    make_env(config.data.name).close()  # gymnasium missing or failing: say so before a run is queued


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="rl", watches=(RLTask.best_metric, RLTask.best_mode), title="Reinforcement learning",
                    description="Policy gradients: REINFORCE and actor-critic agents learn to act in "
                                "gymnasium's classic-control environments",
                    data_kind="env", setup=setup, build_model=build_model, validate=_validate, options=OPTIONS,
                    entry_points={"play": "play:play_run", "baseline": "play:random_baseline"})


SPEC = _spec()
