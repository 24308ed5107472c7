"""A small Transformer encoder-decoder (Vaswani et al. 2017, arXiv:1706.03762) for character
sequence-to-sequence tasks, with the same interface as the GRU model of core.models.seq2seq:

  - `forward(src, tgt_in, return_attention)`: logits (B, T, V) under teacher forcing, and the cross-attention
    of the last decoder layer averaged over heads (B, T, S);
  - `start(src) -> (state, context, memory)` and `step(token, state, context, memory) -> (logits, state,
    context, weights)`: one decoding step. A Transformer decoder has no recurrent state; its `state` is what
    each decoder layer has seen so far, (B, layers, t, D), so a step computes only the newest position
    instead of re-reading the whole prefix (greedy validation every epoch was 20x slower that way). It is one
    tensor, so beam search can concatenate and slice hypotheses along dim 0 as it does the GRU's state.
    `context` is an empty (B, 0) tensor kept only so beam search treats both models alike;
  - `greedy(src, max_len) -> (ids (B, T), attention (B, T, S))`.

Pre-norm blocks (LayerNorm before each sub-layer), sinusoidal positions (any length the data has, nothing to
learn; the source's counted from its end, see `encode`). The encoder is torch's nn.TransformerEncoder; the
decoder layer is our own on nn.MultiheadAttention because torch's decoder layer does not return its
cross-attention weights, which the attention heatmap shows. Token id 0 is padding, 1 bos, 2 eos.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.models import register_model
from core.options import Option

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

TRANSFORMER_OPTIONS = {
    "d_model": Option(64, "Width of every token's vector (the embeddings and the residual stream); a multiple of the "
                      "heads", 8, 4096, label="Embedding size"),
    "heads": Option(4, "Attention heads per layer (must divide the embedding size)", 1, 32, label="Heads"),
    "layers": Option(2, "Layers of the encoder, and as many of the decoder", 1, 12, label="Layers"),
    "ff": Option(256, "Units of each layer's feed-forward block (usually 4 × the embedding size)", 8, 16384,
                 label="Feed-forward units"),
    "dropout": Option(0.1, "Dropout on attention weights and residual branches", 0.0, 0.9, label="Dropout"),
}


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """(length, dim) sines and cosines of geometrically spaced frequencies (Vaswani et al. 2017, 3.5)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates)[:, :dim // 2]
    return table


class DecoderLayer(nn.Module):
    """Pre-norm: x + SelfAttn(LN x) (causal), + CrossAttn(LN x, memory), + FF(LN x); returns the cross-attention
    weights averaged over heads (B, T, S)."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, src_pad, causal):
        h = self.norm1(x)
        x = x + self.drop(self.self_attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        h = self.norm2(x)
        attended, weights = self.cross_attn(h, memory, memory, key_padding_mask=src_pad, need_weights=True,
                                            average_attn_weights=True)
        x = x + self.drop(attended)
        return x + self.drop(self.ff(self.norm3(x))), weights

    def step(self, x, seen, memory, src_pad):
        """The newest position only: x (B, 1, D) attends over `seen` (B, t + 1, D), this layer's inputs at every
        position so far (x last), so nothing needs a causal mask."""
        h, keys = self.norm1(x), self.norm1(seen)
        x = x + self.self_attn(h, keys, keys, need_weights=False)[0]
        attended, weights = self.cross_attn(self.norm2(x), memory, memory, key_padding_mask=src_pad,
                                            need_weights=True, average_attn_weights=True)
        x = x + attended
        return x + self.ff(self.norm3(x)), weights


class TransformerSeq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                 ff: int = 256, dropout: float = 0.1):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"the embedding size ({d_model}) must be a multiple of the heads ({heads})")
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model, padding_idx=PAD_ID)
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        # nested tensors only speed up post-norm inference; asking for them here would just warn
        self.encoder = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, ff, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, tgt_vocab)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """ids (B, T), positions (B, T) or (T,), each below T -> (B, T, D)."""
        waves = sinusoidal_positions(ids.size(1), self.d_model, ids.device)
        # not scaled by sqrt(D) as in the paper, whose embeddings start at 1/sqrt(D): nn.Embedding's start at 1
        # already, the size of the positions' entries; scaled, they drowned the positions and the model could
        # not tell "2" from "22"
        return self.drop(embedding(ids) + waves[positions].to(embedding.weight.dtype))

    def encode(self, src: torch.Tensor):
        """(B, S) ids -> (memory (B, S, D), padding mask (B, S) bool, True where padded).

        Source positions count from the END of each source (its last character is 0): what a character means
        often depends on its distance from the end (the "7" of "7", "17" and "1237" is always "seven" units),
        and counted from the start the 5% of short numbers were still misread after the long ones were learnt
        ("0" -> "six"). Either way the encoder reads the whole source at once, so nothing else changes."""
        src_pad = src == PAD_ID
        # an empty source would leave a row with nothing to attend to (NaN); let it attend to its first slot
        src_pad[:, 0] &= ~src_pad.all(1)
        lengths = (~src_pad).sum(1, keepdim=True)  # (B, 1)
        positions = (lengths - 1 - torch.arange(src.size(1), device=src.device)).clamp(min=0)  # (B, S); pads: 0
        return self.encoder(self._embed(self.src_embed, src, positions), src_key_padding_mask=src_pad), src_pad

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor):
        """(B, T) ids -> (logits (B, T, V), last layer's cross-attention (B, T, S))."""
        length = tgt_in.size(1)
        causal = torch.ones(length, length, dtype=torch.bool, device=tgt_in.device).triu(1)  # True: may not see
        x = self._embed(self.tgt_embed, tgt_in, torch.arange(length, device=tgt_in.device))
        weights = None
        for layer in self.decoder:
            x, weights = layer(x, memory, src_pad, causal)
        return self.out(self.final_norm(x)), weights

    def forward(self, src, tgt_in, return_attention: bool = False):
        memory, src_pad = self.encode(src)
        logits, weights = self.decode(tgt_in, memory, src_pad)
        return (logits, weights) if return_attention else logits

    def start(self, src):
        memory, src_pad = self.encode(src)
        seen = memory.new_zeros(src.size(0), len(self.decoder), 0, self.d_model)  # (B, L, 0, D): nothing fed yet
        return seen, memory.new_zeros(src.size(0), 0), (memory, src_pad)

    def step(self, token, state, context, memory):
        """Feed `token` (B,) after what `state` (B, L, t, D) has seen: (logits (B, V), state (B, L, t + 1, D), the
        unchanged context, weights (B, S)). Inference only (no dropout); matches `forward` at position t."""
        memory, src_pad = memory
        t = state.size(2)
        x = self.tgt_embed(token)[:, None]
        x = x + sinusoidal_positions(t + 1, self.d_model, token.device)[t].to(x.dtype)  # (B, 1, D)
        inputs, weights = [], None
        for index, layer in enumerate(self.decoder):
            inputs.append(x)
            x, weights = layer.step(x, torch.cat([state[:, index], x], 1), memory, src_pad)
        state = torch.cat([state, torch.stack(inputs, 1)], 2)
        return self.out(self.final_norm(x[:, 0])), state, context, weights[:, 0]

    def greedy(self, src, max_len: int):
        """Greedy decoding: (ids (B, T), attention (B, T, S)), as core.models.seq2seq.greedy_decode."""
        from core.models.seq2seq import greedy_decode
        return greedy_decode(self, src, max_len)


@register_model("transformer_seq2seq", description="Small Transformer encoder-decoder (pre-norm, sinusoidal "
                "positions) over characters; the heatmap shows its last layer's cross-attention",
                family="seq2seq", task="seq2seq", options=TRANSFORMER_OPTIONS)
def transformer_seq2seq(*, src_vocab: int, tgt_vocab: int, d_model: int = 64, heads: int = 4, layers: int = 2,
                        ff: int = 256, dropout: float = 0.1, **_):
    return TransformerSeq2Seq(src_vocab=src_vocab, tgt_vocab=tgt_vocab, d_model=d_model, heads=heads, layers=layers,
                              ff=ff, dropout=dropout)
