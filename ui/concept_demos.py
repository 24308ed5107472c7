"""The concept demos on the page: controls, a cached call into core.concepts.demos, and a Plotly chart.

Results are cached per argument set (st.cache_data), so moving back to a setting is instant and every
session shares one computation. Widget keys are prefixed "demo." and are unique per demo.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.analysis.series import moving_average
from core.concepts import demos
from core.errors import LabError
from ui.i18n import N_, t, t_core

# Names shown for the demos' internal ids: proper names stay as they are written, words are translated.
KERNEL_NAMES = {"identity": N_("identity"), "edge": N_("edges (Laplacian)"), "sobel-x": N_("Sobel-x (vertical edges)"),
                "sobel-y": N_("Sobel-y (horizontal edges)"), "blur": N_("blur"), "sharpen": N_("sharpen")}
OPTIMIZER_NAMES = {"sgd": N_("SGD"), "momentum": N_("SGD with momentum"), "nesterov": N_("Nesterov momentum"),
                   "rmsprop": N_("RMSProp"), "adam": N_("Adam"), "adamw": N_("AdamW")}
# Function names are the same in every language.
ACTIVATION_NAMES = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "Leaky ReLU", "gelu": "GELU",
                    "silu": "SiLU"}
OPTIMIZER_COLOURS = {"sgd": "#64748b", "momentum": "#0ea5e9", "nesterov": "#10b981", "rmsprop": "#f59e0b",
                     "adam": "#ef4444", "adamw": "#8b5cf6"}


def render_demo(demo_id: str, lang: str, presets: tuple[str, ...] = ()) -> None:
    """Draws the demo; `presets` (the concept's) are what a demo that needs a trained run offers to train."""
    renderers = {"conv_kernel": _conv, "activations": _activations, "optimizer_race": _race,
                 "residual_gradients": _residual, "self_attention": _attention, "gan_2d": _gan,
                 "policy_gradient": _policy}
    run_renderers = {"seq2seq_attention": _seq2seq_attention, "text_attributions": _text_attributions}
    try:
        if demo_id in run_renderers:
            run_renderers[demo_id](lang, presets)
        else:
            renderers[demo_id](lang)
    except Exception as exc:  # a demo bug must not hide the rest of the concept
        st.error(t("The demo could not run:") + f" {type(exc).__name__}: {str(exc)[:200]}",
                 icon=":material/error:")


def _figure(fig: go.Figure, height: int) -> None:
    # Subplot titles are annotations above each panel: the legend then goes a row higher.
    titled = bool(fig.layout.annotations)
    legend = dict(orientation="h", x=0) | (dict(yref="container", yanchor="top", y=0.995) if titled
                                           else dict(yanchor="bottom", y=1.02))
    fig.update_layout(height=height + (40 if titled else 0), margin=dict(l=10, r=10, t=80 if titled else 40, b=10),
                      legend=legend)
    st.plotly_chart(fig, config={"displayModeBar": False})


# ---- convolution ------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _conv_result(image_name: str, kernel: str) -> dict:
    return demos.conv_kernel(demos.sample_image(image_name), kernel)


def _conv(lang: str) -> None:
    left, right = st.columns(2)
    # options' names are translated here, not in format_func, which may be called outside the page run
    images = {"shapes": t("Shapes"), "digit": t("Digit")}
    image = left.segmented_control(t("Image"), list(images), default="shapes", required=True, key="demo.conv.image",
                                   format_func=images.get)
    kernels = {name: t(KERNEL_NAMES[name]) for name in demos.KERNELS}
    kernel = right.selectbox(t("Kernel"), list(kernels), index=2, key="demo.conv.kernel", format_func=kernels.get)
    result = _conv_result(image, kernel)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.4, 0.2, 0.4], horizontal_spacing=0.06,
                        subplot_titles=(t("Input"), t("Kernel (3x3)"), t("Feature map")))
    fig.add_trace(go.Heatmap(z=result["image"], colorscale="gray", showscale=False), row=1, col=1)
    k = result["kernel"]
    limit = float(np.abs(result["feature_map"]).max()) or 1.0
    # reversed RdBu: red positive, blue negative, white zero (as the caption says)
    fig.add_trace(go.Heatmap(z=k, colorscale="RdBu", reversescale=True, zmid=0, showscale=False,
                             text=np.round(k, 2), texttemplate="%{text}"), row=1, col=2)
    fig.add_trace(go.Heatmap(z=result["feature_map"], colorscale="RdBu", reversescale=True, zmin=-limit, zmax=limit,
                             colorbar=dict(len=0.8, thickness=12)), row=1, col=3)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    for col in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{col}", row=1, col=col)
    _figure(fig, 360)
    st.caption(t("Each output pixel is the kernel's dot product with the 3x3 window around it (zero padding). "
                 "Red is positive, blue negative: Sobel-x fires on vertical edges, with opposite signs on the "
                 "two sides; the Laplacian fires on outlines; blur averages. A CNN learns such kernels instead "
                 "of being given them."))


# ---- activations ------------------------------------------------------------------------------------

def _activations(lang: str) -> None:
    names = st.pills(t("Functions"), list(demos.ACTIVATIONS), selection_mode="multi",
                     format_func=lambda n: ACTIVATION_NAMES.get(n, n),
                     default=["sigmoid", "tanh", "relu", "gelu"], key="demo.act.names")
    x = np.linspace(-5, 5, 401)
    result = demos.activations(names or ["relu"], x)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("f(x)"), t("f'(x): the gradient factor")))
    colours = ["#4f46e5", "#f97316", "#10b981", "#ef4444", "#0ea5e9", "#8b5cf6"]
    for i, (name, curves) in enumerate(result.items()):
        colour = colours[demos.ACTIVATIONS.index(name) % len(colours)]
        shown = ACTIVATION_NAMES.get(name, name)
        fig.add_trace(go.Scatter(x=x, y=curves["value"], name=shown, line=dict(color=colour), legendgroup=name),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=curves["derivative"], name=shown, line=dict(color=colour),
                                 legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_layout(hovermode="x unified")
    _figure(fig, 340)
    st.caption(t("The right panel is what backpropagation multiplies by at each layer. Sigmoid's slope is at "
                 "most 0.25, so ten stacked sigmoids shrink a gradient at least a million-fold; ReLU passes it "
                 "unchanged where the unit is active, and zero where it is not (a unit that is never active "
                 "is 'dead'). GELU and SiLU are smooth versions used in Transformers."))


# ---- optimiser race ---------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _race_result(surface: str, steps: int, lr_scale: float) -> dict:
    return demos.optimizer_race(surface, steps, lr_scale)


def _race(lang: str) -> None:
    names = {"rosenbrock": t("Rosenbrock valley"), "ravine": t("Narrow ravine"), "saddle": t("Saddle point")}
    a, b, c = st.columns(3)
    surface = a.selectbox(t("Loss surface"), list(demos.SURFACES), format_func=names.get,
                          key="demo.race.surface")
    steps = b.select_slider(t("Steps"), [100, 200, 400, 800], value=400, key="demo.race.steps")
    scale = c.select_slider(t("Learning-rate multiplier"), [0.25, 0.5, 1.0, 2.0, 4.0], value=1.0,
                            key="demo.race.lr", format_func=lambda v: f"×{v:g}")
    result = _race_result(surface, steps, scale)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.08,
                        subplot_titles=(t("Paths on the loss surface"), t("Loss per step")))
    z = result["z"]
    fig.add_trace(go.Contour(x=result["x"], y=result["y"], z=np.log1p(z - z.min()), showscale=False, ncontours=25,
                             colorscale="Blues", reversescale=True, hoverinfo="skip", opacity=0.8), row=1, col=1)
    for name, path in result["paths"].items():
        colour = OPTIMIZER_COLOURS[name]
        label = t("{optimizer} (lr {lr})", optimizer=t(OPTIMIZER_NAMES[name]),
                  lr=f"{result['lr'][name]:.2g}")
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines", name=label, legendgroup=name,
                                 line=dict(color=colour, width=2)), row=1, col=1)
        losses = result["losses"][name] - z.min() + 1e-12  # distance to the surface's minimum value
        fig.add_trace(go.Scatter(y=losses, mode="lines", name=label, legendgroup=name, showlegend=False,
                                 line=dict(color=colour, width=2)), row=1, col=2)
    minima = np.array(result["minima"])
    fig.add_trace(go.Scatter(x=minima[:, 0], y=minima[:, 1], mode="markers", name=t("minimum"),
                             marker=dict(symbol="star", size=14, color="#111827")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[result["start"][0]], y=[result["start"][1]], mode="markers", showlegend=False,
                             marker=dict(size=10, color="#111827", symbol="circle-open")), row=1, col=1)
    fig.update_xaxes(range=[result["x"][0], result["x"][-1]], row=1, col=1)
    fig.update_yaxes(range=[result["y"][0], result["y"][-1]], row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="e", title_text=t("loss − minimum"), row=1, col=2)
    fig.update_xaxes(title_text=t("step"), row=1, col=2)
    _figure(fig, 460)
    if result["diverged"]:
        st.warning(t("Diverged at this rate: {optimizers}",
                     optimizers=", ".join(t(OPTIMIZER_NAMES[n]) for n in result["diverged"])))
    st.caption(t("Our own update rules, written out in core/concepts/optim_race.py and checked step for step "
                 "against torch.optim. Each optimiser starts at the circle with a rate tuned for this surface; "
                 "the multiplier scales all of them. Momentum carries speed along the valley floor, Adam and "
                 "RMSProp rescale each coordinate by its gradient's size, and plain SGD must keep its rate "
                 "small enough for the steepest direction."))


# ---- residual connections ---------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _residual_result(depth: int, activation: str) -> dict:
    return demos.residual_gradients(depth=depth, activation=activation)


def _residual(lang: str) -> None:
    left, right = st.columns(2)
    depth = left.slider(t("Depth (layers)"), 5, 100, 50, step=5, key="demo.res.depth")
    activation = right.segmented_control(t("Activation"), ["tanh", "relu"], default="tanh", required=True,
                                         format_func=ACTIVATION_NAMES.get, key="demo.res.act")
    result = _residual_result(depth, activation)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result["layer"], y=result["plain"], name=t("plain: h ← f(Wh + b)"),
                             mode="lines+markers", line=dict(color="#ef4444")))
    fig.add_trace(go.Scatter(x=result["layer"], y=result["residual"],
                             name=t("residual: h ← h + f(Wh + b)"),
                             mode="lines+markers", line=dict(color="#10b981")))
    fig.update_yaxes(type="log", exponentformat="e", title_text=t("gradient norm of W"))
    fig.update_xaxes(title_text=t("layer (1 = next to the input)"))
    _figure(fig, 360)
    st.caption(t("One batch through an untrained MLP, width 64, PyTorch's default initialisation, no "
                 "normalisation; the same weights with and without shortcuts. Without them the gradient "
                 "reaching the early layers shrinks by a constant factor per layer, so they barely learn. "
                 "With ReLU and no normalisation the residual stack grows instead: real ResNets add batch "
                 "normalisation to keep it in range."))


# ---- self-attention ---------------------------------------------------------------------------------

def _attention(lang: str) -> None:
    default = t("The cat sat on the mat because it was tired")
    sentence = st.text_input(t("Sentence"), default, max_chars=200, key=f"demo.att.sentence.{lang}")
    left, right = st.columns(2)
    causal = left.toggle(t("Causal mask (GPT: no looking ahead)"), key="demo.att.causal")
    sharpness = right.slider(t("Sharpness (scale of W_q)"), 0.5, 8.0, 4.0, 0.5, key="demo.att.sharpness")
    result = demos.self_attention(sentence, causal=causal, sharpness=sharpness)
    tokens = result["tokens"]
    positions = list(range(len(tokens)))  # numeric axes: a repeated word must keep its own row
    fig = go.Figure(go.Heatmap(z=result["weights"], x=positions, y=positions, colorscale="Purples", zmin=0,
                               text=np.round(result["weights"], 2), texttemplate="%{text}" if len(tokens) <= 14 else "",
                               hovertemplate=t("query %{y} → key %{x}: %{z:.2f}")
                               + "<extra></extra>", colorbar=dict(thickness=12)))
    fig.update_xaxes(tickvals=positions, ticktext=tokens, side="top", title_text=t("key"))
    fig.update_yaxes(tickvals=positions, ticktext=tokens, autorange="reversed", title_text=t("query"))
    _figure(fig, 160 + 32 * len(tokens))
    st.caption(t("Each row is one token's weights over all tokens: softmax(QKᵀ/√d). Honest caveat: nothing here "
                 "is trained. Token vectors are hashed character trigrams plus sinusoidal positions, and W_q, W_k "
                 "are random (seeded), so the pattern reflects spelling and distance, not meaning; a trained "
                 "head learns which words should attend to which. The computation is exactly a Transformer's."))


# ---- a GAN in 2-D -----------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
def _gan_result(steps: int, seed: int) -> dict:
    return demos.gan_2d(steps=steps, seed=seed)


def _gan(lang: str) -> None:
    left, right = st.columns(2)
    steps = left.select_slider(t("Training steps"), [250, 500, 1000], value=500, key="demo.gan.steps")
    seed = right.number_input(t("Seed"), 0, 99, 0, key="demo.gan.seed")
    with st.spinner(t("Training a small GAN…")):
        result = _gan_result(steps, int(seed))
    snapshots = result["checkpoints"]
    titles = [t("step {s}: {m}/8 modes", s=c["step"], m=c["modes_covered"]) for c in snapshots]
    fig = make_subplots(rows=1, cols=len(snapshots), subplot_titles=titles, horizontal_spacing=0.02)
    real = result["real"]
    for i, snapshot in enumerate(snapshots, start=1):
        fig.add_trace(go.Scatter(x=real[:, 0], y=real[:, 1], mode="markers", name=t("real"),
                                 marker=dict(size=3, color="#cbd5e1"), showlegend=i == 1, legendgroup="real"),
                      row=1, col=i)
        fake = snapshot["samples"]
        fig.add_trace(go.Scatter(x=fake[:, 0], y=fake[:, 1], mode="markers", name=t("generated"),
                                 marker=dict(size=3, color="#ec4899"), showlegend=i == 1, legendgroup="fake"),
                      row=1, col=i)
        fig.update_xaxes(range=[-3, 3], showticklabels=False, row=1, col=i)
        fig.update_yaxes(range=[-3, 3], showticklabels=False, scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_annotations(font_size=11)
    _figure(fig, 300)
    losses = go.Figure()
    for key, name, colour in (("d_loss", t("discriminator"), "#4f46e5"),
                              ("g_loss", t("generator"), "#ec4899")):
        series = result[key]
        smooth = moving_average(series, max(1, len(series) // 50))  # raw GAN losses are too noisy to read
        losses.add_trace(go.Scatter(y=smooth, name=name, line=dict(color=colour)))
    losses.update_xaxes(title_text=t("step"))
    losses.update_yaxes(title_text=t("loss"))
    _figure(losses, 260)
    st.caption(t("A generator (4-D noise → point) and a discriminator (point → real or fake), two small MLPs "
                 "trained against each other on a ring of 8 Gaussians, on the CPU as you watch. The losses do "
                 "not fall to zero: each network's progress is the other's setback. Try other seeds: some "
                 "runs drop modes (mode collapse)."))


# ---- policy gradient --------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
def _policy_result(episodes: int) -> dict:
    return demos.policy_gradient(episodes=episodes)


def _policy(lang: str) -> None:
    episodes = st.select_slider(t("Episodes"), [100, 200, 300, 600], value=300, key="demo.pg.episodes")
    result = _policy_result(episodes)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=(t("Return per episode (mean of 8 learners)"),
                                        t("Learned p(step right) per cell")))
    for key, name, colour in (("reinforce", "REINFORCE", "#f97316"),
                              ("baseline", t("REINFORCE + baseline"), "#4f46e5")):
        series = result["returns"][key]
        fig.add_trace(go.Scatter(x=result["episode"], y=moving_average(series, 10), name=name, line=dict(color=colour)),
                      row=1, col=1)
    for value, name, dash in ((result["random_return"], t("random policy"), "dot"),
                              (result["best_return"], t("best possible"), "dash")):
        fig.add_hline(y=value, line=dict(color="#64748b", dash=dash), annotation_text=name, row=1, col=1)
    cells = list(range(len(result["p_right"])))
    inner = result["p_right"][1:-1]  # the two ends are terminal: no decision is made there
    fig.add_trace(go.Bar(x=cells[1:-1], y=inner, marker_color="#10b981", showlegend=False), row=1, col=2)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_xaxes(title_text=t("episode"), row=1, col=1)
    fig.update_xaxes(title_text=t("cell (start = 2)"), tickvals=cells[1:-1], row=1, col=2)
    _figure(fig, 360)
    st.caption(t("A corridor of 7 cells: the agent starts in cell 2; the left end pays 0.3 and is 2 steps away, "
                 "the right end pays 1.0 and is 4 away; each step costs 0.02. The policy is one logit per cell, "
                 "updated by REINFORCE: raise the log-probability of what was done, in proportion to the return "
                 "that followed. A baseline subtracts the return usually seen from that cell, which keeps the "
                 "same direction on average with less noise."))


# ---- demos with the reader's own trained run (core.concepts.run_demos) -------------------------------

def _train_links(presets: tuple[str, ...]) -> None:
    """"Train this" for each of the concept's presets that exists, as the concept's side column has them."""
    from core.presets import PRESETS, preset_description
    from ui.resources import TRAIN_PAGE
    for name in (name for name in presets if name in PRESETS):
        st.page_link(TRAIN_PAGE, label=t("Train this: {preset}", preset=name), icon=":material/play_arrow:",
                     query_params={"preset": name}, help=t(preset_description(name)))


def _use_example(source_key: str, pills_key: str) -> None:
    """An example pill acts as a button: it fills the source box and is released, so it can be clicked again."""
    picked = st.session_state.get(pills_key)
    if picked:
        st.session_state[source_key] = picked
        st.session_state[pills_key] = None


def _seq2seq_attention(lang: str, presets: tuple[str, ...]) -> None:
    from core.concepts.run_demos import MAX_DEMO_BEAM, attend, runs_for, source_examples
    from ui.families.seq2seq import translation_view
    from ui.resources import store
    runs = {run.id: run.name for run in runs_for("seq2seq_attention", store())}
    if not runs:
        st.info(t("No finished sequence-to-sequence run yet. Train one (a few minutes on a CPU) and come back: this "
                  "demo decodes what you type with your run and shows where its decoder looked."),
                icon=":material/school:")
        _train_links(presets)
        return
    left, right = st.columns([2, 1])
    run_id = left.selectbox(t("Your finished sequence-to-sequence run"), list(runs), key="demo.s2s.run",
                            format_func=lambda key: f"{runs.get(key, key)} · {key}")
    beam = right.slider(t("Beam width"), 1, MAX_DEMO_BEAM, 1, key="demo.s2s.beam",
                        help=t("How many partial outputs beam search keeps at each step; 1 is greedy decoding"))
    try:
        examples = source_examples(run_id)
    except LabError as exc:  # e.g. a run whose checkpoint was deleted
        st.warning(t_core(str(exc)), icon=":material/warning:")
        return
    source_key, pills_key = f"demo.s2s.source.{run_id}", f"demo.s2s.examples.{run_id}"  # per run: its own example
    if source_key not in st.session_state:
        st.session_state[source_key] = examples[0] if examples else ""
    text = st.text_input(t("Source to translate"), key=source_key, max_chars=200)
    if examples:
        st.pills(t("Examples from the run's validation set"), examples[:6], key=pills_key,
                 on_change=_use_example, args=(source_key, pills_key))
    if not text.strip():
        st.info(t("Type a source sequence to translate."), icon=":material/edit:")
        return
    try:
        result = attend(run_id, text, beam=beam)
    except LabError as exc:
        st.warning(t_core(str(exc)), icon=":material/warning:")
        return
    translation_view(result, key="demo.s2s.heatmap", heading=False)
    st.caption(t("At every output step the decoder scores each source position and turns the scores into weights "
                 "with a softmax: one row of the map. A well-trained run draws a soft alignment, a band that follows "
                 "the source and jumps where the output reorders it (an ISO date writes the year first), although it "
                 "was never shown an alignment. A run trained briefly gives a blur. The map shows where the decoder "
                 "looked, not why it chose its output."))


def _text_attributions(lang: str, presets: tuple[str, ...]) -> None:
    from ui.families import hook
    demo = hook("text_classification", "concept_demo")  # the family draws its own demo, once it exists
    if demo is not None:
        demo(lang)
        return
    st.info(t("Text-classification runs appear here once trained: type a sentence and see the classes your run "
              "ranks first and which words pushed it there."), icon=":material/school:")
    _train_links(presets)
