"""Small interactive demos for the concept pages: pure functions returning plain data the page plots.

Each takes well under a second on a laptop CPU; the GAN, which trains, about one and a half. torch is
imported inside the functions that need it, so `import core.concepts` stays light. The larger demos
live in their own modules and are re-exported here, so `DEMO_IDS` is the one list the catalogue
files may name.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from core.concepts.learning_demos import gan_2d, policy_gradient
from core.concepts.optim_race import OPTIMIZERS, SURFACES, optimizer_race

# The last two teach with the reader's own trained run (core.concepts.run_demos), not a toy computed here.
DEMO_IDS = ("conv_kernel", "activations", "optimizer_race", "residual_gradients", "self_attention",
            "gan_2d", "policy_gradient", "seq2seq_attention", "text_attributions")

# ---- convolution ------------------------------------------------------------------------------------

KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float),
    "edge": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=float),  # Laplacian: fires where intensity bends
    "sobel-x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float),  # vertical edges (change along x)
    "sobel-y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=float),
    "blur": np.full((3, 3), 1 / 9),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
}


def sample_image(name: str = "shapes", size: int = 32) -> np.ndarray:
    """A greyscale image in [0, 1], (size, size): generated shapes, or an upscaled 8x8 scikit-learn digit."""
    if name == "digit":
        from sklearn.datasets import load_digits  # slow to import; only when asked for
        digit = load_digits().images[3] / 16.0  # a "3": curves and a straight stroke
        return np.kron(digit, np.ones((size // 8, size // 8)))
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.zeros((size, size))
    image[(xx > 0.1) & (xx < 0.4) & (yy > 0.1) & (yy < 0.4)] = 1.0  # a square: straight edges
    image[(xx - 0.68) ** 2 + (yy - 0.3) ** 2 < 0.17 ** 2] = 0.7  # a disc: edges in every direction
    image[(np.abs(yy - 0.95 + xx * 0.6) < 0.04) & (xx > 0.1) & (xx < 0.9)] = 0.45  # a faint diagonal bar
    return image


def convolve2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """What a conv layer computes (strictly cross-correlation: the kernel is not flipped), zero padding
    keeping the size. Every output pixel is the dot product of the kernel with the window around it."""
    k = kernel.shape[0]
    padded = np.pad(image, k // 2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k))  # (H, W, k, k)
    return np.einsum("hwij,ij->hw", windows, kernel)


def conv_kernel(image: np.ndarray, kernel_name: str) -> dict:
    if kernel_name not in KERNELS:
        raise ValueError(f"kernel: {kernel_name!r} is not one of: {', '.join(KERNELS)}")
    kernel = KERNELS[kernel_name]
    return {"image": image, "kernel": kernel, "feature_map": convolve2d(np.asarray(image, dtype=float), kernel)}


# ---- activations ------------------------------------------------------------------------------------

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "gelu", "silu")
LEAKY_SLOPE = 0.01  # torch's default negative_slope
_erf = np.vectorize(math.erf)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(x / 2))  # the same function, without overflow in exp(-x) for large |x|


def activations(names: list[str] | tuple[str, ...], x: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """{name: {"value", "derivative"}} on the points x; derivatives are worked out by hand (the point:
    sigmoid's never exceeds 0.25, so stacked sigmoids shrink gradients; ReLU's is 0 or 1). At x = 0
    the ReLU-like functions take their left-hand slope, as torch's autograd does."""
    x = np.asarray(x, dtype=float)
    out = {}
    for name in names:
        if name == "sigmoid":
            s = _sigmoid(x)
            value, slope = s, s * (1 - s)
        elif name == "tanh":
            value = np.tanh(x)
            slope = 1 - value ** 2
        elif name == "relu":
            value, slope = np.maximum(x, 0), (x > 0).astype(float)
        elif name == "leaky_relu":
            value, slope = np.where(x > 0, x, LEAKY_SLOPE * x), np.where(x > 0, 1.0, LEAKY_SLOPE)
        elif name == "gelu":  # x * Phi(x), Phi the standard normal CDF (the exact form, not the tanh fit)
            cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
            pdf = np.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
            value, slope = x * cdf, cdf + x * pdf
        elif name == "silu":  # x * sigmoid(x), also called swish
            s = _sigmoid(x)
            value, slope = x * s, s * (1 + x * (1 - s))
        else:
            raise ValueError(f"activation: {name!r} is not one of: {', '.join(ACTIVATIONS)}")
        out[name] = {"value": value, "derivative": slope}
    return out


# ---- residual connections ---------------------------------------------------------------------------

def residual_gradients(depth: int = 50, width: int = 64, activation: str = "tanh", seed: int = 0,
                       batch: int = 64) -> dict:
    """Gradient norm of each layer's weight at initialisation, for a plain MLP of `depth` layers,
    h <- f(W h + b), and for the same layers (same initial weights) with identity shortcuts,
    h <- h + f(W h + b).

    Both use PyTorch's default init and no normalisation, so the numbers show the raw effect: in the
    plain stack each layer scales the signal (and so the gradient) down by a roughly constant factor,
    which compounds over depth; the shortcut hands every layer the output's gradient unchanged, plus
    its own branch's term. (With ReLU and no normalisation the residual stack grows instead of
    shrinking, which is why real ResNets add batch normalisation.)"""
    import torch
    if activation not in ("tanh", "relu"):
        raise ValueError(f"activation: {activation!r} is not one of: tanh, relu")
    f = torch.tanh if activation == "tanh" else torch.relu
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(depth):
        layer = torch.nn.Linear(width, width, dtype=torch.float64)
        bound = 1 / math.sqrt(width)  # torch's default init range, drawn from our own seeded generator
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        layers.append(layer)
    x = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    target = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    norms = {}
    from core.engine.devices import single_threaded_torch
    with single_threaded_torch():
        for kind in ("plain", "residual"):
            h = x  # (batch, width)
            for layer in layers:
                h = h + f(layer(h)) if kind == "residual" else f(layer(h))
            loss = torch.nn.functional.mse_loss(h, target)
            grads = torch.autograd.grad(loss, [layer.weight for layer in layers])
            norms[kind] = np.array([g.norm().item() for g in grads])
    return {"layer": np.arange(1, depth + 1), "plain": norms["plain"], "residual": norms["residual"]}


# ---- self-attention ---------------------------------------------------------------------------------

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"


def tokenize(sentence: str) -> list[str]:
    """Words for alphabetic text; one token per character for Chinese (which has no spaces)."""
    return re.findall(rf"[{_CJK}]|[^\s{_CJK}\W]+|[^\s\w]", sentence)[:24]


def _word_vector(word: str, dim: int) -> np.ndarray:
    # Feature hashing of character trigrams of "<word>": a stable (not salted) hash, so a word always
    # gets the same vector, and words sharing spelling share features. It knows nothing of meaning.
    vector = np.zeros(dim)
    padded = f"<{word.lower()}>"
    for i in range(max(1, len(padded) - 2)):
        digest = hashlib.blake2b(padded[i:i + 3].encode(), digest_size=8).digest()
        bucket, sign = int.from_bytes(digest[:4], "little") % dim, 1 if digest[4] % 2 else -1
        vector[bucket] += sign
    return vector / max(np.linalg.norm(vector), 1e-9)


def positional_encoding(length: int, dim: int) -> np.ndarray:
    """The sinusoidal positions of Vaswani et al.: (length, dim), sin on even and cos on odd features."""
    position = np.arange(length)[:, None]
    frequency = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
    encoding = np.zeros((length, dim))
    encoding[:, 0::2] = np.sin(position * frequency)
    encoding[:, 1::2] = np.cos(position * frequency)
    return encoding


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """softmax(Q K^T / sqrt(d_k)) V for (T, d) arrays; returns (output (T, d_v), weights (T, T))."""
    scores = q @ k.T / math.sqrt(q.shape[-1])
    if causal:  # a token may not look at later tokens: the GPT setting
        scores = np.where(np.tril(np.ones_like(scores, dtype=bool)), scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)  # stable softmax
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


def self_attention(sentence: str, causal: bool = False, sharpness: float = 4.0, d_model: int = 64,
                   d_k: int = 16, seed: int = 0) -> dict:
    """Attention weights of one head over the words of `sentence`. Untrained: embeddings are hashed
    spelling plus sinusoidal position, and W_q, W_k, W_v are seeded random, so the pattern reflects
    spelling overlap and distance, never meaning. The mechanism is exactly a Transformer's.

    Random projections of unit vectors give tiny scores and so nearly uniform weights; a trained head
    has learned large ones. `sharpness` scales W_q to stand in for that (the page says so)."""
    tokens = tokenize(sentence) or ["(empty)"]
    x = np.stack([_word_vector(token, d_model) for token in tokens])  # (T, d_model), unit rows
    position = positional_encoding(len(tokens), d_model)
    x = x + 0.5 * position / np.linalg.norm(position, axis=1, keepdims=True)  # spelling counts more than place
    rng = np.random.default_rng(seed)
    w_q, w_k, w_v = (rng.normal(0, 1 / math.sqrt(d_model), (d_model, d_k)) for _ in range(3))
    q, k, v = sharpness * x @ w_q * math.sqrt(d_k), x @ w_k * math.sqrt(d_k), x @ w_v  # (T, d_k) each
    output, weights = attention(q, k, v, causal)
    return {"tokens": tokens, "weights": weights, "output": output, "q": q, "k": k, "v": v}


__all__ = ["ACTIVATIONS", "DEMO_IDS", "KERNELS", "OPTIMIZERS", "SURFACES", "activations", "attention",
           "conv_kernel", "convolve2d", "gan_2d", "optimizer_race", "policy_gradient", "positional_encoding",
           "residual_gradients", "sample_image", "self_attention", "tokenize"]
