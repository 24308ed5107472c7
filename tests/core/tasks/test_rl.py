"""Reinforcement learning: returns and advantages by hand, the policy-gradient sign on a bandit, learning
CartPole, clear errors, checkpoints, playing an episode and the Media page."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.presets import preset
from core.errors import ConfigError
from core.tasks.rl import RLTask, discounted_returns, gae
from core.tasks import validate

PAGES = Path(__file__).resolve().parents[3] / "app_pages"


# ---- returns and advantages against hand-worked examples ---------------------------------------------

def test_discounted_returns_match_a_hand_worked_example():
    # rewards 1, 0, 2 with γ = 0.5:  G2 = 2,  G1 = 0 + 0.5·2 = 1,  G0 = 1 + 0.5·1 = 1.5
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == pytest.approx([1.5, 1.0, 2.0])
    # an episode cut off by the step limit is bootstrapped with V(s_T) = 4:  G2 = 2 + 0.5·4 = 4,  G1 = 2,  G0 = 2
    assert discounted_returns([1.0, 0.0, 2.0], 0.5, bootstrap=4.0) == pytest.approx([2.0, 2.0, 4.0])
    assert discounted_returns([1.0] * 4, 1.0) == pytest.approx([4, 3, 2, 1])  # no discount: steps to go


def test_gae_is_return_minus_value_at_lambda_one_and_td_error_at_lambda_zero():
    rewards, values, gamma = [1.0, 0.0, 2.0], [0.5, 1.0, -1.0], 0.9
    advantages, targets = gae(rewards, values, 0.0, gamma, lam=1.0)
    assert advantages == pytest.approx(discounted_returns(rewards, gamma) - np.array(values))
    assert targets == pytest.approx(discounted_returns(rewards, gamma))
    td, _ = gae(rewards, values, 3.0, gamma, lam=0.0)
    # δ_t = r_t + γ V(s_{t+1}) - V(s_t), with V after the last step = 3
    assert td == pytest.approx([1 + 0.9 * 1.0 - 0.5, 0 + 0.9 * -1.0 - 1.0, 2 + 0.9 * 3.0 + 1.0])


# ---- the policy-gradient sign on a two-armed bandit ----------------------------------------------------

class Bandit:
    """A one-step episode: arm 1 pays 1, arm 0 pays nothing (the gymnasium API the rollout uses)."""

    def __init__(self, pulls):
        self.pulls = pulls

    def reset(self, seed=None):
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.pulls.append(action)
        return np.zeros(1, dtype=np.float32), float(action == 1), True, False, {}


class BanditSource:
    def __init__(self):
        self.pulls = []

    def make(self):
        return Bandit(self.pulls)


class ArmPreferences(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(2))

    def forward(self, obs):
        return self.logits.expand(obs.shape[0], 2)  # (B, 2): the same preferences whatever it sees


def test_reinforce_step_raises_the_probability_of_the_rewarded_arm():
    source, model = BanditSource(), ArmPreferences()
    task = RLTask(source, episodes_per_update=16, entropy_coef=0.0, normalize_advantages=False)
    loss, sums = task.training_step(model, 123)
    loss.backward()
    pulls = np.array(source.pulls)
    assert 0 < pulls.sum() < len(pulls), "both arms must be tried for the check to mean anything"
    # by hand: A_t = r_t - mean(r); ∂/∂z_k of -mean_t[A_t log π(a_t)] = -mean_t[A_t (1[a_t = k] - π_k)], π = ½
    advantage = (pulls == 1) - (pulls == 1).mean()
    expected = [-np.mean(advantage * ((pulls == k) - 0.5)) for k in (0, 1)]
    assert model.logits.grad.numpy() == pytest.approx(expected, abs=1e-6)
    assert model.logits.grad[1] < 0 < model.logits.grad[0]
    before = torch.softmax(model.logits, 0)[1].item()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert torch.softmax(model.logits, 0)[1].item() > before + 0.05
    assert float(sums["count"]) == 16 and task.summarize(sums)["return"] == pytest.approx(pulls.mean())


# ---- errors ----------------------------------------------------------------------------------------

def test_unknown_environment_is_a_clear_error_naming_the_known_ones():
    config = preset("cartpole-reinforce").replace(**{"data.name": "Pong-v5"})
    with pytest.raises(ConfigError, match="CartPole-v1.*Acrobot-v1"):
        validate(config)
    from core.data.environments import make_env
    from core.tasks.rl.play import play
    with pytest.raises(ConfigError, match="'MountainCarContinuous-v0' is not one of: CartPole-v1, Acrobot-v1"):
        make_env("MountainCarContinuous-v0")
    with pytest.raises(ConfigError, match="CartPole-v1"):
        play(ArmPreferences(), "LunarLander-v3")
    bad_option = preset("cartpole-reinforce").replace(**{"task_options.gamma": 1.5})
    with pytest.raises(ConfigError, match="task_options.gamma"):
        validate(bad_option)
    with pytest.raises(ConfigError, match="model.name"):
        validate(preset("cartpole-reinforce").replace(**{"model.name": "cnn"}))


# ---- learning and replay -------------------------------------------------------------------------------

def test_presets_exist_and_validate():
    for name in ("cartpole-reinforce", "cartpole-actor-critic", "acrobot-actor-critic"):
        assert validate(preset(name)).task == "rl"


def test_epochs_replay_the_same_episodes_after_a_resume():
    from core.data.environments import UpdateSeeds
    from core.data import load_dataset
    seeds = UpdateSeeds(seed=3, updates_per_epoch=6)
    assert list(seeds.epoch(2, start_batch=4)) == list(seeds.epoch(2))[4:]
    assert list(seeds.epoch(2)) != list(seeds.epoch(1))
    config = validate(preset("cartpole-actor-critic"))
    from core.tasks.rl import build_model
    source = load_dataset(config.data)
    torch.manual_seed(0)
    model = build_model(config, {"env": source.metadata()})
    task = RLTask(source)
    first, second = task.training_step(model, 77), task.training_step(model, 77)
    assert first[0].item() == second[0].item() and float(first[1]["count"]) == float(second[1]["count"])


def test_cartpole_agent_beats_a_random_policy_clearly(lab_home):
    from core.jobs.assemble import assemble
    from core.tasks.rl.play import random_baseline
    config = validate(preset("cartpole-reinforce").replace(**{
        "optim.epochs": 3, "task_options.updates_per_epoch": 10, "task_options.eval_episodes": 5}))
    summary = assemble(config, device=torch.device("cpu")).fit()
    chance = random_baseline("CartPole-v1", episodes=20)["mean"]
    assert 10 < chance < 35  # a random policy balances the pole for about 20 steps
    assert summary["best_val_return"] > 100 and summary["best_val_return"] > 4 * chance, summary
    assert summary["steps"] == 30


# ---- a completed run: checkpoint, play, Media page ---------------------------------------------------------

def tiny_run(name="cartpole-actor-critic") -> str:
    from core import jobs
    from core.jobs.runner import execute_run
    config = preset(name).replace(**{"optim.epochs": 1, "task_options.updates_per_epoch": 2,
                                     "task_options.episodes_per_update": 2, "task_options.eval_episodes": 2,
                                     "task_options.sample_every": 1, "log_every": 1, "name": "tiny-rl"})
    run_id = jobs.create(config)
    assert execute_run(run_id) == "completed"
    return run_id


def test_checkpoint_loads_and_plays_an_episode_with_frames_and_probabilities(lab_home):
    from core.tasks.checkpoints import load_run_model
    from core.tasks.rl.play import episode_history, play_run, to_gif
    from core.paths import run_dir
    run_id = tiny_run()
    loaded = load_run_model(run_id, "best")
    assert loaded.task == "rl" and loaded.metadata["env"]["name"] == "CartPole-v1"
    logits, values = loaded.model(torch.zeros(3, 4))
    assert logits.shape == (3, 2) and values.shape == (3,)
    episode = play_run(run_id, "best", greedy=False, seed=5)
    assert episode.length >= 8 and len(episode.frames) == episode.length + 1
    assert episode.probs.shape == (episode.length, 2)
    assert episode.probs.sum(axis=1) == pytest.approx(np.ones(episode.length), abs=1e-5)
    assert episode.total == pytest.approx(episode.length)  # +1 per step on CartPole
    assert episode.frames[0].size == (360, 240)
    assert to_gif(episode.frames)[:6] == b"GIF89a"
    again = play_run(run_id, "best", greedy=False, seed=5, draw=False)
    assert again.actions == episode.actions  # the seed fixes the start and the sampled actions
    history = episode_history(run_dir(run_id))
    assert len(history["returns"]) == 4 and history["lengths"] == [int(r) for r in history["returns"]]


def test_acrobot_episode_is_drawn_with_both_links():
    from core.tasks.rl.play import play, random_baseline
    from core.models.policy import actor_critic
    torch.manual_seed(0)
    episode = play(actor_critic(obs_dim=6, n_actions=3), "Acrobot-v1", greedy=False, seed=1, max_steps=30)
    assert episode.length == 30 and episode.truncated and episode.total == -30
    assert episode.probs.shape == (30, 3) and len(episode.frames) == 31
    colours = {rgb for _, rgb in episode.frames[0].convert("RGB").getcolors(64)}
    assert {(79, 70, 229), (249, 115, 22), (16, 185, 129)} <= colours  # first link, second link, goal line
    assert random_baseline("Acrobot-v1", episodes=2, max_steps=40)["mean"] == -40


def test_media_page_plays_an_episode_of_a_completed_run(lab_home):
    from streamlit.testing.v1 import AppTest
    page = PAGES / "media.py"
    run_id = tiny_run("cartpole-reinforce")
    at = AppTest.from_file(str(page), default_timeout=60).run()
    from core.inference import list_model_sources
    sources = list_model_sources()
    index = next(i for i, s in enumerate(sources) if s.get("run_id") == run_id)
    assert sources[index]["task"] == "rl"
    at.selectbox(key="media_source").set_value(index).run()
    at.number_input(key="rl_seed").set_value(4).run()
    at.radio(key="rl_mode").set_value("sampled").run()
    at.button(key="rl_play").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    from core.tasks.rl.play import play_run
    expected = play_run(run_id, greedy=False, seed=4, draw=False)  # the same episode: seeded start and actions
    assert float(metrics["return"]) == expected.total
    assert int(metrics["steps"].replace(",", "")) == len(expected.actions)
    assert "random policy" in metrics
    assert len(at.get("plotly_chart")) == 2  # action probabilities, return vs random
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert any("sampled · seed 4" in c for c in captions) and any("8 moments" in c for c in captions)


def test_train_page_previews_the_environment(lab_home):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(PAGES / "train.py"), default_timeout=60).run()
    at.selectbox(key="cfg.task").set_value("rl").run()
    at.selectbox(key="preset_choice").set_value("cartpole-actor-critic").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cfg.data.name").value == "CartPole-v1"
    assert at.selectbox(key="cfg.model.name").value == "actor_critic"
    assert at.number_input(key="cfg.task_options.episodes_per_update").value == 8
    metrics = {m.label: m.value for m in at.metric}
    assert 10 < float(metrics["random policy: mean return"]) < 35
    assert any("push right" in m.value for m in at.markdown)
    assert len(at.get("image")) == 1  # the first frame


def test_live_view_charts_every_training_episode(lab_home):
    from streamlit.testing.v1 import AppTest
    run_id = tiny_run("cartpole-reinforce")

    def body():
        import streamlit as st

        from core.paths import run_dir
        from ui.families.rl import live
        from ui.resources import store
        live(store().get_run(st.session_state["run_id"]), run_dir(st.session_state["run_id"]))

    at = AppTest.from_function(body, default_timeout=60)
    at.session_state["run_id"] = run_id
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert any("4 training episodes" in c.value for c in at.caption)
