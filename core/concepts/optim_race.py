"""The optimiser race: hand-written SGD, momentum, Nesterov, RMSProp, Adam and AdamW on 2-D loss surfaces.

The update rules follow torch.optim's exact formulation (where bias corrections and eps go), so the
tests can check them step for step against torch; the point of writing them out is that the page
shows what each optimiser does with a gradient, in a dozen lines of numpy each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")


@dataclass(frozen=True)
class Surface:
    loss: Callable  # f(x, y) written with arithmetic only, so it works on numpy arrays and torch tensors
    grad: Callable  # the gradient worked out by hand: (x, y) -> (df/dx, df/dy)
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    lr: dict[str, float]  # a rate per optimiser that makes a fair race: each about as large as stays stable


SURFACES: dict[str, Surface] = {
    # A curved, flat-bottomed valley: easy to find, slow to follow to the minimum at (1, 1).
    "rosenbrock": Surface(
        loss=lambda x, y: (1 - x) ** 2 + 100 * (y - x ** 2) ** 2,
        grad=lambda x, y: (-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)),
        start=(-1.5, 2.0), x_range=(-2.0, 2.0), y_range=(-1.0, 3.0), minima=((1.0, 1.0),),
        lr={"sgd": 1.5e-3, "momentum": 1e-3, "nesterov": 1e-3, "rmsprop": 1e-2, "adam": 0.1, "adamw": 0.1}),
    # A ravine 100 times steeper across than along: plain SGD zig-zags across and crawls along.
    "ravine": Surface(
        loss=lambda x, y: 0.5 * (0.1 * x ** 2 + 10 * y ** 2),
        grad=lambda x, y: (0.1 * x, 10 * y),
        start=(-4.5, 1.5), x_range=(-5.0, 5.0), y_range=(-2.5, 2.5), minima=((0.0, 0.0),),
        lr={"sgd": 0.18, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.05, "adam": 0.1, "adamw": 0.1}),
    # A saddle at the origin between minima at (0, +-1): starting almost on the ridge, the gradient
    # across it is tiny, so SGD lingers near the saddle; momentum and adaptive rates escape sooner.
    "saddle": Surface(
        loss=lambda x, y: 0.5 * x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2,
        grad=lambda x, y: (x, y ** 3 - y),
        start=(-2.0, 1e-3), x_range=(-2.5, 2.5), y_range=(-1.6, 1.6), minima=((0.0, 1.0), (0.0, -1.0)),
        lr={"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "rmsprop": 0.01, "adam": 0.02, "adamw": 0.02}),
}


def make_optimizer(name: str, lr: float, *, momentum: float = 0.9, alpha: float = 0.99,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                   weight_decay: float = 0.01) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A stateful update rule: call it with (params, grad) to get the next params. `weight_decay`
    is used by AdamW only (decoupled: the weights shrink directly, not through the gradient)."""
    state = {"t": 0, "buf": None, "m": None, "v": None}

    def sgd(p, g):
        return p - lr * g

    def heavy_ball(p, g, nesterov=False):
        # torch's form: the velocity accumulates raw gradients, and the rate multiplies it.
        state["buf"] = g.copy() if state["buf"] is None else momentum * state["buf"] + g
        return p - lr * (g + momentum * state["buf"] if nesterov else state["buf"])

    def rmsprop(p, g):
        # Divide by a running root-mean-square of the gradient: steep directions get small steps.
        state["v"] = (1 - alpha) * g ** 2 if state["v"] is None else alpha * state["v"] + (1 - alpha) * g ** 2
        return p - lr * g / (np.sqrt(state["v"]) + eps)

    def adam(p, g, decoupled=False):
        if decoupled:  # AdamW: shrink first, independently of the adaptive scaling
            p = p * (1 - lr * weight_decay)
        state["t"] += 1
        t = state["t"]
        state["m"] = (1 - betas[0]) * g if state["m"] is None else betas[0] * state["m"] + (1 - betas[0]) * g
        state["v"] = (1 - betas[1]) * g ** 2 if state["v"] is None else betas[1] * state["v"] + (1 - betas[1]) * g ** 2
        # Bias correction: m and v start at zero, so early averages are too small by (1 - beta^t).
        m_hat, v_hat = state["m"] / (1 - betas[0] ** t), state["v"] / (1 - betas[1] ** t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)

    rules = {"sgd": sgd, "momentum": heavy_ball, "nesterov": lambda p, g: heavy_ball(p, g, nesterov=True),
             "rmsprop": rmsprop, "adam": adam, "adamw": lambda p, g: adam(p, g, decoupled=True)}
    if name not in rules:
        raise ValueError(f"optimizer: {name!r} is not one of: {', '.join(OPTIMIZERS)}")
    return rules[name]


def run_optimizer(surface: Surface, name: str, lr: float, steps: int, start=None) -> np.ndarray:
    """The path, (steps + 1, 2); cut short where it leaves the plot far behind (diverged)."""
    update = make_optimizer(name, lr)
    p = np.array(surface.start if start is None else start, dtype=float)
    path = [p]
    span = max(surface.x_range[1] - surface.x_range[0], surface.y_range[1] - surface.y_range[0])
    for _ in range(steps):
        p = update(p, np.array(surface.grad(*p), dtype=float))
        if not np.all(np.isfinite(p)) or np.abs(p).max() > 10 * span:
            break
        path.append(p)
    return np.stack(path)


def optimizer_race(surface: str = "rosenbrock", steps: int = 400, lr_scale: float = 1.0,
                   optimizers: tuple[str, ...] | list[str] = OPTIMIZERS, grid: int = 120) -> dict:
    """Every optimiser from the same start, each at the surface's rate for it times `lr_scale`.

    Returns the loss on a (grid, grid) mesh for the contour plot, and per optimiser its path and losses."""
    if surface not in SURFACES:
        raise ValueError(f"surface: {surface!r} is not one of: {', '.join(SURFACES)}")
    spec = SURFACES[surface]
    xs, ys = np.linspace(*spec.x_range, grid), np.linspace(*spec.y_range, grid)
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    paths, losses = {}, {}
    for name in optimizers:
        path = run_optimizer(spec, name, spec.lr[name] * lr_scale, steps)
        paths[name] = path
        losses[name] = spec.loss(path[:, 0], path[:, 1])
    return {"surface": surface, "x": xs, "y": ys, "z": spec.loss(mesh_x, mesh_y), "start": spec.start,
            "minima": spec.minima, "paths": paths, "losses": losses,
            "lr": {name: spec.lr[name] * lr_scale for name in optimizers},
            "diverged": [name for name in optimizers if len(paths[name]) < steps + 1]}
