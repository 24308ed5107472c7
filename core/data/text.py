"""Text corpora for character-level language models, and the batches they are trained on.

Three sources (kind "text"), each returning a `TextCorpus`:
  - "pydocs": offline; docstrings of standard-library modules plus the language-reference topics that
    ship with Python (pydoc_data), in a fixed order, cached under LAB_HOME/cache/text;
  - "tinyshakespeare": the char-rnn corpus, downloaded once into LAB_HOME/cache/text (or data.path);
  - "text": any UTF-8 .txt file on the server or uploaded through the app (data.path).

As in nanoGPT's shakespeare_char, the vocabulary is the sorted set of characters, the first 90% of the
text (by position) is for training and the last 10% for validation, and a batch is B random windows
of the context length. Imports no torch at module level: registering data sets must stay cheap.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.data import register_dataset
from core.data.roots import readable_path, shown_path
from core.errors import DataError
from core.options import Option
from core.paths import atomic_write, cache_dir

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_FILE = "tinyshakespeare.txt"
MAX_TEXT_BYTES = 64 * 2**20  # a whole corpus is held in memory (and on the device) as one tensor
PYDOCS_MAX_CHARS = 1_000_000
PYDOCS_MODULES = (  # stable, side-effect-free modules with plenty of prose; the order is the corpus order
    "builtins abc argparse array ast asyncio base64 bisect calendar cmath codecs collections contextlib copy csv "
    "dataclasses datetime decimal difflib email enum fractions functools glob gzip hashlib heapq hmac html "
    "http.client inspect io ipaddress itertools json logging math operator os pathlib pickle pprint queue random "
    "re secrets shutil socket sqlite3 statistics string struct subprocess tarfile tempfile textwrap threading "
    "time timeit typing unittest urllib.parse urllib.request uuid weakref zipfile zlib").split()

TEXT_OPTIONS = {
    "val_fraction": Option(0.1, "Share of the text, taken from its end, kept for validation", 0.01, 0.5,
                           label="Validation fraction (end of the text)"),
    "max_chars": Option(0, "Use only the first N characters (0 = the whole text): for quick experiments",
                        0, 100_000_000, label="Characters to use (0 = all)"),
}


@dataclass
class TextCorpus:
    text: str
    name: str
    source: str  # where it came from, in words


# ---- sources -------------------------------------------------------------------------------------

@register_dataset("pydocs", description="Python's own documentation: standard-library docstrings and language "
                  "reference topics (~1 MB of English and code, offline)", kind="text", options=TEXT_OPTIONS)
def build_pydocs(cfg, *, seed: int = 0) -> TextCorpus:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = cache_dir("text") / f"pydocs-{version}.txt"
    if not path.is_file():
        _atomic_write(path, _collect_in_fresh_interpreter())
    return TextCorpus(read_text_file(path), "pydocs", f"docstrings and reference topics of Python {version} ({path})")


@register_dataset("tinyshakespeare", description="Tiny Shakespeare, 1.1 million characters of plays (char-rnn; "
                  "downloaded on first use)", offline=False, kind="text", options=TEXT_OPTIONS)
def build_tinyshakespeare(cfg, *, seed: int = 0) -> TextCorpus:
    if cfg.path:  # a local copy: read it, never download over it
        path = readable_path(cfg.path)
    else:
        path = shakespeare_path()
        if not path.is_file():
            download(SHAKESPEARE_URL, path)
    return TextCorpus(read_text_file(path), "tinyshakespeare", f"Tiny Shakespeare ({path})")


@register_dataset("text", description="Your own plain-text file (.txt, UTF-8): upload one or give a path on the "
                  "server", needs_path=True, kind="text", options=TEXT_OPTIONS)
def build_text(cfg, *, seed: int = 0) -> TextCorpus:
    if not cfg.path:
        raise DataError("data.path is empty; upload a .txt file or give the path of one")
    path = readable_path(cfg.path)
    if not path.is_file():
        raise DataError(f"data.path: no text file at '{shown_path(cfg.path)}'; upload a .txt file or give the path of one")
    return TextCorpus(read_text_file(path), path.stem, shown_path(path))


def shakespeare_path() -> Path:
    """Where the downloaded corpus lives; put the file here by hand to work offline."""
    return cache_dir("text") / SHAKESPEARE_FILE


def load_corpus(cfg) -> TextCorpus:
    """The corpus of a DataConfig (kind "text"), cut to data.options.max_chars when set."""
    from core.data import dataset_info
    info = dataset_info(cfg.name)
    if info.kind != "text":
        raise DataError(f"data.name: '{cfg.name}' is not a text data set")
    corpus = info.builder(cfg, seed=0)
    limit = (cfg.options or {}).get("max_chars", 0)
    if limit:
        corpus.text = corpus.text[:limit]
    return corpus


def describe_corpus(cfg, excerpt_chars: int = 600) -> dict:
    """What a text data set holds, for the Train page: sizes, vocabulary, baselines and an excerpt."""
    import math
    from collections import Counter

    from core.options import resolve
    corpus = load_corpus(cfg)
    text = corpus.text
    train, val = split_text(text, resolve(cfg.options, TEXT_OPTIONS)["val_fraction"])
    counts = Counter(text)
    # bits per character of a model that knows only how often each character occurs
    unigram = -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())
    return {"name": corpus.name, "source": corpus.source, "chars": len(text), "train": len(train), "val": len(val),
            "vocab": sorted(counts), "unigram_bpc": unigram, "uniform_bpc": math.log2(len(counts)),
            "excerpt": text[:excerpt_chars]}


# ---- reading and downloading -----------------------------------------------------------------------

def decode_text(data: bytes, where: str) -> str:
    """UTF-8 bytes (a BOM is dropped, line ends become \\n) -> text; DataError for empty or binary data."""
    if not data.strip():
        raise DataError(f"{where} is empty: a language model needs some text to learn from")
    if b"\x00" in data[:1 << 20]:
        raise DataError(f"{where} looks like a binary file (it holds NUL bytes); give a plain-text .txt file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text (undecodable byte at position {exc.start}); "
                        "save it as UTF-8 plain text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text_file(path: Path) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise DataError(f"{path} is {size / 2**20:.0f} MB; text files up to {MAX_TEXT_BYTES // 2**20} MB "
                            "are supported; use a shorter part of it")
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_text(data, str(path))


def save_upload(data: bytes, filename: str = "upload.txt") -> Path:
    """Check an uploaded text and keep it under LAB_HOME/cache/uploads (named by its content)."""
    if len(data) > MAX_TEXT_BYTES:
        raise DataError(f"{filename} is {len(data) / 2**20:.0f} MB; up to {MAX_TEXT_BYTES // 2**20} MB is supported")
    decode_text(data, filename)
    from core.data.uploads import keep_upload
    return keep_upload(data, filename if filename.lower().endswith(".txt") else f"{filename}.txt")


def download(url: str, path: Path, timeout: float = 30.0) -> None:
    """Fetch `url` into `path` (temp file, then rename); DataError saying where to put the file offline."""
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(MAX_TEXT_BYTES + 1)
    except Exception as exc:  # noqa: BLE001  URLError, HTTPError, timeouts, resets
        reason = str(getattr(exc, "reason", "") or exc).strip() or type(exc).__name__
        raise DataError(f"could not download {path.name} from {url} ({reason[:200]}). Without a network, "
                        f"save that file as {path} (or set data.path to a copy of it), then try again.") from None
    decode_text(data, f"the file downloaded from {url}")
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def collect_pydocs(max_chars: int = PYDOCS_MAX_CHARS) -> str:
    """Docstrings of PYDOCS_MODULES and pydoc's reference topics, one document per module or topic.

    Documents are shuffled with a fixed seed so that the last 10% (validation) is a mix of both kinds,
    not all reference prose; the same Python gives the same text every time.
    """
    import importlib
    import inspect
    import random
    import warnings

    documents = []
    seen: set[str] = set()

    def clean(doc) -> str | None:
        if not isinstance(doc, str):
            return None
        doc = inspect.cleandoc(doc)
        if len(doc) < 40 or doc in seen:  # skip one-liners and docstrings inherited by many classes
            return None
        seen.add(doc)
        return doc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases (typing.io...) warn when touched
        for name in PYDOCS_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            parts = [clean(module.__doc__)]
            for attr in sorted(vars(module)):
                obj = vars(module)[attr]
                if attr.startswith("_") or (name != "builtins" and getattr(obj, "__module__", None) != name):
                    continue  # re-exported names are documented where they are defined
                if inspect.isclass(obj):
                    parts.append(clean(obj.__doc__))
                    for member_name in sorted(vars(obj)):
                        member = vars(obj)[member_name]
                        if (callable(member) or isinstance(member, property)) and not member_name.startswith("_"):
                            parts.append(clean(getattr(member, "__doc__", None)))
                elif callable(obj):
                    parts.append(clean(obj.__doc__))
            text = "\n\n".join(p for p in parts if p)
            if text:
                documents.append(text)
        try:
            from pydoc_data.topics import topics
            documents.extend(topics[key].strip() for key in sorted(topics) if topics[key].strip())
        except ImportError:  # some distributions strip pydoc_data; the docstrings alone still make a corpus
            pass
    random.Random(0).shuffle(documents)
    text = "\n\n\n".join(documents)
    if not text:
        raise DataError("could not collect any docstrings from this Python installation")
    return text[:max_chars]


def _collect_in_fresh_interpreter() -> bytes:
    """collect_pydocs() run by a new Python: what this process happens to have imported or patched (the app
    imports torch, streamlit, pandas...) must not change the corpus, so every install builds the same text."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    code = ("import sys; from core.data.text import collect_pydocs; "
            "sys.stdout.buffer.write(collect_pydocs().encode('utf-8'))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataError(f"could not collect Python's docstrings: {exc}") from None
    if done.returncode or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"could not collect Python's docstrings: {reason[0][:300]}")
    return done.stdout


# ---- vocabulary, splits and batches -------------------------------------------------------------------

class Vocabulary:
    """Characters <-> integer ids; the ids are positions in the sorted character set."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def unknown(self, text: str) -> list[str]:
        """Characters of `text` that are not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))

    def encode(self, text: str):
        """text -> int64 tensor (N,); unknown characters raise KeyError (check with `unknown` first)."""
        import numpy as np
        import torch
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per character
        table = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        order = np.argsort(table, kind="stable")  # the identity for a sorted vocabulary
        pos = np.searchsorted(table[order], points)
        if len(points) and (pos.max() >= len(table) or not np.array_equal(table[order][pos], points)):
            raise KeyError(f"characters not in the vocabulary: {self.unknown(text)[:10]}")
        return torch.from_numpy(order[pos].astype(np.int64))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The first (1 - val_fraction) of the text for training, the rest for validation (nanoGPT's split)."""
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


class CharBatches:
    """Random windows of a character sequence kept on the device: batches of (x, y), y = x shifted by one.

    An "epoch" is a fixed number of batches. Window offsets of batch i of epoch e come from a CPU generator
    seeded with (seed, e, i), so `epoch(e, start_batch=k)` replays batches k.. exactly after a resume.
    """

    def __init__(self, ids, *, context: int, batch_size: int, batches: int, device, seed: int = 0):
        import torch
        if len(ids) < context + 1:
            raise DataError(f"the text has {len(ids):,} characters; a context of {context} needs at least "
                            f"{context + 1}")
        dtype = torch.uint8 if int(ids.max()) < 256 else torch.int32  # compact on the device
        self.data = ids.to(dtype).to(device)  # (N,)
        self.context, self.batch_size, self.batches = int(context), int(batch_size), int(batches)
        self.device, self.seed = torch.device(device), int(seed)
        self._window = torch.arange(self.context + 1, device=self.device)  # (T + 1,)

    def __len__(self) -> int:
        return self.batches

    @property
    def num_chars(self) -> int:
        return len(self.data)

    def offsets(self, epoch: int, start_batch: int = 0):
        """(batches - start_batch, B) int64 window starts on the device, drawn batch by batch on the CPU."""
        import torch
        from core.data.loader import derive_seed
        g = torch.Generator()
        high = len(self.data) - self.context  # last valid start + 1
        rows = []
        for i in range(start_batch, self.batches):
            g.manual_seed(derive_seed(self.seed, epoch, i))
            rows.append(torch.randint(0, high, (self.batch_size,), generator=g))
        if not rows:
            return torch.empty(0, self.batch_size, dtype=torch.int64, device=self.device)
        return torch.stack(rows).to(self.device)  # one copy to the device per epoch

    def epoch(self, epoch: int, start_batch: int = 0):
        """Yield (x (B, T) int64, y (B, T) int64) for batches start_batch.. of `epoch`."""
        if start_batch < 0:
            raise ValueError(f"start_batch must be >= 0, got {start_batch}")
        for starts in self.offsets(epoch, start_batch):  # (B,)
            windows = self.data[starts[:, None] + self._window].long()  # (B, T + 1)
            yield windows[:, :-1], windows[:, 1:]
