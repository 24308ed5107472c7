"""Sequence to sequence with attention: the generated pairs, the model's attention, beam search, learning and
reloading a run."""

from __future__ import annotations

import pytest
import torch

from conftest import train_in_process
from core.config import DataConfig, RunConfig
from core.tasks import validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_numbers_and_dates_are_spelt_right_and_deterministic_by_seed():
    from core.data.pairs import build_dates, build_numbers_en, build_numbers_zh, date_text, number_words, number_zh
    import datetime
    assert number_words(1234) == "one thousand two hundred thirty-four"
    assert number_words(0) == "zero"
    assert number_words(9000) == "nine thousand"
    assert number_words(15) == "fifteen" and number_words(40) == "forty" and number_words(101) == "one hundred one"
    assert [number_zh(n) for n in (1234, 0, 10, 15, 110, 1004, 1010, 1204, 2000)] == [
        "一千二百三十四", "零", "十", "十五", "一百一十", "一千零四", "一千零一十", "一千二百零四", "二千"]
    assert ("1004", "一千零四") in build_numbers_zh(DataConfig(name="numbers-zh"), seed=0).val + \
        build_numbers_zh(DataConfig(name="numbers-zh"), seed=0).train
    assert date_text(datetime.date(2021, 3, 3), 0) == "3 March 2021"
    assert date_text(datetime.date(2021, 3, 3), 4) == "03.03.2021"
    numbers = build_numbers_en(DataConfig(name="numbers-en"), seed=3)
    assert numbers == build_numbers_en(DataConfig(name="numbers-en"), seed=3)
    assert numbers.train != build_numbers_en(DataConfig(name="numbers-en"), seed=4).train
    assert len(numbers.train) + len(numbers.val) == 10_000 and len(numbers.val) == 1000
    assert ("1234", "one thousand two hundred thirty-four") in numbers.train + numbers.val
    dates = build_dates(DataConfig(name="dates", options={"examples": 300}), seed=1)
    assert dates == build_dates(DataConfig(name="dates", options={"examples": 300}), seed=1)
    for source, target in dates.train + dates.val:
        assert datetime.date.fromisoformat(target).year in range(1950, 2050) and source


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_sums_to_one_over_the_source_and_ignores_padding(attention):
    from core.models.seq2seq import Seq2Seq
    torch.manual_seed(0)
    model = Seq2Seq(src_vocab=12, tgt_vocab=9, embed=8, hidden=16, attention=attention).eval()
    src = torch.tensor([[4, 5, 6, 7, 8], [4, 5, 0, 0, 0]])
    tgt_in = torch.tensor([[1, 3, 4, 5], [1, 6, 7, 8]])
    logits, weights = model(src, tgt_in, return_attention=True)
    assert logits.shape == (2, 4, 9) and weights.shape == (2, 4, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4), atol=1e-5)
    assert float(weights[1, :, 2:].abs().max()) == 0.0  # padded source positions get no attention
    ids, greedy_maps = model.greedy(src, 6)
    assert torch.allclose(greedy_maps.sum(-1), torch.ones_like(greedy_maps.sum(-1)), atol=1e-5)


def test_beam_of_width_one_is_greedy_decoding():
    from core.models.seq2seq import EOS_ID, Seq2Seq
    from core.tasks.seq2seq.translate import beam_search
    torch.manual_seed(1)
    model = Seq2Seq(src_vocab=12, tgt_vocab=9, embed=8, hidden=16).eval()
    for row in ([4, 5, 6], [7, 8, 9, 10, 11], [3]):
        src = torch.tensor([row])
        ids, maps = model.greedy(src, 10)
        greedy = [i for i in ids[0].tolist()]
        if EOS_ID in greedy:
            greedy = greedy[:greedy.index(EOS_ID)]
        with torch.no_grad():
            (best, score, attention, _), = beam_search(model, src, width=1, max_len=10)
        assert best == greedy
        assert torch.allclose(attention, maps[0, :attention.shape[0]], atol=1e-5)
        with torch.no_grad():
            wide = beam_search(model, src, width=4, max_len=10)
        assert wide[0][1] >= score - 1e-5 and len(wide) <= 4
        assert [h[1] for h in wide] == sorted((h[1] for h in wide), reverse=True)


def s2s_config(epochs=3, examples=3000, **optim) -> RunConfig:
    raw = {"task": "seq2seq", "data": {"name": "dates", "options": {"examples": examples, "val_fraction": 0.1}},
           "model": {"name": "gru_attention", "options": {"embed": 16, "hidden": 64}},
           "task_options": {"eval_examples": 300},
           "optim": {"optimizer": "adam", "lr": 1e-2, "batch_size": 64, "epochs": epochs, "grad_clip": 1.0, **optim},
           "log_every": 10}
    return validate(RunConfig.from_dict(raw))


def test_the_family_learns_and_a_reloaded_run_translates_the_same(lab_home):
    from core.store import RunStore
    from core.tasks.checkpoints import load_run_model
    from core.tasks.seq2seq.translate import translate
    run_id = train_in_process(s2s_config())
    run = load_run_model(run_id, "best")
    assert run.task == "seq2seq"
    summary = RunStore().get_run(run_id).summary
    assert summary["best_metric"] == "val_exact" and summary["best_val_exact"] >= 0.5, summary
    result = translate(run, "3 March 2021", beam=3)
    assert result.text == "2021-03-03", result
    assert result.attention.shape == (len(result.output_chars), len(result.source))
    assert torch.allclose(result.attention.sum(-1), torch.ones(len(result.output_chars)), atol=1e-4)
    assert result.alternatives[0] == (result.text, result.score) and len(result.alternatives) <= 3
    again = translate(load_run_model(run_id, "best"), "3 March 2021", beam=3)
    assert again.text == result.text and abs(again.score - result.score) < 1e-4
    long = translate(run, "3 March 2021" * 10 + "§")
    assert long.cut > 0 and len(long.source) == run.metadata["max_src"] and long.notices
    odd = translate(run, "3 March 2021 §")
    assert odd.unknown == ["§"] and odd.text  # reported, not fatal
