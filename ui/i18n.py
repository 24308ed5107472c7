"""The interface language (English or Chinese) and the translated UI strings of the pages that have them.

The choice lives in `st.session_state["lang"]`, so it survives page switches, and is mirrored in the
URL's `?lang=` so a shared link opens in the same language. Content (concept texts) carries its own
translations in core/concepts/catalogue; only the interface's words are here.
"""

from __future__ import annotations

import streamlit as st

LANGUAGES = {"en": "English", "zh": "中文"}
_KEY = "lang"

STRINGS: dict[str, dict[str, str]] = {
    "concepts.title": {"en": "Concepts", "zh": "概念"},
    "concepts.caption": {"en": "The ideas behind modern deep learning: what each solves, how it works, and a "
                                "small demo to play with. Where the lab has a preset, train it and watch it learn.",
                         "zh": "现代深度学习背后的思想：各自解决什么问题、如何工作，并附一个可以动手的小演示。"
                               "实验室有对应预设时，可以直接训练并观察它学习。"},
    "search.placeholder": {"en": "Search, e.g. attention, residual, GAN",
                           "zh": "搜索，例如：注意力、残差、GAN"},
    "search.label": {"en": "Search", "zh": "搜索"},
    "area.label": {"en": "Area", "zh": "领域"},
    "area.all": {"en": "All areas", "zh": "全部领域"},
    "map.title": {"en": "Concept map", "zh": "概念地图"},
    "map.help": {"en": "Click a concept to open it. Lines show how ideas build on each other; a link implied by "
                        "a chain of others is left out (each concept's page lists them all).",
                 "zh": "点击一个概念即可打开。连线表示概念之间如何相互构建；能由其他连线推出的关系不再单独画出"
                       "（每个概念的页面会列出全部关系）。"},
    "kind.builds_on": {"en": "builds on", "zh": "基于"},
    "kind.is_a": {"en": "is a kind of", "zh": "属于"},
    "kind.used_in": {"en": "is used in", "zh": "用于"},
    # The same relations read from the other end: "cnn" is the basis of "resnet" when resnet builds on cnn.
    "kind_rev.builds_on": {"en": "is the basis of", "zh": "后续发展"},
    "kind_rev.is_a": {"en": "includes", "zh": "包括"},
    "kind_rev.used_in": {"en": "uses", "zh": "使用"},
    "cards.count": {"en": "{n} concepts", "zh": "{n} 个概念"},
    "cards.none": {"en": "No concept matches that search.", "zh": "没有与搜索匹配的概念。"},
    "cards.open": {"en": "Open", "zh": "打开"},
    "concept.back": {"en": "All concepts", "zh": "全部概念"},
    "concept.unknown": {"en": "There is no concept '{id}'.", "zh": "没有名为“{id}”的概念。"},
    "section.problem": {"en": "The problem it solves", "zh": "它解决什么问题"},
    "section.how": {"en": "How it works", "zh": "它如何工作"},
    "section.when": {"en": "When to use it", "zh": "何时使用"},
    "section.failure": {"en": "Failure modes and pitfalls", "zh": "常见失败与陷阱"},
    "concept.formulas": {"en": "Formulas", "zh": "公式"},
    "concept.demo": {"en": "Try it", "zh": "动手试试"},
    "concept.related": {"en": "Related concepts", "zh": "相关概念"},
    "concept.references": {"en": "References", "zh": "参考文献"},
    "concept.train": {"en": "Train it in the lab", "zh": "在实验室中训练"},
    "concept.train_this": {"en": "Train this: {preset}", "zh": "训练：{preset}"},
    "concept.no_preset": {"en": "No preset trains this idea yet.", "zh": "暂时还没有训练这个概念的预设。"},
    "concept.runs": {"en": "Your runs of this concept", "zh": "你在这个概念上的训练"},
    "concept.no_runs": {"en": "No runs yet. Start one with a button above.",
                        "zh": "还没有训练记录。用上面的按钮开始一次。"},
    "concept.best": {"en": "best val. accuracy {value}", "zh": "最佳验证准确率 {value}"},
    "catalogue.error": {"en": "The concept catalogue has a problem:", "zh": "概念目录有问题："},
    "demo.error": {"en": "The demo could not run:", "zh": "演示无法运行："},
    "lang.label": {"en": "Language", "zh": "语言"},
}


def language() -> str:
    """'en' or 'zh': the session's choice, else the URL's ?lang=, else English."""
    chosen = st.session_state.get(_KEY)
    if chosen in LANGUAGES:
        return chosen
    from_url = st.query_params.get(_KEY)
    return from_url if from_url in LANGUAGES else "en"


def t(key: str, **values) -> str:
    """The UI string `key` in the current language; `values` fill its {placeholders}."""
    entry = STRINGS[key]
    text = entry.get(language()) or entry["en"]
    return text.format(**values) if values else text


def tr(en: str, zh: str) -> str:
    """An inline pair, for one-off strings (demo controls and captions) that read best next to their use."""
    return zh if language() == "zh" else en


def language_control() -> None:
    """The English / 中文 switch (drawn in the shared sidebar, so it is on every page)."""
    if st.session_state.get(_KEY) not in LANGUAGES:  # first run of the session: a link's ?lang= wins
        st.session_state[_KEY] = language()
    st.segmented_control(STRINGS["lang.label"]["en"] + " / " + STRINGS["lang.label"]["zh"], list(LANGUAGES),
                         format_func=LANGUAGES.get, key=_KEY, required=True, label_visibility="collapsed")
    lang = st.session_state[_KEY]
    # Mirror into the URL; English is the default, so it keeps links clean by leaving ?lang= out.
    if lang == "en" and _KEY in st.query_params:
        del st.query_params[_KEY]
    elif lang != "en" and st.query_params.get(_KEY) != lang:
        st.query_params[_KEY] = lang
