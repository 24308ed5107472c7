"""Policies for reinforcement learning: observation vector in, action logits (and a state value) out.

- mlp_policy: the REINFORCE network of Karpathy's "Pong from Pixels" (an MLP to action logits). Its
  baseline is the batch's mean return, computed by the task.
- actor_critic: a policy head and a value head V(s), on one shared body or two separate ones. Separate
  is the default: the value's regression targets (returns up to ~100) would otherwise swamp the
  policy's small gradients in the shared layers.

Builders take obs_dim and n_actions (from the environment) plus the model options hidden and layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.models import register_model
from core.options import Option

OPTIONS = {
    "hidden": Option(64, "Units in each hidden layer", low=4, high=1024, label="hidden units"),
    "layers": Option(2, "Hidden layers (tanh)", low=1, high=6, label="hidden layers"),
}


def mlp(in_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` tanh layers of width `hidden`: (B, in_dim) -> (B, hidden). Orthogonal init, as in most
    policy-gradient baselines: it keeps activations well scaled through tanh."""
    blocks: list[nn.Module] = []
    for index in range(layers):
        linear = nn.Linear(in_dim if index == 0 else hidden, hidden)
        nn.init.orthogonal_(linear.weight, gain=math.sqrt(2))
        nn.init.zeros_(linear.bias)
        blocks += [linear, nn.Tanh()]
    return nn.Sequential(*blocks)


def head(hidden: int, out: int, gain: float) -> nn.Linear:
    linear = nn.Linear(hidden, out)
    nn.init.orthogonal_(linear.weight, gain=gain)
    nn.init.zeros_(linear.bias)
    return linear


class MLPPolicy(nn.Module):
    has_value = False

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.body = mlp(obs_dim, hidden, layers)
        # a tiny gain makes the first policy almost uniform: every action gets tried
        self.policy = head(hidden, n_actions, gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(self.body(obs))  # (B, A) logits


class ActorCritic(nn.Module):
    has_value = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, layers: int = 2, shared: bool = False):
        super().__init__()
        self.shared = shared
        self.body = mlp(obs_dim, hidden, layers)
        self.value_body = None if shared else mlp(obs_dim, hidden, layers)
        self.policy = head(hidden, n_actions, gain=0.01)
        self.value = head(hidden, 1, gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(obs)  # (B, H)
        value_features = features if self.value_body is None else self.value_body(obs)
        return self.policy(features), self.value(value_features).squeeze(-1)  # (B, A) logits, (B,) values


@register_model("mlp_policy", description="REINFORCE policy: an MLP from the observation to action logits",
                family="policy", task="rl", options=OPTIONS)
def mlp_policy(*, obs_dim: int, n_actions: int, hidden: int = 64, layers: int = 2, **_) -> nn.Module:
    return MLPPolicy(obs_dim, n_actions, hidden, layers)


@register_model("actor_critic", description="Actor-critic: a policy head and a learned value baseline V(s)",
                family="policy", task="rl",
                options={**OPTIONS, "shared": Option(False, "One body for both heads (else two separate MLPs)",
                                                     label="shared body")})
def actor_critic(*, obs_dim: int, n_actions: int, hidden: int = 64, layers: int = 2, shared: bool = False,
                 **_) -> nn.Module:
    return ActorCritic(obs_dim, n_actions, hidden, layers, shared)


def split_output(output) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, values or None) from either model's forward."""
    if isinstance(output, tuple):
        return output[0], output[1]
    return output, None
