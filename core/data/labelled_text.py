"""Texts with a class label, for text classification (kind "labelled-text"). Three sources, each returning
a `LabelledTexts`:

  - "docstrings": offline, nothing to download: the docstrings of eight packages of Python's own standard
    library (asyncio, decimal, email, http, importlib, logging, unittest, xml), each labelled by the package
    it came from. Read from the source files with `ast` (nothing is imported), cached under LAB_HOME/cache;
  - "text-folder": a folder or .zip of .txt files, one example per file, `train/<class>/*.txt` (and
    `val/<class>/*.txt`, or `test/`, else the validation share is drawn from train), or simply `<class>/*.txt`
    (files in folders below a class folder belong to it);
  - "text-csv": a CSV file with a header row naming the columns `text` and `label` (other columns ignored).

Bad input is skipped and counted, never fatal: empty texts, files or lines that are not UTF-8, CSV rows
without a label, labels with only one example (a class needs one to learn from and one to check), repeats of a
text, and texts given with two labels (so no text is on both sides of the split).
`skipped` keeps the first messages, each naming the file and line. Imports no torch.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.data import register_dataset
from core.data.roots import readable_path, shown_path
from core.data.text_files import SkipLog, decode_utf8, read_text_files
from core.errors import DataError
from core.options import Option

DOCSTRING_PACKAGES = {"asyncio": "asyncio", "decimal": "_pydecimal", "email": "email", "http": "http",
                      "importlib": "importlib", "logging": "logging", "unittest": "unittest", "xml": "xml"}
MIN_DOCSTRING_CHARS = 40  # shorter ones ("Return self.") say nothing about where they came from
MAX_FILE_BYTES = 1 << 20  # one example per file: a longer one is cut to the model's window anyway
MAX_CSV_BYTES = 64 << 20

SPLIT_OPTIONS = {
    "val_fraction": Option(0.2, "Share of each class held out for validation (after a shuffle by the seed)",
                           0.01, 0.5, label="Validation share of each class"),
    "max_per_class": Option(0, "Use at most this many examples of each class (0 = all): for quick experiments",
                            0, 10_000_000, label="Examples per class (0 = all)"),
}


@dataclass
class LabelledTexts:
    train: list[tuple[str, int]]  # (text, class index)
    val: list[tuple[str, int]]
    classes: list[str]
    name: str
    source: str  # where it came from, in words
    skipped: list[str] = field(default_factory=list)  # the first reasons (core.data.text_files.SkipLog)
    skipped_count: int = 0


def describe(cfg, seed: int = 0) -> dict:
    """What the Train form shows of a labelled-text data set before training: its classes with their training and
    validation counts, where it came from, what was skipped and a first training example (text, class index)."""
    from core.data import dataset_info
    data = dataset_info(cfg.name).builder(cfg, seed=seed)
    train = [sum(1 for _, k in data.train if k == i) for i in range(len(data.classes))]
    val = [sum(1 for _, k in data.val if k == i) for i in range(len(data.classes))]
    return {"classes": data.classes, "train": train, "val": val, "source": data.source, "skipped": data.skipped,
            "skipped_count": data.skipped_count, "example": data.train[0] if data.train else None}


def split_by_class(examples: list[tuple[str, str]], *, val_fraction: float, seed: int, max_per_class: int = 0,
                   skips: SkipLog, where: dict | None = None, fixed_val: list[tuple[str, str]] | None = None):
    """(train, val, classes) from (text, label) pairs: each class shuffled by the seed and split so both sides
    get at least one; a label with a single example is skipped (`where[i]` names example i for the message).
    With `fixed_val` the validation examples are given and nothing is drawn from train. A text given twice is
    kept once, and one given with two labels not at all, so no text is on both sides of the split."""
    examples, fixed_val = _deduplicated(examples, fixed_val, where or {}, skips)
    by_label: dict[str, list[str]] = {}
    for text, label in examples:
        by_label.setdefault(label, []).append(text)
    val_by_label: dict[str, list[str]] = {}
    for text, label in fixed_val or []:
        val_by_label.setdefault(label, []).append(text)
    index_of = {}
    for i, (text, label) in enumerate(examples):
        index_of.setdefault(label, i)
    for label in sorted(set(val_by_label) - set(by_label)):
        skips.add(f"label {label!r} is only among the validation texts ({len(val_by_label[label])}); skipped: "
                  "the model cannot learn a class it never sees in training")
    classes = []
    for label in sorted(by_label):
        total = len(by_label[label]) + len(val_by_label.get(label, []))
        if total < 2:
            name = (where or {}).get(index_of[label], "")
            skips.add(f"label {label!r} has only one example{f' ({name})' if name else ''}; a class needs at "
                      "least two, one to learn from and one to check")
            continue
        classes.append(label)
    rng = random.Random(seed)
    train, val = [], []
    for k, label in enumerate(classes):
        texts = list(by_label[label])
        rng.shuffle(texts)
        if fixed_val is not None:
            held = val_by_label.get(label, [])
            if not held and len(texts) >= 2:  # a class the val folder lacks: draw one so it is checked too
                held, texts = texts[:1], texts[1:]
        else:
            n_val = min(max(int(round(len(texts) * val_fraction)), 1), len(texts) - 1)
            held, texts = texts[:n_val], texts[n_val:]
        if max_per_class:
            texts, held = texts[:max_per_class], held[:max(1, int(round(max_per_class * val_fraction)))]
        train += [(text, k) for text in texts]
        val += [(text, k) for text in held]
    return train, val, classes


def _deduplicated(examples, fixed_val, where: dict, skips: SkipLog):
    """(examples, fixed_val) with repeats dropped: a text with one label kept once (training first), a text
    with several labels dropped everywhere; each drop counted with where the repeat was."""
    labels: dict[str, set[str]] = {}
    for text, label in [*examples, *(fixed_val or [])]:
        labels.setdefault(text, set()).add(label)
    seen, kept, kept_val = set(), [], []
    for i, (text, label) in enumerate(examples):
        name = where.get(i, "")
        if len(labels[text]) > 1:
            skips.add(f"{name + ': ' if name else ''}the same text is labelled {', '.join(sorted(labels[text]))}; "
                      "skipped")
        elif text in seen:
            skips.add(f"{name + ': ' if name else ''}a repeat of an earlier text; skipped")
        else:
            seen.add(text)
            kept.append((text, label))
    for text, label in fixed_val or []:
        if len(labels[text]) == 1 and text not in seen:
            seen.add(text)
            kept_val.append((text, label))
    return kept, (kept_val if fixed_val is not None else None)


def _checked(train, val, classes, name: str, source: str, skips: SkipLog) -> LabelledTexts:
    if len(classes) < 2:
        raise DataError(f"{source} has {len(classes)} usable class{'es' if len(classes) != 1 else ''} "
                        f"({skips.count} examples skipped); a classifier needs at least two classes with two "
                        "examples each" + (f". First problem: {skips.reasons[0]}" if skips.reasons else ""))
    return LabelledTexts(train, val, classes, name, source, skips.reasons, skips.count)


def _options(cfg) -> dict:
    from core.options import resolve
    return resolve(cfg.options, SPLIT_OPTIONS)


# ---- the standard library's docstrings ------------------------------------------------------------------

def stdlib_docstrings() -> list[tuple[str, str]]:
    """(docstring, package) for every module, class and function docstring of DOCSTRING_PACKAGES in this
    Python's standard library (tests skipped), in file order; a text found under two packages is dropped."""
    import ast
    import sysconfig
    root = Path(sysconfig.get_path("stdlib"))
    found: dict[str, set[str]] = {}
    order = []
    for label, top in DOCSTRING_PACKAGES.items():
        files = [root / f"{top}.py"] if (root / f"{top}.py").is_file() else sorted((root / top).rglob("*.py"))
        for path in files:
            if {"test", "tests"} & set(path.relative_to(root).parts):
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    text = ast.get_docstring(node)
                    if text and len(text) >= MIN_DOCSTRING_CHARS:
                        if text not in found:
                            order.append(text)
                        found.setdefault(text, set()).add(label)
    return [(text, next(iter(found[text]))) for text in order if len(found[text]) == 1]


@register_dataset("docstrings", description="Python's standard-library docstrings, each labelled by its package "
                  "(asyncio, decimal, email, http, importlib, logging, unittest, xml): ~1,700 real texts, offline",
                  kind="labelled-text", options=SPLIT_OPTIONS)
def build_docstrings(cfg, *, seed: int = 0) -> LabelledTexts:
    from core.paths import atomic_write, cache_dir
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = cache_dir("text") / f"docstrings-{version}.json"
    try:
        examples = [tuple(pair) for pair in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError):
        examples = stdlib_docstrings()
        atomic_write(path, lambda handle: handle.write(json.dumps(examples).encode()))
    options = _options(cfg)
    skips = SkipLog()
    train, val, classes = split_by_class(examples, val_fraction=options["val_fraction"], seed=seed,
                                         max_per_class=options["max_per_class"], skips=skips)
    return _checked(train, val, classes, "docstrings", f"docstrings of Python {version}'s standard library, "
                    "labelled by package", skips)


# ---- a folder or zip of .txt files ------------------------------------------------------------------------

def decode_example(data: bytes, where: str, skips: SkipLog) -> str | None:
    """UTF-8 bytes -> stripped text, or None (and a counted reason) when empty or not UTF-8. Bytes cut at
    MAX_FILE_BYTES may end inside a character: that character is dropped."""
    try:
        text = decode_utf8(data, cut=len(data) >= MAX_FILE_BYTES).strip()
    except UnicodeDecodeError as exc:
        skips.add(f"{where}: not UTF-8 text (undecodable byte at position {exc.start}); skipped")
        return None
    if not text:
        skips.add(f"{where}: empty; skipped")
        return None
    return text


@register_dataset("text-folder", description="Your own texts: a folder or .zip of .txt files, one example per "
                  "file, in train/<class>/ (and val/<class>/), or simply <class>/", needs_path=True,
                  kind="labelled-text", options=SPLIT_OPTIONS)
def build_text_folder(cfg, *, seed: int = 0) -> LabelledTexts:
    files, shown = read_text_files(cfg.path, suffixes=(".txt",), max_file_bytes=MAX_FILE_BYTES,
                                   what="train/<class>/*.txt files")
    parts = [PurePosixPath(name).parts for name, _ in files]
    # a zip of a folder wraps everything in one top folder: look below it
    while parts and all(len(p) > 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    has_splits = any(p[0].lower() == "train" and len(p) >= 3 for p in parts)
    skips, train_pairs, val_pairs, where = SkipLog(), [], [], {}
    for (name, data), p in zip(files, parts):
        if has_splits and (len(p) < 3 or p[0].lower() not in ("train", "val", "valid", "validation", "test")):
            continue
        if not has_splits and len(p) < 2:
            skips.add(f"{name}: not inside a class folder; skipped")
            continue
        text = decode_example(data, name, skips)
        if text is None:
            continue
        label = p[1] if has_splits else p[0]  # the class folder, whatever folders lie below it
        if has_splits and p[0].lower() != "train":
            val_pairs.append((text, label))
        else:
            where[len(train_pairs)] = name
            train_pairs.append((text, label))
    if not train_pairs:
        raise DataError(f"{shown} holds no readable .txt files in class folders ({skips.count} skipped); put "
                        "each example in train/<class>/<name>.txt")
    options = _options(cfg)
    train, val, classes = split_by_class(train_pairs, val_fraction=options["val_fraction"], seed=seed,
                                         max_per_class=options["max_per_class"], skips=skips, where=where,
                                         fixed_val=val_pairs if val_pairs else None)
    return _checked(train, val, classes, Path(shown).stem, shown, skips)


# ---- a CSV file ------------------------------------------------------------------------------------------------

def read_labelled_csv(data: bytes, where: str, skips: SkipLog) -> tuple[list[tuple[str, str]], dict[int, str]]:
    """(text, label) rows of CSV bytes with a `text,label` header (or two columns and no header), and each row's
    "file:line" for messages. Rows that are not UTF-8, or lack a text or a label, are skipped and counted."""
    raw = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_BYTES))  # one long text must not end the file
    reader = csv.reader(io.StringIO(raw, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise DataError(f"{where} is empty: give a CSV with a header row text,label and one row per example") from None
    names = [h.strip().lower() for h in header]
    rows = []
    if "text" in names and "label" in names:
        text_col, label_col = names.index("text"), names.index("label")
    elif len(header) == 2:  # no header: the first row is an example
        text_col, label_col = 0, 1
        rows.append((1, header))
    else:
        raise DataError(f"{where}: the first row should name the columns text and label (it has: "
                        f"{', '.join(h[:30] for h in header[:6])})")
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        skips.add(f"{where}:{reader.line_num}: unreadable CSV ({exc}); the rest of the file is skipped")
    examples, lines = [], {}
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not examples
        if len(row) <= max(text_col, label_col):
            skips.add(f"{where}:{line}: {len(row)} column{'s' if len(row) != 1 else ''}, no label; skipped")
            continue
        text, label = row[text_col].strip(), row[label_col].strip()
        if any("\udc80" <= c <= "\udcff" for c in text + label):
            skips.add(f"{where}:{line}: not UTF-8 text; skipped")
            continue
        if not text or not label:
            skips.add(f"{where}:{line}: empty {'text' if not text else 'label'}; skipped")
            continue
        lines[len(examples)] = f"{where}:{line}"
        examples.append((text, label))
    return examples, lines


@register_dataset("text-csv", description="Your own texts: a CSV file with a header row naming the columns text "
                  "and label, one example per row", needs_path=True, kind="labelled-text", options=SPLIT_OPTIONS)
def build_text_csv(cfg, *, seed: int = 0) -> LabelledTexts:
    if not cfg.path:
        raise DataError("data.path is empty: upload a .csv file or give the path of one (columns text,label)")
    path = readable_path(cfg.path)
    shown = shown_path(cfg.path)
    if not path.is_file():
        raise DataError(f"data.path: no CSV file at '{shown}'; upload one with the columns text,label")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"{shown} is {path.stat().st_size / 2**20:.0f} MB; CSV files up to "
                        f"{MAX_CSV_BYTES >> 20} MB are supported")
    skips = SkipLog()
    examples, lines = read_labelled_csv(path.read_bytes(), Path(shown).name, skips)
    options = _options(cfg)
    train, val, classes = split_by_class(examples, val_fraction=options["val_fraction"], seed=seed,
                                         max_per_class=options["max_per_class"], skips=skips, where=lines)
    return _checked(train, val, classes, Path(shown).stem, shown, skips)
