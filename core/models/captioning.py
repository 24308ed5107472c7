"""Image captioning: a CNN encoder and an LSTM decoder (Vinyals et al. 2014, "Show and Tell";
Karpathy & Fei-Fei's NeuralTalk).

The encoder turns an image into one feature vector; it is injected into the decoder either as the
LSTM's initial hidden and cell state (NeuralTalk) or as its first input step (Show and Tell). The
decoder reads word embeddings: in training the true previous word (teacher forcing), at inference
its own previous choice (core.tasks.captioning.caption: greedy decoding and beam search use `start` and
`step`). The encoder keeps a coarse spatial grid beside a global max, because captions say "left of"
and "above": a global pool alone would throw away where things are.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.models import register_model
from core.options import Option

CAPTIONER_OPTIONS = {
    "encoder": Option("small_cnn", "small_cnn: four conv blocks, fast on a CPU; resnet18: torchvision's ResNet-18 "
                      "trained from scratch (no download), for larger images", choices=("small_cnn", "resnet18")),
    "width": Option(16, "Channels of the small CNN's first layer (doubled, then doubled again)", low=4, high=256),
    "embed_dim": Option(64, "Size of the word embeddings", low=8, high=1024, label="Embedding size"),
    "hidden_size": Option(128, "Units of the LSTM's hidden state", low=16, high=4096, label="LSTM units"),
    "layers": Option(1, "Stacked LSTM layers", low=1, high=4),
    "inject": Option("init", "How the image enters the decoder: init = the LSTM's initial state (NeuralTalk), "
                     "first_input = the first input step (Show and Tell)", choices=("init", "first_input")),
    "dropout": Option(0.0, "Dropout on the LSTM's outputs before the word classifier", low=0.0, high=0.9),
}
_GRID = 4  # the small encoder's feature map is averaged over GRID x GRID cells before flattening


def _where_and_what(feature_map: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C * grid * grid + C): a coarse grid of averages (where things are) and a
    global max per channel (what is there, wherever it is). The max path is position-invariant, so a
    shape detector is learnt once instead of once per grid cell: shapes are learnt in about half the steps."""
    cells = nn.functional.adaptive_avg_pool2d(feature_map, grid).flatten(1)  # (B, C * grid * grid)
    return torch.cat([cells, feature_map.amax(dim=(2, 3))], dim=1)


class SmallEncoder(nn.Module):
    """(B, 3, H, W) -> (B, F): four conv-BN-ReLU-pool blocks, grid + max features, a linear layer.

    The first block is narrow (width channels) because at full resolution batch norm and pooling are
    memory-bound; a stride-2 first convolution would be cheaper still, but blurs the corners that tell
    a small square from a circle or a diamond, and shapes then take about twice the steps to learn.
    """

    def __init__(self, width: int, features: int):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        blocks = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
        self.body = nn.Sequential(*blocks)  # (B, 4w, H/16, W/16)
        self.head = nn.Sequential(nn.Linear(chans[-1] * (_GRID * _GRID + 1), features), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(_where_and_what(self.body(images), _GRID))


class ResNetEncoder(nn.Module):
    """(B, 3, H, W) -> (B, F): torchvision's ResNet-18 body (random weights), 2x2 grid + max, one linear layer."""

    def __init__(self, features: int):
        super().__init__()
        from torchvision.models import resnet18
        net = resnet18(weights=None)
        self.body = nn.Sequential(*list(net.children())[:-2])  # (B, 512, H/32, W/32)
        self.head = nn.Sequential(nn.Linear(512 * (2 * 2 + 1), features), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(_where_and_what(self.body(images), 2))


class CNNLSTMCaptioner(nn.Module):
    def __init__(self, *, vocab_size: int, encoder: str = "small_cnn", width: int = 16, embed_dim: int = 64,
                 hidden_size: int = 128, layers: int = 1, inject: str = "init", dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.hidden_size, self.layers, self.inject = vocab_size, hidden_size, layers, inject
        features = hidden_size
        self.encoder = SmallEncoder(width, features) if encoder == "small_cnn" else ResNetEncoder(features)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        if inject == "init":
            self.init_h = nn.Linear(features, layers * hidden_size)
            self.init_c = nn.Linear(features, layers * hidden_size)
        else:
            self.image_input = nn.Linear(features, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def start(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's state before the <start> token: (h, c), each (layers, B, hidden)."""
        feats = self.encoder(images)  # (B, F)
        batch = feats.shape[0]
        if self.inject == "init":
            shape = (batch, self.layers, self.hidden_size)
            h = torch.tanh(self.init_h(feats)).view(shape).transpose(0, 1).contiguous()
            c = self.init_c(feats).view(shape).transpose(0, 1).contiguous()
            return h, c
        _, state = self.lstm(self.image_input(feats).unsqueeze(1))  # the image as input step 0, from zeros
        return state

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: tokens (P, T) = <start> w1 .. w_{T-1} -> logits (P, T, V) for w1 .. <end>.

        owner (P,) says which of the B images each caption describes (default: caption i, image i), so
        an image with several captions is encoded once.
        """
        h, c = self.start(images)  # (L, B, H) each
        if owner is not None:
            h, c = h.index_select(1, owner), c.index_select(1, owner)  # (L, P, H)
        outputs, _ = self.lstm(self.embed(tokens), (h, c))  # (P, T, H)
        return self.out(self.drop(outputs))

    def step(self, tokens: torch.Tensor, state):
        """One decoding step: previous words (B,) -> log-probabilities (B, V) and the new state."""
        outputs, state = self.lstm(self.embed(tokens).unsqueeze(1), state)  # (B, 1, H)
        return torch.log_softmax(self.out(outputs[:, 0]).float(), dim=-1), state


@register_model("cnn_lstm_captioner", description="CNN encoder + LSTM decoder (Show and Tell / NeuralTalk): "
                "the image sets the LSTM's first state or input, words are predicted one at a time",
                family="small", min_image_size=16, task="captioning", options=CAPTIONER_OPTIONS)
def build_cnn_lstm_captioner(*, vocab_size: int, **options) -> CNNLSTMCaptioner:
    """Built by core.tasks.captioning with the vocabulary size and the model.options."""
    return CNNLSTMCaptioner(vocab_size=vocab_size, **options)


# ---- decoding ---------------------------------------------------------------------------------------

@torch.inference_mode()
def greedy_decode(model, images: torch.Tensor, max_length: int, start: int = 1, end: int = 2):
    """Normalised images (B, 3, S, S) -> (token lists without <start>/<end>, summed log-probabilities (B,)).

    At each step every caption takes its most likely next word; finished captions stop counting. After
    `max_length` words <end> is forced (and its log-probability counted), as beam search does.
    """
    batch = images.shape[0]
    state = model.start(images)
    previous = torch.full((batch,), start, dtype=torch.long, device=images.device)
    done = torch.zeros(batch, dtype=torch.bool, device=images.device)
    total = torch.zeros(batch, device=images.device)
    chosen = []
    for step in range(max_length + 1):  # up to max_length words, then <end>
        log_probs, state = model.step(previous, state)  # (B, V)
        if step == max_length:
            best, previous = log_probs[:, end], torch.full_like(previous, end)
        else:
            best, previous = log_probs.max(dim=-1)  # (B,), (B,)
        total = total + torch.where(done, torch.zeros_like(best), best)
        chosen.append(torch.where(done, torch.full_like(previous, end), previous))
        done = done | (previous == end)
        if bool(done.all()):
            break
    words = torch.stack(chosen, dim=1).tolist()  # (B, steps)
    return [row[:row.index(end)] if end in row else row for row in words], total.cpu()


@torch.inference_mode()
def beam_search(model, image: torch.Tensor, width: int, max_length: int, start: int = 1, end: int = 2,
                alpha: float = 0.7) -> list[dict]:
    """One normalised image (1, 3, S, S) -> up to `width` captions, best score first.

    Each entry is {"tokens": [...] (without <start>/<end>), "log_prob": summed log-probability,
    "score": log_prob / (words + 1) ** alpha}. Length normalisation (alpha > 0) keeps the search
    from preferring short captions only because every extra word multiplies in a probability below
    one; alpha = 0 ranks by raw log-probability. A beam that emits <end> is set aside and the beam
    narrows by one, so width 1 is exactly greedy decoding.
    """
    if width < 1:
        raise ValueError(f"beam width must be at least 1, got {width}")
    h, c = model.start(image)  # (L, 1, H) each
    beams = [[]]  # token lists of the live hypotheses
    scores = torch.zeros(1, device=image.device)  # (K,) summed log-probabilities
    previous = torch.tensor([start], device=image.device)
    finished = []
    for step in range(max_length + 1):
        log_probs, (h, c) = model.step(previous, (h, c))  # (K, V)
        if step == max_length:  # the words are used up: only <end> may follow
            forced = torch.full_like(log_probs, -math.inf)
            forced[:, end] = log_probs[:, end]
            log_probs = forced
        room = width - len(finished)
        total = (scores[:, None] + log_probs).flatten()  # (K * V,)
        top_scores, top_index = total.topk(min(room, total.numel()))
        vocab = log_probs.shape[1]
        keep, kept_scores, next_beams = [], [], []
        for score, index in zip(top_scores.tolist(), top_index.tolist()):
            beam, word = divmod(index, vocab)
            if score == -math.inf:
                continue
            if word == end:
                finished.append({"tokens": beams[beam], "log_prob": score})
            else:
                keep.append(beam)
                kept_scores.append(score)
                next_beams.append(beams[beam] + [word])
        if not next_beams:
            break
        pick = torch.tensor(keep, device=image.device)
        h, c = h.index_select(1, pick), c.index_select(1, pick)
        scores = torch.tensor(kept_scores, device=image.device)
        previous = torch.tensor([b[-1] for b in next_beams], device=image.device)
        beams = next_beams
    for entry in finished:
        entry["score"] = entry["log_prob"] / (len(entry["tokens"]) + 1) ** alpha
    return sorted(finished, key=lambda e: e["score"], reverse=True)
