"""Media: use a model. Classify uploaded images and videos with an image run or a pretrained ImageNet
model; generate, reconstruct, caption, classify clips or play with runs of the other tasks."""

import streamlit as st

from core.errors import LabError
from ui.i18n import t, t_core
from ui.resources import TRAIN_PAGE, show_error, source_labels

st.title(t("Media"))
st.caption(t("Classify your own pictures and videos, generate text and images, caption, or play: "
             "with one of your runs or a pretrained ImageNet model."))

from core.inference import default_source, list_model_sources

sources = list_model_sources()
if not sources:
    st.info(t("No model to use yet."))
    st.page_link(TRAIN_PAGE, label=t("Train one first"), icon=":material/model_training:")
    st.stop()

labels = source_labels(sources)
# preselect the run named in the link, else the newest completed run's best weights (never a download)
index = st.selectbox(t("Model"), range(len(sources)), format_func=lambda i: labels[i], key="media_source",
                     index=default_source(sources, st.query_params.get("run")),
                     placeholder=t("Choose a model (pretrained ones download first)"),
                     help=t("Completed runs (best or last checkpoint) and pretrained ImageNet models"))
if index is None:
    st.info(t("Train a model on the Train page, or choose a pretrained ImageNet model above: its weights are "
              "downloaded on first use (this needs network access)."), icon=":material/info:")
    st.page_link(TRAIN_PAGE, label=t("Train a model"), icon=":material/model_training:")
    st.stop()
source = sources[index]
from ui.families import hook  # noqa: E402
panel = hook(source["task"], "media")
if panel is None:
    st.info(t("Runs of the task '{task}' have nothing to show here yet.", task=source["task"]))
    st.stop()
try:
    panel(source)
except LabError as exc:
    st.error(t_core(str(exc)), icon=":material/error:")
except Exception as exc:
    show_error(exc)
