"""A GRU encoder-decoder with attention for character sequence-to-sequence tasks.

The encoder is a bidirectional GRU over the source characters; the decoder a GRU cell that, at each
target step, attends over the encoder's outputs:
  - "bahdanau" (additive; Bahdanau, Cho & Bengio 2014, arXiv:1409.0473): score = v . tanh(W q + U k),
    with the decoder's previous state as the query; the context feeds the GRU step;
  - "luong" (dot; Luong, Pham & Manning 2015, arXiv:1508.04025): score = h_t . W k with the new state,
    the previous context fed in with the input ("input feeding").
`forward(src, tgt_in)` returns logits (B, T_out, V) under teacher forcing; `greedy(src, max_len)` returns
the decoded ids and the attention weights (B, T_out, T_in). Token id 0 is padding, 1 bos, 2 eos.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import register_model
from core.options import Option

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2

SEQ2SEQ_OPTIONS = {
    "embed": Option(32, "Size of each character's embedding vector (source and target)", 1, 1024,
                    label="Character embedding size"),
    "hidden": Option(128, "Units of the decoder's GRU (the encoder's two directions have half as many each)", 2, 4096,
                     label="GRU hidden size"),
    "attention": Option("bahdanau", "bahdanau: additive attention on the previous decoder state (Bahdanau et al. "
                        "2014); luong: dot-product attention on the new state (Luong et al. 2015)",
                        choices=("bahdanau", "luong"), label="Attention"),
}


class Seq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, embed: int = 32, hidden: int = 128,
                 attention: str = "bahdanau"):
        super().__init__()
        if attention not in ("bahdanau", "luong"):
            raise ValueError(f"attention must be bahdanau or luong, got {attention!r}")
        self.attention, self.hidden = attention, hidden
        half = max(1, hidden // 2)
        self.src_embed = nn.Embedding(src_vocab, embed, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed, padding_idx=PAD_ID)
        self.encoder = nn.GRU(embed, half, batch_first=True, bidirectional=True)
        enc = 2 * half
        self.init_state = nn.Linear(enc, hidden)
        self.keys = nn.Linear(enc, hidden, bias=False)
        if attention == "bahdanau":
            self.query = nn.Linear(hidden, hidden)
            self.score = nn.Linear(hidden, 1, bias=False)
        self.cell = nn.GRUCell(embed + enc, hidden)
        self.out = nn.Sequential(nn.Linear(hidden + enc + embed, hidden), nn.Tanh(), nn.Linear(hidden, tgt_vocab))
        self.enc_dim = enc

    def encode(self, src: torch.Tensor):
        """(B, S) ids -> (outputs (B, S, E), keys (B, S, H), mask (B, S) bool, initial state (B, H))."""
        mask = src != PAD_ID
        lengths = mask.sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        outputs, _ = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))
        mean = (outputs * mask[..., None]).sum(1) / lengths[:, None]
        return outputs, self.keys(outputs), mask, torch.tanh(self.init_state(mean))

    def _attend(self, query, keys, outputs, mask):
        if self.attention == "bahdanau":
            scores = self.score(torch.tanh(self.query(query)[:, None] + keys)).squeeze(-1)  # (B, S)
        else:
            scores = torch.bmm(keys, query[..., None]).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return weights, torch.bmm(weights[:, None], outputs).squeeze(1)

    def _advance(self, e, state, context, memory):
        outputs, keys, mask = memory
        if self.attention == "bahdanau":
            weights, context = self._attend(state, keys, outputs, mask)
            state = self.cell(torch.cat([e, context], -1), state)
        else:
            state = self.cell(torch.cat([e, context], -1), state)
            weights, context = self._attend(state, keys, outputs, mask)
        return state, context, weights

    def step(self, token, state, context, memory):
        """One decoder step: (logits (B, V), new state, new context, weights (B, S))."""
        e = self.tgt_embed(token)
        state, context, weights = self._advance(e, state, context, memory)
        return self.out(torch.cat([state, context, e], -1)), state, context, weights

    def start(self, src):
        outputs, keys, mask, state = self.encode(src)
        context = outputs.new_zeros(src.size(0), self.enc_dim)
        return state, context, (outputs, keys, mask)

    def forward(self, src, tgt_in, return_attention: bool = False):
        state, context, memory = self.start(src)
        embedded = self.tgt_embed(tgt_in)  # (B, T, E)
        states, contexts, maps = [], [], []
        for t in range(tgt_in.size(1)):
            state, context, weights = self._advance(embedded[:, t], state, context, memory)
            states.append(state)
            contexts.append(context)
            maps.append(weights)
        logits = self.out(torch.cat([torch.stack(states, 1), torch.stack(contexts, 1), embedded], -1))
        return (logits, torch.stack(maps, 1)) if return_attention else logits

    def greedy(self, src, max_len: int):
        return greedy_decode(self, src, max_len)


@torch.no_grad()
def greedy_decode(model, src, max_len: int):
    """Greedy decoding with any model of the seq2seq interface (start, step): (ids (B, T), attention (B, T, S));
    a row stops at its first eos (kept), then pads."""
    state, context, memory = model.start(src)
    token = torch.full((src.size(0),), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    ids, maps = [], []
    for _ in range(max_len):
        logits, state, context, weights = model.step(token, state, context, memory)
        token = logits.argmax(-1).masked_fill(done, PAD_ID)
        ids.append(token)
        maps.append(weights)
        done |= token == EOS_ID
        if bool(done.all()):
            break
    return torch.stack(ids, 1), torch.stack(maps, 1)


@register_model("gru_attention", description="GRU encoder-decoder with attention (Bahdanau additive or Luong dot) "
                "over characters", family="seq2seq", task="seq2seq", options=SEQ2SEQ_OPTIONS)
def gru_attention(*, src_vocab: int, tgt_vocab: int, embed: int = 32, hidden: int = 128, attention: str = "bahdanau",
                  **_):
    return Seq2Seq(src_vocab=src_vocab, tgt_vocab=tgt_vocab, embed=embed, hidden=hidden, attention=attention)
