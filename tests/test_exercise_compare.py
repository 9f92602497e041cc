"""kit.exercises.compare: a right answer written another way passes its check."""

from __future__ import annotations

from kit.compare import GridResult
from kit.exercises import compare as ex_compare
from tests.fake_results import fake_scores


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
