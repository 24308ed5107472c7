"""The concept demos that use the reader's own trained run (core.concepts.run_demos): which runs they offer, and the
sequence-to-sequence demo decoding with a tiny trained run."""

from __future__ import annotations

import pytest
import torch

from conftest import train_in_process
from core.config import RunConfig
from core.errors import InputError, LabError
from core.tasks import validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_dates_run() -> str:
    raw = {"task": "seq2seq", "data": {"name": "dates", "options": {"examples": 600, "val_fraction": 0.1}},
           "model": {"name": "gru_attention", "options": {"embed": 8, "hidden": 16}},
           "task_options": {"eval_examples": 50},
           "optim": {"optimizer": "adam", "lr": 1e-2, "batch_size": 64, "epochs": 1}, "log_every": 5}
    return train_in_process(validate(RunConfig.from_dict(raw)))


def test_every_run_demo_is_a_catalogue_demo_id():
    from core.concepts.demos import DEMO_IDS
    from core.concepts.run_demos import RUN_DEMOS
    assert set(RUN_DEMOS) <= set(DEMO_IDS)


def test_the_seq2seq_demo_offers_finished_seq2seq_runs_and_decodes_with_them(lab_home):
    from core.concepts.run_demos import attend, runs_for, source_examples
    from core.store import RunStore
    assert runs_for("seq2seq_attention") == []
    run_id = tiny_dates_run()
    store = RunStore()
    store.create_run({"task": "seq2seq", "data": {"name": "dates"}}, name="still-queued")  # not finished: left out
    other = store.create_run({"task": "classification", "data": {"name": "digits"}}, name="digits-cnn")
    store.finish(other, "completed")  # finished, but another family
    assert [run.id for run in runs_for("seq2seq_attention", store)] == [run_id]
    assert runs_for("conv_kernel") == []  # a demo that computes its own toy needs no run

    examples = source_examples(run_id)
    assert examples and all(isinstance(text, str) and text.strip() for text in examples)
    result = attend(run_id, examples[0], beam=2)
    assert result.source == examples[0] and len(result.alternatives) <= 2
    assert result.attention.shape == (len(result.output_chars), len(result.source))  # (T_out, T_in)
    assert torch.allclose(result.attention.sum(-1), torch.ones(len(result.output_chars)), atol=1e-4)
    assert attend(run_id, examples[0]).text == attend(run_id, examples[0], beam=1).text  # greedy by default

    with pytest.raises(InputError, match="beam width"):
        attend(run_id, examples[0], beam=99)
    with pytest.raises(InputError):
        attend(run_id, "   ")
    with pytest.raises(LabError):  # no checkpoint, and not a sequence-to-sequence run: a message, not a traceback
        attend(other, "3 March 2021")
