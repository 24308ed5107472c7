"""Deep Learning Lab: the router and the frame (page config, navigation, sidebar with device and queue)."""

import streamlit as st

from core.errors import LabError
from core.paths import check_writable_home

from ui.i18n import t
from ui.sidebar import render_sidebar
from ui.warmup import start_background_imports

st.set_page_config(page_title=t("Deep Learning Lab"), page_icon=":material/neurology:", layout="wide")

PAGES = {
    t("Lab"): [
        st.Page("app_pages/home.py", title=t("Home"), icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title=t("Train"), icon=":material/model_training:", url_path="train"),
        st.Page("app_pages/runs.py", title=t("Runs"), icon=":material/stacked_line_chart:", url_path="runs"),
        st.Page("app_pages/media.py", title=t("Media"), icon=":material/image_search:", url_path="media"),
        st.Page("app_pages/collect.py", title=t("Collect"), icon=":material/photo_camera:", url_path="collect"),
    ],
    t("Learn"): [
        st.Page("app_pages/concepts.py", title=t("Concepts"), icon=":material/school:", url_path="concepts"),
    ],
}

page = st.navigation(PAGES)
try:
    check_writable_home()
except LabError as exc:  # read-only, not ours, or full: one sentence instead of a traceback on every page
    st.error(str(exc), icon=":material/folder_off:")
    st.stop()
render_sidebar()
page.run()
start_background_imports()  # after the page has been sent
