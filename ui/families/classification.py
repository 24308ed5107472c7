"""Image classification on the pages: its Train form with data preview and model card, the confusion matrix
of a finished run, and classifying uploads on Media (images, model comparison, video)."""

from __future__ import annotations

import dataclasses
import json

import streamlit as st

from core.errors import LabError
from ui.charts import class_counts_figure, confusion_figure, schedule_figure
from ui.forms import (PREFIX, TRAIN_SIZE, compute_section, data_plan_note, forget_preset_name, form_config,
                      native_size_note, note_preview_error, optim_section, options_section,
                      pretrained_changed, validation_error)
from ui.i18n import t, t_core
from ui.resources import TRAIN_PAGE, show_error, table_columns

TASK = "classification"


# ---- Train: the form ---------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=16)  # the caller's spinner speaks the page's language
def _preview(data_json: str, seed: int):
    from core.config import DataConfig
    from core.data.preview import mosaic, preview
    result = preview(DataConfig(**json.loads(data_json)), seed=seed)
    return result, mosaic(result.samples)


@st.cache_data(show_spinner=False, max_entries=32)
def _model_card(name: str, channels: int, size: int, classes: int, hidden: int, dropout: float):
    from core.models.summary import model_card
    return model_card(name, num_classes=classes, in_channels=channels, image_size=size, hidden=hidden,
                      dropout=dropout)


def _data_section(datasets: list[str]):
    from core.data import dataset_info
    k = PREFIX
    st.selectbox(t("Data set"), datasets, key=k + "data.name", on_change=forget_preset_name)
    info = dataset_info(st.session_state[k + "data.name"])
    if info.needs_path:
        from ui.forms import UPLOAD_ERROR, save_zip_upload
        st.file_uploader(t("Upload a .zip with train/<class>/ images…"), type=["zip"], key="folder_zip",
                         on_change=save_zip_upload, args=("folder_zip",))
        refused = st.session_state.pop(UPLOAD_ERROR, None)
        if refused:
            st.error(refused, icon=":material/folder_zip:")
        st.text_input(t("…or a folder or .zip on the server"), key=k + "data.path",
                      placeholder=t("/data/photos  (with train/<class>/*.jpg inside)"))
    c1, c2, c3 = st.columns(3)
    c1.number_input(t("Image size (px, 0 = native)"), step=8, key=k + "data.image_size")
    c2.number_input(t("Validation fraction"), step=0.05, format="%.2f", key=k + "data.val_fraction",
                    help=t("Used when the data set has no validation split of its own"))
    c3.number_input(t("Limit training samples (0 = all)"), step=100, key=k + "data.limit")
    size_note = st.empty()  # filled once the config is known (ui.forms.native_size_note)
    if info.generated:
        st.number_input(t("Generated samples"), step=500, key=k + "data.num_samples")
    c1, c2, c3 = st.columns(3)
    c1.toggle(t("Random crop"), key=k + "data.augment_crop", help=t("Pad, then crop a random window each batch"))
    c2.number_input(t("Crop padding (px)"), step=1, key=k + "data.crop_padding")
    c3.toggle(t("Horizontal flip"), key=k + "data.augment_flip", help=t("Good for photos, wrong for digits"))
    return size_note


def _model_section(models: list[str], pretrained_ok: bool) -> None:
    k = PREFIX
    st.selectbox(t("Model"), models, key=k + "model.name")
    if not pretrained_ok:  # a model without weights: switch both off rather than leave them stuck on
        st.session_state[k + "model.pretrained"] = False
        st.session_state[k + "model.freeze_backbone"] = False
    starting = _start_from_section()
    c1, c2 = st.columns(2)
    c1.toggle(t("Pretrained ImageNet weights"), key=k + "model.pretrained", disabled=not pretrained_ok or starting,
              on_change=pretrained_changed)
    c2.toggle(t("Freeze the backbone (train the head only)"), key=k + "model.freeze_backbone",
              disabled=not ((pretrained_ok and st.session_state.get(k + "model.pretrained")) or starting))
    c1, c2 = st.columns(2)
    c1.number_input(t("Hidden width (mlp, cnn)"), step=32, key=k + "model.hidden")
    c2.number_input(t("Dropout"), step=0.1, format="%.2f", key=k + "model.dropout")
    _lora_section()


def _start_from_section() -> bool:
    """"Start from a run": a finished run of this family whose weights initialise the model (core.tasks.finetune);
    picking one takes its model. True when one is picked."""
    from core.tasks.finetune import source_runs
    from ui.resources import store
    k = PREFIX
    runs = source_runs(store().get_runs(limit=200), TASK)
    chosen = st.session_state.get(k + "model.init_from")
    options = [None] + list(runs) + ([chosen] if chosen and chosen not in runs else [])  # a deleted run: validation says so

    def label(run_id):
        if run_id is None:
            return t("none (fresh or ImageNet weights)")
        run = runs.get(run_id)
        return f"{run.name} · {run_id} · {run.config['model']['name']}" if run else run_id

    def picked():
        run = runs.get(st.session_state.get(k + "model.init_from"))
        if run:  # its architecture, its weights: no ImageNet download
            st.session_state[k + "model.name"] = run.config["model"]["name"]
            st.session_state[k + "model.pretrained"] = False
        elif not st.session_state.get(k + "model.pretrained"):
            st.session_state[k + "model.freeze_backbone"] = False

    st.selectbox(t("Start from a run"), options, key=k + "model.init_from", format_func=label, on_change=picked,
                 help=t("Its weights start this run; the head is new when the classes differ. Transfer learning "
                        "that works offline."))
    return bool(st.session_state.get(k + "model.init_from"))


def _lora_section() -> None:
    """LoRA's rank (0: off), alpha, dropout and target layers (Hu et al. 2021, through PEFT)."""
    k, text_key = PREFIX, "lora_targets_text"
    targets = st.session_state.get(k + "model.lora_targets") or []
    if [p.strip() for p in st.session_state.get(text_key, "").split(",") if p.strip()] != list(targets):
        st.session_state[text_key] = ", ".join(targets)  # a preset or a cloned run set them

    def targets_changed():
        st.session_state[k + "model.lora_targets"] = [p.strip() for p in st.session_state[text_key].split(",")
                                                     if p.strip()]

    with st.expander(t("LoRA: train low-rank adapters instead of the weights"),
                     expanded=bool(st.session_state.get(k + "model.lora_rank"))):
        st.caption(t("Each adapted layer keeps its weight W frozen and learns W + (alpha / rank) · B A, with A and B "
                     "of the given rank (Hu et al. 2021, through Hugging Face PEFT). Needs a run to start from, or "
                     "ImageNet weights."))
        c1, c2, c3 = st.columns(3)
        c1.number_input(t("Rank (0 = off)"), min_value=0, step=4, key=k + "model.lora_rank")
        c2.number_input(t("Alpha"), min_value=0.0, step=4.0, format="%.1f", key=k + "model.lora_alpha")
        c3.number_input(t("Adapter dropout"), min_value=0.0, max_value=0.9, step=0.05, format="%.2f",
                        key=k + "model.lora_dropout")
        st.text_input(t("Layers to adapt"), key=text_key, on_change=targets_changed,
                      placeholder=t("every Linear and Conv2d but the head"),
                      help=t("Layer names or patterns, comma separated: conv1, stages.2, 0, fc*"))


def _techniques_section() -> None:
    """The family's own options (adversarial training, lookahead, test-time augmentation), open when one is on."""
    from core.tasks import task_spec
    schema = task_spec(TASK).options
    changed = any(st.session_state.get(f"{PREFIX}task_options.{name}", option.default) != option.default
                  for name, option in schema.items())
    with st.expander(t("Training techniques: adversarial training, lookahead weights, test-time augmentation"),
                     expanded=changed):
        options_section("task_options", schema)


def form(has_cuda: bool):
    """The whole Train form of an image classifier; returns the config it describes (not yet validated)."""
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info
    left, side = st.columns([3, 2], gap="large")
    with left:
        with st.container(border=True):
            st.subheader(t("Data"), anchor=False)
            size_note = _data_section(list_datasets(kind="images"))
        with st.container(border=True):
            st.subheader(t("Model"), anchor=False)
            models = list_models(task=TASK)
            name = st.session_state.get(PREFIX + "model.name")
            _model_section(models, pretrained_ok=name in models and model_info(name).pretrained_available)
        with st.container(border=True):
            st.subheader(t("Optimisation"), anchor=False)
            optim_section(label_smoothing=True)
            _techniques_section()
        with st.container(border=True):
            st.subheader(t("Compute"), anchor=False)
            compute_section(has_cuda)

    config = form_config()
    notes = size_note.container()  # the size the folder trains at, and whether it is held in memory or streamed
    native_size_note(notes, config)
    data_plan_note(notes, config)
    with side:
        _side_panels(config, validation_error(config), dataset_info(config.data.name) if config.data.name in list_datasets() else None)
    return config


def _side_panels(config, error: str | None, info) -> None:
    from core.models import model_info
    data_preview = None
    if info and (config.data.path or not info.needs_path):
        try:
            data_json = json.dumps(dataclasses.asdict(config.data), sort_keys=True)
            with st.spinner(t("Loading the data set…")):
                data_preview, grid = _preview(data_json, config.seed)
        except LabError as exc:
            note_preview_error(str(exc))
            st.warning(t_core(str(exc)), icon=":material/cloud_off:")
    if not data_preview:
        return
    st.session_state[TRAIN_SIZE] = data_preview.train_size
    with st.container(border=True):
        st.subheader(t("Data preview"), anchor=False)
        st.caption(t_core(data_preview.source) + " · "  # core's line: translated when fixed, else as core wrote it
                   + t("{train:,} training and {val:,} validation images", train=data_preview.train_size,
                       val=sum(data_preview.val_counts))
                   + f" · {data_preview.image_size}px · {t('grey') if data_preview.channels == 1 else 'RGB'}"
                   + (" · " + t("{count} unreadable files skipped", count=data_preview.skipped)
                      if data_preview.skipped else ""))
        st.image(grid, caption=t("one column per class: {classes}", classes=", ".join(data_preview.classes[:20])),
                 width="stretch")
        st.plotly_chart(class_counts_figure(data_preview.classes, data_preview.train_counts,
                                            data_preview.val_counts), key="counts")
    if error:
        return
    with st.container(border=True):
        st.subheader(t("Model"), anchor=False)
        card = _model_card(config.model.name, data_preview.channels, config.data.image_size or data_preview.image_size,
                           len(data_preview.classes), config.model.hidden, config.model.dropout)
        st.caption(t(card.description))
        _parameters_metric(config, card.params, data_preview)
        if model_info(config.model.name).pretrained_available:
            st.caption(":material/download: " + t("ImageNet weights available (downloaded on first use)"))
        with st.expander(t("Layers")):
            st.dataframe(card.layers, hide_index=True, width="stretch", column_config=table_columns(card.layers.columns))
    with st.container(border=True):
        st.subheader(t("Learning-rate schedule"), anchor=False)
        from core.data.loader import steps_per_epoch
        from core.engine.optim import lr_curve
        steps = steps_per_epoch(data_preview.train_size, config.optim.batch_size)
        st.plotly_chart(schedule_figure(lr_curve(config.optim, steps), steps), key="schedule")


@st.cache_data(show_spinner=False, max_entries=32)
def _finetune_counts(config_json: str, classes: tuple) -> dict:
    from core.config import RunConfig
    from core.tasks import task_spec
    from core.tasks.finetune import plan
    config = RunConfig.from_json(config_json)
    metadata = task_spec(TASK).example_input(config)[0]
    return plan(config, {**metadata, "classes": list(classes)})


def _parameters_metric(config, params: int, data_preview) -> None:
    """The parameter count; starting from a run or with LoRA, what trains of it (core.tasks.finetune.plan)."""
    from core.tasks.finetune import wanted
    if not wanted(config):
        st.metric(t("parameters"), f"{params:,}")
        return
    try:
        counts = _finetune_counts(config.to_json(), tuple(data_preview.classes))
    except LabError as exc:
        st.metric(t("parameters"), f"{params:,}")
        st.warning(t_core(str(exc)), icon=":material/tune:")
        return
    st.metric(t("trainable / total parameters"), f"{counts['trainable']:,} / {counts['total']:,}",
              help=t("{share} of the parameters train", share=f"{counts['trainable'] / max(1, counts['total']):.2%}"))


# ---- Train: a finished run ---------------------------------------------------------------------

def results(run) -> None:
    """The best checkpoint on the validation set: confusion matrix (click a cell for its images), per class; then
    the Tools section (ui/toolkit.py: export)."""
    from core.tasks.classification.evaluation import evaluate_run, val_images
    from ui.toolkit import tools
    st.subheader(t("Validation results"), anchor=False)
    try:
        with st.spinner(t("Evaluating the best checkpoint on the validation set…")):
            report = evaluate_run(run.id, "best")
    except Exception as exc:
        show_error(exc)
        tools(run)  # an export is checked on random inputs when the validation images cannot be read
        return
    picked_cell = confusion_section(report, key=f"cm-{run.id}", caption=t("Click a cell to see the images behind it."))
    if picked_cell:
        true_name, pred_name = picked_cell
        wrong = report.misclassified
        picked = wrong[(wrong["true"] == true_name) & (wrong["predicted"] == pred_name)]
        if true_name == pred_name:
            st.info(t("{label}: the diagonal holds the correctly classified images.", label=true_name))
        elif picked.empty:
            st.info(t("No {true} image was classified as {predicted}.", true=true_name, predicted=pred_name))
        else:
            st.markdown("**" + t("{count} image(s) of {true} classified as {predicted}", count=len(picked),
                                 true=true_name, predicted=pred_name) + "**")
            images = val_images(run.id, picked["index"].tolist()[:24])
            st.image(images, width=96, caption=[f"{c:.0%}" for c in picked["confidence"].tolist()[:24]])
    tools(run)


def confusion_section(report, *, key: str, caption: str) -> tuple[str, str] | None:
    """An EvalReport's confusion matrix (clickable) beside its accuracy and per-class scores; the clicked cell as
    (true class, predicted class), or None."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.caption(caption)
        event = st.plotly_chart(confusion_figure(report.classes, report.confusion), key=key, on_select="rerun",
                                selection_mode="points")
    with right:
        st.metric(t("accuracy (best checkpoint)"), f"{report.accuracy:.2%}")
        st.dataframe(report.per_class, hide_index=True, width="stretch",
                     column_config=table_columns(report.per_class.columns, progress=("precision", "recall", "f1")))
    points = (event.selection.points if event and event.selection else []) or []
    return (points[0]["y"], points[0]["x"]) if points else None


# ---- Media ---------------------------------------------------------------------------------------

def media(source: dict) -> None:
    """Classify uploads with an image run or a pretrained ImageNet model."""
    from core.inference import list_model_sources
    from ui.families.classification_media import compare_tab, images_tab, load_predictor, video_tab
    try:
        predictor = load_predictor(source)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/cloud_off:")
        st.page_link(TRAIN_PAGE, label=t("Train a model of your own instead (no download needed)"),
                     icon=":material/model_training:")
        return
    st.caption(t("{count} classes · input {size}px", count=len(predictor.classes), size=predictor.image_size) + " · "
               + ", ".join(predictor.classes[:12]) + ("…" if len(predictor.classes) > 12 else ""))
    images, compare, video = st.tabs([t("Images"), t("Compare models"), t("Video")])
    with images:
        images_tab(predictor)
    with compare:
        choices = [s for s in list_model_sources() if s["task"] == TASK]
        current = next((i for i, s in enumerate(choices) if s["label"] == source["label"]), None)
        compare_tab(choices, current)
    with video:
        video_tab(predictor)
