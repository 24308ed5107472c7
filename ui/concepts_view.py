"""The Concepts page's parts: the explorer (search, area filter, concept map, cards) and one concept's view.

Which concept is open lives in the URL (`?concept=<id>`), so every concept has a link of its own.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.concepts import AREAS, RELATION_KINDS, SECTIONS, CatalogueError, Concept, list_concepts, search
from core.concepts.graph import concept_map, map_label, wrap_label
from ui.i18n import tr
from ui.resources import TRAIN_PAGE, status_badge, store

CONCEPTS_PAGE = "app_pages/concepts.py"
# (English, 中文) names of a concept's sections and of the relations between concepts, read from either end:
# "cnn" is the basis of "resnet" when resnet builds on cnn.
SECTION_TITLES = {"problem": ("The problem it solves", "它解决什么问题"), "how": ("How it works", "它如何工作"),
                  "when": ("When to use it", "何时使用"), "failure": ("Failure modes and pitfalls", "常见失败与陷阱")}
RELATION_NAMES = {"builds_on": ("builds on", "基于"), "is_a": ("is a kind of", "属于"),
                  "used_in": ("is used in", "用于")}
RELATION_NAMES_REVERSED = {"builds_on": ("is the basis of", "后续发展"), "is_a": ("includes", "包括"),
                           "used_in": ("uses", "使用")}
# Each area's colour on the map, and the Streamlit badge colour nearest to it for the cards.
AREA_COLOURS = {"foundations": ("#3b82f6", "blue"), "training": ("#8b5cf6", "violet"),
                "architectures": ("#10b981", "green"), "sequences": ("#f59e0b", "orange"),
                "generative": ("#ef4444", "red"), "reinforcement": ("#ca8a04", "yellow"),
                "practice": ("#64748b", "gray"), "applications": ("#4f46e5", "primary")}
# Colour and dash both tell the relation apart, so the map also reads in greyscale.
KIND_STYLES = {"builds_on": ("#6366f1", "solid"), "is_a": ("#f97316", "dash"), "used_in": ("#14b8a6", "dot")}


def load_catalogue() -> tuple[Concept, ...] | None:
    """The catalogue, or None after showing what is wrong with it (a broken file must not take the
    page down with a traceback)."""
    try:
        return list_concepts()
    except CatalogueError as exc:
        st.title(tr("Concepts", "概念"))
        problem = tr("The concept catalogue has a problem:", "概念目录有问题：")
        st.error(f"{problem}\n\n```\n{exc}\n```", icon=":material/error:")
        return None


def _open(concept_id: str) -> None:
    st.query_params["concept"] = concept_id  # keeps ?lang=; the address bar follows


def concept_button(concept: Concept, lang: str, label: str, key: str, icon: str) -> None:
    """Opens a concept on this page. A button with a callback, not st.page_link: a page_link to the page
    already shown runs it without updating the address bar (Streamlit 1.67), so the link would not be
    shareable and a reload would go back to the previous view."""
    st.button(label, key=key, icon=icon, type="tertiary", on_click=_open, args=(concept.id,),
              help=concept.title[lang])  # the full title, where the label is short


# ---- the explorer -----------------------------------------------------------------------------------

def render_explorer(concepts: tuple[Concept, ...], lang: str) -> None:
    st.title(tr("Concepts", "概念"))
    st.caption(tr("The ideas behind modern deep learning: what each solves, how it works, and a small demo to play "
                  "with. Where the lab has a preset, train it and watch it learn.",
                  "现代深度学习背后的思想：各自解决什么问题、如何工作，并附一个可以动手的小演示。"
                  "实验室有对应预设时，可以直接训练并观察它学习。"))
    query_col, area_col = st.columns([3, 1], vertical_alignment="bottom")
    # persist_state="page": the search and the filter survive a visit to a concept and back
    query = query_col.text_input(tr("Search", "搜索"),
                                 placeholder=tr("Search, e.g. attention, residual, GAN", "搜索，例如：注意力、残差、GAN"),
                                 key="concepts_query",
                                 label_visibility="collapsed", persist_state="page")
    areas = [None] + [area for area in AREAS if any(c.area == area for c in concepts)]
    area = area_col.selectbox(tr("Area", "领域"), areas, key="concepts_area", label_visibility="collapsed",
                              format_func=lambda a: tr("All areas", "全部领域") if a is None else AREAS[a][lang],
                              persist_state="page")
    matches = search(query, lang, area, concepts) if (query.strip() or area) else list(concepts)

    st.subheader(tr("Concept map", "概念地图"), anchor=False)
    st.caption(tr("Click a concept to open it. Lines show how ideas build on each other; a link implied by a chain "
                  "of others is left out (each concept's page lists them all).",
                  "点击一个概念即可打开。连线表示概念之间如何相互构建；能由其他连线推出的关系不再单独画出"
                  "（每个概念的页面会列出全部关系）。"))
    event = st.plotly_chart(map_figure(concepts, {c.id for c in matches}, lang), key="concept_map",
                            on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    ids = {c.id for c in concepts}
    picked = [p.get("customdata") for p in (event.selection.points if event else []) if p.get("customdata") in ids]
    if picked:  # a click on a node opens it, as its link would (the URL changes; Back returns here)
        st.switch_page(CONCEPTS_PAGE, query_params={"concept": picked[0]} | ({"lang": lang} if lang != "en" else {}))

    st.caption(tr("{n} concepts", "{n} 个概念", n=len(matches)))
    if not matches:
        st.info(tr("No concept matches that search.", "没有与搜索匹配的概念。"))
    elif query.strip():  # best match first
        _cards(matches, lang)
    else:  # the whole catalogue (or one area), in course order under area headings
        for area_id in AREAS:
            group = [c for c in matches if c.area == area_id]
            if group:
                st.subheader(AREAS[area_id][lang], anchor=False)
                _cards(group, lang)


def _cards(concepts: list[Concept], lang: str) -> None:
    columns = st.columns(3)
    for i, concept in enumerate(concepts):
        with columns[i % 3].container(border=True):
            # one markdown, not three: 26 cards are a lot of elements for the browser to draw on a page switch
            st.markdown(f"{area_badge(concept.area, lang)}\n\n**{concept.title[lang]}**\n\n:gray[{concept.summary[lang]}]")
            concept_button(concept, lang, tr("Open", "打开"), f"open.{concept.id}", ":material/arrow_forward:")


def area_badge(area: str, lang: str) -> str:
    return f":{AREA_COLOURS[area][1]}-badge[{AREAS[area][lang]}]"


def map_figure(concepts: tuple[Concept, ...], highlighted: set[str], lang: str) -> go.Figure:
    layout = concept_map(concepts)
    by_id = {c.id: c for c in concepts}
    fig = go.Figure()
    for kind in RELATION_KINDS:  # one trace per kind: one legend entry each, lines broken by None
        xs, ys = [], []
        for edge in (e for e in layout.edges if e.kind == kind):
            curve_x, curve_y = layout.curve(edge)
            xs += [*curve_x, None]
            ys += [*curve_y, None]
        colour, dash = KIND_STYLES[kind]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=tr(*RELATION_NAMES[kind]), hoverinfo="skip",
                                 line=dict(color=colour, width=1.4, dash=dash), opacity=0.6))
    nodes = layout.nodes
    fig.add_trace(go.Scatter(
        x=[n.x for n in nodes], y=[n.y for n in nodes], mode="markers", showlegend=False,
        customdata=[n.id for n in nodes], hovertemplate="%{hovertext}<extra></extra>",
        hovertext=[f"<b>{by_id[n.id].title[lang]}</b><br>{wrap_label(by_id[n.id].summary[lang], 50)}"
                   for n in nodes],
        marker=dict(size=[20 if n.id in highlighted else 12 for n in nodes],
                    color=[AREA_COLOURS[n.area][0] for n in nodes],
                    opacity=[1.0 if n.id in highlighted else 0.3 for n in nodes],
                    line=dict(color="white", width=1.5))))
    # Labels as annotations: they take a white backing, so the lines behind them do not cross the words.
    # Set as one list: add_annotation re-validates every earlier label each time (0.8 s for 34 labels).
    top, bottom = max((n.y for n in nodes), default=0), min((n.y for n in nodes), default=0)
    labels = [dict(x=n.x, y=n.y, text=wrap_label(map_label(by_id[n.id].title[lang]), 16), showarrow=False,
                   yanchor="top", yshift=-11, font=dict(size=11, color="#1f2333"), bgcolor="rgba(255,255,255,0.8)",
                   opacity=1.0 if n.id in highlighted else 0.45) for n in nodes]
    labels += [dict(x=x, y=top + 0.75, text=f"<b>{wrap_label(AREAS[area][lang], 13)}</b>", showarrow=False,
                    font=dict(color=AREA_COLOURS[area][0], size=12)) for area, x in layout.columns]
    fig.update_layout(annotations=labels)
    rows = top - bottom + 1
    fig.update_layout(height=int(170 + 100 * rows), margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
                      dragmode=False, plot_bgcolor="rgba(0,0,0,0)",
                      legend=dict(orientation="h", yanchor="top", y=-0.01, x=0))
    fig.update_xaxes(visible=False, range=[-0.6, len(layout.columns) - 0.4])
    fig.update_yaxes(visible=False, range=[bottom - 0.9, top + 1.0])
    return fig


# ---- one concept ------------------------------------------------------------------------------------

def render_concept(concept: Concept, concepts: tuple[Concept, ...], lang: str) -> None:
    # A button for the reason given in concept_button.
    st.button(tr("All concepts", "全部概念"), icon=":material/arrow_back:", type="tertiary",
              on_click=lambda: st.query_params.pop("concept", None))
    st.title(concept.title[lang], anchor=False)
    st.markdown(area_badge(concept.area, lang))
    st.markdown(f"#### {concept.summary[lang]}")

    text_col, side_col = st.columns([3, 2], gap="large")
    with text_col:
        for name in SECTIONS:
            st.subheader(tr(*SECTION_TITLES[name]), anchor=False)
            st.markdown(concept.section(name, lang))
    with side_col:
        _train_links(concept, lang)
        _related(concept, concepts, lang)
        _references(concept)
        _runs(concept, lang)
    _formulas(concept, lang)  # full width: a third of them are wider than the text column

    if concept.demo:
        from ui.concept_demos import render_demo
        st.divider()
        st.subheader(tr("Try it", "动手试试"), anchor=False)
        render_demo(concept.demo, lang)


def _formulas(concept: Concept, lang: str) -> None:
    with st.container(border=True):
        st.markdown("**" + tr("Formulas", "公式") + "**")
        for formula in concept.formulas:
            st.latex(formula.latex)
            st.caption(formula.caption[lang])


def _train_links(concept: Concept, lang: str) -> None:
    from core.presets import PRESETS, preset_description
    st.markdown("**" + tr("Train it in the lab", "在实验室中训练") + "**")
    available = [name for name in concept.presets if name in PRESETS]  # others may not exist yet
    if not available:
        st.caption(tr("No preset trains this idea yet.", "暂时还没有训练这个概念的预设。"))
    for name in available:
        st.page_link(TRAIN_PAGE, label=tr("Train this: {preset}", "训练：{preset}", preset=name),
                     icon=":material/play_arrow:",
                     query_params={"preset": name}, help=preset_description(name))


def _related(concept: Concept, concepts: tuple[Concept, ...], lang: str) -> None:
    """Relations this file names, and those other files name towards it, read from this end."""
    by_id = {c.id: c for c in concepts}
    links = [(tr(*RELATION_NAMES[r.kind]), by_id[r.id]) for r in concept.related if r.id in by_id]
    named = {r.id for r in concept.related}
    links += [(tr(*RELATION_NAMES_REVERSED[r.kind]), other) for other in concepts for r in other.related
              if r.id == concept.id and other.id not in named]
    if links:
        st.markdown("**" + tr("Related concepts", "相关概念") + "**")
        for label, other in links:
            concept_button(other, lang, f"{label} · {map_label(other.title[lang])}", f"related.{other.id}",
                           ":material/link:")


def _references(concept: Concept) -> None:
    if not concept.references:
        return
    st.markdown("**" + tr("References", "参考文献") + "**")
    lines = []
    for reference in concept.references:
        text = reference.citation().replace("$", "\\$")  # a "$" would start LaTeX in Markdown
        lines.append(f"- {text}" + (f" [{_link_label(reference.url)}]({reference.url})" if reference.url else ""))
    st.markdown("\n".join(lines))


def _link_label(url: str) -> str:
    host = url.split("//", 1)[-1].split("/", 1)[0].removeprefix("www.")
    return f"{host} ↗"


def _runs(concept: Concept, lang: str) -> None:
    if not concept.presets:  # nothing to train, so nothing to find
        return
    st.markdown("**" + tr("Your runs of this concept", "你在这个概念上的训练") + "**")
    runs = store().list_runs()
    if not runs.empty:
        # A run made from a preset is named after it; users often add a suffix ("digits-cnn-wide").
        runs = runs[runs.name.map(lambda name: any(str(name).startswith(p) for p in concept.presets))]
    if runs.empty:
        st.caption(tr("No runs yet. Start one with a button above.", "还没有训练记录。用上面的按钮开始一次。"))
        return
    for row in runs.head(20).itertuples():
        st.page_link(TRAIN_PAGE, label=row.name, icon=":material/open_in_new:", query_params={"run": row.id})
        best = "–" if row.best_val_acc != row.best_val_acc else f"{row.best_val_acc:.1%}"
        st.caption(status_badge(row.status) + " · " + tr("best val. accuracy {value}", "最佳验证准确率 {value}", value=best)
                   + f" · `{row.id}`")
