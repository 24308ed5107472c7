"""The run-configuration form: widgets bound to dotted config fields in session state."""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.config import AMP_MODES, OPTIMIZERS, SCHEDULES, RunConfig
from core.presets import list_presets, preset
from core.tasks import apply_overrides, option_schema
from ui.i18n import N_, t, t_core

PREFIX = "cfg."
UPLOAD_ERROR = "_upload_error"  # why the last uploaded file was refused, shown once by the form
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


CLONED = N_("(the cloned run's settings)")  # the preset box's entry while the form holds a cloned run


def _on_preset_change() -> None:
    if st.session_state["preset_choice"] != CLONED:
        load_into_form(preset(st.session_state["preset_choice"]))


def load_clone(config: RunConfig) -> None:
    """A finished run's settings into the form; the preset box says so instead of naming the old preset."""
    load_into_form(config.replace(name=""))
    st.session_state["preset_choice"] = CLONED


def forget_preset_name() -> None:
    """on_change of the data set: a run name the preset gave ("digits-cnn") no longer describes the run."""
    choice = st.session_state.get("preset_choice")
    if choice in list_presets(None) and st.session_state.get(PREFIX + "name") == preset(choice).name:
        st.session_state[PREFIX + "name"] = ""


def pretrained_changed() -> None:
    """on_change of the pretrained toggle: without pretrained weights there is no backbone to freeze."""
    if not st.session_state.get(PREFIX + "model.pretrained"):
        st.session_state[PREFIX + "model.freeze_backbone"] = False


def _on_task_change() -> None:
    """A new task starts from its first preset, so every field suits it."""
    names = list_presets(st.session_state[PREFIX + "task"])
    if names:
        st.session_state["preset_choice"] = names[0]
        load_into_form(preset(names[0]))


def form_config() -> RunConfig:
    """The config the widgets currently describe (not yet validated)."""
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


def validation_error(config: RunConfig) -> str | None:
    """Why the form's config cannot run (core.tasks.validate's message, or a memory estimate beyond what the
    device has free), or None when it can."""
    from core.errors import LabError
    from core.tasks import check_ready, validate
    try:
        validate(config)
        check_ready(config)
    except LabError as exc:
        return str(exc)  # as core wrote it (needs_path_only reads it): shown with t_core
    estimate = memory_estimate(config)
    if estimate and estimate["too_big"]:
        return t("this run needs {memory}: lower optim.batch_size (e.g. to {smaller}) or data.image_size",
                 memory=memory_text(estimate), smaller=estimate["smaller"])
    return None


def needs_path_only(config: RunConfig, error: str) -> bool:
    """The only thing missing is the data path the user has not given yet."""
    from core.data import dataset_info, list_datasets
    return (not config.data.path and config.data.name in list_datasets(None)
            and dataset_info(config.data.name).needs_path and error.startswith("data.path"))


def memory_estimate(config: RunConfig) -> dict | None:
    """core.tasks.memory's estimate for the form's config (cached per config): its sizes (read with memory_text),
    too_big, tight, the batch size that would fit and the seconds per step."""
    import json
    return _memory_estimate(json.dumps(config.to_dict(), sort_keys=True))


@st.cache_data(max_entries=64, show_spinner=False)
def _memory_estimate(config_json: str) -> dict | None:
    import json
    from core.errors import LabError
    from core.tasks.memory import estimate_memory, smaller_batch
    config = RunConfig.from_dict(json.loads(config_json))
    try:
        estimate = estimate_memory(config)
    except LabError:
        return None
    if estimate is None:
        return None
    from core.tasks.cost import seconds_per_step
    available = estimate.available_bytes
    return {"total": estimate.total_bytes, "weights": estimate.weights_bytes, "device": estimate.device,
            "batch": estimate.batch_bytes + estimate.activation_bytes, "available": available,
            "too_big": estimate.too_big, "tight": estimate.tight, "seconds_per_step": seconds_per_step(config),
            "smaller": smaller_batch(estimate, config) if estimate.too_big else None}


MEMORY_PLACES = {"GPU": N_("GPU"), "computer (RAM)": N_("computer (RAM)")}  # where core.tasks.memory measures


def memory_text(estimate: dict) -> str:
    """The estimate in words, as core's MemoryEstimate.describe() says it, in the page's language."""
    from core.data.plan import format_bytes as size
    text = t("about {total} at least (model {weights}, batch and activations {batch})", total=size(estimate["total"]),
             weights=size(estimate["weights"]), batch=size(estimate["batch"]))
    if estimate["available"]:
        place = estimate["device"]
        text += t(" of {free} free on the {device}", free=size(estimate["available"]),
                  device=t(MEMORY_PLACES[place]) if place in MEMORY_PLACES else place)
    return text


def step_time_text(seconds: float | None, steps_per_epoch: int | None = None) -> str:
    """"about 0.4 s per step · about 35s per epoch" for the form (core.tasks.cost's estimate)."""
    if not seconds:
        return ""
    per_step = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
    text = t("about {time} per step", time=per_step)
    if steps_per_epoch:
        from ui.resources import duration
        text += t(" · about {time} per epoch ({steps} steps)", time=duration(seconds * steps_per_epoch),
                  steps=f"{steps_per_epoch:,}")
    return text


TRAIN_SIZE = "_train_size"  # training examples the data preview counted in this drawing (for steps per epoch)
PREVIEW_ERROR = "_preview_error"  # this drawing's data-preview failure: Launch stays disabled while it lasts


def note_preview_error(message: str) -> None:
    st.session_state[PREVIEW_ERROR] = message


def launch_key() -> str:
    """Names the launches of this browser session. core.jobs.submit makes one run of the requests with the
    same key within a few seconds: a double-clicked Launch. The config is deliberately not part of the key:
    the second click's rerun can find the form half reset by the first one's switch to the live view, and
    would then ask for a "different" run."""
    import uuid
    return "launch:" + st.session_state.setdefault("_session_key", uuid.uuid4().hex)


def ensure_initialised(initial_preset: str = "digits-cnn") -> None:
    if PREFIX + "data.name" not in st.session_state:
        st.session_state["preset_choice"] = initial_preset
        load_into_form(preset(initial_preset))


def task_picker() -> str:
    from core.tasks import list_tasks, task_spec
    titles = {name: t(task_spec(name).title) for name in list_tasks()}
    st.selectbox(t("Task"), list(titles), key=PREFIX + "task", on_change=_on_task_change, format_func=titles.get,
                 help=t("What the model learns to do; each task has its own data sets, models and presets"))
    return st.session_state[PREFIX + "task"]


def preset_picker(task: str | None = None) -> None:
    names = list_presets(task)
    if st.session_state.get("preset_choice") == CLONED:
        names = [CLONED] + names
    elif st.session_state.get("preset_choice") not in names and names:
        st.session_state["preset_choice"] = names[0]
    shown = {CLONED: t(CLONED)}  # preset names are names
    st.selectbox(t("Start from a preset"), names, key="preset_choice", on_change=_on_preset_change,
                 format_func=lambda name: shown.get(name, name),
                 help=t("Fills the form with a tried configuration; change anything afterwards."))


def native_size_note(place, config) -> None:
    """'Trains at 32 × 32 px' in `place` when a folder's size is left to its images (core.data.image_size_of)."""
    from core.data import dataset_info, image_size_of
    from core.tasks import task_spec
    if config.data.image_size or not config.data.path or not dataset_info(config.data.name).native_size:
        return
    example = task_spec(config.task).example_input  # the size the run will use, the model's minimum included
    size = example(config)[1][-1] if example else image_size_of(config.data)
    place.caption(":material/photo_size_select_large: " + t(
        "Trains at {size} × {size} px: the median shorter side of the folder's images (at most 224, at least what "
        "the model needs). Set a size above to change it.", size=size))


def data_plan_note(place, config) -> None:
    """How a folder's images will be read, in `place`: held in memory, or streamed from disk by worker processes
    when decoded they would not fit (or data.stream asks for it); core.data.plan decides, as the run's setup will."""
    import json
    import os

    from core.data import dataset_info
    from core.data.plan import BUDGET_VARIABLE
    from core.data.plan import format_bytes as size
    if not config.data.path or not dataset_info(config.data.name).files:
        return
    plan = _data_plan(json.dumps(config.to_dict(), sort_keys=True), os.environ.get(BUDGET_VARIABLE, ""))
    if plan is None:
        return  # a missing folder or an unknown model: the form's own check says so
    if not plan.streamed:
        text = t("Held in memory: the decoded images take {size}.", size=size(plan.decoded_bytes))
    else:
        text = (t("Streamed from disk while it trains, by {workers} worker processes.", workers=plan.workers)
                if plan.workers else t("Streamed from disk while it trains, by the training process itself."))
        if not plan.forced:
            text += t(" Decoded, the images would take {size}, more than the {budget} memory budget.",
                      size=size(plan.decoded_bytes), budget=size(plan.budget_bytes))
        if plan.disk_cache:
            text += t(" Decoded images are kept on disk after the first epoch.")
    place.caption(":material/storage: " + text)


@st.cache_data(ttl=30, max_entries=16, show_spinner=False)
def _data_plan(config_json: str, budget_setting: str):
    """The plan without its file listing (listing a large folder takes a while; the form reruns on every change).
    `budget_setting` is part of the cache key only."""
    import dataclasses
    import json

    from core.data.plan import data_plan
    from core.errors import LabError
    from core.tasks import task_spec
    try:
        config = RunConfig.from_dict(json.loads(config_json))
        spec = task_spec(config.task)
        if not spec.sized_data:
            return None
        return dataclasses.replace(data_plan(spec.sized_data(config), seed=config.seed), listing=None)
    except (LabError, LookupError, ValueError, TypeError):  # a half-filled form
        return None


def option_label(name: str, option) -> str:
    """An option's label as the form shows it (before translation): its own, or its name in words."""
    return option.label or name.replace("_", " ").capitalize()


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
        label = t(option_label(name, option))  # core's words, in registry.toml
        helptext = t(option.help) if option.help else None
        column = columns[i % 2]
        bounds = {}
        if option.kind in (int, float):
            bounds = {"min_value": option.kind(option.low) if option.low is not None else None,
                      "max_value": option.kind(option.high) if option.high is not None else None}
        if option.kind is bool:
            column.toggle(label, key=key, help=helptext)
        elif option.choices:  # the values stay in the config; words among them are shown translated
            shown = {choice: t(choice) if choice in CHOICE_WORDS else str(choice) for choice in option.choices}
            column.selectbox(label, list(option.choices), key=key, help=helptext, format_func=shown.get)
        elif option.kind is int:
            column.number_input(label, step=1, key=key, help=helptext, **bounds)
        elif option.kind is float:
            column.number_input(label, key=key, help=helptext, format="%g", **bounds)
        else:
            column.text_input(label, key=key, help=helptext)


def save_zip_upload(upload_key: str) -> None:
    """on_change of a .zip uploader: keep the zip under LAB_HOME/cache/uploads and point data.path at it
    (runs before the redraw, so the path field shows it)."""
    upload = st.session_state.get(upload_key)
    if upload is None:
        return
    from core.data.uploads import keep_zip_upload
    from core.errors import LabError
    try:
        st.session_state[PREFIX + "data.path"] = str(keep_zip_upload(upload.getvalue(), upload.name))
    except LabError as exc:
        st.session_state[UPLOAD_ERROR] = t_core(str(exc))


# Schedules and precision modes are config values; the form shows them in words.
SCHEDULE_WORDS = {"constant": N_("constant"), "step": N_("step decay"), "cosine": N_("cosine"),
                  "onecycle": N_("onecycle"), "triangle": N_("triangle")}
DEVICE_WORDS = {"auto": N_("auto")}  # cpu and cuda are names
AMP_WORDS = {"off": N_("off")}  # bf16 and fp16 are names


def _words(values, words: dict) -> dict:
    """value -> its label in the page's language, for a widget's format_func (names stay as they are)."""
    return {value: t(words[value]) if value in words else value for value in values}


def optim_section(label_smoothing: bool = False) -> None:
    k = PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox(t("Optimiser"), OPTIMIZERS, key=k + "optim.optimizer")
    c2.number_input(t("Learning rate"), step=1e-4, format="%.5f", key=k + "optim.lr")
    c3.number_input(t("Weight decay"), step=1e-4, format="%.5f", key=k + "optim.weight_decay")
    if st.session_state[k + "optim.optimizer"] == "sgd":
        c1, c2 = st.columns(2)
        c1.number_input(t("Momentum"), step=0.05, format="%.3f", key=k + "optim.momentum")
        c2.toggle(t("Nesterov"), key=k + "optim.nesterov")
    else:
        c1, c2 = st.columns(2)
        c1.number_input(t("Adam β1"), step=0.05, format="%.2f", key=k + "optim.beta1",
                        help=t("First-moment decay; 0.5 steadies GAN training (Radford et al., 2015)"))
        c2.number_input(t("Adam β2"), step=0.001, format="%.3f", key=k + "optim.beta2",
                        help=t("Second-moment decay; 0.99 suits small language models (nanoGPT)"))
    c1, c2, c3 = st.columns(3)
    schedules = _words(SCHEDULES, SCHEDULE_WORDS)
    c1.selectbox(t("Schedule"), SCHEDULES, key=k + "optim.schedule", format_func=schedules.get)
    c2.number_input(t("Warm-up (epochs)"), step=0.5, format="%.1f", key=k + "optim.warmup_epochs")
    if st.session_state[k + "optim.schedule"] == "cosine":
        c3.number_input(t("Final rate (fraction of the peak)"), min_value=0.0, max_value=1.0, step=0.05, format="%.2f",
                        key=k + "optim.min_lr_fraction")
    if st.session_state[k + "optim.schedule"] == "step":
        c3.number_input(t("Step every (epochs)"), step=1, key=k + "optim.step_size")
        st.number_input(t("Step factor (gamma)"), step=0.05, format="%.2f", key=k + "optim.gamma")
    c1, c2, c3 = st.columns(3)
    c1.number_input(t("Batch size"), step=16, key=k + "optim.batch_size")
    c2.number_input(t("Epochs"), step=1, key=k + "optim.epochs")
    if label_smoothing:
        c3.number_input(t("Label smoothing"), step=0.05, format="%.2f", key=k + "optim.label_smoothing")
    c1, c2, c3 = st.columns(3)
    c1.number_input(t("Gradient clipping (max norm, 0 = off)"), step=0.5, format="%.2f", key=k + "optim.grad_clip")
    c2.number_input(t("Early stopping patience (epochs, 0 = off)"), step=1, key=k + "early_stopping_patience")
    c3.number_input(t("Norm-layer rate ×"), min_value=0.01, step=1.0, format="%.2f", key=k + "optim.norm_lr_scale",
                    help=t("Learning-rate multiplier for normalisation layers, their weight decay divided by it; "
                           "the CIFAR-10 speedrun uses 64"))


def compute_section(has_cuda: bool) -> None:
    k = PREFIX
    c1, c2, c3, c4 = st.columns(4)
    devices = ["auto", "cpu"] + (["cuda"] if has_cuda else [])
    if st.session_state.get(k + "device") not in devices:
        st.session_state[k + "device"] = "auto"
    device_names, amp_names = _words(devices, DEVICE_WORDS), _words(AMP_MODES, AMP_WORDS)
    c1.selectbox(t("Device"), devices, key=k + "device", format_func=device_names.get)
    c2.number_input(t("Devices"), min_value=1, max_value=1024, step=1, key=k + "devices",
                    help=t("Train in this many processes through torchrun, one per GPU (on the CPU, gloo processes "
                           "that share the cores). The batch size is the global batch, split evenly between them."))
    c3.selectbox(t("Precision (CUDA autocast)"), AMP_MODES, key=k + "amp", disabled=not has_cuda,
                 format_func=amp_names.get)
    c4.number_input(t("Seed"), step=1, key=k + "seed")
    c1, c2, c3 = st.columns(3)
    c1.toggle("torch.compile", key=k + "compile", help=t("Faster steps after a slow first one (GPU)"))
    c2.toggle(t("channels_last"), key=k + "channels_last")
    c3.text_input(t("Run name (optional)"), key=k + "name")


# option values that are words (core.options.Option.choices); the others are ids shown as they are
CHOICE_WORDS = (N_("bce"), N_("mse"), N_("init"), N_("first_input"), N_("subword"), N_("char"), N_("off"), N_("flip"),
                N_("flip_translate"))
