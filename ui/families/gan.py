"""GAN pages: real images and model size before training, the fixed-noise grid as it evolves, and
generation (a grid from a seed, an interpolation between two seeds) on the Media page.

The helpers `real_images_panel`, `sample_history` and `enlarge` are shared with ui/families/autoencoder.py.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from core.errors import LabError
from ui.i18n import N_, t, t_core
from ui.resources import MEDIA_DEVICE


# ---- shared by the image-generating families ----------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=16)  # the caller's spinner speaks the page's language
def _real_images(data_json: str, seed: int, count: int = 32) -> dict:
    from core.config import DataConfig
    from core.data import load_dataset
    from core.data.images import grid_png
    splits = load_dataset(DataConfig(**json.loads(data_json)), seed=seed)
    images = splits.train_x[:count].float() / 255.0  # (count, C, H, W)
    return {"png": grid_png(images, nrow=8), "channels": splits.channels, "size": splits.image_size,
            "train": len(splits.train_y), "val": len(splits.val_y), "source": splits.source}


@st.cache_data(show_spinner=False, max_entries=32)
def _parameters(config_json: str, channels: int, size: int) -> dict[str, int]:
    """Parameters in total and per top-level part of the model (generator / discriminator, encoder / decoder)."""
    from core.config import RunConfig
    from core.tasks import model_parameters
    return model_parameters(RunConfig.from_json(config_json),
                            {"preprocessing": {"channels": channels, "image_size": size}})


def real_images_panel(config, parts: dict[str, tuple[str, ...]]) -> None:
    """A grid of real training images, then the model's parameter count by part.

    parts: {label: child module names}, e.g. {N_("generator parameters"): ("generator",)}; labels are translated."""
    import dataclasses
    with st.spinner(t("Loading the data set…")):
        data = _real_images(json.dumps(dataclasses.asdict(config.data), sort_keys=True), config.seed)
    with st.container(border=True):
        st.subheader(t("Real images"), anchor=False)
        # the source line is core's (a path, counts, a seed): it stays as core wrote it
        st.caption(t_core(data["source"]) + " · " + t("{train:,} training and {val:,} validation images", train=data["train"],
                                              val=data["val"])
                   + f" · {data['size']}px · {t('grey') if data['channels'] == 1 else 'RGB'}")
        st.image(data["png"], width="stretch")
    with st.container(border=True):
        st.subheader(t("Model"), anchor=False)
        counts = _parameters(config.to_json(), data["channels"], data["size"])
        columns = st.columns(len(parts))
        for column, (label, names) in zip(columns, parts.items()):
            column.metric(t(label), f"{sum(counts.get(n, 0) for n in names):,}")


def sample_history(run, folder, name: str, title: str, help_text: str = "") -> None:
    """The latest sample image `name` of a run, or any earlier one picked on a slider."""
    from core.engine.samples import list_samples
    samples = list_samples(folder, name)
    if not samples:
        st.caption(t("{title}: the first one appears once training starts.", title=t(title)))
        return
    st.markdown(f"**{t(title)}**" + (f" · {t(help_text)}" if help_text else ""))
    steps = [s.step for s in samples]
    chosen = samples[-1]
    if len(samples) > 1:
        follow = st.toggle(t("Follow the latest"), value=True, key=f"{name}_follow_{run.id}",
                           help=t("Turn off to step back through the grids saved during training"))
        if not follow:
            step = st.select_slider(t("Step"), options=steps, value=steps[-1], key=f"{name}_step_{run.id}")
            chosen = samples[steps.index(step)]
    st.image(chosen.load(), caption=t("step {step:,} of {last:,}", step=chosen.step, last=steps[-1]))


def enlarge(image: np.ndarray, target: int = 192) -> np.ndarray:
    """Repeat pixels so a tiny image shows crisp at about `target` pixels (browsers blur when scaling)."""
    scale = max(1, target // max(image.shape[:2]))
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def load_model(source: dict):
    from core.tasks.checkpoints import load_run_model
    with st.spinner(t("Loading the checkpoint…")):
        return load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)


# ---- GAN hooks ----------------------------------------------------------------------------------

def preview(config) -> None:
    real_images_panel(config, {N_("generator parameters"): ("generator",),
                               N_("discriminator parameters"): ("discriminator",)})


def live(run, folder) -> None:
    sample_history(run, folder, "grid", N_("Samples from a fixed noise batch"),
                   N_("the same 64 noise vectors all run long, so each cell shows one image improving"))


def results(run) -> None:
    """A finished run's Tools section (ui/toolkit.py): export the generator."""
    from ui.toolkit import tools
    tools(run)


def runs_extra(run_ids: list[str]) -> None:
    """The last fixed-noise grid of each selected GAN run, side by side."""
    from core.engine.samples import list_samples
    from core.paths import run_dir
    from core.store.records import metric_title
    from ui.resources import store
    st.subheader(t("Generated samples"), anchor=False)
    shown = run_ids[:4]
    for column, run_id in zip(st.columns(len(shown)), shown):
        run = store().get_run(run_id)
        grids = list_samples(run_dir(run_id), "grid")
        best = run.summary.get("best_val_fd")
        column.caption(f"{run.name} ({run_id[-4:]})" + (" · " + t("best {metric} {value:.3f}", metric=t(
            metric_title("val_fd")), value=best) if best is not None else ""))
        if grids:
            column.image(grids[-1].load(), caption=t("step {step:,}", step=grids[-1].step))
        else:
            column.info(t("no samples yet"))


def media(source: dict) -> None:
    from core.data.images import grid_png
    from core.tasks.gan.generate import MAX_COUNT, MAX_SEED, MAX_STEPS, generate_grid, interpolate

    run_model = load_model(source)
    pre = run_model.metadata.get("preprocessing", {})
    st.caption(f"DCGAN · {pre.get('image_size')}px {t('grey') if pre.get('channels') == 1 else 'RGB'} · "
               + t("noise of {count} numbers", count=run_model.metadata.get("latent_dim")) + " · "
               + t("epoch {epoch}", epoch=run_model.epoch))
    grid_tab, walk_tab = st.tabs([t("Generate"), t("Interpolate")])
    with grid_tab:
        c1, c2 = st.columns(2)
        seed = c1.number_input(t("Seed"), min_value=0, max_value=MAX_SEED, value=0, step=1, key="gan_seed",
                               help=t("The same seed always draws the same images"))
        count = c2.number_input(t("Images"), min_value=1, max_value=MAX_COUNT, value=16, step=1, key="gan_count")
        try:
            st.image(generate_grid(run_model, int(seed), int(count)),
                     caption=t("{count} images from seed {seed}", count=count, seed=seed))
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/error:")
    with walk_tab:
        c1, c2, c3 = st.columns(3)
        seed_a = c1.number_input(t("From seed"), min_value=0, max_value=MAX_SEED, value=1, step=1, key="gan_seed_a")
        seed_b = c2.number_input(t("To seed"), min_value=0, max_value=MAX_SEED, value=2, step=1, key="gan_seed_b")
        steps = c3.number_input(t("Steps"), min_value=2, max_value=MAX_STEPS, value=8, step=1, key="gan_steps")
        spherical = st.toggle(t("Spherical path (slerp)"), value=True, key="gan_slerp",
                              help=t("Follow the sphere where Gaussian noise vectors live, instead of the straight "
                                     "line through its less likely middle"))
        try:
            images = interpolate(run_model, int(seed_a), int(seed_b), int(steps), spherical=spherical)
            st.image(grid_png(images, nrow=int(steps), min_cell=64),
                     caption=t("from seed {a} (left) to seed {b} (right)", a=seed_a, b=seed_b))
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/error:")
