"""Character language models: data, models, the task's metrics, generation, attention and the pages."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from core.config import RunConfig
from core.jobs.assemble import assemble
from core.engine.callbacks import Callback
from core.errors import ConfigError, DataError, InputError
from conftest import shared_file
from core.tasks import validate

PARAGRAPH = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be "
             "in want of a wife. However little known the feelings or views of such a man may be on his first "
             "entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that "
             "he is considered the rightful property of some one or other of their daughters.\n")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pydocs_file(tmp_path_factory) -> Path:
    """The first 80,000 characters of the pydocs corpus as a .txt (collected once for the module)."""
    from core.data.text import collect_pydocs
    path = tmp_path_factory.mktemp("corpus") / "pydocs.txt"
    path.write_text(collect_pydocs()[:80_000], encoding="utf-8")
    return path


class Recorder(Callback):
    def __init__(self):
        self.logs, self.epochs = [], []

    def on_train_log(self, trainer, metrics):
        self.logs.append(metrics)

    def on_epoch_end(self, trainer, metrics):
        self.epochs.append(metrics)


def lm_config(path, model="char_gpt", options=None, *, steps=50, epochs=1, context=32, lr=3e-3, batch=32,
              **task_options) -> RunConfig:
    raw = {"task": "language_model", "data": {"name": "text", "path": str(path)},
           "model": {"name": model, "options": options or {"layers": 2, "heads": 2, "embed": 64}},
           "task_options": {"context": context, "steps_per_epoch": steps, "eval_batches": 4, "sample_every": 0,
                            **task_options},
           "optim": {"optimizer": "adamw", "lr": lr, "batch_size": batch, "epochs": epochs, "grad_clip": 1.0},
           "log_every": 5}
    return validate(RunConfig.from_dict(raw))


def fit(config):
    recorder = Recorder()
    trainer = assemble(config, device=torch.device("cpu"), callbacks=[recorder])
    trainer.fit()
    return trainer, recorder


def train_run(config) -> str:
    """A completed run in the store (checkpoints, samples, metrics), trained in this process."""
    from core import jobs
    from core.jobs.runner import execute_run
    run_id = jobs.create(config)
    assert execute_run(run_id) == "completed"
    return run_id


def write(tmp_path, text: str | bytes, name="corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# ---- learning ---------------------------------------------------------------------------------------

def test_char_rnn_overfits_a_short_text(lab_home, tmp_path):
    path = write(tmp_path, PARAGRAPH)
    config = lm_config(path, "char_rnn", {"embed": 32, "hidden": 128, "layers": 1}, steps=100, context=16,
                       lr=1e-2, batch=16)
    trainer, recorder = fit(config)
    vocab = len(trainer.metadata["vocab"])  # 35 characters: ln 35 = 3.56 nats for a model that knows nothing
    first, last = recorder.logs[0]["train_loss"], recorder.logs[-1]["train_loss"]
    assert first > 0.7 * math.log(vocab)  # the first five steps: still close to knowing nothing
    assert last < 0.15 * math.log(vocab), f"loss only went from {first:.3f} to {last:.3f}"


@pytest.mark.parametrize("model,options,lr,steps", [
    ("char_lstm", {"embed": 32, "hidden": 128, "layers": 1}, 1e-2, 30),
    ("char_gpt", {"layers": 2, "heads": 2, "embed": 64}, 3e-3, 60),
])
def test_lstm_and_gpt_beat_the_unigram_baseline_on_held_out_text(lab_home, pydocs_file, model, options, lr, steps):
    from core.config import DataConfig
    from core.data.text import describe_corpus
    unigram_nats = describe_corpus(DataConfig(name="text", path=str(pydocs_file)))["unigram_bpc"] * math.log(2)
    config = lm_config(pydocs_file, model, options, steps=steps, epochs=2, lr=lr, batch=16)
    _, recorder = fit(config)
    val = recorder.epochs[-1]["val_loss"]  # about 3.35 nats for the unigram model, 2.4-2.6 after training
    assert val < unigram_nats - 0.5, f"{model}: val loss {val:.3f} vs unigram {unigram_nats:.3f} nats"
    assert recorder.epochs[-1]["val_bpc"] == pytest.approx(val / math.log(2))


def test_losses_match_a_reference_computation_and_bpc_is_loss_over_ln2(lab_home, tmp_path):
    trainer, recorder = fit(lm_config(write(tmp_path, PARAGRAPH * 3), steps=10, context=16))
    for row in recorder.logs:
        assert row["train_bpc"] == pytest.approx(row["train_loss"] / math.log(2))
    model = trainer.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in trainer.val_batches.epoch(0):
            logp = torch.log_softmax(model(x), dim=-1)  # (B, T, V)
            total -= logp.gather(2, y[..., None]).sum().item()
            count += y.numel()
    metrics = trainer.task.evaluate(model, trainer.val_batches)
    assert metrics["val_loss"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["val_bpc"] == pytest.approx(total / count / math.log(2), rel=1e-5)


def test_batches_are_shifted_windows_and_replay_exactly_from_any_batch():
    from core.data.text import CharBatches
    ids = torch.arange(500) % 97
    batches = CharBatches(ids, context=8, batch_size=4, batches=6, device="cpu", seed=3)
    full = list(batches.epoch(2))
    assert len(full) == 6 and full[0][0].shape == (4, 8)
    for x, y in full:
        assert torch.equal(x[:, 1:], y[:, :-1])  # y is x moved on by one character
    tail = list(batches.epoch(2, start_batch=4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[4:], tail))
    assert not torch.equal(full[0][0], next(batches.epoch(3))[0])  # another epoch, other windows


def test_a_run_resumed_mid_epoch_replays_the_same_batches_and_dropout(lab_home, tmp_path):
    import threading

    from core.engine.callbacks import Checkpointer
    from core.engine.checkpoint import LAST, load_checkpoint
    from core.errors import Cancelled
    config = lm_config(write(tmp_path, PARAGRAPH * 3), options={"layers": 1, "heads": 2, "embed": 32, "dropout": 0.1},
                       steps=10, epochs=2, context=16, batch=8)
    _, reference = fit(config)

    class StopAt(Callback):
        def on_train_batch_end(self, trainer):
            if trainer.step == 15:  # mid-epoch (10 steps each), at a log boundary
                stop.set()
    stop, first = threading.Event(), Recorder()
    trainer = assemble(config, device=torch.device("cpu"), stop_event=stop,
                       callbacks=[first, StopAt(), Checkpointer(tmp_path)])
    with pytest.raises(Cancelled):
        trainer.fit()
    second = Recorder()
    resumed = assemble(config, device=torch.device("cpu"), callbacks=[second])
    resumed.load_state_dict(load_checkpoint(tmp_path / LAST))
    assert resumed.batch_in_epoch == 5
    resumed.fit()
    losses = [row["train_loss"] for row in first.logs + second.logs]
    assert losses == pytest.approx([row["train_loss"] for row in reference.logs], rel=1e-5)
    assert second.epochs[-1]["val_loss"] == pytest.approx(reference.epochs[-1]["val_loss"], rel=1e-5)


# ---- models --------------------------------------------------------------------------------------------

def test_gpt_is_causal_in_both_attention_paths():
    from core.models.char_lm import char_gpt
    torch.manual_seed(0)
    model = char_gpt(vocab_size=20, context=16, layers=2, heads=2, embed=32).eval()
    x = torch.randint(0, 20, (2, 12))
    changed = x.clone()
    changed[:, 7:] = (changed[:, 7:] + 5) % 20  # a different future from position 7 on
    with torch.no_grad():
        fused, (explicit, maps) = model(x), model(x, return_attention=True)
        fused_changed = model(changed)
    assert torch.allclose(fused, explicit, atol=1e-5)  # the fused kernel and the explicit form agree
    assert torch.allclose(fused[:, :7], fused_changed[:, :7], atol=1e-6)
    assert not torch.allclose(fused[:, 7:], fused_changed[:, 7:], atol=1e-3)
    weights = maps[0]  # (B, heads, T, T)
    assert weights.shape == (2, 2, 12, 12)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 12), atol=1e-5)
    assert weights.triu(1).abs().max() == 0  # nothing attends to the future


def test_attention_matches_torch_multihead_attention():
    from core.models.char_lm import CausalSelfAttention
    torch.manual_seed(0)
    ours = CausalSelfAttention(embed=24, heads=3, dropout=0.0).eval()
    reference = torch.nn.MultiheadAttention(24, 3, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(ours.qkv.weight)
        reference.in_proj_bias.copy_(ours.qkv.bias)
        reference.out_proj.weight.copy_(ours.proj.weight)
        reference.out_proj.bias.copy_(ours.proj.bias)
        x = torch.randn(2, 10, 24)
        future = torch.ones(10, 10, dtype=torch.bool).triu(1)
        expected, expected_weights = reference(x, x, x, attn_mask=future, average_attn_weights=False)
        out, weights = ours(x, need_weights=True)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)


def test_bad_model_and_data_settings_are_rejected_with_the_field_named(lab_home, tmp_path):
    path = write(tmp_path, PARAGRAPH)
    with pytest.raises(ConfigError, match=r"model.options.heads: the embedding size \(64\) must be divisible"):
        lm_config(path, options={"layers": 1, "heads": 3, "embed": 64})
    with pytest.raises(ConfigError, match=r"task_options.context: 2 is out of range"):
        lm_config(path, context=2)
    with pytest.raises(ConfigError, match=r"data.path: no file at"):
        lm_config(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=r"model.name: 'cnn' is not one of: char_rnn, char_lstm, char_gru, char_gpt"):
        lm_config(path, model="cnn")


# ---- data ------------------------------------------------------------------------------------------------

def test_empty_binary_and_too_short_texts_fail_with_clear_messages(lab_home, tmp_path):
    from core.data.text import save_upload
    cases = [(b"", "empty.txt", r"empty\.txt is empty"), (b"  \n\n", "blank.txt", r"blank\.txt is empty"),
             (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "image.txt", r"looks like a binary file"),
             (b"caf\xe9 cr\xe8me", "latin1.txt", r"is not UTF-8 text")]
    for data, name, message in cases:
        path = write(tmp_path, data, name)
        config = lm_config(path)  # valid as a config: the file exists
        with pytest.raises(DataError, match=message):
            assemble(config, device=torch.device("cpu"))
        with pytest.raises(DataError, match=message):
            save_upload(data, name)
    with pytest.raises(DataError, match=r"validation part \(10%\) holds 30, fewer than the context of 32 \+ 1"):
        assemble(lm_config(write(tmp_path, "x" * 300)), device=torch.device("cpu"))
    assert not list((lab_home / "cache" / "uploads").glob("*.txt"))  # nothing bad was kept


def test_pydocs_corpus_is_offline_deterministic_and_cached(lab_home):
    from core.config import DataConfig
    from core.data.text import load_corpus
    corpus = load_corpus(DataConfig(name="pydocs"))
    assert 300_000 <= len(corpus.text) <= 1_000_000
    assert "Return" in corpus.text and "def " in corpus.text
    cached = list((lab_home / "cache" / "text").glob("pydocs-*.txt"))
    assert len(cached) == 1
    cached[0].unlink()  # built again (in a fresh interpreter, whatever this process imported): the same text
    assert load_corpus(DataConfig(name="pydocs")).text == corpus.text
    assert len(load_corpus(DataConfig(name="pydocs", options={"max_chars": 1000})).text) == 1000


def test_tinyshakespeare_loads_from_where_the_loader_looks_and_says_what_to_do_offline(lab_home, monkeypatch):
    import core.data.text as text
    from core.config import DataConfig
    monkeypatch.setattr(text, "SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")  # nothing listens there
    with pytest.raises(DataError, match=r"could not download tinyshakespeare.txt .*save that file as .*shakespeare"):
        text.load_corpus(DataConfig(name="tinyshakespeare"))
    source = shared_file("tinyshakespeare.txt")
    shutil.copyfile(source, text.shakespeare_path())
    corpus = text.load_corpus(DataConfig(name="tinyshakespeare"))
    assert len(corpus.text) == 1_115_394 and corpus.text.startswith("First Citizen:")
    assert len(text.Vocabulary.from_text(corpus.text)) == 65
    by_path = text.load_corpus(DataConfig(name="tinyshakespeare", path=str(source)))
    assert by_path.text == corpus.text


# ---- generation ------------------------------------------------------------------------------------------

class FixedLogits(torch.nn.Module):
    """A stand-in model whose next-character logits are always the same: 'c' > 'b' > 'a' > ..."""

    has_attention = False

    def __init__(self, vocab_size: int):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.linspace(0, 1, vocab_size)[None] * 3)  # (1, V)

    def next_logits(self, idx, state=None):
        return self.logits.expand(idx.shape[0], -1), state


def run_model(model, vocab, sample_prompt="\n", context=32):
    from core.tasks.checkpoints import RunModel
    config = RunConfig.from_dict({"task": "language_model", "data": {"name": "pydocs"},
                                  "model": {"name": "char_gpt"}})
    return RunModel(model=model.eval(), config=config, metadata={"vocab": list(vocab), "context": context,
                    "sample_prompt": sample_prompt}, run_id="test-run", which="best", epoch=1)


def test_generation_respects_length_top_k_temperature_and_seed():
    from core.tasks.language_model.generate import generate
    from core.models.char_lm import char_gru
    vocab = sorted(set(PARAGRAPH))
    fixed = run_model(FixedLogits(len(vocab)), vocab)
    top3 = set(vocab[-3:])
    text = "".join(generate(fixed, "a", length=300, top_k=3, temperature=1.5, seed=1))
    assert len(text) == 300 and set(text) <= top3 and len(set(text)) == 3
    assert "".join(generate(fixed, "a", length=20, temperature=0)) == vocab[-1] * 20  # greedy

    torch.manual_seed(0)
    untrained = run_model(char_gru(vocab_size=len(vocab), embed=8, hidden=16, layers=1), vocab)
    chunks = list(generate(untrained, "the ", length=120, temperature=1.0, seed=7))
    assert len("".join(chunks)) == 120
    assert "".join(chunks) == "".join(generate(untrained, "the ", length=120, temperature=1.0, seed=7))
    assert "".join(chunks) != "".join(generate(untrained, "the ", length=120, temperature=1.0, seed=8))
    with pytest.raises(InputError, match="length must be a whole number from 1 to 10,000"):
        generate(untrained, "the", length=0)
    with pytest.raises(InputError, match="temperature must be a number from 0 to 5"):
        generate(untrained, "the", temperature=-1)


def test_out_of_vocabulary_prompt_characters_are_dropped_with_a_warning():
    from core.tasks.language_model.generate import attention_map, check_prompt, generate
    from core.models.char_lm import char_gpt
    vocab = sorted(set(PARAGRAPH))
    run = run_model(char_gpt(vocab_size=len(vocab), context=32, layers=1, heads=2, embed=16), vocab)
    check = check_prompt(run, "Zebra 🦓 at the zoo")
    assert check.text == "ebra  at the oo" and check.dropped == ["Z", "🦓", "z"]
    with pytest.warns(UserWarning, match=r"dropped 2 character\(s\) the model never saw in training: 'Z', '🦓'"):
        text = "".join(generate(run, "Zebra 🦓", length=10, seed=0))
    assert len(text) == 10
    with pytest.warns(UserWarning):  # nothing left: it starts from the run's sample prompt
        assert len("".join(generate(run, "🦓", length=5))) == 5
    with pytest.raises(InputError, match="type a prompt"):
        attention_map(run, "🦓ZZZ")
    amap = attention_map(run, "the man " * 10)  # 80 characters: the last 32 (the context) are mapped
    assert amap.weights.shape == (1, 2, 32, 32) and "".join(amap.chars) == ("the man " * 10)[-32:]


# ---- runs, checkpoints and pages ----------------------------------------------------------------------------

def tiny_gpt_run(tmp_path) -> str:
    config = lm_config(write(tmp_path, PARAGRAPH * 4), steps=10, epochs=2, context=16, sample_every=10,
                       sample_length=40, sample_prompt="It is")
    return train_run(config)


def test_a_run_saves_vocab_samples_and_metrics_and_its_checkpoint_loads_for_generation(lab_home, tmp_path):
    from core.engine.samples import list_samples
    from core.inference import list_model_sources
    from core.tasks.checkpoints import load_run_model
    from core.tasks.language_model.generate import generate
    from core.paths import run_dir
    from core.store import RunStore
    run_id = tiny_gpt_run(tmp_path)
    run = RunStore().get_run(run_id)
    assert run.summary["best_metric"] == "val_loss" and run.summary["best_val_loss"] < math.log(30)
    samples = list_samples(run_dir(run_id), "text")
    assert [s.step for s in samples] == [0, 10, 20]
    assert all(s.load().startswith("It is") and len(s.load()) == 45 for s in samples)

    loaded = load_run_model(run_id, "best")
    assert loaded.metadata["vocab"] == sorted(set(PARAGRAPH)) and loaded.metadata["context"] == 16
    one = "".join(generate(loaded, "It is", length=50, seed=3))
    assert len(one) == 50 and one == "".join(generate(loaded, "It is", length=50, seed=3))
    source = next(s for s in list_model_sources() if s.get("run_id") == run_id)
    assert source["task"] == "language_model"

    from streamlit.testing.v1 import AppTest

    def runs_page_section(run_id: str):
        from ui.families.language_model import runs_extra
        runs_extra([run_id])
    at = AppTest.from_function(runs_page_section, args=(run_id,), default_timeout=30).run()
    assert not at.exception and at.code[0].value == samples[-1].load()


def _generate_on(at):
    at.text_area(key="lm_prompt").set_value("It is a")
    at.number_input(key="lm_length").set_value(60)
    at.button(key="lm_generate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(str(m.value) for m in at.markdown)
    assert "It is a" in shown, shown
    generated = shown.split("It is a", 1)[1].split("~~~~~~", 1)[0]
    assert len(generated.rstrip("\n")) >= 50  # 60 characters, give or take the line ends markdown trims
    return generated


def test_media_page_generates_text_and_shows_the_attention_heatmap_for_a_gpt_run(lab_home, tmp_path):
    from streamlit.testing.v1 import AppTest

    from core.inference import list_model_sources
    run_id = tiny_gpt_run(tmp_path)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[3] / "app_pages" / "media.py"),
                           default_timeout=60).run()
    index = next(i for i, s in enumerate(list_model_sources()) if s.get("run_id") == run_id)
    at.selectbox(key="media_source").set_value(index).run()
    assert not at.exception, [e.value for e in at.exception]
    generated = _generate_on(at)
    assert at.selectbox(key="lm_attn_layer").options == ["layer 1", "layer 2"]
    at.selectbox(key="lm_attn_head").set_value(1).run()
    assert at.code[0].value.startswith("It is a" + generated.rstrip("\n"))  # still shown after a rerun
    charts = at.get("plotly_chart")
    assert charts, "no attention heatmap"
    assert '"type":"heatmap"' in charts[0].proto.spec.replace(" ", "")


def test_live_view_shows_the_latest_sample_and_earlier_ones(lab_home, tmp_path):
    from streamlit.testing.v1 import AppTest
    from core.engine.samples import write_samples
    folder = tmp_path / "run"
    for step, text in ((0, "qzx qq"), (200, "the the"), (400, "It is a truth")):
        write_samples(folder, step, {"text": text})

    def harness(folder: str):
        from types import SimpleNamespace
        from ui.families.language_model import live
        live(SimpleNamespace(id="run-1"), folder)

    at = AppTest.from_function(harness, args=(str(folder),), default_timeout=30).run()
    assert not at.exception
    assert "step 400" in at.markdown[0].value and at.code[0].value == "It is a truth"
    at.select_slider(key="lm_sample_step_run-1").set_value(200).run()
    assert at.code[1].value == "the the"


def test_train_page_previews_the_text_and_takes_an_uploaded_txt(lab_home):
    from streamlit.testing.v1 import AppTest

    from ui.families.language_model import UPLOAD_KEY
    at = AppTest.from_file(str(Path(__file__).resolve().parents[3] / "app.py"), default_timeout=60)
    at.query_params["preset"] = "pydocs-char-gpt"  # what the Concepts pages link to
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Vocabulary"] and int(metrics["Characters"].replace(",", "")) > 300_000
    assert any("char_gpt, 352,320 parameters" in c.value for c in at.caption)

    at.selectbox(key="cfg.data.name").set_value("text").run()
    at.file_uploader(key=UPLOAD_KEY).set_value(("novel.txt", (PARAGRAPH * 20).encode(), "text/plain")).run()
    saved = Path(at.session_state["cfg.data.path"])
    assert saved.parent.parent == lab_home / "cache" / "uploads" and saved.name == "novel.txt"
    assert saved.read_text() == PARAGRAPH * 20
    assert {m.label: m.value for m in at.metric}["Characters"] == f"{len(PARAGRAPH) * 20:,}"
    at.file_uploader(key=UPLOAD_KEY).set_value(("empty.txt", b"", "text/plain")).run()
    assert any("empty.txt is empty" in e.value for e in at.error)
    assert Path(at.session_state["cfg.data.path"]) == saved  # the bad upload changed nothing
