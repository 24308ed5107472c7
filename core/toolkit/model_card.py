"""The model card that travels with an exported run: what the model is, what it was trained on, how a picture must
be prepared for it, how well it did, and which software made it. JSON for programs, a short Markdown page for
people (`card_markdown`)."""

from __future__ import annotations

import time

CARD_VERSION = 2  # 2: the family's interface (core.tasks.export_spec) replaces the fixed picture fields


def build_card(run, run_model, which: str, spec) -> dict:
    """The card of a run's checkpoint. `run` is the store's record, `run_model` the loaded checkpoint
    (core.tasks.checkpoints.RunModel), `spec` its family's ExportSpec, whose interface (an image classifier's
    classes and preprocessing, a language model's vocabulary...) is part of the card."""
    from core import __version__
    from core.store.records import best_of, watched_metric

    config, metadata = run_model.config, run_model.metadata
    summary = run.summary or {}
    data = metadata.get("data") or {}
    return {
        "card_version": CARD_VERSION,
        "run_id": run.id,
        "name": run.name,
        "task": config.task,
        "describe": spec.describe,
        "model": config.model.name,
        "parameters": metadata.get("params"),
        "checkpoint": {"which": which, "epoch": run_model.epoch, "best_value": run_model.best_value},
        **spec.interface,
        "metrics": {"watched": watched_metric(summary), "best": best_of(summary),
                    "best_epoch": summary.get("best_epoch"), "epochs_done": summary.get("epochs_done"),
                    "last": summary.get("last") or {}},
        "data": {"name": config.data.name, "path": config.data.path, "source": data.get("source"),
                 "train_images": data.get("train"), "validation_images": data.get("val"), "seed": config.seed},
        "config": config.to_dict(),
        "trained": {"created": _date(run.created_at), "ended": _date(run.ended_at), "device": run.device,
                    "software": dict(run.versions or {})},
        "exported": {"date": _date(time.time()), "lab": __version__, "software": _export_versions()},
    }


def card_markdown(card: dict) -> str:
    """A short README for people: the card's main facts, and what goes in and comes out (for an image classifier,
    how to prepare a picture)."""
    metrics, data = card["metrics"], card["data"]
    best = metrics.get("best")
    score = f"{metrics['watched']} {best:.4f} (epoch {metrics.get('best_epoch')})" if best is not None else "none"
    lines = [
        f"# {card['name']}", "",
        (f"{card.get('describe', 'A model')} exported from Deep Learning Lab run `{card['run_id']}` "
         f"({card['checkpoint']['which']} checkpoint, epoch {card['checkpoint']['epoch']})."), "",
        f"- **Model**: `{card['model']}`, {card['parameters'] or '?'} parameters",
        f"- **Data set**: `{data['name']}`" + (f" ({data['path']})" if data.get("path") else "")
        + (f", {data.get('train_images') or '?'} training and {data.get('validation_images') or '?'} validation "
           "examples" if data.get("train_images") or data.get("validation_images") else ""),
        f"- **Best validation score**: {score}",
    ]
    if "classes" in card:
        classes = ", ".join(card["classes"][:30]) + (" …" if len(card["classes"]) > 30 else "")
        lines.append(f"- **Classes** ({len(card['classes'])}): {classes}")
    lines += [f"- **Trained**: {card['trained']['created']} on {card['trained']['device'] or '?'}",
              f"- **Exported**: {card['exported']['date']} by the lab {card['exported']['lab']}", ""]
    if "preprocessing" in card:
        pre = card["preprocessing"]
        lines += ["## Preparing a picture", "",
                  (f"Input: float32 `(N, {pre['channels']}, {pre['image_size']}, {pre['image_size']})`, "
                   f"mean {_numbers(pre['mean'])}, std {_numbers(pre['std'])}."), "",
                  *[f"{index}. {step}" for index, step in enumerate(pre["steps"], start=1)], "",
                  "The output holds one logit per class, in the order of `classes`.", ""]
    else:
        lines += ["## Input and output", ""]
        for side in ("input", "output"):
            item = card.get(side) or {}
            shape = ", ".join(str(d) for d in item.get("shape", []))
            lines.append(f"- **{side}** `{item.get('name', side)}`: {item.get('dtype', 'float32')} `({shape})`, "
                         f"{item.get('meaning', '')}")
        if "vocabulary" in card:
            lines += ["", f"The vocabulary ({len(card['vocabulary'])} characters, id = position) is in the card's "
                          "JSON under `vocabulary`."]
        lines.append("")
    return "\n".join(lines)


def _numbers(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _date(seconds) -> str | None:
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(seconds)))


def _export_versions() -> dict:
    """The libraries that wrote and checked the export (those installed; nothing is imported for it)."""
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for name in ("torch", "onnx", "onnxscript", "onnxruntime", "safetensors"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
