"""The Attack panel of a finished image-classification run (for the Tools section): FGSM or PGD adversarial examples
on the run's validation images, an accuracy-vs-ε chart and a gallery of flipped predictions. The work and the
stored report are core.toolkit.attack's; the report is drawn again when the run is reopened."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from ui.charts import OTHER_COLOUR, VAL_COLOUR, base_layout
from ui.i18n import N_, t
from ui.resources import show_error

METHODS = {"pgd": N_("PGD: several gradient steps from a random start"), "fgsm": N_("FGSM: one gradient-sign step")}
TITLES = {"pgd": "PGD", "fgsm": "FGSM"}
COLOURS = {"pgd": VAL_COLOUR, "fgsm": OTHER_COLOUR}
FRACTIONS = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)  # the chart's ε points, as shares of the largest ε
SHOWN_WIDTH = 96  # pixels per gallery image


def eps_values(largest: float) -> list[float]:
    """The ε values (pixels of 255) a request measures: 0 (the clean accuracy) up to `largest`."""
    return sorted({round(largest * share, 2) for share in FRACTIONS})


def attack_panel(run) -> None:
    from core.toolkit.attack import attack_report, attack_run
    st.caption(t("Adversarial examples: every validation image is changed by at most ε/255 per pixel, in the "
                 "direction that raises the model's loss most. The chart shows how accuracy falls as ε grows."))
    names = {key: t(label) for key, label in METHODS.items()}
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(t("Method"), list(METHODS), key=f"attack_method-{run.id}", format_func=names.get)
    largest = c2.slider(t("Largest ε (pixels of 255)"), 1, 64, 16, key=f"attack_eps-{run.id}")
    steps = c3.number_input(t("PGD steps"), min_value=1, max_value=100, value=10, step=1,
                            key=f"attack_steps-{run.id}", disabled=method != "pgd")
    if st.button(t("Attack"), key=f"attack-{run.id}", icon=":material/bolt:"):
        try:
            with st.spinner(t("Attacking the validation images…")):
                attack_run(run.id, method=method, eps=eps_values(float(largest)), steps=int(steps))
        except Exception as exc:  # noqa: BLE001  a LabError says why in the user's words; anything else in one line
            show_error(exc)
    report = attack_report(run.id)
    if report is None:
        return
    st.plotly_chart(curve_figure(report.results), key=f"attack_chart-{run.id}", config={"displayModeBar": False})
    st.caption(t("Measured on {images} validation images with the run's {which} checkpoint; ε = 0 is the clean "
                 "accuracy.", images=report.images, which=t(report.which)))
    _gallery(run.id, report)


def curve_figure(results: dict) -> go.Figure:
    """Accuracy against ε, one line per method measured."""
    fig = go.Figure()
    for method, result in results.items():
        curve = result["curve"]
        fig.add_trace(go.Scatter(x=[row["eps"] for row in curve], y=[row["acc"] for row in curve],
                                 mode="lines+markers", name=TITLES.get(method, method),
                                 # FGSM dashed over PGD's solid line: where the two agree, both still show
                                 line={"color": COLOURS.get(method), "dash": "dash" if method == "fgsm" else "solid",
                                       "width": 2 if method == "fgsm" else 3},
                                 marker={"symbol": "diamond" if method == "fgsm" else "circle", "size": 8},
                                 hovertemplate="ε %{x:g}/255: %{y:.1%}<extra></extra>"))
    fig.update_xaxes(title_text=t("ε (pixels of 255)"))
    fig.update_yaxes(title_text=t("accuracy"), range=[0, 1.02], tickformat=".0%")
    base_layout(fig, 300)
    fig.update_layout(hovermode="closest")
    return fig


def _gallery(run_id: str, report) -> None:
    from core.toolkit.attack import gallery_path
    result = report.results.get(report.requested) or next(iter(report.results.values()))
    items = result["gallery"]
    if not items:
        st.caption(t("No prediction flipped at the largest ε."))
        return
    st.markdown("**" + t("Flipped predictions at ε = {eps}/255", eps=f"{items[0]['eps']:g}") + "**")
    captions = [t("original"), t("adversarial"), t("change, amplified")]
    columns = st.columns(2)
    for index, item in enumerate(items):
        with columns[index % 2].container(border=True):
            st.caption(t("true {true} → predicted {predicted}", true=item["true"], predicted=item["predicted"]))
            paths = [gallery_path(run_id, item[kind]) for kind in ("original", "adversarial", "perturbation")]
            if all(path.is_file() for path in paths):
                st.image([str(path) for path in paths], caption=captions, width=SHOWN_WIDTH)
