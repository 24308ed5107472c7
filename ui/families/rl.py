"""Reinforcement learning on the pages: the environment before training, returns while it trains, and
an episode played by the trained policy on the Media page. Logic lives in core.tasks.rl.play."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.errors import LabError
from ui.charts import MAX_POINTS, PALETTE, TRAIN_COLOUR, VAL_COLOUR, base_layout
from ui.i18n import N_, t, t_core
from ui.resources import MEDIA_DEVICE, table_columns

RANDOM_COLOUR = "#94a3b8"
MODES = (N_("greedy"), N_("sampled"))  # the choices of Media's Actions radio, translated where drawn


@st.cache_data(show_spinner=False, max_entries=16)
def _random_baseline(env: str, max_steps: int, seed: int) -> dict:
    from core.tasks.rl.play import random_baseline
    return random_baseline(env, episodes=20, seed=seed, max_steps=max_steps)


@st.cache_data(show_spinner=False, max_entries=16)
def _first_frame(env: str, max_steps: int, seed: int):
    from core.data.environments import make_env
    from core.tasks.rl.play import draw_frame
    from core.tasks.rl import physical_state
    environment = make_env(env, max_steps)
    try:
        obs, _ = environment.reset(seed=seed)
        return draw_frame(env, physical_state(environment)).convert("RGB"), [float(v) for v in obs]
    finally:
        environment.close()


# ---- Train page ---------------------------------------------------------------------------------------

def preview(config) -> None:
    """The environment: what the agent observes and can do, its first frame, what chance scores."""
    from core.data import load_dataset
    from core.tasks import model_parameters

    source = load_dataset(config.data, seed=config.seed)
    spec = source.spec
    st.subheader(t("Environment"), anchor=False)
    st.caption(f"{spec.name} · {t(spec.description)}")
    frame, obs = _first_frame(spec.name, source.max_steps, config.seed)
    st.image(frame, caption=t("the first state (seed {seed})", seed=config.seed), width="stretch")
    st.dataframe({"observation": [t(name) for name in spec.obs_names], "at the start": [round(v, 4) for v in obs]},
                 hide_index=True, width="stretch", column_config=table_columns(["observation", "at the start"]))
    st.markdown("**" + t("Actions") + "** " + t("({count}, discrete):", count=spec.n_actions) + " "
                + ", ".join(t(name) for name in spec.action_names))
    st.caption(t("Reward: {note}. Episodes end after {steps} steps at most.", note=t(spec.reward_note),
                 steps=source.max_steps))
    with st.spinner(t("Playing a random policy…")):
        baseline = _random_baseline(spec.name, source.max_steps, config.seed)
    c1, c2 = st.columns(2)
    c1.metric(t("random policy: mean return"), f"{baseline['mean']:.1f}",
              help=t("20 episodes with uniformly random actions (± {std:.1f})", std=baseline["std"]))
    try:
        params = model_parameters(config, {"env": source.metadata()})["total"]
    except LabError:
        params = None
    c2.metric(t("policy parameters"), f"{params:,}" if params is not None else "–")


# ---- live view -------------------------------------------------------------------------------------

def history_figure(history: dict, window: int = 20) -> go.Figure:
    """Per-episode return and length, raw (thin) and as a moving average (thick), against episode number."""
    import numpy as np

    from core.analysis import downsample
    from core.analysis import moving_average
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(t("Return per episode"), t("Episode length (steps)")))
    episodes = np.arange(1, len(history["returns"]) + 1, dtype=float)
    for col, key, colour, word in ((1, "returns", TRAIN_COLOUR, N_("return")), (2, "lengths", PALETTE[2], N_("length"))):
        values = np.asarray(history[key], dtype=float)
        x, y = downsample(episodes, values, MAX_POINTS)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=t("{measure} (raw)", measure=t(word)), opacity=0.35,
                                 line=dict(color=colour, width=1)), row=1, col=col)
        x, y = downsample(episodes, moving_average(values, window), MAX_POINTS)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=colour, width=3),
                                 name=t("{measure} (mean of {window})", measure=t(word), window=window)),
                      row=1, col=col)
    fig.update_xaxes(title_text=t("episode"))
    base_layout(fig, 340)
    fig.update_layout(margin=dict(t=80), legend=dict(y=1.18))  # the legend above the subplot titles
    return fig


def live(run, folder) -> None:
    from core.tasks.rl.play import episode_history
    history = episode_history(folder)
    if not history["returns"]:
        if run.config.get("task_options", {}).get("sample_every", 1):
            st.caption(t("Episode returns appear here after the first few updates."))
        return
    st.plotly_chart(history_figure(history), key=f"rl-history-{run.id}")
    last = history["returns"][-20:]
    st.caption(t("{episodes:,} training episodes · last {count}: mean return {mean:.1f} · longest {longest:,} steps",
                 episodes=len(history["returns"]), count=len(last), mean=sum(last) / len(last),
                 longest=max(history["lengths"])))


# ---- Media page --------------------------------------------------------------------------------------

def probabilities_figure(playback) -> go.Figure:
    """What the policy wanted at every step (a heatmap: one row per action) and what it did (dots)."""
    import numpy as np
    steps = np.arange(playback.length)
    actions = [t(name) for name in playback.action_names]
    fig = go.Figure(go.Heatmap(z=playback.probs.T, x=steps, y=actions, zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="P", thickness=12),
                               hovertemplate=t("step %{x}<br>%{y}: %{z:.2f}") + "<extra></extra>"))
    chosen = [actions[a] for a in playback.actions]
    fig.add_trace(go.Scatter(x=steps, y=chosen, mode="markers", name=t("action taken"),
                             marker=dict(color=VAL_COLOUR, size=4),
                             hovertemplate=t("step %{x}: %{y}") + "<extra></extra>"))
    fig.update_xaxes(title_text=t("step"))
    return base_layout(fig, 80 + 60 * len(playback.action_names))


def return_figure(playback, baseline: dict) -> go.Figure:
    """The episode's cumulative reward against a random policy's mean return."""
    import numpy as np
    fig = go.Figure()
    cumulative = np.cumsum(playback.rewards)
    fig.add_trace(go.Scatter(x=np.arange(1, playback.length + 1), y=cumulative, mode="lines",
                             name=t("this episode"), line=dict(color=VAL_COLOUR, width=3)))
    fig.add_hline(y=baseline["mean"], line=dict(color=RANDOM_COLOUR, dash="dash"), annotation_position="bottom right",
                  annotation_text=t("random policy {mean:.1f}", mean=baseline["mean"]))
    fig.update_xaxes(title_text=t("step"))
    fig.update_yaxes(title_text=t("return so far"))
    return base_layout(fig, 260)


def media(source: dict) -> None:
    """Play an episode with the run's policy: an animation, a frame strip, probabilities and the return."""
    from core.tasks.checkpoints import load_run_model
    from core.tasks.rl.play import frame_strip, play, to_gif
    try:
        loaded = load_run_model(source["run_id"], source.get("which", "best"), device=MEDIA_DEVICE)
    except LabError as exc:
        st.error(t_core(str(exc)), icon=":material/error:")
        return
    env = loaded.metadata["env"]
    st.caption(f"{env['name']} · {loaded.config.model.name} · "
               + t("actions: {actions}", actions=", ".join(t(name) for name in env["action_names"])))
    c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    seed = c1.number_input(t("Episode seed"), min_value=0, max_value=2**31 - 1, value=0, step=1, key="rl_seed",
                           help=t("Fixes the starting state (and the sampled actions)"))
    modes = {mode: t(mode) for mode in MODES}  # names made now: format_func may run outside the page run
    mode = c2.radio(t("Actions"), list(modes), horizontal=True, key="rl_mode", format_func=modes.get,
                    help=t("greedy: always the most likely action; sampled: drawn from the policy's probabilities"))
    key = (source["run_id"], source.get("which", "best"), int(seed), mode)
    if c3.button(t("Play an episode"), type="primary", icon=":material/play_arrow:", key="rl_play"):
        try:
            with st.spinner(t("Playing…")):
                playback = play(loaded.model, env["name"], greedy=mode == "greedy", seed=int(seed),
                                max_steps=env["max_steps"])
                baseline = _random_baseline(env["name"], env["max_steps"], int(seed))
                gif = to_gif(playback.frames)
        except LabError as exc:
            st.error(t_core(str(exc)), icon=":material/error:")
            return
        st.session_state["rl_played"] = {"key": key, "playback": playback, "baseline": baseline, "gif": gif}
    played = st.session_state.get("rl_played")
    if not played or played["key"] != key:
        st.info(t("Press **Play an episode** to watch the policy act."), icon=":material/sports_esports:")
        return
    _show(played["playback"], played["baseline"], played["gif"], frame_strip)


def _show(playback, baseline: dict, gif: bytes, frame_strip) -> None:
    ended = t("hit the step limit") if playback.truncated else t("ended by the environment")
    m1, m2, m3 = st.columns(3)
    m1.metric(t("return"), f"{playback.total:.1f}",
              delta=t("{difference:+.1f} vs random", difference=playback.total - baseline["mean"]))
    m2.metric(t("steps"), f"{playback.length:,}", help=t("the episode {ended}", ended=ended))
    m3.metric(t("random policy"), f"{baseline['mean']:.1f}", help=t("mean return of 20 random episodes"))
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.image(gif, caption=f"{playback.env} · {t('greedy') if playback.greedy else t('sampled')} · "
                              + t("seed {seed}", seed=playback.seed) + f" · {ended}", width="stretch")
    with right:
        st.markdown(t("**What the policy wanted at each step** (darker: more likely) and what it did (dots)"))
        st.plotly_chart(probabilities_figure(playback), key="rl_probs")
    st.image(frame_strip(playback.frames, 8), caption=t("8 moments of the episode, start to end"), width="stretch")
    st.markdown(t("**Return so far**, against a random policy's mean return"))
    st.plotly_chart(return_figure(playback, baseline), key="rl_return")
