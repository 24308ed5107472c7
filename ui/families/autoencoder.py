"""Autoencoder / VAE pages: real images and model size before training, reconstructions as they
improve, and on the Media page an uploaded picture beside its reconstruction, a walk over the latent
space and (VAE) samples from the prior; a latent-space scatter per run on the Runs page."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from ui.charts import PALETTE
from ui.families.gan import enlarge, load_model, real_images_panel, sample_history
from ui.i18n import N_, t, t_core
from ui.resources import MEDIA_DEVICE

UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
INVERT_CHOICES = {"auto": N_("auto"), "no": N_("no"), "yes": N_("yes")}


@st.cache_data(show_spinner=False, max_entries=16)  # codes_for shows a spinner in the page's language
def _codes(run_id: str, which: str, mtime_ns: int):
    """The validation set's codes for one checkpoint (mtime_ns: a new checkpoint is a new cache entry)."""
    from core.tasks.checkpoints import load_run_model
    from core.tasks.autoencoder.reconstruct import encode_validation
    return encode_validation(load_run_model(run_id, which, device=MEDIA_DEVICE))


def codes_for(run_id: str, which: str = "best"):
    from core.tasks.checkpoints import checkpoint_path
    path = checkpoint_path(run_id, which)
    with st.spinner(t("Encoding the validation images…")):
        return _codes(run_id, which, path.stat().st_mtime_ns if path.exists() else 0)


def latent_figure(codes, title: str = "") -> go.Figure:
    fig = go.Figure()
    for index, name in enumerate(codes.classes):
        mask = codes.labels == index
        if mask.any():
            fig.add_trace(go.Scattergl(x=codes.coords[mask, 0], y=codes.coords[mask, 1], mode="markers", name=name,
                                       marker=dict(size=5, opacity=0.75, color=PALETTE[index % len(PALETTE)])))
    fig.update_layout(height=440, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title or None,
                      xaxis_title=codes.axes[0], yaxis_title=codes.axes[1], legend=dict(itemsizing="constant"))
    return fig


def _kind(run_model) -> str:
    return "VAE" if run_model.model.variational else t("autoencoder")


# ---- hooks ---------------------------------------------------------------------------------------

def preview(config) -> None:
    real_images_panel(config, {N_("encoder parameters"): ("encoder", "to_mu", "to_logvar"),
                               N_("decoder parameters"): ("from_code", "decoder")})


def live(run, folder) -> None:
    sample_history(run, folder, "reconstructions", N_("Reconstructions of fixed validation images"),
                   N_("inputs on top, reconstructions below"))
    if run.config.get("model", {}).get("name") == "conv_vae":
        sample_history(run, folder, "prior", N_("Decoded samples from the prior N(0, I)"))


def results(run) -> None:
    st.subheader(t("Latent space"), anchor=False)
    try:
        codes = codes_for(run.id, "best")
    except LabError as exc:
        st.info(t_core(str(exc)))
        return
    st.plotly_chart(latent_figure(codes), key=f"latent-{run.id}")


def runs_extra(run_ids: list[str]) -> None:
    from ui.resources import store
    st.subheader(t("Latent spaces"), anchor=False)
    st.caption(t("Validation images placed by their code (the first two principal components when the code has "
                 "more than two numbers), coloured by class"))
    shown = run_ids[:4]
    columns = st.columns(min(2, len(shown)))
    for i, run_id in enumerate(shown):
        with columns[i % len(columns)]:
            name = store().get_run(run_id).name
            try:
                codes = codes_for(run_id, "best")
            except LabError as exc:
                st.info(f"{name}: {exc}")
                continue
            st.plotly_chart(latent_figure(codes, f"{name} ({run_id[-4:]})"), key=f"latent-{run_id}")
    if len(run_ids) > len(shown):
        st.caption(t("{count} more autoencoder run(s) selected; showing the first four.",
                     count=len(run_ids) - len(shown)))


def media(source: dict) -> None:
    from core.data.images import grid_png
    from core.tasks.gan.generate import MAX_STEPS
    from core.tasks.autoencoder.reconstruct import latent_walk, prior_samples, reconstruct_upload

    run_model = load_model(source)
    pre = run_model.metadata.get("preprocessing", {})
    grey = pre.get("channels") == 1
    st.caption(f"{_kind(run_model)} · {pre.get('image_size')}px {t('grey') if grey else 'RGB'} · "
               + t("code of {count} numbers", count=run_model.model.latent_dim) + " · "
               + t("epoch {epoch}", epoch=run_model.epoch))
    names = [t("Reconstruct"), t("Latent walk")] + ([t("Sample")] if run_model.model.variational else [])
    tabs = st.tabs(names)
    with tabs[0]:
        upload = st.file_uploader(t("A picture to reconstruct"), type=UPLOAD_TYPES, key="ae_upload",
                                  help=t("Squashed to the training size (and turned grey for grey runs), as in training"))
        invert = "auto"
        if grey:
            shown = {choice: t(word) for choice, word in INVERT_CHOICES.items()}
            choice = st.radio(t("Invert grey values"), list(shown), horizontal=True, key="ae_invert",
                              format_func=shown.get,
                              help=t("The digits are white on black; 'auto' inverts a picture that is mostly light"))
            invert = {"auto": "auto", "no": False, "yes": True}[choice]
        if upload is not None:
            try:
                shown, rebuilt = reconstruct_upload(run_model, upload.getvalue(), upload.name, invert)
            except LabError as exc:
                st.error(t_core(str(exc)), icon=":material/error:")
            else:
                left, right = st.columns(2)
                left.image(enlarge(shown), caption=t("input as the model sees it ({width}x{height})",
                                                     width=shown.shape[1], height=shown.shape[0]))
                right.image(enlarge(rebuilt), caption=t("reconstruction"))
    with tabs[1]:
        steps = st.slider(t("Grid size"), min_value=3, max_value=min(MAX_STEPS, 20), value=10, key="ae_walk_steps")
        try:
            codes = None if (run_model.model.variational and run_model.model.latent_dim == 2) else \
                codes_for(source["run_id"], source.get("which", "best"))
            walk = latent_walk(run_model, steps, codes=codes)
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/error:")
        else:
            st.image(walk.png, caption=t("{x} from {x0:.2f} (left) to {x1:.2f} (right); {y} from {y0:.2f} (top) to "
                                         "{y1:.2f} (bottom)", x=walk.axes[0], x0=walk.xs[0], x1=walk.xs[-1],
                                         y=walk.axes[1], y0=walk.ys[0], y1=walk.ys[-1]))
    if run_model.model.variational:
        with tabs[2]:
            c1, c2 = st.columns(2)
            seed = c1.number_input(t("Seed"), min_value=0, max_value=2**31 - 1, value=0, key="ae_seed")
            count = c2.number_input(t("Images"), min_value=1, max_value=256, value=32, key="ae_count")
            try:
                st.image(grid_png(prior_samples(run_model, int(seed), int(count)), nrow=8),
                         caption=t("codes drawn from N(0, I), decoded"))
            except LabError as exc:
                st.error(t_core(str(exc)), icon=":material/error:")
