"""The run-configuration form: widgets bound to dotted config fields in session state."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.config import AMP_MODES, OPTIMIZERS, SCHEDULES, RunConfig, apply_overrides, list_presets, preset

PREFIX = "cfg."
OPTION_OWNERS = ("data.options", "model.options", "task_options")  # dicts drawn from each family's schema
# optional numeric fields shown as numbers where 0 means "off / native / all"
OPTIONAL_ZERO = {"data.image_size", "data.limit", "optim.grad_clip", "early_stopping_patience"}


def _fields(config: RunConfig) -> dict[str, object]:
    flat = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            flat.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)})
        else:
            flat[f.name] = value
    return flat


def load_into_form(config: RunConfig) -> None:
    """Put a config's values into the widgets' session-state keys (a preset, a cloned run)."""
    for key, value in _fields(config).items():
        if key in OPTION_OWNERS:  # one widget key per option; forget the previous family's options
            for stale in [k for k in st.session_state if str(k).startswith(f"{PREFIX}{key}.")]:
                del st.session_state[stale]
            for name, option_value in value.items():
                st.session_state[f"{PREFIX}{key}.{name}"] = option_value
            continue
        if key in OPTIONAL_ZERO and value is None:
            value = 0.0 if key == "optim.grad_clip" else 0
        elif key == "optim.grad_clip":
            value = float(value)
        st.session_state[PREFIX + key] = value


def _on_preset_change() -> None:
    load_into_form(preset(st.session_state["preset_choice"]))


def _on_task_change() -> None:
    """A new task starts from its first preset, so every field suits it."""
    names = list_presets(st.session_state[PREFIX + "task"])
    if names:
        st.session_state["preset_choice"] = names[0]
        load_into_form(preset(names[0]))


def form_config() -> RunConfig:
    """The config the widgets currently describe (not yet validated)."""
    from core.config import option_schema
    values = {}
    for key in _fields(RunConfig()):
        if key in OPTION_OWNERS:
            continue
        if PREFIX + key in st.session_state:
            value = st.session_state[PREFIX + key]
            if key in OPTIONAL_ZERO and not value:
                value = None
            values[key] = value
    config = apply_overrides(RunConfig(), values)
    for owner in OPTION_OWNERS:  # only the options the chosen data set, model and task declare
        chosen = {name: st.session_state[f"{PREFIX}{owner}.{name}"] for name in option_schema(config, owner)
                  if f"{PREFIX}{owner}.{name}" in st.session_state}
        if owner == "task_options":
            config.task_options = chosen
        else:
            getattr(config, owner.split(".")[0]).options = chosen
    return config


def ensure_initialised(initial_preset: str = "digits-cnn") -> None:
    if PREFIX + "data.name" not in st.session_state:
        st.session_state["preset_choice"] = initial_preset
        load_into_form(preset(initial_preset))


def task_picker() -> str:
    from core.tasks import list_tasks, task_spec
    st.selectbox("Task", list_tasks(), key=PREFIX + "task", on_change=_on_task_change,
                 format_func=lambda name: task_spec(name).title,
                 help="What the model learns to do; each task has its own data sets, models and presets")
    return st.session_state[PREFIX + "task"]


def preset_picker(task: str | None = None) -> None:
    names = list_presets(task)
    if st.session_state.get("preset_choice") not in names and names:
        st.session_state["preset_choice"] = names[0]
    st.selectbox("Start from a preset", names, key="preset_choice", on_change=_on_preset_change,
                 help="Fills the form with a tried configuration; change anything afterwards.")


def options_section(owner: str, schema: dict) -> None:
    """One widget per declared option (core.options.Option), two per row."""
    if not schema:
        return
    columns = st.columns(2)
    for i, (name, option) in enumerate(schema.items()):
        key = f"{PREFIX}{owner}.{name}"
        if key not in st.session_state or type(st.session_state[key]) is not option.kind and not (
                option.kind is float and isinstance(st.session_state[key], int)):
            st.session_state[key] = option.default
        label = option.label or name.replace("_", " ").capitalize()
        column = columns[i % 2]
        bounds = {}
        if option.kind in (int, float):
            bounds = {"min_value": option.kind(option.low) if option.low is not None else None,
                      "max_value": option.kind(option.high) if option.high is not None else None}
        if option.kind is bool:
            column.toggle(label, key=key, help=option.help or None)
        elif option.choices:
            column.selectbox(label, list(option.choices), key=key, help=option.help or None)
        elif option.kind is int:
            column.number_input(label, step=1, key=key, help=option.help or None, **bounds)
        elif option.kind is float:
            column.number_input(label, key=key, help=option.help or None, format="%g", **bounds)
        else:
            column.text_input(label, key=key, help=option.help or None)


def save_zip_upload(upload_key: str) -> None:
    """on_change of a .zip uploader: keep the zip under LAB_HOME/cache/uploads and point data.path at it
    (runs before the redraw, so the path field shows it)."""
    upload = st.session_state.get(upload_key)
    if upload is None:
        return
    import hashlib
    from core.paths import cache_dir
    data = upload.getvalue()
    target = cache_dir("uploads") / f"{hashlib.sha1(data).hexdigest()[:16]}.zip"
    if not target.exists():
        target.write_bytes(data)
    st.session_state[PREFIX + "data.path"] = str(target)


def data_section(datasets: list[str]) -> None:
    k = PREFIX
    st.selectbox("Data set", datasets, key=k + "data.name")
    if st.session_state[k + "data.name"] == "folder":
        st.file_uploader("Upload a .zip with train/<class>/ images…", type=["zip"], key="folder_zip",
                         on_change=save_zip_upload, args=("folder_zip",))
        st.text_input("…or a folder or .zip on the server", key=k + "data.path",
                      placeholder="/data/photos  (with train/<class>/*.jpg inside)")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Image size (px, 0 = native)", step=8, key=k + "data.image_size")
    c2.number_input("Validation fraction", step=0.05, format="%.2f", key=k + "data.val_fraction",
                    help="Used when the data set has no validation split of its own")
    c3.number_input("Limit training samples (0 = all)", step=100, key=k + "data.limit")
    if st.session_state[k + "data.name"] == "shapes":
        st.number_input("Generated samples", step=500, key=k + "data.num_samples")
    c1, c2, c3 = st.columns(3)
    c1.toggle("Random crop", key=k + "data.augment_crop", help="Pad, then crop a random window each batch")
    c2.number_input("Crop padding (px)", step=1, key=k + "data.crop_padding")
    c3.toggle("Horizontal flip", key=k + "data.augment_flip", help="Good for photos, wrong for digits")


def model_section(models: list[str], pretrained_ok: bool) -> None:
    k = PREFIX
    st.selectbox("Model", models, key=k + "model.name")
    if not pretrained_ok:  # a model without weights: switch both off rather than leave them stuck on
        st.session_state[k + "model.pretrained"] = False
        st.session_state[k + "model.freeze_backbone"] = False
    c1, c2 = st.columns(2)
    c1.toggle("Pretrained ImageNet weights", key=k + "model.pretrained", disabled=not pretrained_ok)
    c2.toggle("Freeze the backbone (train the head only)", key=k + "model.freeze_backbone",
              disabled=not pretrained_ok)
    c1, c2 = st.columns(2)
    c1.number_input("Hidden width (mlp, cnn)", step=32, key=k + "model.hidden")
    c2.number_input("Dropout", step=0.1, format="%.2f", key=k + "model.dropout")


def optim_section(classification: bool = True) -> None:
    k = PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Optimiser", OPTIMIZERS, key=k + "optim.optimizer")
    c2.number_input("Learning rate", step=1e-4, format="%.5f", key=k + "optim.lr")
    c3.number_input("Weight decay", step=1e-4, format="%.5f", key=k + "optim.weight_decay")
    if st.session_state[k + "optim.optimizer"] == "sgd":
        c1, c2 = st.columns(2)
        c1.number_input("Momentum", step=0.05, format="%.3f", key=k + "optim.momentum")
        c2.toggle("Nesterov", key=k + "optim.nesterov")
    else:
        st.number_input("Adam β1", step=0.05, format="%.2f", key=k + "optim.beta1",
                        help="First-moment decay; 0.5 steadies GAN training (Radford et al., 2015)")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Schedule", SCHEDULES, key=k + "optim.schedule")
    c2.number_input("Warm-up (epochs)", step=0.5, format="%.1f", key=k + "optim.warmup_epochs")
    if st.session_state[k + "optim.schedule"] == "step":
        c3.number_input("Step every (epochs)", step=1, key=k + "optim.step_size")
        st.number_input("Step factor (gamma)", step=0.05, format="%.2f", key=k + "optim.gamma")
    c1, c2, c3 = st.columns(3)
    c1.number_input("Batch size", step=16, key=k + "optim.batch_size")
    c2.number_input("Epochs", step=1, key=k + "optim.epochs")
    if classification:
        c3.number_input("Label smoothing", step=0.05, format="%.2f", key=k + "optim.label_smoothing")
    c1, c2 = st.columns(2)
    c1.number_input("Gradient clipping (max norm, 0 = off)", step=0.5, format="%.2f", key=k + "optim.grad_clip")
    c2.number_input("Early stopping patience (epochs, 0 = off)", step=1, key=k + "early_stopping_patience")


def compute_section(has_cuda: bool) -> None:
    k = PREFIX
    c1, c2, c3 = st.columns(3)
    devices = ["auto", "cpu"] + (["cuda"] if has_cuda else [])
    if st.session_state.get(k + "device") not in devices:
        st.session_state[k + "device"] = "auto"
    c1.selectbox("Device", devices, key=k + "device")
    c2.selectbox("Precision (CUDA autocast)", AMP_MODES, key=k + "amp", disabled=not has_cuda)
    c3.number_input("Seed", step=1, key=k + "seed")
    c1, c2, c3 = st.columns(3)
    c1.toggle("torch.compile", key=k + "compile", help="Faster steps after a slow first one (GPU)")
    c2.toggle("channels_last", key=k + "channels_last")
    c3.text_input("Run name (optional)", key=k + "name")
