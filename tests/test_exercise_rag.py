"""kit.exercises.rag: each check passes the solution and fails wrong answers with a clear reason."""

from __future__ import annotations

import pytest
from haystack import Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever

from kit.checks import ____
from kit.exercises import rag as ex


def _solve(question) -> dict:
    """Run a question's solution code the way the notebook would; return the namespace."""
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersTextEmbedder,
    )

    from kit.models import resolve_model

    namespace = {
        "Pipeline": Pipeline,
        "DocumentJoiner": DocumentJoiner,
        "InMemoryBM25Retriever": InMemoryBM25Retriever,
        "InMemoryEmbeddingRetriever": InMemoryEmbeddingRetriever,
        "SentenceTransformersTextEmbedder": SentenceTransformersTextEmbedder,
        "EMBEDDER": resolve_model("all-minilm-l6-v2"),
        "index": ex.default_index(),
    }
    exec(question.solution_code, namespace)
    return namespace


def test_blank_answers_are_not_attempted():
    for question in (ex.q1, ex.q2, ex.q3, ex.q4):
        values = {v: ____ for v in question.variables}
        result = question.evaluate(**values)
        assert not result.passed and not result.attempted


def test_q1_solution_passes_and_wrong_pipelines_fail():
    hybrid = _solve(ex.q1)["hybrid"]
    result = ex.q1.evaluate(hybrid=hybrid)
    assert result.passed, result.message
    assert "Recall@5" in result.message

    assert "Pipeline" in ex.q1.evaluate(hybrid="hybrid").message
    only_bm25 = Pipeline()
    only_bm25.add_component("bm25", InMemoryBM25Retriever(document_store=ex.default_index().store))
    assert "embed_query" in ex.q1.evaluate(hybrid=only_bm25).message

    concatenated = _solve(ex.q1)["hybrid"]
    concatenated.get_component("join").join_mode = DocumentJoiner(join_mode="concatenate").join_mode
    result = ex.q1.evaluate(hybrid=concatenated)
    assert not result.passed and "reciprocal_rank_fusion" in result.message


def test_q1_too_few_candidates_fails_on_recall():
    hybrid = _solve(ex.q1)["hybrid"]
    hybrid.get_component("bm25").top_k = 1
    hybrid.get_component("dense").top_k = 1
    result = ex.q1.evaluate(hybrid=hybrid)
    assert not result.passed and "recall@5 is" in result.message


@pytest.mark.parametrize(
    ("length", "overlap", "reason"),
    [
        (10, 0, "too small"),
        (500, 0, "so long"),
        (100, 60, "below half"),
        (40, 20, "below half"),  # half of 40 is not below half
        ("100", 0, "whole"),
    ],
)
def test_q2_rejects_bad_settings_without_building(length, overlap, reason):
    result = ex.q2.evaluate(split_length=length, split_overlap=overlap)
    assert not result.passed and reason in result.message


def test_q2_solution_passes_and_a_measured_bad_size_fails():
    ns = _solve(ex.q2)
    result = ex.q2.evaluate(split_length=ns["split_length"], split_overlap=ns["split_overlap"])
    assert result.passed, result.message
    result = ex.q2.evaluate(split_length=400, split_overlap=0)
    assert not result.passed and "recall@3" in result.message
    # measured on the train split (0.943 there; 0.962 on test, which settings never see)
    result = ex.q2.evaluate(split_length=200, split_overlap=40)
    assert not result.passed and "0.943" in result.message


def test_q3_threshold_between_off_topic_and_answerable():
    assert ex.q3.evaluate(**{"min_score": _solve(ex.q3)["min_score"]}).passed
    lenient = ex.q3.evaluate(min_score=0.1)
    assert not lenient.passed and "raise it" in lenient.message
    strict = ex.q3.evaluate(min_score=0.5)
    assert not strict.passed and "lower it" in strict.message
    assert "number" in ex.q3.evaluate(min_score="0.3").message


def test_q4_refuses_a_layout_it_cannot_fill_before_running_the_model():
    from kit.prompts import Layout

    result = ex.q4.evaluate(my_layout="sentences")
    assert not result.passed and "kit.prompts.Layout" in result.message
    no_slot = Layout("mine", "no question slot", user="Sources:\n{{ sources }}")
    result = ex.q4.evaluate(my_layout=no_slot)
    assert not result.passed and "{{ question }}" in result.message
    result = ex.q4.evaluate(my_layout=Layout("cite-first", "same name"))
    assert not result.passed and "own name" in result.message
    tight_user = "Sources:\n{{sources}}\n\nQuestion: {{question}}"
    tight = Layout("cite-first", "no spaces", user=tight_user)
    result = ex.q4.evaluate(my_layout=tight)  # Jinja fills {{sources}} as it fills {{ sources }}
    assert not result.passed and "own name" in result.message
    assert ex.layout_scores.cache_info().currsize == 0  # refused before asking the model
