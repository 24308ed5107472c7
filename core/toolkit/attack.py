"""Attack a finished image-classification run with adversarial examples (L∞): FGSM (Goodfellow, Shlens & Szegedy
2014, arXiv:1412.6572) or PGD (Madry et al. 2017, arXiv:1706.06083), the primitives of core/tasks/adversarial.py.

For every ε asked (pixels of a 0-255 image), the run's model in eval mode on the CPU is attacked on the first
`images` validation images of the run (the family's "run_data" entry point rebuilds the split as training
did), giving the accuracy-vs-ε curve; ε = 0 is the clean accuracy. At the largest ε a gallery keeps images
whose correct prediction flipped: original, adversarial, and the perturbation amplified to the full range.
Random starts come from a generator seeded with `seed`, so the same request gives the same numbers.

Every check runs, and every number is measured, before anything is written. Then, under runs/<id>/attacks/:

  <method>-<i>-{original,adversarial,perturbation}.png   the gallery (nearest-neighbour enlarged)
  report.json   the latest result of each method on the same checkpoint and images, read back by
                `attack_report` when the run is reopened; another checkpoint starts a new report
"""

from __future__ import annotations

import copy
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field

import torch

from core.errors import ConfigError, LabError
from core.paths import atomic_write, run_dir, safe_join
from core.tasks.adversarial import MAX_EPS, METHODS, attack, seeded_generator
from core.toolkit.runs import check_finished, checkpoint_identity

FOLDER = "attacks"
REPORT = "report.json"
REPORT_VERSION = 1
IMAGES = 500  # validation images attacked by default: PGD-10 costs ~11 passes per image and ε
GALLERY = 8
MAX_EPS_VALUES = 16
MAX_STEPS = 1000
BATCH = 128
SHOWN_SIZE = 96  # gallery PNGs are enlarged (nearest) to at least this many pixels a side


@dataclass
class AttackReport:
    run_id: str
    which: str  # the checkpoint attacked: "best" or "last"
    images: int  # validation images attacked
    note: str
    seed: int
    results: dict  # method -> {"curve": [{"eps", "acc"}], "steps", "step_size", "random_start", "gallery", ...}
    requested: str = ""  # the method of the last attack_run call
    checkpoint: dict = field(default_factory=dict)  # mtime_ns and size of that checkpoint

    def summary(self, method: str | None = None) -> dict:
        """clean_acc, and robust_acc at the largest ε the method was run with (eps)."""
        method = method or self.requested
        if method not in self.results:
            raise LabError(f"run {self.run_id} has no {method} attack result; it has: {', '.join(self.results)}")
        result = self.results[method]
        last = result["curve"][-1]
        return {"method": method, "eps": last["eps"], "clean_acc": result["clean_acc"], "robust_acc": last["acc"],
                "steps": result["steps"], "step_size": result["step_size"], "curve": result["curve"],
                "images": self.images}

    def to_dict(self) -> dict:
        return {"version": REPORT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict) -> AttackReport:
        return cls(**{k: raw[k] for k in ("run_id", "which", "images", "note", "seed", "results")},
                   **{k: raw[k] for k in ("requested", "checkpoint") if k in raw})


def attack_run(run_id: str, *, method: str = "pgd", eps=8.0, steps: int = 10, step_size: float | None = None,
               random_start: bool | None = None, which: str = "best", images: int = IMAGES, gallery: int = GALLERY,
               seed: int = 0) -> AttackReport:
    """Attack the run's checkpoint at every ε of `eps` (one number or several, pixels of 255) and store the
    curve and gallery; the report, with this method's result merged into earlier ones of the same checkpoint."""
    from core.tasks import task_spec
    from core.tasks.checkpoints import checkpoint_path, load_run_model

    values = check_request(method, eps, steps, step_size, images, gallery)
    checkpoint_path(run_id, which)  # a LabError for a `which` that is neither best nor last
    check_finished(run_id, "attack")
    run_model = load_run_model(run_id, which, device="cpu")  # CheckpointError when there is none
    spec = task_spec(run_model.task)
    pre = run_model.metadata.get("preprocessing") or {}
    unsupported = LabError(f"adversarial attacks need a classifier of images; {spec.title.lower()} runs (run {run_id} "
                           "is one) are not supported")
    if "run_data" not in spec.entry_points or "mean" not in pre or "classes" not in run_model.metadata:
        raise unsupported
    data = spec.entry("run_data")(run_model)
    if data.labelled is None:
        raise unsupported
    mean, std = pre["mean"], pre["std"]
    classes = [str(c) for c in run_model.metadata.get("classes", [])]
    model = copy.deepcopy(run_model.model).cpu().eval()  # the cached model stays as it is
    model.requires_grad_(False)  # only the input's gradient is needed: no parameter gradients computed

    x, y = data.labelled(images + 1)  # (N, C, H, W) normalised, (N,): one more tells whether the split was capped
    capped = len(y) > images
    x, y = x[:images], y[:images]
    clean = predictions(model, x)  # (N,)
    curve = [{"eps": 0.0, "acc": _accuracy(clean, y)}]
    flipped = []  # (index, adversarial image (C, H, W), its prediction) at the largest ε
    for value in [v for v in values if v > 0]:
        generator = seeded_generator(seed, "cpu")  # the same starts for every ε: the curve is smooth in ε
        adv_preds = []
        for start in range(0, len(y), BATCH):
            xb, yb = x[start:start + BATCH], y[start:start + BATCH]
            adv = attack(method, model, xb, yb, value, mean, std, steps=steps, step_size=step_size,
                         random_start=random_start, generator=generator)  # (B, C, H, W)
            adv_preds.append(predictions(model, adv))
            if value == values[-1]:  # keep only the gallery's images, not every adversarial input
                hits = ((clean[start:start + BATCH] == yb) & (adv_preds[-1] != yb)).nonzero().flatten()
                flipped += [(start + int(i), adv[i], int(adv_preds[-1][i])) for i in hits[:gallery - len(flipped)]]
        curve.append({"eps": value, "acc": _accuracy(torch.cat(adv_preds), y)})

    files, shown = {}, []
    for n, (i, adv, predicted) in enumerate(flipped):
        names = {kind: f"{method}-{n}-{kind}.png" for kind in ("original", "adversarial", "perturbation")}
        images_of = gallery_images(x[i], adv, values[-1], mean, std)
        files.update({names[kind]: png for kind, png in images_of.items()})
        shown.append({**names, "true": _name(classes, int(y[i])), "predicted": _name(classes, predicted),
                      "eps": values[-1]})
    result = {"curve": curve, "clean_acc": curve[0]["acc"], "steps": steps if method == "pgd" else 1,
              "step_size": step_size, "random_start": random_start if random_start is not None else method == "pgd",
              "gallery": shown, "measured_at": time.time()}
    note = f"the first {len(y)} validation images" if capped else f"all {len(y)} validation images"
    report = AttackReport(run_id=run_id, which=which, images=len(y), note=note, seed=seed, results={method: result},
                          requested=method, checkpoint=checkpoint_identity(run_id, which))
    return _store(report, files)


def check_request(method, eps, steps, step_size, images, gallery) -> list[float]:
    """The ε values sorted, or a ConfigError naming the first bad argument of an attack request."""
    if method not in METHODS:
        raise ConfigError(f"method: '{method}' is not one of: {', '.join(METHODS)}")
    values = [eps] if isinstance(eps, (int, float)) else list(eps) if isinstance(eps, (list, tuple)) else None
    if not values or len(values) > MAX_EPS_VALUES:
        raise ConfigError(f"eps: give 1 to {MAX_EPS_VALUES} values in pixels of 255 (e.g. 8); got {eps!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= MAX_EPS:
            raise ConfigError(f"eps: {value!r} is not a size in pixels from 0 to {MAX_EPS:g} (8 means 8/255)")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps: give a whole number of PGD steps from 1 to {MAX_STEPS}; got {steps!r}")
    if step_size is not None and (isinstance(step_size, bool) or not isinstance(step_size, (int, float))
                                  or not math.isfinite(step_size) or not 0 < step_size <= MAX_EPS):
        raise ConfigError(f"step_size: give a step in pixels above 0 and at most {MAX_EPS:g}; got {step_size!r}")
    for name, value, low in (("images", images, 1), ("gallery", gallery, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}: give a whole number of at least {low}; got {value!r}")
    return sorted({float(v) for v in values})


@torch.inference_mode()
def predictions(model, x: torch.Tensor) -> torch.Tensor:
    """Top-1 classes (N,) of inputs (N, C, H, W), in batches."""
    return torch.cat([model(x[s:s + BATCH]).argmax(dim=1) for s in range(0, len(x), BATCH)]) if len(x) \
        else torch.zeros(0, dtype=torch.int64)


def _accuracy(predicted: torch.Tensor, y: torch.Tensor) -> float:
    return float((predicted == y).float().mean()) if len(y) else 0.0


def _name(classes: list[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else str(index)


# ---- gallery --------------------------------------------------------------------------------------

def gallery_images(x: torch.Tensor, adv: torch.Tensor, eps: float, mean, std) -> dict[str, bytes]:
    """PNG bytes of one normalised image (C, H, W) and its adversarial twin, back in pixels, and of their
    difference scaled so that -ε is black, 0 mid-grey and +ε white."""
    m = torch.as_tensor(mean, dtype=torch.float32).flatten().expand(x.shape[0]).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).flatten().expand(x.shape[0]).view(-1, 1, 1)
    original, changed = (x.float() * s + m).clamp(0, 1), (adv.float() * s + m).clamp(0, 1)  # (C, H, W) in [0, 1]
    difference = 0.5 + (changed - original) / (2 * eps / 255.0)
    return {"original": _png(original), "adversarial": _png(changed), "perturbation": _png(difference.clamp(0, 1))}


def _png(image: torch.Tensor) -> bytes:
    from PIL import Image
    pixels = (image * 255).round().to(torch.uint8)  # (C, H, W)
    factor = max(1, math.ceil(SHOWN_SIZE / max(pixels.shape[1:])))
    pixels = pixels.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)  # nearest: pixels stay sharp
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels[:3].permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def gallery_path(run_id: str, name: str):
    """Where a gallery image of the report lives (kept inside the run's attacks folder)."""
    return safe_join(run_dir(run_id) / FOLDER, name)


# ---- stored report --------------------------------------------------------------------------------

def attack_report(run_id: str) -> AttackReport | None:
    """The run's stored report, or None when it was never attacked (or the file is unreadable)."""
    try:
        raw = json.loads((run_dir(run_id) / FOLDER / REPORT).read_text())
        if raw.get("version") != REPORT_VERSION:
            return None
        return AttackReport.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError, LabError):
        return None


def _store(report: AttackReport, files: dict[str, bytes]) -> AttackReport:
    """Write the gallery, then the report merged with the other method's result when it was measured on the
    same checkpoint and images; files no result refers to any more are removed."""
    folder = run_dir(report.run_id) / FOLDER
    previous = attack_report(report.run_id)
    if previous is not None and (previous.which, previous.checkpoint, previous.images, previous.seed) == \
            (report.which, report.checkpoint, report.images, report.seed):
        report.results = {**{k: v for k, v in previous.results.items() if k != report.requested}, **report.results}
    for name, blob in files.items():
        atomic_write(folder / name, lambda handle, blob=blob: handle.write(blob))
    atomic_write(folder / REPORT, lambda handle: handle.write(json.dumps(report.to_dict(), indent=1).encode()))
    kept = {row[kind] for result in report.results.values() for row in result["gallery"]
            for kind in ("original", "adversarial", "perturbation")}
    for path in folder.glob("*.png"):
        if path.name not in kept:
            path.unlink(missing_ok=True)
    _log(report)
    return report


def _log(report: AttackReport) -> None:
    from core.store import RunStore
    s = report.summary()
    RunStore().log_event(report.run_id, f"attacked {report.which}.pt with {s['method']} at ε={s['eps']:g}/255 on "
                                        f"{report.images} images: accuracy {s['clean_acc']:.4f} -> "
                                        f"{s['robust_acc']:.4f}")
