"""kit.rag_eval: retrieval and answers measured per mode and per prompt layout (real models)."""

from __future__ import annotations

import math

import pytest

from kit import rag_eval
from kit.data import load_qa
from kit.rag import RagError


def test_hybrid_beats_bm25_and_dense_on_the_test_split(index):
    scores = rag_eval.evaluate_retrieval(index, k=5)
    summary = rag_eval.summarise_retrieval(scores)
    recall = summary["recall@5"]
    assert recall["hybrid"] >= 0.95
    assert recall["hybrid"] > recall["bm25"]
    assert recall["hybrid"] > recall["dense"]
    assert set(summary.columns) >= {"hit@5", "mrr", "ndcg", "p50_ms", "p95_ms"}
    assert (summary["p95_ms"] >= summary["p50_ms"]).all()
    assert scores["similarity"].notna().sum() == 2 * summary.loc["hybrid", "questions"]


def test_a_layout_is_chosen_on_the_train_split_never_the_test_split(index, lm):
    with pytest.raises(RagError, match="train split"):
        rag_eval.compare_layouts(index, ["chunks"], generator=lm, records=load_qa("test")[:2])
    scores = rag_eval.compare_layouts(
        index, ["chunks", "sentences"], generator=lm, profile="smoke", limit=3, max_new_tokens=8
    )
    assert set(scores["split"]) == {"train"} and len(scores) == 6
    summary = rag_eval.summarise_layouts(scores)
    assert list(summary.index) == ["chunks", "sentences"]
    assert summary.loc["sentences", "prompt_tokens"] < summary.loc["chunks", "prompt_tokens"]


def test_a_haystack_component_is_measured_on_one_layout_it_can_take(index):
    """A component can sit in one pipeline only, and renders its own chat template: several
    layouts, or one that starts the reply, are refused before anything runs."""
    from tests.test_rag import Says

    stub = Says("4 euros [1]")
    with pytest.raises(RagError, match="one pipeline only"):
        rag_eval.compare_layouts(index, generator=stub, profile="smoke", limit=2)
    with pytest.raises(RagError, match="starts the model's reply"):
        rag_eval.compare_layouts(index, ["cite-first"], generator=stub, profile="smoke", limit=2)
    scores = rag_eval.compare_layouts(
        index, ["sentences"], generator=stub, profile="smoke", limit=2
    )
    assert set(scores["layout"]) == {"sentences"} and len(scores) == 2


def test_evaluate_rag_scores_answers_and_retrieval(hybrid):
    test = load_qa("test")
    records = [r for r in test if r.answerable][:2] + [r for r in test if not r.answerable][:1]
    df = rag_eval.evaluate_rag(hybrid, records=records)
    assert list(df["id"]) == [r.id for r in records]
    assert set(df["mode"]) == {"hybrid"} and set(df["system"]) == {"rag"}
    for col in ("correct", "f1", "sas", "citation_precision", "abstained", "recall@5", "mrr"):
        assert col in df.columns
    assert df["recall@5"].iloc[:2].notna().all() and math.isnan(df["recall@5"].iloc[2])
    assert (df["retrieve_s"] > 0).all() and (df["latency_s"] >= df["retrieve_s"]).all()
    summary = rag_eval.summarise_modes(df)
    assert list(summary.index) == ["hybrid"] and "recall@5" in summary.columns
    fig = rag_eval.plot_modes(
        rag_eval.summarise_retrieval(
            rag_eval.evaluate_retrieval(index=hybrid.index, modes=["bm25"], records=records)
        ),
        summary,
    )
    assert len(fig.axes) == 2


def test_percentile():
    assert rag_eval.percentile([1, 2, 3, 4], 50) == 2.5
    assert rag_eval.percentile([5], 95) == 5
    assert math.isnan(rag_eval.percentile([], 50))
