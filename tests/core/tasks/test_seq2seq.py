"""Sequence to sequence with attention: the generated pairs and your own (skipped lines counted), both models'
attention, beam search, learning, BLEU, and reloading a run."""

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
    assert len({s for s, _ in numbers.train + numbers.val}) == 10_000 and len(numbers.val) == 1000
    # the small numbers are always trained on, several times each, and never held out
    assert numbers.train.count(("0", "zero")) == 50 and numbers.train.count(("99", "ninety-nine")) == 10
    assert not {s for s, _ in numbers.val} & {str(n) for n in range(100)}
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
    with torch.no_grad():
        logits, weights = model(src, tgt_in, return_attention=True)
    assert logits.shape == (2, 4, 9) and weights.shape == (2, 4, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4), atol=1e-5)
    assert float(weights[1, :, 2:].abs().max()) == 0.0  # padded source positions get no attention
    ids, greedy_maps = model.greedy(src, 6)
    assert torch.allclose(greedy_maps.sum(-1), torch.ones_like(greedy_maps.sum(-1)), atol=1e-5)


def tiny_transformer(src_vocab=12, tgt_vocab=9):
    from core.models.seq2seq_transformer import TransformerSeq2Seq
    return TransformerSeq2Seq(src_vocab=src_vocab, tgt_vocab=tgt_vocab, d_model=16, heads=2, layers=2, ff=32,
                              dropout=0.0)


def tiny_gru(src_vocab=12, tgt_vocab=9):
    from core.models.seq2seq import Seq2Seq
    return Seq2Seq(src_vocab=src_vocab, tgt_vocab=tgt_vocab, embed=8, hidden=16)


def test_transformer_attention_sums_to_one_ignores_padding_and_steps_match_teacher_forcing():
    torch.manual_seed(0)
    model = tiny_transformer().eval()
    src = torch.tensor([[4, 5, 6, 7, 8], [4, 5, 0, 0, 0]])
    tgt_in = torch.tensor([[1, 3, 4, 5], [1, 6, 7, 8]])
    with torch.no_grad():
        logits, weights = model(src, tgt_in, return_attention=True)
    assert logits.shape == (2, 4, 9) and weights.shape == (2, 4, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4), atol=1e-5)
    assert float(weights[1, :, 2:].abs().max()) == 0.0  # padded source positions get no attention
    # the padded row decodes as if the padding were not there
    with torch.no_grad():
        alone = model(src[1:, :2], tgt_in[1:])
    assert torch.allclose(alone, logits[1:], atol=1e-5)
    # decoding step by step (what greedy and beam search do) gives teacher forcing's logits and attention
    state, context, memory = model.start(src)
    with torch.no_grad():
        for t in range(tgt_in.size(1)):
            step_logits, state, context, step_weights = model.step(tgt_in[:, t], state, context, memory)
            assert torch.allclose(step_logits, logits[:, t], atol=1e-5)
            assert torch.allclose(step_weights, weights[:, t], atol=1e-5)
    ids, greedy_maps = model.greedy(src, 6)
    assert torch.allclose(greedy_maps.sum(-1), torch.ones_like(greedy_maps.sum(-1)), atol=1e-5)
    assert float(greedy_maps[1, :, 2:].abs().max()) == 0.0


@pytest.mark.parametrize("build", [tiny_gru, tiny_transformer], ids=["gru", "transformer"])
def test_beam_of_width_one_is_greedy_decoding(build):
    from core.models.seq2seq import EOS_ID
    from core.tasks.seq2seq.translate import beam_search
    torch.manual_seed(1)
    model = build().eval()
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


def test_a_short_transformer_run_lowers_the_loss():
    from core.data.pairs import CharVocab, build_numbers_en
    from core.tasks.seq2seq import PairBatches, Seq2SeqTask, encode_pairs
    torch.manual_seed(0)
    pairs = build_numbers_en(DataConfig(name="numbers-en"), seed=0).train[:512]
    src_vocab, tgt_vocab = CharVocab.from_texts(s for s, _ in pairs), CharVocab.from_texts(t for _, t in pairs)
    batches = PairBatches(*encode_pairs(pairs, src_vocab, tgt_vocab), batch_size=64, device="cpu")
    model = tiny_transformer(len(src_vocab), len(tgt_vocab))
    task, optimizer = Seq2SeqTask(max_tgt=45), torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for epoch in range(5):
        for batch in batches.epoch(epoch):
            loss, _ = task.training_step(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_bleu_is_100_for_the_targets_themselves_and_lower_otherwise():
    from core.tasks.seq2seq import corpus_bleu
    words = ["one thousand two hundred thirty-four", "nine thousand nine", "seven hundred seventy-seven"]
    assert corpus_bleu(words, words) == pytest.approx(100.0)
    assert 0 < corpus_bleu(["one thousand two hundred thirty-five", "nine thousand nine", "seven hundred"], words) < 90
    chinese = ["一千二百三十四", "九千零九", "七百七十七"]  # scored per character: no spaces to split words at
    assert corpus_bleu(chinese, chinese) == pytest.approx(100.0)
    assert 0 < corpus_bleu(["一千二百三十五", "九千零九", "七百"], chinese) < 90


def test_evaluation_reports_bleu_beside_exact_match():
    from core.data.pairs import CharVocab
    from core.tasks.seq2seq import PairBatches, Seq2SeqTask, encode_pairs
    pairs = [("12", "twelve"), ("40", "forty"), ("7", "seven")]
    src_vocab, tgt_vocab = CharVocab.from_texts(s for s, _ in pairs), CharVocab.from_texts(t for _, t in pairs)
    batches = PairBatches(*encode_pairs(pairs, src_vocab, tgt_vocab), batch_size=8, device="cpu", shuffle=False)
    metrics = Seq2SeqTask(max_tgt=6, tgt_tokens=tgt_vocab.tokens).evaluate(tiny_gru(len(src_vocab), len(tgt_vocab)),
                                                                           batches)
    assert set(metrics) == {"val_loss", "val_exact", "val_bleu"} and 0 <= metrics["val_bleu"] <= 100


# ---- your own pairs ----------------------------------------------------------------------------------------

def test_own_pairs_skip_bad_lines_with_file_and_line_and_reach_the_runs_metadata(lab_home):
    import zipfile
    from core.data.pairs import build_pairs_folder
    from core.tasks.seq2seq import setup
    folder = lab_home / "data"
    folder.mkdir(parents=True)
    good = [f"{n}\tn{n}" for n in range(30)]
    lines = good[:10] + ["", "no tab here", "\tempty source"] + good[10:]
    (folder / "pairs.tsv").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe bad\tbytes\n" + b"20\tn20\tCC-BY\n")
    data = build_pairs_folder(DataConfig(name="pairs-folder", path=str(folder / "pairs.tsv"),
                                         options={"val_fraction": 0.2}), seed=0)
    assert len(data.train) + len(data.val) == 30 and len(data.val) == 6
    from core.data.pairs import describe  # what the Train form's preview shows of it
    summary = describe(DataConfig(name="pairs-folder", path=str(folder / "pairs.tsv"), options={"val_fraction": 0.2}))
    assert (summary["train"], summary["val"], summary["skipped"]) == (24, 6, 5) and summary["examples"] == data.val
    assert summary["longest_source"] == max(len(a) for a, _ in data.train + data.val)
    assert not set(data.train) & set(data.val)
    assert data.skipped == 5  # the last line repeats "20<TAB>n20" (its third column, an attribution, is ignored)
    assert data.skipped_notes == ["pairs.tsv:11: empty line", "pairs.tsv:12: no tab between source and target",
                                  "pairs.tsv:13: empty source or target",
                                  "pairs.tsv:34: not UTF-8 (undecodable byte at position 0)",
                                  "pairs.tsv:35: a repeat of an earlier pair"]
    with zipfile.ZipFile(folder / "pairs.zip", "w") as archive:
        archive.writestr("set/a.tsv", "\n".join(good[:20]))
        archive.writestr("set/b.txt", "\n".join(good[20:] + ["oops"]))
        archive.writestr("__MACOSX/set/._a.tsv", "\x00\x01")
        archive.writestr("set/readme.md", "not pairs")
    config = validate(RunConfig.from_dict({
        "task": "seq2seq", "data": {"name": "pairs-folder", "path": str(folder / "pairs.zip")},
        "model": {"name": "transformer_seq2seq", "options": {"d_model": 16, "heads": 2, "layers": 1, "ff": 32}},
        "optim": {"batch_size": 8, "epochs": 1}}))
    meta = setup(config, "cpu").metadata["data"]
    assert meta["train"] + meta["val"] == 30 and meta["skipped"] == 1
    assert meta["skipped_notes"] == ["set/b.txt:11: no tab between source and target"]


def test_own_pairs_without_a_usable_line_are_a_clear_error(lab_home):
    from core.data.pairs import build_pairs_folder, save_pairs_upload
    from core.errors import DataError
    folder = lab_home / "data"
    folder.mkdir(parents=True)
    (folder / "words.txt").write_text("just words\nno tabs at all\n")
    with pytest.raises(DataError, match=r"words\.txt: 0 usable source<TAB>target lines .*words\.txt:1: no tab"):
        build_pairs_folder(DataConfig(name="pairs-folder", path=str(folder / "words.txt")))
    with pytest.raises(DataError, match="nothing at"):
        build_pairs_folder(DataConfig(name="pairs-folder", path=str(folder / "missing.tsv")))
    with pytest.raises(DataError, match="0 usable"):
        save_pairs_upload(b"\n\n", "empty.tsv")
    with pytest.raises(DataError, match="1 usable source<TAB>target line in 1 file.*at least two"):
        save_pairs_upload(b"3\tthree\n", "one.tsv")  # refused at upload, not when the run starts
    kept = save_pairs_upload("3\tthree\n4\tfour\r\n".encode(), "mine.tsv")
    assert kept.name == "mine.tsv" and build_pairs_folder(DataConfig(name="pairs-folder", path=str(kept))).skipped == 0


def test_the_transformer_preset_and_heads_that_do_not_divide_are_checked():
    from core.errors import ConfigError
    from core.presets import PRESETS
    for name in ("numbers-en-transformer", "numbers-zh-gru-attention"):
        assert validate(PRESETS[name][1]).task == "seq2seq"
    raw = PRESETS["numbers-en-transformer"][1].to_dict()
    raw["model"]["options"]["heads"] = 3
    with pytest.raises(ConfigError, match="model.options.heads"):
        validate(RunConfig.from_dict(raw))
