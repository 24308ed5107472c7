"""Text classifiers over token ids (B, T) -> logits (B, K), id 0 being padding:

  - "text_bag": the mean of the tokens' embeddings and a linear layer, a fastText-like baseline (Joulin et al.
    2016, arXiv:1607.01759): order-blind, fast, often surprisingly strong;
  - "text_cnn": 1-D convolutions of several widths over the embeddings, max-pooled over time (Kim 2014,
    arXiv:1408.5882): n-gram detectors wherever they occur;
  - "text_bilstm": a bidirectional LSTM whose states are max- and mean-pooled over the text;
  - "text_transformer": a small Transformer encoder (pre-norm, learned positions), mean-pooled.

Every model keeps its token embeddings in `self.embed` (an nn.Embedding), where per-token attributions
(integrated gradients) are taken, and pools over real tokens only: padding never changes a prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import register_model
from core.options import Option

PAD_ID = 0

COMMON = {
    "embed": Option(64, "Size of each token's embedding vector", 4, 2048, label="Embedding size"),
    "dropout": Option(0.3, "Dropout before the classifier (and inside the Transformer)", 0.0, 0.9, label="Dropout"),
}
CNN_OPTIONS = {**COMMON,
               "filters": Option(64, "Filters of each width", 1, 2048, label="Filters per width"),
               "widths": Option("3,4,5", "Kernel widths in tokens, comma-separated (Kim 2014 used 3,4,5)",
                                label="Kernel widths")}
LSTM_OPTIONS = {**COMMON, "hidden": Option(64, "Units of each direction of the LSTM", 2, 4096, label="LSTM hidden size")}
TRANSFORMER_OPTIONS = {**COMMON,
                       "dropout": Option(0.1, "Dropout inside the encoder and before the classifier", 0.0, 0.9,
                                         label="Dropout"),
                       "heads": Option(4, "Attention heads; the embedding size must divide by it", 1, 64, label="Heads"),
                       "layers": Option(2, "Encoder layers", 1, 24, label="Layers")}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C), (B, T) bool -> (B, C): the mean over real tokens (an empty row gives zeros)."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C), (B, T) bool -> (B, C): the max over real tokens (an empty row gives zeros)."""
    out = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min).amax(1)
    return torch.where(mask.any(1, keepdim=True), out, torch.zeros_like(out))


class BagOfEmbeddings(nn.Module):
    def __init__(self, *, vocab: int, num_classes: int, embed: int = 64, dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD_ID)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed, num_classes))

    def forward(self, ids):
        return self.head(masked_mean(self.embed(ids), ids != PAD_ID))


class KimCNN(nn.Module):
    def __init__(self, *, vocab: int, num_classes: int, embed: int = 64, filters: int = 64,
                 widths: tuple[int, ...] = (3, 4, 5), dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD_ID)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w, padding=w - 1) for w in widths)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(widths), num_classes))

    def forward(self, ids):
        x = self.embed(ids).transpose(1, 2)  # (B, E, T)
        mask = ids != PAD_ID
        pooled = []
        for conv in self.convs:
            y = torch.relu(conv(x))[..., :ids.size(1)]  # (B, F, T): window i starts at token i - w + 1
            pooled.append(masked_max(y.transpose(1, 2), mask))  # windows ending on padding are ignored
        return self.head(torch.cat(pooled, 1))


class BiLSTM(nn.Module):
    def __init__(self, *, vocab: int, num_classes: int, embed: int = 64, hidden: int = 64, dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden, num_classes))

    def forward(self, ids):
        mask = ids != PAD_ID
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=ids.size(1))  # (B, T, 2H)
        return self.head(torch.cat([masked_max(states, mask), masked_mean(states, mask)], 1))


class TransformerClassifier(nn.Module):
    def __init__(self, *, vocab: int, num_classes: int, embed: int = 64, heads: int = 4, layers: int = 2,
                 max_len: int = 512, dropout: float = 0.1):
        super().__init__()
        if embed % heads:
            raise ValueError(f"the embedding size ({embed}) must divide by the number of heads ({heads})")
        self.max_len = max_len
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD_ID)
        self.position = nn.Embedding(max_len, embed)
        layer = nn.TransformerEncoderLayer(embed, heads, 4 * embed, dropout, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed, num_classes))

    def forward(self, ids):
        ids = ids[:, :self.max_len]
        mask = ids != PAD_ID
        positions = torch.arange(ids.size(1), device=ids.device)
        # an all-padding row would mask every key (softmax over nothing: NaN); let it attend to its first position
        keys = mask.clone()
        keys[:, 0] |= ~mask.any(1)
        x = self.encoder(self.embed(ids) + self.position(positions), src_key_padding_mask=~keys)  # (B, T, E)
        return self.head(masked_mean(self.norm(x), mask))


def kernel_widths(text) -> tuple[int, ...]:
    """Kernel widths from text: "3,4,5" -> (3, 4, 5); ValueError unless whole numbers from 1 to 32."""
    try:
        widths = tuple(int(w) for w in str(text).replace(" ", "").split(",") if w)
    except ValueError:
        widths = ()
    if not widths or any(not 1 <= w <= 32 for w in widths):
        raise ValueError(f"kernel widths must be whole numbers from 1 to 32, comma-separated; got {text!r}")
    return widths


@register_model("text_bag", description="Bag of embeddings: the mean token embedding and a linear layer "
                "(fastText-like baseline)", family="text", task="text_classification", options=COMMON)
def text_bag(*, vocab: int, num_classes: int, embed: int = 64, dropout: float = 0.3, **_):
    return BagOfEmbeddings(vocab=vocab, num_classes=num_classes, embed=embed, dropout=dropout)


@register_model("text_cnn", description="1-D CNN over tokens with widths 3, 4, 5 and max-over-time pooling "
                "(Kim 2014)", family="text", task="text_classification", options=CNN_OPTIONS)
def text_cnn(*, vocab: int, num_classes: int, embed: int = 64, filters: int = 64, widths: str = "3,4,5",
             dropout: float = 0.3, **_):
    return KimCNN(vocab=vocab, num_classes=num_classes, embed=embed, filters=filters, widths=kernel_widths(widths),
                  dropout=dropout)


@register_model("text_bilstm", description="Bidirectional LSTM, max- and mean-pooled over the text", family="text",
                task="text_classification", options=LSTM_OPTIONS)
def text_bilstm(*, vocab: int, num_classes: int, embed: int = 64, hidden: int = 64, dropout: float = 0.3, **_):
    return BiLSTM(vocab=vocab, num_classes=num_classes, embed=embed, hidden=hidden, dropout=dropout)


@register_model("text_transformer", description="Small Transformer encoder (pre-norm, learned positions), "
                "mean-pooled", family="text", task="text_classification", options=TRANSFORMER_OPTIONS)
def text_transformer(*, vocab: int, num_classes: int, embed: int = 64, heads: int = 4, layers: int = 2,
                     max_len: int = 512, dropout: float = 0.1, **_):
    """`max_len` (the task's window in tokens) sizes the position table."""
    return TransformerClassifier(vocab=vocab, num_classes=num_classes, embed=embed, heads=heads, layers=layers,
                                 max_len=max_len, dropout=dropout)
