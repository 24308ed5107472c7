"""Character-level language models: recurrent networks (Karpathy's char-rnn) and a small GPT (nanoGPT's
baby GPT for shakespeare_char), all mapping character ids (B, T) to next-character logits (B, T, V).

Builders take keyword-only `vocab_size` and `context` (the task's block size) plus their options.
Every model also has `next_logits(idx, state) -> (logits (B, V), state)` so that generation
(core.tasks.language_model.generate) can feed a prompt and then one character at a time, whatever the architecture:
the recurrent models carry their hidden state, the GPT carries the last `context` characters.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from core.models import register_model
from core.options import Option

RNN_OPTIONS = {
    "embed": Option(64, "Size of each character's embedding vector", 1, 4096, label="Embedding size"),
    "hidden": Option(256, "Units in each recurrent layer", 1, 8192, label="Hidden size"),
    "layers": Option(2, "Stacked recurrent layers", 1, 8, label="Layers"),
    "dropout": Option(0.0, "Dropout on the embeddings, between layers and before the output", 0.0, 0.9,
                      label="Dropout"),
}
GPT_OPTIONS = {
    "layers": Option(4, "Transformer blocks", 1, 24, label="Layers"),
    "heads": Option(4, "Attention heads per block (must divide the embedding size)", 1, 32, label="Heads"),
    "embed": Option(128, "Width of the residual stream", 8, 4096, label="Embedding size"),
    "dropout": Option(0.0, "Dropout on attention weights and residual branches (0.2 for Shakespeare)", 0.0, 0.9,
                      label="Dropout"),
    "tie_weights": Option(True, "Share the token embedding with the output layer (fewer parameters)",
                          label="Tie input and output embeddings"),
    "bias": Option(True, "Biases in the linear layers and LayerNorms (nanoGPT's Shakespeare run has none)",
                   label="Biases"),
}


# ---- recurrent models ----------------------------------------------------------------------------

class CharRNN(nn.Module):
    """Embedding -> nn.RNN / nn.LSTM / nn.GRU (stacked) -> linear head over the vocabulary."""

    has_attention = False

    def __init__(self, cell: str, *, vocab_size: int, embed: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed)
        self.drop = nn.Dropout(dropout)
        # nn.RNN's own dropout acts only between stacked layers (and warns when there is one layer)
        self.rnn = recurrent(embed, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0,
                             batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx: torch.Tensor, state=None, return_state: bool = False):
        x = self.drop(self.embedding(idx))  # (B, T, E)
        out, state = self.rnn(x, state)  # (B, T, H); state (layers, B, H), or a pair of them for the LSTM
        logits = self.head(self.drop(out))  # (B, T, V)
        return (logits, state) if return_state else logits

    def next_logits(self, idx: torch.Tensor, state=None):
        """Feed idx (B, t) after `state`; the logits (B, V) of the character that follows, and the new state."""
        logits, state = self(idx, state, return_state=True)
        return logits[:, -1], state


def _rnn_builder(cell: str):
    def build(*, vocab_size: int, context: int = 0, embed: int = 64, hidden: int = 256, layers: int = 2,
              dropout: float = 0.0, **_):
        return CharRNN(cell, vocab_size=vocab_size, embed=embed, hidden=hidden, layers=layers, dropout=dropout)
    return build


def _register_rnn(name: str, cell: str, description: str):
    return register_model(name, description=description, family="char_lm", task="language_model",
                          options=RNN_OPTIONS)(_rnn_builder(cell))


char_rnn = _register_rnn("char_rnn", "rnn", "Vanilla (tanh) recurrent network over characters, as in char-rnn")
char_lstm = _register_rnn("char_lstm", "lstm", "LSTM over characters: gated memory that keeps context for longer")
char_gru = _register_rnn("char_gru", "gru", "GRU over characters: the LSTM's gates with fewer parameters")


# ---- a small GPT ----------------------------------------------------------------------------------

class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends only to positions <= t."""

    def __init__(self, embed: int, heads: int, dropout: float, bias: bool = True):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(embed, 3 * embed, bias=bias)  # queries, keys and values of every head in one matmul
        self.proj = nn.Linear(embed, embed, bias=bias)
        self.attn_drop = nn.Dropout(dropout)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        weights = None
        if need_weights:  # the explicit form, for attention maps
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, H, T, T)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
            y = self.attn_drop(weights) @ v  # (B, H, T, D)
        else:  # the same computation through the fused kernel (flash attention on GPUs)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_drop(self.proj(y)), weights


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(ln(x)), then x + MLP(ln(x))."""

    def __init__(self, embed: int, heads: int, dropout: float, bias: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed, bias=bias)
        self.attn = CausalSelfAttention(embed, heads, dropout, bias)
        self.ln2 = nn.LayerNorm(embed, bias=bias)
        self.mlp = nn.Sequential(nn.Linear(embed, 4 * embed, bias=bias), nn.GELU(),
                                 nn.Linear(4 * embed, embed, bias=bias), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        attended, weights = self.attn(self.ln1(x), need_weights)
        x = x + attended  # (B, T, C)
        return x + self.mlp(self.ln2(x)), weights


class CharGPT(nn.Module):
    """Token + learned position embeddings -> blocks -> LayerNorm -> linear head (optionally tied)."""

    has_attention = True

    def __init__(self, *, vocab_size: int, context: int, layers: int, heads: int, embed: int, dropout: float,
                 tie_weights: bool = True, bias: bool = True):
        super().__init__()
        if embed % heads:
            raise ValueError(f"embed ({embed}) must be divisible by heads ({heads})")
        self.context = context
        self.token_embedding = nn.Embedding(vocab_size, embed)
        self.position_embedding = nn.Embedding(context, embed)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(embed, heads, dropout, bias) for _ in range(layers))
        self.ln_f = nn.LayerNorm(embed, bias=bias)
        self.head = nn.Linear(embed, vocab_size, bias=False)
        self.apply(self._init_weights)
        for block in self.blocks:  # GPT-2: residual projections scaled down so the stream's variance stays put
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, mean=0.0, std=0.02 / math.sqrt(2 * layers))
        if tie_weights:
            self.head.weight = self.token_embedding.weight  # (V, C), shared

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, return_attention: bool = False):
        """idx (B, T) with T <= context -> logits (B, T, V), and with return_attention the weights of every
        layer, a list of (B, heads, T, T) tensors (row t: how much position t attends to each position)."""
        B, T = idx.shape
        if T > self.context:
            raise ValueError(f"sequence of {T} characters is longer than the context ({self.context})")
        positions = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.token_embedding(idx) + self.position_embedding(positions))  # (B, T, C)
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention)
            maps.append(weights)
        logits = self.head(self.ln_f(x))  # (B, T, V)
        return (logits, maps) if return_attention else logits

    def next_logits(self, idx: torch.Tensor, state=None):
        """Feed idx (B, t) after the characters in `state`; only the last `context` of them are seen."""
        tokens = idx if state is None else torch.cat([state, idx], dim=1)
        tokens = tokens[:, -self.context:]  # (B, <= context)
        return self(tokens)[:, -1], tokens


@register_model("char_gpt", description="Small GPT: causal multi-head self-attention blocks over characters "
                "(nanoGPT's baby GPT)", family="char_lm", task="language_model", options=GPT_OPTIONS)
def char_gpt(*, vocab_size: int, context: int, layers: int = 4, heads: int = 4, embed: int = 128,
             dropout: float = 0.0, tie_weights: bool = True, bias: bool = True, **_):
    return CharGPT(vocab_size=vocab_size, context=context, layers=layers, heads=heads, embed=embed,
                   dropout=dropout, tie_weights=tie_weights, bias=bias)


def stream_characters(model, vocab, prompt: str, *, length: int, temperature: float = 0.8,
                      top_k: int | None = None, seed: int = 0) -> Iterator[str]:
    """Yield `length` sampled characters after `prompt` (all characters known to `vocab`, at least one).

    The model must already be in eval mode; gradients are off only while it computes, never across a
    yield, so the caller's code between characters runs with its own autograd mode.
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        logits, state = model.next_logits(vocab.encode(prompt)[None].to(device), None)  # (1, V)
    for i in range(length):
        next_id = _pick(logits, temperature, top_k, generator)  # (1, 1) on the CPU
        yield vocab.chars[int(next_id)]
        if i + 1 < length:
            with torch.inference_mode():
                logits, state = model.next_logits(next_id.to(device), state)


def sample_text(model, vocab, prompt: str, *, length: int, temperature: float = 0.8, top_k: int | None = None,
                seed: int = 0) -> str:
    return "".join(stream_characters(model, vocab, prompt, length=length, temperature=temperature, top_k=top_k,
                                     seed=seed))


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> torch.Tensor:
    """One character id (1, 1) from logits (1, V): greedy, or softmax(logits / T) restricted to the top k."""
    logits = logits.detach().float().cpu()  # (1, V)
    if temperature == 0 or top_k == 1:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (1, 1) the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)
