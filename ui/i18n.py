"""The interface language (English or Chinese) and `tr(en, zh)`, the one way the pages translate a string.

The choice lives in `st.session_state["lang"]`, so it survives page switches, and is mirrored in the
URL's `?lang=` so a shared link opens in the same language. Content (concept texts) carries its own
translations in core/concepts/catalogue.
"""

from __future__ import annotations

import streamlit as st

LANGUAGES = {"en": "English", "zh": "中文"}
_KEY = "lang"

def language() -> str:
    """'en' or 'zh': the session's choice, else the URL's ?lang=, else English."""
    chosen = st.session_state.get(_KEY)
    if chosen in LANGUAGES:
        return chosen
    from_url = st.query_params.get(_KEY)
    return from_url if from_url in LANGUAGES else "en"


def tr(en: str, zh: str, **values) -> str:
    """The interface's one way to say something: the English and Chinese text side by side where it is
    used, the current language's returned; `values` fill {placeholders} in both."""
    text = zh if language() == "zh" else en
    return text.format(**values) if values else text


def language_control() -> None:
    """The English / 中文 switch (drawn in the shared sidebar, so it is on every page)."""
    if st.session_state.get(_KEY) not in LANGUAGES:  # first run of the session: a link's ?lang= wins
        st.session_state[_KEY] = language()
    st.segmented_control("Language / 语言", list(LANGUAGES),
                         format_func=LANGUAGES.get, key=_KEY, required=True, label_visibility="collapsed")
    lang = st.session_state[_KEY]
    # Mirror into the URL; English is the default, so it keeps links clean by leaving ?lang= out.
    if lang == "en" and _KEY in st.query_params:
        del st.query_params[_KEY]
    elif lang != "en" and st.query_params.get(_KEY) != lang:
        st.query_params[_KEY] = lang
