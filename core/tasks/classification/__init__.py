"""Image classification: cross-entropy loss, top-1 and (with more than five classes) top-5 accuracy."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn import functional as F

from core.options import Option

# Adversarial training (core/tasks/adversarial.py: PGD after Madry et al. 2018, FGSM with a random start after
# Wong, Rice & Kolter 2020): ε and step sizes in pixels of a 0-255 image
OPTIONS = {
    "adversarial": Option(False, "Train on adversarial examples made from each batch on the fly; the run also logs "
                                 "its accuracy under a PGD attack every epoch", label="adversarial training"),
    "adv_method": Option("pgd", "pgd: several projected gradient steps, strong but slower; fgsm: one step from a "
                                "random start, about as cheap as two plain steps",
                         choices=("pgd", "fgsm"), label="adversarial attack"),
    "adv_eps": Option(8.0, "Largest change of any pixel, in steps of 1/255 (8 is a common choice for CIFAR-10)",
                      low=0.0, high=255.0, label="adversarial ε (pixels of 255)"),
    "adv_steps": Option(7, "Gradient steps of PGD in training; the robust accuracy uses at least 10",
                        low=1, high=100, label="PGD steps"),
    "adv_step_size": Option(0.0, "Pixels of 255 per step; 0 picks 2.5 ε / steps for PGD and 1.25 ε for FGSM",
                            low=0.0, high=255.0, label="adversarial step size (pixels of 255)"),
    # the speedruns' techniques outside the network (core/tasks/classification/speedrun.py)
    "lookahead": Option(False, "Every 5 steps, average the weights into slow weights and restart from them; the "
                               "run ends on the slow weights (Zhang et al. 2019, as in Jordan 2024)",
                        label="lookahead weights"),
    "tta": Option("off", "After the last epoch, also report the accuracy with test-time augmentation: the logits "
                         "averaged over each image and its mirror (flip), and its one-pixel shifts (flip_translate)",
                  choices=("off", "flip", "flip_translate"), label="test-time augmentation"),
}


class ClassificationTask:
    name = "classification"
    best_metric = "val_acc"
    best_mode = "max"

    def __init__(self, *, num_classes: int, label_smoothing: float = 0.0, adversarial=None, tta: str = "off"):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.adversarial = adversarial  # core.tasks.adversarial.AdversarialTraining, or None
        self.tta = tta  # test-time augmentation of the last epoch's extra accuracy (speedrun.tta_logits)

    def training_step(self, model, batch):
        inputs, targets = batch
        if self.adversarial is not None:  # train on the worst inputs of the ε-ball (the logged acc is theirs)
            inputs = self.adversarial.perturb(model, inputs, targets)  # (B, C, H, W)
        logits = model(inputs)  # (B, K)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            sums = {"loss": loss.detach().float() * targets.numel(),
                    "correct": (logits.argmax(dim=1) == targets).sum(),
                    "count": torch.tensor(targets.numel(), device=targets.device)}
        return loss, sums

    def summarize(self, sums):
        count = max(float(sums["count"]), 1.0)
        return {"loss": float(sums["loss"]) / count, "acc": float(sums["correct"]) / count}

    def evaluate(self, model, batches, autocast=None):
        metrics = self.clean_metrics(model, batches, autocast)
        if self.adversarial is not None and metrics:  # needs input gradients: outside inference mode
            metrics["val_robust_acc"] = self.adversarial.robust_accuracy(model, batches, autocast)
        return metrics

    @torch.inference_mode()
    def clean_metrics(self, model, batches, autocast=None):
        was_training = model.training
        model.eval()
        loss_sum = correct = correct5 = count = None
        for inputs, targets in batches.epoch(0) if hasattr(batches, "epoch") else batches:
            with autocast() if autocast else nullcontext():
                logits = model(inputs).float()  # (B, K)
            batch_loss = F.cross_entropy(logits, targets, reduction="sum")
            top = logits.topk(min(5, self.num_classes), dim=1).indices  # (B, 5)
            hits = top == targets[:, None]
            values = (batch_loss, hits[:, 0].sum(), hits.any(dim=1).sum(), targets.numel())
            if loss_sum is None:
                loss_sum, correct, correct5, count = values
            else:
                loss_sum, correct, correct5 = loss_sum + values[0], correct + values[1], correct5 + values[2]
                count += values[3]
        model.train(was_training)
        if not count:
            return {}
        metrics = {"val_loss": float(loss_sum) / count, "val_acc": float(correct) / count}
        if self.num_classes > 5:
            metrics["val_top5"] = float(correct5) / count
        return metrics

    @torch.inference_mode()
    def final_metrics(self, model, batches, autocast=None):
        """After the last epoch: the validation accuracy with test-time augmentation, when it is on."""
        if self.tta == "off":
            return {}
        from core.tasks.classification.speedrun import tta_logits
        was_training = model.training
        model.eval()
        correct = count = 0
        for inputs, targets in batches.epoch(0) if hasattr(batches, "epoch") else batches:
            with autocast() if autocast else nullcontext():
                logits = tta_logits(model, inputs, self.tta)  # (B, K)
            correct, count = correct + (logits.argmax(dim=1) == targets).sum(), count + targets.numel()
        model.train(was_training)
        return {"val_tta_acc": float(correct) / count} if count else {}

    @torch.inference_mode()
    def predict(self, model, batches) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted class, true class) for every sample, on the CPU: for confusion matrices."""
        was_training = model.training
        model.eval()
        preds, trues = [], []
        for inputs, targets in batches:
            preds.append(model(inputs).argmax(dim=1).cpu())
            trues.append(targets.cpu())
        model.train(was_training)
        return torch.cat(preds), torch.cat(trues)



# ---- the task's spec: how a classification run is set up ----------------------------------------

def preprocessing_for(config, splits) -> dict:
    """How inputs are normalised: the pretrained weights' statistics, or the training set's own."""
    from core.tasks.finetune import source_preprocessing
    source = source_preprocessing(config, splits.channels)  # starting from a run: the inputs its weights know
    if source:
        mean, std = source["mean"], source["std"]
    elif config.model.pretrained:
        from core.models.imagenet import weights_preprocessing
        weights = weights_preprocessing(config.model.name)
        mean, std = weights["mean"], weights["std"]
        if splits.channels == 1:  # grey images are expanded to RGB inside the model
            mean, std = [sum(mean) / 3], [sum(std) / 3]
    else:
        mean, std = splits.mean_std()
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std],
            "image_size": splits.image_size, "channels": splits.channels}


def image_batches(config, splits, device, pre: dict):
    """(train, val) DeviceBatches over in-memory images normalised with `pre`; the GAN and autoencoder
    tasks use the same ones."""
    from core.data.loader import DeviceBatches
    from core.world import current_world
    batch = config.optim.batch_size
    train = DeviceBatches(splits.train_x, splits.train_y, batch_size=batch, device=device, mean=pre["mean"],
                          std=pre["std"], shuffle=True, drop_last=len(splits.train_y) > batch,
                          augment_crop=config.data.augment_crop, crop_padding=config.data.crop_padding,
                          augment_flip=config.data.augment_flip, seed=config.seed, shard=current_world().shard)
    val = DeviceBatches(splits.val_x, splits.val_y, batch_size=max(batch, 256), device=device, mean=pre["mean"],
                        std=pre["std"], shuffle=False)
    return train, val


def streamed_batches(config, splits, device, pre: dict, plan):
    """(train, val) StreamedBatches over a streamed run's files (core.data.stream), normalised with `pre`, batched
    and sharded as image_batches does it."""
    from core.data.stream import StreamedBatches
    from core.world import current_world
    batch, d = config.optim.batch_size, config.data
    common = {"image_size": splits.image_size, "device": device, "mean": pre["mean"], "std": pre["std"],
              "seed": config.seed, "workers": plan.workers, "disk_cache": plan.disk_cache,
              "cache_identity": splits.identity}
    train = StreamedBatches(splits.train_files, batch_size=batch, shuffle=True, drop_last=len(splits.train_y) > batch,
                            augment_crop=d.augment_crop, augment_flip=d.augment_flip, shard=current_world().shard,
                            **common)
    val = StreamedBatches(splits.val_files, batch_size=max(batch, 256), shuffle=False, **common)
    return train, val


def setup(config, device, splits=None):
    from core.data import load_dataset
    from core.models import build_from_config, parameter_count
    from core.tasks import Setup

    plan = None
    if splits is None:
        from core.data.plan import StreamedSplits, data_plan
        data = sized_data(config)
        plan = data_plan(data, seed=config.seed)  # in memory, or streamed from disk when too large (or asked)
        splits = StreamedSplits(plan, data.name) if plan.streamed else load_dataset(data, seed=config.seed)
    pre = preprocessing_for(config, splits)
    if plan is not None and plan.streamed:
        train, val = streamed_batches(config, splits, device, pre, plan)
    else:
        train, val = image_batches(config, splits, device, pre)
    model = build_from_config(config.model, num_classes=splits.num_classes, in_channels=splits.channels,
                              image_size=splits.image_size)
    metadata = {"preprocessing": pre, "params": parameter_count(model),
                "trainable_params": parameter_count(model, trainable_only=True), **data_metadata(splits)}
    if plan is not None and plan.files:  # "in memory, 1.2 GB" or "streamed from disk, 2 workers", in the run's summary
        metadata["data"]["loading"] = plan.describe()
    from core.options import resolve
    from core.tasks.adversarial import AdversarialTraining
    from core.tasks.classification import speedrun
    options = resolve(config.task_options, OPTIONS)
    adversarial = AdversarialTraining.from_options(options, pre, config.seed)
    task = ClassificationTask(num_classes=splits.num_classes, label_smoothing=config.optim.label_smoothing,
                              adversarial=adversarial, tta=options["tta"])
    if hasattr(model, "fit_to_data"):  # a resumed run then loads its checkpoint over what this sets
        speedrun.fit_to_data(model, train, splits.train_x if plan is None or not plan.streamed else None, pre)
    return Setup(task=task, model=model, train_batches=train, val_batches=val, metadata=metadata,
                 callbacks=speedrun.callbacks_for(model, options))


def build_model(config, metadata):
    from core.models import build_from_config
    from core.tasks.finetune import rebuild
    pre = metadata["preprocessing"]
    model = build_from_config(_without_download(config.model), num_classes=len(metadata["classes"]),
                              in_channels=pre["channels"], image_size=pre["image_size"])
    return rebuild(config, model)  # a LoRA run's adapters, a frozen backbone: the layers its checkpoint holds


def _without_download(model_cfg):
    import dataclasses
    return dataclasses.replace(model_cfg, pretrained=False)  # the checkpoint holds the weights


def validate(config) -> None:
    """Data and model fields of image classification: an image data set, one of its models at a size it
    accepts, pretrained weights only where they exist."""
    from core.config import check_choice, check_float, check_image_data, check_int
    from core.data import dataset_info, image_size_of, list_datasets
    from core.errors import ConfigError
    from core.models import list_models, model_info
    from core.tasks import check_family_fields

    d, m = config.data, config.model
    check_choice("data.name", d.name, list_datasets(kind="images"))
    info = dataset_info(d.name)
    if info.needs_path and not d.path:
        raise ConfigError(f"data.path: the '{d.name}' data set needs a folder or .zip path")
    check_image_data(d)
    if d.stream and info.files is None:
        raise ConfigError(f"data.stream: '{d.name}' is always held in memory; only folder data sets stream from disk")
    check_family_fields(config)  # one of this task's models; the data set's, model's and task's options
    spec = model_info(m.name)
    size = image_size_of(d, low=spec.min_image_size)
    if size < spec.min_image_size:
        raise ConfigError(f"data.image_size: model '{m.name}' needs images of at least {spec.min_image_size}px,"
                          f" but '{d.name}' gives {size}px; set data.image_size to {spec.min_image_size} or more")
    if m.pretrained and not spec.pretrained_available:
        raise ConfigError(f"model.pretrained: '{m.name}' has no pretrained weights; models with weights: "
                          + ", ".join(n for n in list_models(task="classification")
                                      if model_info(n).pretrained_available))
    if m.freeze_backbone and not (m.pretrained or m.init_from):
        raise ConfigError("model.freeze_backbone: freezing only makes sense with model.pretrained on or "
                          "model.init_from set")
    check_int("model.hidden", m.hidden, 1, 65_536)
    check_float("model.dropout", m.dropout, 0.0, 0.95)
    from core.options import resolve
    adversarial = resolve(config.task_options, OPTIONS)
    if adversarial["adversarial"] and not adversarial["adv_eps"] > 0:
        raise ConfigError("task_options.adv_eps: adversarial training needs an ε above 0 pixels (e.g. 8)")


def _spec():
    from core.tasks import TaskSpec
    return TaskSpec(sized_data=lambda config: sized_data(config), name="classification", watches=(ClassificationTask.best_metric, ClassificationTask.best_mode), title="Image classification",
                    description="Predict one class per image: cross-entropy, accuracy, confusion matrix",
                    data_kind="images", setup=setup, build_model=build_model, validate=validate, options=OPTIONS,
                    entry_points={"predict": "predictor:load_run_predictor",
                                  "pretrained": "predictor:load_pretrained_predictor",
                                  "classify_images": "predictor:classify_images",
                                  "classify_video": "predictor:classify_video",
                                  "explain": "explain:explain", "evaluate": "evaluation:evaluate_run",
                                  "run_data": "run_data:run_data", "export": "export_spec:export_spec"},
                    example_input=example_input, check_ready=check_ready, distributed=True, finetune=True)


def check_ready(config) -> None:
    """What this machine must have before the run launches: pretrained weights cached or downloadable."""
    if config.model.pretrained:
        from core.errors import ConfigError
        from core.models.imagenet import pretrained_weights_problem
        problem = pretrained_weights_problem(config.model.name)
        if problem:
            raise ConfigError(problem)


def example_input(config):
    """What core.tasks.memory needs before the data is loaded: metadata, the batch's shape and dtype."""
    import torch
    from core.data import dataset_info
    info = dataset_info(config.data.name)
    size, channels = sized_data(config).image_size or info.image_size, info.channels
    pre = {"channels": channels, "image_size": size, "mean": [0.0] * channels, "std": [1.0] * channels}
    classes = list(info.classes) if info.classes else ["a", "b"]  # a folder's classes: only the head differs
    return {"preprocessing": pre, "classes": classes}, (config.optim.batch_size, channels, size, size), torch.float32


SPEC = _spec()


# ---- image-task helpers (classification, GAN, autoencoder) --------------------------------------

def sized_data(config, low: int | None = None, high: int | None = None):
    """config.data with a folder's native size (core.data.image_size_of) written in: at least what the model
    needs (`low`, by default the classification model's minimum), at most `high`."""
    from core.data import NATIVE_CAP, with_image_size
    from core.models import model_info
    if low is None:
        low = model_info(config.model.name).min_image_size
    return with_image_size(config.data, low, high or NATIVE_CAP)


def image_preprocessing(splits, mean: float, std: float) -> dict:
    return {"mean": [mean] * splits.channels, "std": [std] * splits.channels, "image_size": splits.image_size,
            "channels": splits.channels}


def data_metadata(splits) -> dict:
    return {"classes": list(splits.classes),
            "data": {"train": len(splits.train_y), "val": len(splits.val_y), "skipped": splits.skipped,
                     "source": splits.source}}


def build_image_model(config, metadata):
    """A generative image model (GAN, autoencoder) for the preprocessing's channels and size."""
    from core.models import model_info
    from core.options import resolve
    pre = metadata["preprocessing"]
    spec = model_info(config.model.name)
    return spec.builder(in_channels=pre["channels"], image_size=pre["image_size"],
                        **resolve(config.model.options, spec.options))


def validate_image_data(config, *, min_size: int = 8, max_size: int = 128) -> int:
    """Checks every image-generating family shares; returns the image size the run will use."""
    from core.config import check_image_data
    from core.data import image_size_of
    from core.errors import ConfigError
    from core.tasks import check_family_fields

    check_family_fields(config)
    d = config.data
    check_image_data(d, min_size, max_size)
    if d.stream:
        raise ConfigError(f"data.stream: '{config.model.name}' trains from images held in memory; set data.stream "
                          "to none (a folder too large for memory cannot train this family yet)")
    if config.model.pretrained:
        raise ConfigError(f"model.pretrained: '{config.model.name}' is trained from scratch; turn it off")
    size = image_size_of(d, min_size, max_size)
    if size < min_size:
        raise ConfigError(f"data.image_size: '{config.model.name}' needs images of at least {min_size}px, "
                          f"but '{d.name}' gives {size}px; set data.image_size to {max(min_size, 28)}")
    return size
