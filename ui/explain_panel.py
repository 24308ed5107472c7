"""What an image classifier's layers see, drawn for the Media page (one upload) and for a finished run's page (one of
its validation images): the first convolution's filters and each convolution's first activation maps, with the
layer's name and output shape. The arrays come from core.tasks.classification.layers."""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from ui.i18n import t
from ui.resources import show_error

ALL_AT_ONCE = 6  # models with more convolutions than this show one layer at a time, chosen on a slider


def draw_layers(predictor, image, key: str) -> None:
    """Filters and activation maps of `predictor`'s model for `image`; `key` keeps this view's widgets apart."""
    from core.tasks.classification.layers import activation_maps, first_filters

    filters = first_filters(predictor.model)
    if filters is None:
        st.info(t("This model has no convolutional layers, so there are no filters or feature maps to show; "
                  "try integrated gradients, saliency or occlusion instead."), icon=":material/info:")
        return
    with st.spinner(t("Running the picture through the layers…")):
        layers = activation_maps(predictor, image)
    out_channels, in_channels, kh, kw = filters.shape
    st.markdown("**" + t("First layer's filters") + f"** `{filters.name}`")
    st.caption(t("{shown} of {count} filters, each {height}×{width} over {channels} input channels: the patterns "
                 "the first layer responds to.", shown=filters.shown, count=out_channels, height=kh, width=kw,
                 channels=in_channels))
    st.image(filters.grid, width=min(360, max(160, filters.grid.width)))
    st.markdown("**" + t("Activation maps") + "**")
    st.caption(t("Bright where a channel responds strongly to this picture; each map scaled on its own. Deeper layers "
                 "answer with coarser maps of more channels."))
    shown = layers
    if len(layers) > ALL_AT_ONCE:
        names = [layer.name for layer in layers]
        chosen = st.select_slider(t("Layer"), options=names, value=names[0], key=key)
        shown = [layers[names.index(chosen)]]
    for layer in shown:
        channels, height, width = layer.shape
        st.markdown(f"`{layer.name}` · `{layer.kind}` · {channels}×{height}×{width}")
        st.image(layer.grid, caption=t("the first {shown} of {count} channels", shown=layer.shown, count=channels),
                 width=layer.grid.width if layer.grid.width < 720 else "stretch")  # small grids at their own size


def layers_panel(run) -> None:
    """For a finished image classification run's Tools: what its layers see on one validation image."""
    st.caption(t("The first layer's filters, and what every convolutional layer of the best checkpoint answers to "
                 "one of the run's validation images."))
    if not st.toggle(t("Show the layers"), key=f"layers_show-{run.id}"):
        return
    index = st.number_input(t("Validation image"), min_value=0, value=0, step=1, key=f"layers_index-{run.id}")
    from PIL import Image

    from core.tasks.classification.evaluation import val_images
    from core.tasks.classification.predictor import load_run_predictor
    try:
        predictor = load_run_predictor(run.id, "best")
        pixels = val_images(run.id, [int(index)])[0]  # (H, W, C) uint8
    except LabError as exc:
        show_error(exc)
        return
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    left, right = st.columns([1, 3])
    left.image(predictor.view(image), caption=t("validation image {index}", index=int(index)), width=160)
    with right:
        draw_layers(predictor, image, key=f"layers_layer-{run.id}")
