"""What a page rendered by AppTest shows a reader, as plain strings, and the English words among them.

`visible_strings(at)` walks the element tree and reads every field a person sees: text bodies (markdown, captions,
titles, alerts, metrics), widget labels, help texts, placeholders and options, tab and expander labels, image
captions, dataframe column headers, and from each Plotly figure its titles, axis titles, legend entries,
annotations and the fixed words of its hover templates. Code blocks, formulas, icons, keys and links are not
read: they hold data, LaTeX or names, not sentences.

`english_words(text, allowed)` is what the 中文 test fails on: runs of three or more Latin letters that are not
names from the allow-list (ALLOWED, ALLOWED_NAMES and the test's own `allowed`).
"""

from __future__ import annotations

import json
import re

from google.protobuf.descriptor import FieldDescriptor

# Proto fields holding words a reader sees (every other string field is an id, a key, an icon, a URL, a type, ...).
# ("value" is left out: it is what a user typed or a program put into an input, i.e. data.)
TEXT_FIELDS = {"body", "label", "help", "placeholder", "options", "content", "caption", "text", "delta", "default"}
# Markdown element types that hold no sentences: formulas and the divider.
SKIPPED_MARKDOWN = {"LATEX", "DIVIDER"}
SKIPPED_ELEMENTS = {"Code", "Json", "Exception"}  # program text, data, and (failing the test anyway) tracebacks

# Names that stay as they are in a Chinese course and interface (lower case; a word matches in any case). Names
# that come from the lab's registries (models, data sets, presets) and from the runs a test made are allowed by
# the test itself, from those sources.
ALLOWED = {
    "english",  # the language switch names each language in its own script
    # functions, optimisers, methods and software, written as their names
    "sigmoid", "tanh", "relu", "gelu", "silu", "softmax", "sgd", "adam", "adamw", "rmsprop", "nesterov", "sobel",
    "rosenbrock", "fréchet", "reinforce", "slerp", "transformer", "python", "pytorch", "nanogpt", "torchvision",
    "optuna", "tpe", "torchrun", "gloo", "nccl", "int",  # int8, a number format
    "safetensors", "captum", "peft", "tensorboard", "hparams",
    # people, companies and systems cited by name
    "radford", "zalando", "neuraltalk", "bahdanau", "luong", "kim", "fasttext", "jordan", "zhang", "airbench",
    "lookahead",  # the optimiser wrapper's name (Zhang et al. 2019)
    # acronyms
    "cpu", "gpu", "cuda", "cnn", "rnn", "lstm", "gru", "gpt", "gan", "dcgan", "vae", "gae", "fgsm", "pgd", "lora",
    "onnx", "elbo", "bleu", "rgb", "iso", "eta", "flops", "utf", "nvidia", "imagenet", "bce", "mse",
    # units and file formats
    "px", "ms", "fps", "gib", "mib", "gb", "mb", "json", "csv", "zip", "txt", "png", "jpg", "jpeg", "webp", "bmp",
    "gif", "tif", "tiff", "mp4", "webm", "mov", "avi", "mkv",
    # the docstrings data set's classes: the Python packages the texts came from
    "asyncio", "decimal", "email", "http", "importlib", "logging", "unittest", "xml",
}
# Names of two words, one of them an English word on its own.
ALLOWED_NAMES = ("scikit-learn", "Grad-CAM", "Leaky ReLU", "Show and Tell",  # a paper's title (Vinyals et al. 2015)
                 "image、caption",  # a captions.csv's column names, which the user writes as they are
                 "text、label")  # a text classification CSV's column names
WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]{3,}")  # Latin letters, accented ones included (Fréchet)


def _plotly_strings(spec: str) -> list[str]:
    figure = json.loads(spec)
    layout, found = figure.get("layout", {}), []

    def title(node):
        value = node.get("title") if isinstance(node, dict) else None
        text = value.get("text") if isinstance(value, dict) else value
        if isinstance(text, str):
            found.append(text)

    title(layout)
    for key, node in layout.items():
        if key.startswith(("xaxis", "yaxis", "legend")):
            title(node)
    found += [a.get("text", "") for a in layout.get("annotations", [])]
    for trace in figure.get("data", []):
        if isinstance(trace.get("name"), str):
            found.append(trace["name"])
        template = trace.get("hovertemplate")
        if isinstance(template, str):  # the fixed words around %{...}; <extra></extra> hides the trace name box
            found.append(re.sub(r"%\{[^}]*\}", " ", template))
        title(trace.get("colorbar") or {})
        title((trace.get("marker") or {}).get("colorbar") or {})
    return found


def _dataframe_headers(proto) -> list[str]:
    import pyarrow as pa
    data = proto.arrow_data.data
    headers = list(pa.ipc.open_stream(data).schema.names) if data else []
    config = json.loads(proto.columns) if proto.columns else {}
    labels = {name: column.get("label") for name, column in config.items() if isinstance(column, dict)}
    hidden = {name for name, column in config.items() if isinstance(column, dict) and column.get("hidden")}
    return [labels.get(name) or name for name in headers if name not in hidden and not name.startswith("__")]


def _proto_strings(proto, found: list[str]) -> None:
    kind = type(proto).__name__
    if kind in SKIPPED_ELEMENTS:
        return
    if kind == "Markdown" and proto.DESCRIPTOR.fields_by_name["element_type"].enum_type.values_by_number[
            proto.element_type].name in SKIPPED_MARKDOWN:
        return
    if kind == "PlotlyChart":
        found += _plotly_strings(proto.spec)
        return
    if kind == "ArrowDataFrame" or (kind == "Arrow" and hasattr(proto, "arrow_data")):
        found += _dataframe_headers(proto)
        return
    for field, value in proto.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in (value if field.is_repeated else [value]):
                _proto_strings(item, found)
        elif field.type == FieldDescriptor.TYPE_STRING and field.name in TEXT_FIELDS:
            found += list(value) if field.is_repeated else [value]


def visible_strings(at) -> list[str]:
    """Every string the page shows, in order, from the main area and the sidebar."""
    found: list[str] = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            _proto_strings(proto, found)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return [text for text in found if text and text.strip()]


def readable(text: str) -> str:
    """The words of a markdown or HTML string: no code blocks or spans, tags, icons, badge markup, links' targets,
    file names or domains."""
    text = re.sub(r"(?ms)^(```|~~~)+.*?^(```|~~~)+", " ", text)  # fenced code blocks: program text or data
    text = re.sub(r"<[^>]*>", " ", text)  # tags and their attributes (an SVG's <title> text stays)
    text = re.sub(r":material/[a-z_]+:", " ", text)
    text = re.sub(r":[a-z]+(-badge|-background)?\[", " ", text)  # :blue-badge[ ... ], :gray[ ... ]
    text = re.sub(r"\]\([^)]*\)", " ", text)  # a link's target
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)  # code spans: ids, file names, preset names
    text = re.sub(r"\$[^$]+\$", " ", text)  # inline formulas
    text = re.sub(r"[\w/-]+(?:\.[A-Za-z_][\w-]*)+(?:/[\w./-]*)?", " ", text)  # doi.org, torch.optim, a/b/c.py
    text = re.sub(r"\S*/\S*", " ", text)  # paths and folder names a user types as they are: train/<class>/, /tmp/x
    for name in ALLOWED_NAMES:
        text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    return re.sub(r"&[a-z]+;", " ", text)


def english_words(text: str, allowed: set[str] = frozenset()) -> list[str]:
    """Runs of 3+ Latin letters in the readable part of `text` that are neither in ALLOWED nor in `allowed`."""
    names = ALLOWED | {word.lower() for word in allowed}
    return [word for word in WORD.findall(readable(text)) if word.lower() not in names]
