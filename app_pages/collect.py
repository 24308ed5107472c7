"""Collect: gather an image data set in the browser (classes filled from the webcam and uploads), train a
classifier on it and test it live, on one page. The collection's logic lives in core.data.collection."""

import streamlit as st

from ui.collect import add_class_form, class_cards, collection_picker
from ui.collect_model import test_section, train_section
from ui.i18n import t

st.title(t("Collect"))
st.caption(t("Teach a model your own classes: add a class for each kind of thing, fill it with webcam shots or "
             "uploaded photos, train, then test it live on the webcam."))

collection = collection_picker()
if collection is None:
    st.stop()

st.subheader(t("Classes"), anchor=False)
add_class_form(collection)
counts = class_cards(collection)

st.divider()
train_column, test_column = st.columns(2, gap="large")
with train_column.container(key="collect_train"):
    train_section(collection, counts)
with test_column.container(key="collect_test"):
    test_section(collection, counts)
