"""Deep Learning Lab: the router and the frame (page config, navigation, sidebar with device and queue)."""

import streamlit as st

from core.errors import LabError
from core.paths import check_writable_home

from ui.sidebar import render_sidebar
from ui.warmup import start_background_imports

st.set_page_config(page_title="Deep Learning Lab", page_icon=":material/neurology:", layout="wide")

PAGES = {
    "Lab": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page("app_pages/runs.py", title="Runs", icon=":material/stacked_line_chart:", url_path="runs"),
        st.Page("app_pages/media.py", title="Media", icon=":material/image_search:", url_path="media"),
    ],
    "Learn": [
        st.Page("app_pages/concepts.py", title="Concepts", icon=":material/school:", url_path="concepts"),
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
