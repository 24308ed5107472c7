"""Text classification: its data sets skip bad input and say where, its tokenisers map back onto the text, its four
models ignore padding and learn, and a trained run classifies, explains (integrated gradients add up) and evaluates
to the accuracy training recorded."""

from __future__ import annotations

import zipfile

import pytest
import torch

from conftest import train_in_process
from core.config import DataConfig, RunConfig
from core.errors import DataError, InputError
from core.tasks import validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = ("text_bag", "text_cnn", "text_bilstm", "text_transformer")


def _write(root, files: dict):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())


def test_a_text_folder_skips_bad_files_and_names_them(lab_home, tmp_path, monkeypatch):
    from core.data.labelled_text import build_text_folder
    monkeypatch.setenv("LAB_DATA_ROOTS", str(tmp_path))
    files = {f"reviews/train/good/{i}.txt": f"a fine and lovely film number {i}" for i in range(6)}
    files |= {f"reviews/train/bad/{i}.txt": f"a dull and tedious film number {i}" for i in range(6)}
    files |= {"reviews/train/bad/empty.txt": "   \n", "reviews/train/bad/latin1.txt": "caf\xe9 terrible".encode("latin-1"),
              "reviews/train/lonely/only.txt": "the only one of its kind",
              "reviews/val/good/v.txt": "lovely", "reviews/val/bad/v.txt": "tedious", "reviews/notes.md": "ignored"}
    _write(tmp_path, files)
    data = build_text_folder(DataConfig(name="text-folder", path=str(tmp_path / "reviews")), seed=0)
    assert data.classes == ["bad", "good"]
    assert len(data.train) == 12 and sorted(t for t, _ in data.val) == ["lovely", "tedious"]
    assert data.skipped_count == 3
    notes = "\n".join(data.skipped)
    assert "train/bad/empty.txt: empty" in notes and "train/bad/latin1.txt: not UTF-8" in notes
    assert "'lonely' has only one example (train/lonely/only.txt)" in notes
    # the same folder zipped (wrapped in its top folder), without a val/ folder: validation is drawn per class
    archive = tmp_path / "reviews.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, data_ in files.items():
            if "/val/" not in name:
                z.writestr(name, data_ if isinstance(data_, bytes) else data_.encode())
    zipped = build_text_folder(DataConfig(name="text-folder", path=str(archive), options={"val_fraction": 0.34}),
                               seed=1)
    assert zipped.classes == ["bad", "good"] and zipped.skipped_count == 3
    assert sorted(k for _, k in zipped.val) == [0, 0, 1, 1] and len(zipped.train) == 8
    with pytest.raises(DataError, match="nothing at"):
        build_text_folder(DataConfig(name="text-folder", path=str(tmp_path / "missing")), seed=0)


def test_repeats_conflicts_nesting_and_encodings_of_a_text_folder(lab_home, tmp_path, monkeypatch):
    from core.data.labelled_text import MAX_FILE_BYTES, build_text_folder
    monkeypatch.setenv("LAB_DATA_ROOTS", str(tmp_path))
    long_chinese = ("中文" * (MAX_FILE_BYTES // 6 + 10)).encode()  # cut at the limit inside a character
    _write(tmp_path, {
        "set/train/pos/2019/a.txt": "good film", "set/train/pos/b.txt": b"\xef\xbb\xbfgreat\r\nfilm\r\n",
        "set/train/pos/c.txt": "good film", "set/train/pos/big.txt": long_chinese,
        "set/train/neg/a.txt": "bad film", "set/train/neg/b.txt": "awful film", "set/train/neg/c.txt": "good film?",
        "set/train/neg/d.txt": "great\nfilm",  # the same text as pos/b.txt once its BOM and CRLF are read
        "set/val/pos/v.txt": "fine film", "set/val/neg/v.txt": "bad film", "set/val/odd/v.txt": "only here"})
    data = build_text_folder(DataConfig(name="text-folder", path=str(tmp_path / "set")), seed=0)
    assert data.classes == ["neg", "pos"]  # pos/2019/a.txt belongs to pos; "odd" is only in val/
    texts = {data.classes[k]: sorted(t for t, j in data.train if j == k) for k in range(2)}
    assert texts["pos"][:1] == ["good film"] and texts["pos"][1].startswith("中文中文")
    # "bad film" is in train/neg and val/neg: it stays on one side only, and neg still gets a validation text
    assert not {t for t, _ in data.train} & {t for t, _ in data.val}
    assert sorted(k for _, k in data.val) == [0, 1] and ("fine film", 1) in data.val
    assert sum(t == "bad film" for t, _ in data.train + data.val) == 1
    notes = "\n".join(data.skipped)
    assert "train/pos/c.txt: a repeat of an earlier text" in notes
    assert "train/neg/d.txt: the same text is labelled neg, pos" in notes and "'odd' is only among the validation" in notes
    assert not [t for t, _ in data.train if t == "great\nfilm"]  # both copies of the conflicting text are gone


def test_a_csv_skips_bad_rows_by_line_and_refuses_one_class(lab_home, tmp_path, monkeypatch):
    from core.data.labelled_text import build_text_csv
    monkeypatch.setenv("LAB_DATA_ROOTS", str(tmp_path))
    rows = [b"id,text,label"] + [f"{i},spam offer {i} win money,spam".encode() for i in range(5)] + \
        [f"{i},meeting notes {i} for monday,ham".encode() for i in range(5)] + \
        [b"11,,ham", b"12,no label here", b"13,caf\xe9 offer,spam", b"", b"14,one of a kind,rare",
         b'15,"a quoted, comma text",ham']
    (tmp_path / "mail.csv").write_bytes(b"\n".join(rows) + b"\n")
    data = build_text_csv(DataConfig(name="text-csv", path=str(tmp_path / "mail.csv")), seed=0)
    assert data.classes == ["ham", "spam"] and len(data.train) + len(data.val) == 11
    assert ("a quoted, comma text", 0) in data.train + data.val
    notes = "\n".join(data.skipped)
    assert data.skipped_count == 4, notes
    assert "mail.csv:12: empty text" in notes and "mail.csv:13: 2 columns, no label" in notes
    assert "mail.csv:14: not UTF-8" in notes and "'rare' has only one example (mail.csv:16)" in notes
    from core.data.labelled_text import describe  # what the Train form's preview shows of it
    summary = describe(DataConfig(name="text-csv", path=str(tmp_path / "mail.csv")), seed=0)
    assert summary["classes"] == ["ham", "spam"] and sum(summary["train"]) + sum(summary["val"]) == 11
    assert summary["train"][0] == sum(1 for _, k in data.train if k == 0) and summary["skipped_count"] == 4
    assert summary["example"] == data.train[0]
    # Windows line ends, a BOM, a field longer than the csv module's default limit, two examples a class
    huge = "word " * 40_000
    (tmp_path / "win.csv").write_bytes(("\ufefftext,label\r\nfirst one,x\r\nsecond one,x\r\n"
                                         f"\"{huge}\",y\r\nanother y,y\r\n").encode())
    win = build_text_csv(DataConfig(name="text-csv", path=str(tmp_path / "win.csv")), seed=0)
    assert win.classes == ["x", "y"] and win.skipped_count == 0
    assert len(win.train) == len(win.val) == 2 and {k for _, k in win.val} == {0, 1}
    (tmp_path / "one.csv").write_text("text,label\nhello there,a\nhi again,a\n")
    with pytest.raises(DataError, match="1 usable class"):
        build_text_csv(DataConfig(name="text-csv", path=str(tmp_path / "one.csv")), seed=0)
    (tmp_path / "wrong.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="columns text and label"):
        build_text_csv(DataConfig(name="text-csv", path=str(tmp_path / "wrong.csv")), seed=0)


def test_the_docstrings_are_real_labelled_text_split_by_seed(lab_home):
    from core.data.labelled_text import build_docstrings
    data = build_docstrings(DataConfig(name="docstrings"), seed=0)
    assert data.classes == ["asyncio", "decimal", "email", "http", "importlib", "logging", "unittest", "xml"]
    assert len(data.train) > 1000 and len(data.val) > 250 and data.skipped_count == 0
    assert not {t for t, _ in data.train} & {t for t, _ in data.val}
    assert build_docstrings(DataConfig(name="docstrings"), seed=0) == data
    assert build_docstrings(DataConfig(name="docstrings"), seed=1).train != data.train
    small = build_docstrings(DataConfig(name="docstrings", options={"max_per_class": 10}), seed=0)
    assert len(small.train) == 80


@pytest.mark.parametrize("kind", ["char", "subword"])
def test_tokens_map_back_onto_the_text_and_long_texts_are_cut(kind):
    from core.data.tokens import TokenVocab
    texts = ["Return the logger with the given name.", "Create a new event loop.", "Parse an email message."] * 5
    vocab = TokenVocab.fit(texts, kind=kind, size=120)
    again = TokenVocab.from_dict(vocab.to_dict())
    text = "Return the new event loop!"
    tokens = again.encode(text, max_len=100)
    assert tokens.ids == vocab.encode(text, max_len=100).ids and tokens.cut == 0
    assert all(0 <= a < b <= len(text) for a, b in tokens.spans) and 0 not in tokens.ids
    pieces = "".join(text[a:b] for a, b in tokens.spans)
    assert pieces.replace(" ", "") == text.replace(" ", "")  # every non-space character is in some token
    if kind == "subword":
        assert len(tokens.ids) < len(text.replace(" ", ""))  # learned pieces are longer than one character
    cut = again.encode(text, max_len=3)
    assert len(cut.ids) == 3 and cut.cut == len(tokens.ids) - 3
    assert 0 not in vocab.encode("see [PAD] here", max_len=100).ids  # typed "[PAD]" is text, never padding


def test_attributions_cover_the_text_once_even_when_tokens_share_a_span():
    from core.tasks.text_classification.predict import TokenAttribution
    # NFKC turns the ligature "ﬁ" into two letters, two tokens with one span (0, 1)
    why = TokenAttribution(text="ﬁnance now", spans=[(0, 1), (0, 1), (1, 6), (7, 10)], scores=[0.1, 0.2, 0.3, -0.1],
                           target="x", probability=0.5, delta=0.0)
    assert "".join(piece for piece, _ in why.pieces()) == "ﬁnance now"


@pytest.mark.parametrize("name", MODELS)
def test_models_ignore_padding_and_overfit_a_small_set(name):
    from core.models import model_info
    torch.manual_seed(0)
    model = model_info(name).builder(vocab=30, num_classes=3, max_len=64, embed=16)
    ids = torch.randint(2, 30, (6, 9))
    ids[3:, 6:] = 0  # three shorter texts
    model.eval()
    with torch.no_grad():
        padded = model(torch.cat([ids, torch.zeros(6, 5, dtype=torch.long)], 1))
        assert torch.allclose(model(ids), padded, atol=1e-5)
    empty = model(torch.zeros(2, 4, dtype=torch.long))  # an all-padding row: defined scores, no NaN
    assert torch.isfinite(empty).all()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(80):
        loss = torch.nn.functional.cross_entropy(model(ids), labels)
        first = first if first is not None else float(loss)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.2 * first, (first, float(loss))


def tc_config(model="text_cnn", epochs=6, **options) -> RunConfig:
    raw = {"task": "text_classification", "data": {"name": "docstrings", "options": {"max_per_class": 60}},
           "model": {"name": model, "options": {"embed": 32}},
           "task_options": {"tokens": "subword", "vocab_size": 600, "max_len": 96, **options},
           "optim": {"optimizer": "adamw", "lr": 5e-3, "batch_size": 32, "epochs": epochs}, "log_every": 5}
    return validate(RunConfig.from_dict(raw))


def test_a_run_learns_classifies_explains_and_evaluates_as_recorded(lab_home):
    from core.store import RunStore
    from core.tasks.checkpoints import load_run_model
    from core.tasks.text_classification.evaluation import evaluate_run, val_texts
    from core.tasks.text_classification.predict import classify_text, explain_text

    run_id = train_in_process(tc_config())
    store = RunStore()
    summary = store.get_run(run_id).summary
    assert summary["best_metric"] == "val_acc" and summary["best_val_acc"] > 0.45, summary  # chance is 1/8
    losses = store.metrics(run_id, keys=["epoch_train_loss"])["value"].tolist()
    assert losses[-1] < 0.7 * losses[0]
    report = evaluate_run(run_id, "best")
    assert report.accuracy == pytest.approx(summary["best_val_acc"], abs=1e-6)
    import core.tasks.text_classification as family
    with pytest.MonkeyPatch.context() as patch:  # the second visit reads the report cached beside the checkpoint
        patch.setattr(family, "predict_batches", lambda *a, **k: pytest.fail("evaluated again"))
        again = evaluate_run(run_id, "best")
    assert again.accuracy == report.accuracy and (again.confusion == report.confusion).all()
    assert report.confusion.sum() == len(report.classes) * 12 and list(report.per_class["class"]) == report.classes
    if len(report.misclassified):
        (text,) = val_texts(run_id, report.misclassified["index"][:1])
        assert isinstance(text, str) and text

    run = load_run_model(run_id, "best")
    sentence = "Log a message with severity ERROR on the root logger, and the handlers of the logger."
    prediction = classify_text(run, sentence, top_k=3)
    assert len(prediction.top) == 3 and prediction.top[0][1] >= prediction.top[1][1]
    assert sum(p for _, p in classify_text(run, sentence, top_k=8).top) == pytest.approx(1.0, abs=1e-5)
    why = explain_text(run, sentence)
    assert why.target == prediction.top[0][0] and len(why.scores) == prediction.tokens
    assert why.delta < 0.05 * max(1.0, sum(abs(s) for s in why.scores))  # completeness: the scores add up
    assert "".join(piece for piece, _ in why.pieces()) == sentence
    long = classify_text(run, sentence * 20)
    assert long.cut > 0 and long.tokens == 96 and long.notices
    with pytest.raises(InputError, match="type or upload"):
        classify_text(run, "   ")
    with pytest.raises(InputError, match="not a class"):
        explain_text(run, sentence, target="nope")

    # the toolkit: an ONNX export (texts of any length) agrees with PyTorch; int8 keeps the accuracy close
    from core.toolkit import tools_for
    from core.toolkit.compress import compress_run
    from core.toolkit.export import export_run
    assert tools_for("text_classification") == ["compress", "export"]
    exported = export_run(run_id, "onnx")
    assert exported.inputs == "validation" and exported.top1_agreement == 1.0 and exported.max_abs_diff < 1e-4
    import onnxruntime
    session = onnxruntime.InferenceSession(exported.path, providers=["CPUExecutionProvider"])
    ids = torch.tensor([list(range(2, 40))])  # a length the check did not use
    expected = run.model(ids).detach().numpy()
    assert abs(session.run(None, {"tokens": ids.numpy()})[0] - expected).max() < 1e-4
    report = compress_run(run_id, quantize="dynamic")
    assert report.row("int8-dynamic")["metric"] == pytest.approx(report.row("original")["metric"], abs=0.05)


def test_bad_model_options_are_refused_before_a_run_is_recorded():
    from core.errors import ConfigError
    with pytest.raises(ConfigError, match="heads"):
        validate(RunConfig.from_dict({"task": "text_classification", "data": {"name": "docstrings"},
                                      "model": {"name": "text_transformer", "options": {"embed": 30, "heads": 4}}}))
    with pytest.raises(ConfigError, match="widths"):
        validate(RunConfig.from_dict({"task": "text_classification", "data": {"name": "docstrings"},
                                      "model": {"name": "text_cnn", "options": {"widths": "3,x"}}}))
    with pytest.raises(ConfigError, match="data.path"):
        validate(RunConfig.from_dict({"task": "text_classification", "data": {"name": "text-csv"},
                                      "model": {"name": "text_bag"}}))
