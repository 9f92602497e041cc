"""kit.retrieval: bm25, dense and hybrid retrieval as Haystack pipelines over the bundled
index, metadata filters (a role's access levels), and bad filters refused before Haystack."""

from __future__ import annotations

import math

import pytest

from kit import retrieval
from kit.data import load_manifest
from kit.indexing import RagError


def test_each_mode_is_a_pipeline_with_the_expected_components(index):
    assert set(retrieval.retrieval_pipeline(index, "bm25").graph.nodes) == {"bm25"}
    assert set(retrieval.retrieval_pipeline(index, "dense").graph.nodes) == {"embed_query", "dense"}
    assert set(retrieval.retrieval_pipeline(index, "hybrid").graph.nodes) == {
        "bm25",
        "embed_query",
        "dense",
        "join",
    }
    with pytest.raises(RagError, match="Unknown retrieval mode"):
        retrieval.retrieval_pipeline(index, "fuzzy")


def test_retrieval_returns_ranked_chunks_with_scores(index):
    found = retrieval.retrieve(
        retrieval.retrieval_pipeline(index, "dense"), "What is the S2 depth rating?"
    )
    assert found.mode == "dense" and len(found.documents) == retrieval.DEFAULT_CANDIDATES
    scores = [d.score for d in found.documents]
    assert scores == sorted(scores, reverse=True)
    assert math.isclose(found.similarity, scores[0])
    assert found.doc_ids[0] == "kb-001"
    table = found.to_frame(3)
    assert list(table.columns) == ["doc_id", "title", "access", "score", "text"]
    assert len(table) == 3


def test_role_filter_keeps_public_users_out_of_confidential_documents(index):
    manifest = load_manifest()
    pipeline = retrieval.retrieval_pipeline(index, "hybrid")
    question = "What is the emergency passphrase in the incident runbook?"
    public = retrieval.retrieve(pipeline, question, retrieval.role_filter("public"))
    admin = retrieval.retrieve(pipeline, question, retrieval.role_filter("admin"))
    assert public.documents and {d.meta["access"] for d in public.documents} == {"public"}
    assert manifest.canary_doc_id not in public.doc_ids
    assert manifest.canary_doc_id in admin.doc_ids
    employee = retrieval.retrieve(pipeline, question, retrieval.role_filter("employee"))
    assert {d.meta["access"] for d in employee.documents} <= {"public", "internal"}
    with pytest.raises(RagError, match="(?i)unknown role"):
        retrieval.role_filter("intern")


def test_filter_helpers():
    f = retrieval.combine_filters(
        retrieval.role_filter("public"),
        None,
        {"field": "meta.kind", "operator": "==", "value": "faq"},
    )
    assert f["operator"] == "AND" and len(f["conditions"]) == 2
    assert retrieval.filter_fields(f) == {"access", "kind"}
    assert retrieval.combine_filters(None, None) is None
    with pytest.raises(RagError, match="needs 'field'"):
        retrieval.filter_fields({"meta.kind": "faq"})


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"field": "meta.kind", "operator": "=", "value": "faq"}, "Unknown filter operator '='"),
        ({"field": "meta.kind", "operator": "contains", "value": "f"}, "use one of '==', '!='"),
        ({"field": "meta.kind", "operator": "in", "value": "faq"}, "takes a list of values"),
        ({"field": "meta.kind", "operator": "=="}, "needs 'field', 'operator' and 'value'"),
        ({"operator": "XOR", "conditions": []}, r"operator among \['AND', 'NOT', 'OR'\]"),
        ({"operator": "AND", "conditions": {"field": "x"}}, "'conditions' \\(a list\\)"),
        (
            {
                "operator": "AND",
                "conditions": [{"field": "meta.kind", "operator": "~", "value": 1}],
            },
            "Unknown filter operator '~'",
        ),
        ("meta.kind == faq", "must be a dict"),
    ],
    ids=[
        "typo",
        "not-haystack",
        "in-scalar",
        "no-value",
        "logic",
        "conditions-dict",
        "nested",
        "string",
    ],
)
def test_a_malformed_filter_is_named_before_haystack_sees_it(bad, message):
    with pytest.raises(RagError, match=message):
        retrieval.filter_fields(bad)


@pytest.mark.parametrize("store", ["ElasticsearchDocumentStore", "OpenSearchDocumentStore"])
def test_a_store_whose_integration_is_missing_names_the_package(store):
    fake = type(store, (), {})()  # the kit picks retrievers by the store's class name
    with pytest.raises(RagError, match=rf"pip install {retrieval.INTEGRATION_PACKAGES[store]}"):
        retrieval._retriever_classes(fake, "hybrid")
