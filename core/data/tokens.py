"""Turning text into token ids for text classifiers: characters, or a subword vocabulary learned from the
training texts with byte-pair encoding (Sennrich, Haddow & Birch 2015, arXiv:1508.07909) through Hugging
Face's `tokenizers`. Id 0 is padding and id 1 the unknown token in both.

    vocab = TokenVocab.fit(texts, kind="subword", size=2000)
    tokens = vocab.encode("Return the logger", max_len=256)
    tokens.ids, tokens.spans, tokens.cut      # spans: (start, end) of each token in the text
    TokenVocab.from_dict(vocab.to_dict())     # what a checkpoint stores: the whole vocabulary as JSON

Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

PAD, UNK = "[PAD]", "[UNK]"
KINDS = ("char", "subword")


@dataclass
class Tokens:
    ids: list[int]
    spans: list[tuple[int, int]]  # (start, end) character offsets of each token in the text
    cut: int = 0  # tokens dropped from the end to fit max_len


class TokenVocab:
    def __init__(self, kind: str, chars: list[str] | None = None, tokenizer_json: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"token kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self.chars = list(chars or [])
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.tokenizer_json = tokenizer_json
        self._tokenizer = None
        if kind == "subword":
            from tokenizers import Tokenizer
            self._tokenizer = Tokenizer.from_str(tokenizer_json)

    @classmethod
    def fit(cls, texts, *, kind: str = "subword", size: int = 2000, min_count: int = 2) -> "TokenVocab":
        """Learn the vocabulary from `texts` (the training split only, so validation stays unseen)."""
        texts = list(texts)
        if kind == "char":
            from collections import Counter
            counts = Counter(c for text in texts for c in text)
            kept = sorted(c for c, n in counts.items() if n >= min_count)
            return cls("char", chars=[PAD, UNK, *kept])
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # words and runs of punctuation
        trainer = trainers.BpeTrainer(vocab_size=int(size), min_frequency=min_count, special_tokens=[PAD, UNK],
                                      show_progress=False)
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls("subword", tokenizer_json=tokenizer.to_str())

    def __len__(self) -> int:
        return len(self.chars) if self.kind == "char" else self._tokenizer.get_vocab_size()

    def encode(self, text: str, *, max_len: int) -> Tokens:
        if self.kind == "char":
            ids = [self.index.get(c, 1) for c in text]
            spans = [(i, i + 1) for i in range(len(text))]
        else:
            encoding = self._tokenizer.encode(text)
            # "[PAD]" typed in a text is matched as the special token: read it as unknown, never as padding
            ids, spans = [i or 1 for i in encoding.ids], [tuple(o) for o in encoding.offsets]
        cut = max(0, len(ids) - max_len)
        return Tokens(ids[:max_len], spans[:max_len], cut)

    def token_text(self, token_id: int) -> str:
        if self.kind == "char":
            return self.chars[token_id]
        return self._tokenizer.id_to_token(int(token_id)) or UNK

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars} if self.kind == "char" else \
            {"kind": self.kind, "tokenizer": self.tokenizer_json}

    @classmethod
    def from_dict(cls, raw: dict) -> "TokenVocab":
        return cls(raw["kind"], chars=raw.get("chars"), tokenizer_json=raw.get("tokenizer"))
