"""kit.exercises.finetune and .compare: a right answer written another way passes its check."""

from __future__ import annotations

import numpy as np

from kit.compare import GridResult
from kit.exercises import compare as ex_compare
from kit.exercises import finetune as ex_finetune
from tests.fake_results import fake_scores


def _solution_labels() -> list[int]:
    from kit.chat_data import with_system
    from kit.generate import chat_prompt_ids

    tok = ex_finetune._tokenizer()
    messages = with_system(ex_finetune.example().messages)
    prompt_ids = chat_prompt_ids(tok, messages[:-1])
    full_ids = tok.apply_chat_template(messages)["input_ids"]
    return [-100] * len(prompt_ids) + full_ids[len(prompt_ids) :]


def test_finetune_q2_takes_the_labels_as_a_list_a_tuple_or_numpy_ints():
    labels = _solution_labels()
    for given in (labels, tuple(labels), list(np.array(labels)), np.array(labels)):
        result = ex_finetune.q2.evaluate(labels=given)
        assert result.passed, (type(given), result.message)
    for wrong in ([float(x) for x in labels], [True, *labels[1:]], "labels"):
        result = ex_finetune.q2.evaluate(labels=wrong)
        assert not result.passed and "list of integers" in result.message


def test_compare_q2_takes_the_rate_as_the_learner_reads_it(monkeypatch):
    scores = fake_scores()
    monkeypatch.setattr(
        ex_compare, "_result", lambda: GridResult(scores, {}, scores.iloc[:0], {}, {})
    )
    rag = scores[scores["system"] == "rag"]
    rate = rag[rag["type"] != "unanswerable"]["correct"].mean()
    for given in (rate, round(rate, 3), round(rate, 4)):
        assert ex_compare.q2.evaluate(rag_answerable_correct=given).passed, given
    off = ex_compare.q2.evaluate(rag_answerable_correct=round(rate, 3) + 0.002)
    assert not off.passed and "is not the mean" in off.message
    every = rag["correct"].mean()
    if abs(every - rate) > 1e-3:  # the fake data has unanswerable questions RAG gets wrong
        message = ex_compare.q2.evaluate(rag_answerable_correct=every).message
        assert "unanswerable questions too" in message
