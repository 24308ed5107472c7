"""The Concepts page's parts: the explorer (search, area filter, concept map, cards) and one concept's view.

Which concept is open lives in the URL (`?concept=<id>`), so every concept has a link of its own.
"""

from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from core.concepts import AREAS, RELATION_KINDS, SECTIONS, CatalogueError, Concept, list_concepts, search
from core.concepts.graph import concept_map, map_label, wrap_label
from ui.i18n import N_, t
from ui.resources import TRAIN_PAGE, status_badge, store

CONCEPTS_PAGE = "app_pages/concepts.py"
# Names of a concept's sections and of the relations between concepts, read from either end (translated
# where drawn): "cnn" is the basis of "resnet" when resnet builds on cnn.
SECTION_TITLES = {"problem": N_("The problem it solves"), "how": N_("How it works"),
                  "when": N_("When to use it"), "failure": N_("Failure modes and pitfalls")}
RELATION_NAMES = {"builds_on": N_("builds on"), "is_a": N_("is a kind of"), "used_in": N_("is used in")}
RELATION_NAMES_REVERSED = {"builds_on": N_("is the basis of"), "is_a": N_("includes"), "used_in": N_("uses")}
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
        st.title(t("Concepts"))
        problem = t("The concept catalogue has a problem:")
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
    st.title(t("Concepts"))
    st.caption(t("The ideas behind modern deep learning: what each solves, how it works, and a small demo to play "
                 "with. Where the lab has a preset, train it and watch it learn."))
    query_col, area_col = st.columns([3, 1], vertical_alignment="bottom")
    # persist_state="page": the search and the filter survive a visit to a concept and back
    query = query_col.text_input(t("Search"),
                                 placeholder=t("Search, e.g. attention, residual, GAN"),
                                 key="concepts_query",
                                 label_visibility="collapsed", persist_state="page")
    areas = [None] + [area for area in AREAS if any(c.area == area for c in concepts)]
    all_areas = t("All areas")  # translated now: format_func may run outside the page run
    area = area_col.selectbox(t("Area"), areas, key="concepts_area", label_visibility="collapsed",
                              format_func=lambda a: all_areas if a is None else AREAS[a][lang],
                              persist_state="page")
    matches = search(query, lang, area, concepts) if (query.strip() or area) else list(concepts)

    st.subheader(t("Concept map"), anchor=False)
    st.caption(t("Click a concept to open it. Lines show how ideas build on each other; a link implied by a chain "
                 "of others is left out (each concept's page lists them all)."))
    event = st.plotly_chart(map_figure(concepts, {c.id for c in matches}, lang), key="concept_map",
                            on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    ids = {c.id for c in concepts}
    picked = [p.get("customdata") for p in (event.selection.points if event else []) if p.get("customdata") in ids]
    if picked:  # a click on a node opens it, as its link would (the URL changes; Back returns here)
        st.switch_page(CONCEPTS_PAGE, query_params={"concept": picked[0]} | ({"lang": lang} if lang != "en" else {}))

    st.caption(t("{n} concepts", n=len(matches)))
    if not matches:
        st.info(t("No concept matches that search."))
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
            concept_button(concept, lang, t("Open"), f"open.{concept.id}", ":material/arrow_forward:")


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
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=t(RELATION_NAMES[kind]), hoverinfo="skip",
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
    st.button(t("All concepts"), icon=":material/arrow_back:", type="tertiary",
              on_click=lambda: st.query_params.pop("concept", None))
    st.title(concept.title[lang], anchor=False)
    st.markdown(area_badge(concept.area, lang))
    st.markdown(f"#### {concept.summary[lang]}")

    text_col, side_col = st.columns([3, 2], gap="large")
    with text_col:
        for name in SECTIONS:
            st.subheader(t(SECTION_TITLES[name]), anchor=False)
            st.markdown(section_text(concept, name, lang))
    with side_col:
        _train_links(concept, lang)
        _try_on_run(concept, lang)
        _related(concept, concepts, lang)
        _references(concept)
        _runs(concept, lang)
    _formulas(concept, lang)  # full width: a third of them are wider than the text column

    if concept.demo:
        from ui.concept_demos import render_demo
        st.divider()
        st.subheader(t("Try it: {demo}", demo=demo_title(concept.demo)), anchor=False)
        render_demo(concept.demo, lang, concept.presets)


# What each demo is called on the page; the catalogue files name demos by id (core.concepts.demos.DEMO_IDS).
DEMO_TITLES = {"conv_kernel": N_("Convolution kernels"), "activations": N_("Activation functions"),
               "optimizer_race": N_("Optimiser race"), "residual_gradients": N_("Gradients with and without shortcuts"),
               "self_attention": N_("Self-attention weights"), "gan_2d": N_("Two-dimensional GAN"),
               "policy_gradient": N_("Policy gradient in a corridor"),
               "seq2seq_attention": N_("Attention map of your trained run"),
               "text_attributions": N_("Which words decide the class")}


def demo_title(demo_id: str) -> str:
    return t(DEMO_TITLES.get(demo_id, demo_id))


def section_text(concept: Concept, name: str, lang: str) -> str:
    """A section's Markdown as shown: the catalogue names a demo by its id (`conv_kernel`), the page by its title.
    Chinese sets the quotes without spaces around them: "演示 `conv_kernel` 把" becomes "演示“卷积核”把"."""
    ids = "|".join(re.escape(demo_id) for demo_id in DEMO_TITLES)
    pattern = rf"`({ids})`" if lang == "en" else rf" ?`({ids})` ?"
    return re.sub(pattern, lambda match: f"“{demo_title(match.group(1))}”", concept.section(name, lang))


def _formulas(concept: Concept, lang: str) -> None:
    with st.container(border=True):
        st.markdown("**" + t("Formulas") + "**")
        for formula in concept.formulas:
            st.latex(formula.latex)
            st.caption(formula.caption[lang])


def _train_links(concept: Concept, lang: str) -> None:
    from core.presets import PRESETS, preset_description
    available = [name for name in concept.presets if name in PRESETS]  # others may not exist yet
    if not available and concept.tools:  # "Try it on your run" below says what to train
        return
    st.markdown("**" + t("Train it in the lab") + "**")
    if not available:
        st.caption(t("No preset trains this idea yet."))
    for name in available:
        st.page_link(TRAIN_PAGE, label=t("Train this: {preset}", preset=name),
                     icon=":material/play_arrow:",
                     query_params={"preset": name}, help=t(preset_description(name)))


# Where each tool is (core.concepts.TOOLS), as the "Try it on your run" box says it.
TOOL_PLACES = {
    "attack": N_("**Tools → Attack** on a finished run's page: FGSM or PGD on its validation images, its accuracy as ε "
                 "grows, and a gallery of flipped predictions."),
    "explain": N_("**Tools → What the layers see** on a finished run's page: its filters and feature maps. On the "
                  "Media page, **Explain each prediction** draws heat maps (Grad-CAM, integrated gradients) over a "
                  "picture."),
    "finetune": N_("**Tools → Fine-tune from this run** on a finished run's page: the Train form, ready to start a new "
                   "run from its weights, with LoRA adapters when you set a rank."),
    "compress": N_("**Tools → Compress** on a finished run's page: int8 quantisation and pruning, each measured for "
                   "size, CPU latency and accuracy."),
    "export": N_("**Tools → Export** on a finished run's page: ONNX, torch.export or safetensors, or a zip with a "
                 "predict.py that runs without the lab."),
    "adversarial-training": N_("**Adversarial training** among an image classifier's task options on the Train form: "
                               "FGSM or PGD examples made from each batch, and the robust accuracy logged every "
                               "epoch."),
    "distill": N_("The **distillation** family on the Train form: a small student learns from the softened outputs of "
                  "a finished run, its teacher."),
}


def _try_on_run(concept: Concept, lang: str) -> None:
    """Where the lab lets the reader try this idea: a finished run to open (its page has the Tools section) or a
    preset to train, and the same from a terminal (core.concepts.TOOLS)."""
    from core.concepts import TOOLS, finished_runs
    from core.presets import PRESETS, preset_description
    if not concept.tools:
        return
    tools = [TOOLS[name] for name in concept.tools]
    with st.container(border=True):
        st.markdown("**" + t("Try it on your run") + "**")
        st.markdown("\n".join(f"- {t(TOOL_PLACES[tool.id])}" for tool in tools))
        runs = {run.id: run.name for run in finished_runs(store())} if any(tool.needs_run for tool in tools) else {}
        run_id = None
        if runs:
            run_id = st.selectbox(t("Your finished image-classification run"), list(runs), key=f"tool_run.{concept.id}",
                                  format_func=lambda key: f"{runs.get(key, key)} · {key}")
            if any(tool.on_run_page for tool in tools):
                st.page_link(TRAIN_PAGE, label=t("Open {run} at its Tools", run=runs[run_id]),
                             icon=":material/build:", query_params={"run": run_id})
        elif any(tool.needs_run for tool in tools):
            st.caption(t("No finished image-classification run yet: train one, then come back here."))
        for name in (name for name in concept.tool_presets(bool(runs)) if name in PRESETS):
            st.page_link(TRAIN_PAGE, label=t("Train this: {preset}", preset=name), icon=":material/play_arrow:",
                         query_params={"preset": name}, help=t(preset_description(name)))
        st.caption(t("From a terminal:"))
        st.code("\n".join(tool.command_for(run_id) for tool in tools), language="bash", wrap_lines=True)


def _related(concept: Concept, concepts: tuple[Concept, ...], lang: str) -> None:
    """Relations this file names, and those other files name towards it, read from this end."""
    by_id = {c.id: c for c in concepts}
    links = [(t(RELATION_NAMES[r.kind]), by_id[r.id]) for r in concept.related if r.id in by_id]
    named = {r.id for r in concept.related}
    links += [(t(RELATION_NAMES_REVERSED[r.kind]), other) for other in concepts for r in other.related
              if r.id == concept.id and other.id not in named]
    if links:
        st.markdown("**" + t("Related concepts") + "**")
        for label, other in links:
            concept_button(other, lang, f"{label} · {map_label(other.title[lang])}", f"related.{other.id}",
                           ":material/link:")


def _references(concept: Concept) -> None:
    if not concept.references:
        return
    st.markdown("**" + t("References") + "**")
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
    st.markdown("**" + t("Your runs of this concept") + "**")
    runs = store().list_runs()
    if not runs.empty:
        # A run made from a preset is named after it; users often add a suffix ("digits-cnn-wide").
        runs = runs[runs.name.map(lambda name: any(str(name).startswith(p) for p in concept.presets))]
    if runs.empty:
        st.caption(t("No runs yet. Start one with a button above."))
        return
    details = store().get_runs()
    for row in runs.head(20).itertuples():
        st.page_link(TRAIN_PAGE, label=row.name, icon=":material/open_in_new:", query_params={"run": row.id})
        st.caption(status_badge(row.status) + " · " + _best(details[row.id].summary if row.id in details else {})
                   + f" · `{row.id}`")


def _best(summary: dict) -> str:
    """The run's best watched metric in words: accuracy as a percentage, anything else as a number."""
    from core.store.records import metric_title
    metric = summary.get("best_metric") or "val_acc"
    value = summary.get(f"best_{metric}")
    if metric == "val_acc":
        return t("best val. accuracy {value}", value="–" if value is None else f"{value:.1%}")
    shown = "–" if not isinstance(value, (int, float)) else f"{value:.1%}" if metric == "val_exact" else f"{value:.4g}"
    return t("best {metric}", metric=t(metric_title(metric))) + f" {shown}"
