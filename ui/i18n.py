"""The interface language (English or Chinese) and `t(text)`, the one way the pages translate a string.

The English text is the key; its Chinese lives in one catalogue, `ui/locale/zh/*.toml` (one file per area
of the interface, all loaded into one table; a key may appear in one file only). `t` fills {placeholders}
after the lookup, so a sentence with numbers is one entry. A string missing from the catalogue is shown in
English and remembered in `MISSING`, which the 中文 page tests read. A string kept in a constant is marked
with `N_("...")` where it is written (it returns the text unchanged) and translated with `t` where it is drawn,
so tests/app/test_chinese.py finds every key by reading the code. A message from core is shown with
`t_core(message)`: translated when it is a fixed sentence the catalogue holds, else as core wrote it. A widget's
format_func is called outside the page run too (AppTest calls it to match values): give it labels translated
beforehand (`names = {k: t(v) ...}; format_func=names.get`), never a function that calls `t`.

The choice lives in `st.session_state["lang"]`, so it survives page switches, and is mirrored in the
URL's `?lang=` so a shared link opens in the same language. Content (concept texts) carries its own
translations in core/concepts/catalogue.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path

import streamlit as st

LANGUAGES = {"en": "English", "zh": "中文"}
CATALOGUE_DIR = Path(__file__).parent / "locale"
MISSING: set[str] = set()  # English keys asked for in 中文 that the catalogue lacks
DUPLICATES: dict[str, list[str]] = {}  # a key found in more than one file -> those files (the tests fail on any)
_KEY = "lang"


def language() -> str:
    """'en' or 'zh': the session's choice, else the URL's ?lang=, else English (and English outside a page run,
    e.g. a chart built in a unit test)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    if get_script_run_ctx(suppress_warning=True) is None:
        return "en"
    chosen = st.session_state.get(_KEY)
    if chosen in LANGUAGES:
        return chosen
    from_url = st.query_params.get(_KEY)
    return from_url if from_url in LANGUAGES else "en"


@functools.cache
def catalogue(lang: str = "zh") -> dict[str, str]:
    """English text → translation, from every file of ui/locale/<lang>/. A key belongs in one file only: one
    found again is recorded in DUPLICATES (the tests fail on it) and the first file's text is kept, so a page
    never breaks over it."""
    table: dict[str, str] = {}
    source: dict[str, str] = {}
    for path in sorted((CATALOGUE_DIR / lang).glob("*.toml")):
        with path.open("rb") as handle:
            entries = tomllib.load(handle)
        for key, text in entries.items():
            if key in table:
                DUPLICATES.setdefault(key, [source[key]]).append(path.name)
                continue
            table[key], source[key] = text, path.name
    return table


def t(text: str, **values) -> str:
    """`text` (English) in the session's language, with `values` filled into its {placeholders}."""
    lang = language()
    if lang != "en":
        translated = catalogue(lang).get(text)
        if translated is None:
            MISSING.add(text)
        else:
            text = translated
    return text.format(**values) if values else text


def t_core(message: str) -> str:
    """A message from core (a LabError's text, a data set's source line) in the session's language when the
    catalogue knows it: a fixed sentence by its key; one with values in it (a count, a seed, a path) by a key that
    names them, e.g. "generated shapes ({count} images, seed {seed})", whose values are carried over. Anything else
    stays as core wrote it (and is not recorded in MISSING)."""
    lang = language()
    if lang == "en":
        return message
    table = catalogue(lang)
    if message in table:
        return table[message]
    for pattern, translated in _templates(lang):
        found = pattern.fullmatch(message)
        if found:
            return _PLACEHOLDER.sub(lambda m: found.group(m.group(1)), translated)
    return message


_PLACEHOLDER = re.compile(r"\{(\w+)(?:[:!][^}]*)?\}")


@functools.cache
def _templates(lang: str) -> list[tuple[re.Pattern, str]]:
    """The catalogue's keys with {placeholders} as patterns (each placeholder matches any text), longest first."""
    found = []
    for key, translated in catalogue(lang).items():
        names = _PLACEHOLDER.findall(key)
        if not names or len(set(names)) != len(names):
            continue
        pieces = _PLACEHOLDER.split(key)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(piece) if index % 2 == 0 else f"(?P<{piece}>.+?)" for index, piece in enumerate(pieces))
        found.append((re.compile(regex, re.S), translated))
    return sorted(found, key=lambda item: -len(item[0].pattern))


def N_(text: str) -> str:
    """Marks an English catalogue key kept in a constant (translated later with `t`); returns it unchanged."""
    return text



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
