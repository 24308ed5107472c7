"""Video classification: one class per clip (B, T, C, H, W), cross-entropy and accuracy.

The step is image classification's (ClassificationTask calls model(inputs) on whatever the batch
holds), so the task is a thin subclass; what differs is the data and the models (core.models.video),
which decide where in the network the frames meet (Karpathy et al., CVPR 2014). Every "video" data
set (core.data.moving_shapes, core.data.video_folder) returns a core.data.clips.VideoSplits; ClipBatches serves it.
"""

from __future__ import annotations

from core.data.clips import ClipBatches
from core.errors import ConfigError
from core.tasks.classification import ClassificationTask

# Mirroring a clip turns "left" into "right" and "clockwise" into "anticlockwise": wrong for these sets.
_NO_FLIP = ("moving-shapes",)


class VideoClassificationTask(ClassificationTask):
    name = "video"


# ---- the task's spec -----------------------------------------------------------------------------

def _model_kwargs(config, metadata: dict) -> dict:
    from core.models import model_info
    from core.options import resolve
    pre = metadata["preprocessing"]
    return dict(num_classes=len(metadata["classes"]), in_channels=pre["channels"], frames=pre["frames"],
                image_size=pre["image_size"], hidden=config.model.hidden, dropout=config.model.dropout,
                **resolve(config.model.options, model_info(config.model.name).options))


def build_model(config, metadata):
    from core.models import model_info
    return model_info(config.model.name).builder(**_model_kwargs(config, metadata))


def setup(config, device):
    from core.data import load_dataset
    from core.tasks import Setup

    splits = load_dataset(config.data, seed=config.seed)  # VideoSplits, already shuffled and split
    train_x, train_y = splits.train_x, splits.train_y
    if config.data.limit is not None and config.data.limit < len(train_y):
        train_x, train_y = train_x[:config.data.limit].clone(), train_y[:config.data.limit].clone()
        splits.train_x, splits.train_y = train_x, train_y  # statistics from the clips actually trained on
    mean, std = splits.mean_std()
    pre = {"mean": mean, "std": std, "image_size": splits.image_size, "channels": splits.channels,
           "frames": splits.frames, "frame_interval_s": splits.frame_interval_s}
    batch = config.optim.batch_size
    common = dict(device=device, mean=mean, std=std)
    train = ClipBatches(train_x, train_y, batch_size=batch, shuffle=True, drop_last=len(train_y) > batch,
                        augment_crop=config.data.augment_crop, crop_padding=config.data.crop_padding,
                        augment_flip=config.data.augment_flip, seed=config.seed, **common)
    val = ClipBatches(splits.val_x, splits.val_y, batch_size=max(batch, 128), shuffle=False, **common)
    metadata = {"classes": list(splits.classes), "preprocessing": pre,
                "data": {"train": len(train_y), "val": len(splits.val_y), "skipped": splits.skipped,
                         "source": splits.source}}
    model = build_model(config, metadata)
    task = VideoClassificationTask(num_classes=splits.num_classes, label_smoothing=config.optim.label_smoothing)
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata)


def validate(config) -> None:
    from core.config import check_float, check_int
    from core.tasks import check_family_fields

    check_family_fields(config)
    d = config.data
    check_float("data.val_fraction", d.val_fraction, 0.0, 0.9, low_open=True)
    if d.limit is not None:
        check_int("data.limit", d.limit, 1, 100_000_000)
    check_int("data.crop_padding", d.crop_padding, 0, 64)
    check_int("model.hidden", config.model.hidden, 1, 65_536)
    check_float("model.dropout", config.model.dropout, 0.0, 0.95)
    if d.augment_flip and d.name in _NO_FLIP:
        raise ConfigError(f"data.augment_flip: mirroring '{d.name}' clips turns left into right and clockwise into "
                          "anticlockwise, so labels would be wrong; turn it off")
    if config.model.pretrained:
        raise ConfigError("model.pretrained: the video models have no pretrained weights; turn it off")


# ---- for pages: a look at the data and a comparison of runs ------------------------------------

def preview_clips(config, per_class: int = 1):
    """(class names, clips (K * per_class, T, 3, S, S) uint8, class index of each) to show before training,
    as the run's data set makes them (its registered `preview`)."""
    from core.data import dataset_info
    info = dataset_info(config.data.name)
    if info.preview is None:
        raise ConfigError(f"data.name: no preview for '{config.data.name}'")
    return info.preview(config.data, per_class=per_class, seed=config.seed)


def fusion_comparison(store, run_ids: list[str]):
    """For the video runs among `run_ids`: (best val_acc per run with its model, val_acc per epoch).

    best: DataFrame run_id, name, model, best_val_acc (sorted by model); curves: run_id, name, model,
    epoch, val_acc. Both empty when no video run is selected.
    """
    import pandas as pd

    runs = store.get_runs(list(run_ids))
    video = {rid: run for rid, run in runs.items() if (run.config or {}).get("task") == "video"}
    columns = ["run_id", "name", "model", "best_val_acc"]
    if not video:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=["run_id", "name", "model", "epoch", "val_acc"])
    frame = store.metrics(list(video), keys=["val_acc"])
    curves = frame.rename(columns={"value": "val_acc"})[["run_id", "epoch", "val_acc"]].copy()
    curves["name"] = curves.run_id.map(lambda r: video[r].name)
    curves["model"] = curves.run_id.map(lambda r: video[r].config.get("model", {}).get("name", "?"))
    best = curves.groupby("run_id", sort=False)["val_acc"].max()
    table = pd.DataFrame({"run_id": list(video), "name": [video[r].name for r in video],
                          "model": [video[r].config.get("model", {}).get("name", "?") for r in video],
                          "best_val_acc": [float(best.get(r, float("nan"))) for r in video]})
    return table.sort_values(["model", "name"], kind="stable").reset_index(drop=True), curves


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(name="video", watches=(VideoClassificationTask.best_metric, VideoClassificationTask.best_mode), title="Video classification",
                    description="One class per clip: single-frame, early, late and slow fusion, (2+1)-D "
                                "convolutions and CNN + LSTM (Karpathy et al., 2014)",
                    data_kind="video", setup=setup, build_model=build_model, validate=validate,
                    entry_points={"predict": "clips:classify_clip", "decode": "clips:decode_clip",
                                  "evaluate": "evaluation:evaluate_run", "explain": "explain:explain_window"})


SPEC = _spec()
