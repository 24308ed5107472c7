"""Sentence pairs for sequence-to-sequence models (kind "pairs"), generated on the fly, nothing to download:

  - "numbers-en": the integers 0..9999 and their English words ("1234" -> "one thousand two hundred
    thirty-four");
  - "numbers-zh": the same integers in Chinese characters ("1234" -> "一千二百三十四", "1004" -> "一千零四");
  - "dates": dates between 1950 and 2049 written in one of several formats ("3 March 2021",
    "March 3, 2021", "3 Mar 2021", "03.03.2021") and their ISO form ("2021-03-03");
  - "pairs-folder": your own `source<TAB>target` lines, from a .tsv/.txt file, a folder or a .zip of such
    files (see `read_pair_files`).

Examples are shuffled by the run's seed and split into train and validation by `val_fraction`, so the
same seed always gives the same split. The number sets keep 0..99 in training, several times over (see
`_numbers`). `CharVocab` is a character vocabulary with pad, bos, eos and unk
tokens (ids 0..3). Imports no torch: registering data sets must stay cheap.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field
from pathlib import Path

from core.data import register_dataset
from core.errors import DataError
from core.options import Option

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)

PAIR_OPTIONS = {
    "val_fraction": Option(0.1, "Share of the generated pairs held out for validation (after a shuffle by the seed)",
                           0.01, 0.5, label="Validation share of the pairs"),
}
DATE_OPTIONS = {
    **PAIR_OPTIONS,
    "examples": Option(20_000, "How many dates to generate (train and validation together)", 100, 1_000_000,
                       label="Dates generated"),
}

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
MONTHS = ("January February March April May June July August September October November December").split()


@dataclass
class PairSet:
    train: list[tuple[str, str]]
    val: list[tuple[str, str]]
    name: str
    source: str  # what it is, in words
    skipped: int = 0  # lines of the user's files that gave no pair (pairs-folder); reported, never fatal
    skipped_notes: list[str] = field(default_factory=list)  # the first of them (core.data.text_files.SkipLog)


def describe(cfg, seed: int = 0) -> dict:
    """What the Train form shows of a pair data set before training: the split sizes, a few validation pairs, the
    longest source and target, and the lines of the user's files that were skipped."""
    from core.data import dataset_info
    pairs = dataset_info(cfg.name).builder(cfg, seed=seed)
    every = pairs.train + pairs.val
    return {"train": len(pairs.train), "val": len(pairs.val), "examples": pairs.val[:6],
            "longest_source": max((len(a) for a, _ in every), default=0),
            "longest_target": max((len(b) for _, b in every), default=0),
            "skipped": pairs.skipped, "skipped_notes": pairs.skipped_notes}


class CharVocab:
    """Characters <-> ids; ids 0..3 are pad, bos, eos and unk."""

    def __init__(self, tokens):
        self.tokens = list(tokens)
        self.index = {tok: i for i, tok in enumerate(self.tokens)}

    @classmethod
    def from_texts(cls, texts) -> "CharVocab":
        return cls([*SPECIALS, *sorted({c for text in texts for c in text} - set(SPECIALS))])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(c, unk) for c in text]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            tok = self.tokens[int(i)]
            if tok == EOS:
                break
            if tok not in SPECIALS:
                out.append(tok)
        return "".join(out)

    def unknown(self, text: str) -> list[str]:
        """Characters of `text` outside the vocabulary, in order of first appearance."""
        seen = []
        for c in text:
            if c not in self.index and c not in seen:
                seen.append(c)
        return seen


# ---- numbers in English words ------------------------------------------------------------------------

def _below_100(n: int) -> str:
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def _below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{ONES[hundreds]} hundred"] if hundreds else []
    if rest:
        words.append(_below_100(rest))
    return " ".join(words)


def number_words(n: int) -> str:
    """0..999,999 in English words: 1234 -> 'one thousand two hundred thirty-four'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words covers 0..999999, got {n}")
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [f"{_below_1000(thousands)} thousand"] if thousands else []
    if rest:
        words.append(_below_1000(rest))
    return " ".join(words)


# ---- numbers in Chinese characters ------------------------------------------------------------------

ZH_DIGITS = "零一二三四五六七八九"
ZH_UNITS = ("", "十", "百", "千")


def number_zh(n: int) -> str:
    """0..9999 in Chinese characters: 1234 -> 一千二百三十四, 1004 -> 一千零四, 1010 -> 一千零一十, 15 -> 十五.

    One 零 stands for any run of zeros between two non-zero digits; trailing zeros are not read."""
    if not 0 <= n < 10_000:
        raise ValueError(f"number_zh covers 0..9999, got {n}")
    if n == 0:
        return ZH_DIGITS[0]
    digits = [int(c) for c in f"{n:04d}"]  # thousands, hundreds, tens, ones
    out, zero = [], False
    for place, digit in zip((3, 2, 1, 0), digits):
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out.append(ZH_DIGITS[0])
            zero = False
        out.append(ZH_DIGITS[digit] + ZH_UNITS[place])
    text = "".join(out)
    return text[1:] if 10 <= n < 20 else text


# ---- dates ------------------------------------------------------------------------------------------------

DATE_FORMATS = ("{d} {month} {y}", "{month} {d}, {y}", "{d} {mon} {y}", "{mon} {d}, {y}", "{dd}.{mm}.{y}")


def date_text(date: datetime.date, form: int) -> str:
    month = MONTHS[date.month - 1]
    return DATE_FORMATS[form % len(DATE_FORMATS)].format(d=date.day, dd=f"{date.day:02d}", mm=f"{date.month:02d}",
                                                         y=date.year, month=month, mon=month[:3])


def _split(pairs: list[tuple[str, str]], val_fraction: float, seed: int) -> tuple[list, list]:
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    n_val = max(1, int(round(len(pairs) * val_fraction)))
    return pairs[n_val:], pairs[:n_val]


SMALL_NUMBERS = 100  # 0..99 always train, never validate
# copies of each in the training list: the ten single digits are 0.1% of 10,000 numbers, and models that had
# learnt every long number still read "0" as "fo" or "six" and "41" as "four hundred forty-one" with fewer
# ("zero" is also the only target with a "z")
COPIES_BELOW_10, COPIES_BELOW_100 = 50, 10


def _numbers(cfg, seed: int, write, name: str, source: str) -> PairSet:
    """Every integer 0..9999 paired with `write(n)`, split by the data set's val_fraction and the run's seed.

    The numbers below SMALL_NUMBERS are the building blocks of every other one, yet only 1% of the data, and
    single digits like "0" are each one example in 10,000: left to chance, "0" could land in validation and
    never be seen, and the models misread short sources ("0" -> "four"). So they always go to training,
    COPIES_BELOW_10 times each for 0..9 and COPIES_BELOW_100 times for 10..99, and validation (the same size,
    val_fraction of 10,000) is drawn from 100..9999 by the seed."""
    from core.options import resolve
    options = resolve(cfg.options, PAIR_OPTIONS)
    n_val = max(1, int(round(10_000 * options["val_fraction"])))
    rest = [(str(n), write(n)) for n in range(SMALL_NUMBERS, 10_000)]
    random.Random(seed).shuffle(rest)
    small = [(str(n), write(n)) for n in range(SMALL_NUMBERS)
             for _ in range(COPIES_BELOW_10 if n < 10 else COPIES_BELOW_100)]
    train = rest[n_val:] + small
    random.Random(seed + 1).shuffle(train)  # the batches shuffle again; this only keeps the list itself mixed
    return PairSet(train, rest[:n_val], name, source)


@register_dataset("numbers-en", description="Numbers 0 to 9,999 and their English words (\"1234\" -> \"one thousand "
                  "two hundred thirty-four\"); generated", kind="pairs", options=PAIR_OPTIONS, generated=True)
def build_numbers_en(cfg, *, seed: int = 0) -> PairSet:
    return _numbers(cfg, seed, number_words, "numbers-en", "the integers 0..9999 written in English words")


@register_dataset("numbers-zh", description="Numbers 0 to 9,999 and their Chinese characters (\"1004\" -> \"一千零四\", "
                  "with the rules for 零); generated", kind="pairs", options=PAIR_OPTIONS, generated=True)
def build_numbers_zh(cfg, *, seed: int = 0) -> PairSet:
    return _numbers(cfg, seed, number_zh, "numbers-zh", "the integers 0..9999 written in Chinese characters")


@register_dataset("dates", description="Dates from 1950 to 2049 in several formats (\"3 March 2021\", \"Mar 3, 2021\", "
                  "\"03.03.2021\") and their ISO form (\"2021-03-03\"); generated", kind="pairs",
                  options=DATE_OPTIONS, generated=True)
def build_dates(cfg, *, seed: int = 0) -> PairSet:
    from core.options import resolve
    options = resolve(cfg.options, DATE_OPTIONS)
    rng = random.Random(seed)
    start, days = datetime.date(1950, 1, 1).toordinal(), (datetime.date(2049, 12, 31) - datetime.date(1950, 1, 1)).days
    pairs = []
    for _ in range(options["examples"]):
        date = datetime.date.fromordinal(start + rng.randrange(days + 1))
        pairs.append((date_text(date, rng.randrange(len(DATE_FORMATS))), date.isoformat()))
    train, val = _split(pairs, options["val_fraction"], seed + 1)
    return PairSet(train, val, "dates", "dates from 1950 to 2049 in five formats, to ISO 8601")


# ---- your own pairs -------------------------------------------------------------------------------------

PAIR_SUFFIXES = (".tsv", ".txt")
MAX_PAIR_BYTES = 256 * 2**20  # all the pair files of one data set together
MAX_SIDE_CHARS = 500  # longer sources or targets are skipped: models here read characters, one step each


def read_pair_files(path_text: str) -> PairSet:
    """Every `source<TAB>target` line of a .tsv/.txt file, of the .tsv/.txt files under a folder, or of those in a
    .zip (core.data.text_files reads them all alike), in sorted name order. Only the first two columns count: a
    third (say Tatoeba's attribution) is ignored. Empty lines, lines without a tab, with an empty side, longer than
    MAX_SIDE_CHARS a side, not UTF-8, or repeating an earlier pair are skipped and counted, each noted as
    "file:line: why"; no usable pair at all is a DataError. The split into train and validation is the caller's."""
    from core.data.text_files import SkipLog, read_text_files
    files, shown = read_text_files(path_text, suffixes=PAIR_SUFFIXES, max_file_bytes=MAX_PAIR_BYTES,
                                   max_total_bytes=MAX_PAIR_BYTES, what="source<TAB>target lines")
    pairs, seen, skips = [], set(), SkipLog()
    for name, data in files:
        lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
        if lines[-1] == b"":  # the empty piece after a final newline is not a line
            lines.pop()
        for number, line in enumerate(lines, 1):
            pair, why = _parse_line(line)
            if pair in seen:
                pair, why = None, "a repeat of an earlier pair"  # it could land in training and validation
            if pair:
                pairs.append(pair)
                seen.add(pair)
            else:
                skips.add(f"{name}:{number}: {why}")
    if len(pairs) < 2:
        reasons = "; ".join(skips.reasons[:3]) + ("; …" if skips.count > 3 else "") if skips.reasons else \
            "its files are empty"
        raise DataError(f"{shown}: {len(pairs)} usable source<TAB>target line{'s' if len(pairs) != 1 else ''} in "
                        f"{len(files)} file(s); at least two are needed, one to learn from and one to check "
                        f"({reasons})")
    return PairSet(pairs, [], Path(shown).stem or "pairs", f"your pairs from {shown}", skips.count, skips.reasons)


def _parse_line(line: bytes):
    """((source, target), None) or (None, why it gives no pair)."""
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (undecodable byte at position {exc.start})"
    if not text.strip():
        return None, "empty line"
    if "\t" not in text:
        return None, "no tab between source and target"
    source, target = (part.strip() for part in text.split("\t")[:2])
    if not source or not target:
        return None, "empty source or target"
    if max(len(source), len(target)) > MAX_SIDE_CHARS:
        return None, f"longer than {MAX_SIDE_CHARS} characters"
    return (source, target), None


def save_pairs_upload(data: bytes, filename: str) -> Path:
    """Check an uploaded .tsv/.txt/.zip of pairs (at least one usable line) and keep it under the uploads."""
    from core.data.uploads import keep_upload
    if len(data) > MAX_PAIR_BYTES:
        raise DataError(f"{filename} is {len(data) / 2**20:.0f} MB; up to {MAX_PAIR_BYTES // 2**20} MB is supported")
    if not filename.lower().endswith((".zip", *PAIR_SUFFIXES)):
        filename += ".tsv"
    path = keep_upload(data, filename)
    read_pair_files(str(path))  # refuses a file without a usable pair now, not when a run starts
    return path


@register_dataset("pairs-folder", description="Your own pairs: a .tsv/.txt file of source<TAB>target lines, or a "
                  "folder or .zip of such files; bad lines are skipped and counted", kind="pairs", needs_path=True,
                  options=PAIR_OPTIONS)
def build_pairs_folder(cfg, *, seed: int = 0) -> PairSet:
    from core.options import resolve
    data = read_pair_files(cfg.path)
    options = resolve(cfg.options, PAIR_OPTIONS)
    data.train, data.val = _split(data.train, options["val_fraction"], seed)
    return data
