"""Vectors reused: an index embeds only text that no earlier index embedded."""

from __future__ import annotations

import pytest
from haystack import Document

from kit import indexing, retrieval
from kit.citations import doc_id
from kit.data import load_documents
from kit.embeddings import MEMORY, EmbeddingMemory
from kit.models import DEFAULT_EMBEDDER, resolve_model


def _vectors(index: indexing.Index) -> dict[str, list[float]]:
    return {d.id: d.embedding for d in index.store.filter_documents()}


def test_an_updated_index_embeds_only_the_changed_text_and_equals_a_fresh_one():
    before = load_documents("v1")[:6]
    after = [*before[:5], Document(id=before[5].id, content="New text.", meta=before[5].meta)]
    MEMORY.clear()
    first = indexing.build_index(before)
    again = indexing.build_index(after)
    changed = len(indexing.chunks_of(again, doc_id(before[5])))
    assert first.reused == 0 and again.reused == again.chunks - changed > 0
    assert f"{again.reused} of the chunks' vectors reused" in repr(again)
    MEMORY.clear()
    fresh = indexing.build_index(after)
    assert fresh.reused == 0
    reused, embedded = _vectors(again), _vectors(fresh)
    assert list(reused) == list(embedded)  # the same chunks, stored in the same order
    for key, vector in reused.items():  # equal within float32 rounding, not bit for bit
        assert vector == pytest.approx(embedded[key], abs=1e-6)
    question = "How deep can the Fennick S2 be submerged?"
    found = [
        [d.id for d in retrieval.retrieve(retrieval.retrieval_pipeline(i), question).documents]
        for i in (again, fresh)
    ]
    assert found[0] == found[1] and found[0]


def test_the_embedder_keys_a_vector_by_model_title_and_text():
    memory = EmbeddingMemory(limit=3)
    embedder = indexing.document_embedder()
    embedder.memory = memory
    docs = [
        Document(content="The pump runs at 40 rpm.", meta={"title": "Pump"}),
        Document(content="The pump runs at 40 rpm.", meta={"title": "Old pump"}),
        Document(content="The tank holds 800 litres.", meta={"title": "Tank"}),
    ]
    out = embedder.run(documents=docs)["documents"]
    assert [d.content for d in out] == [d.content for d in docs] and embedder.reused == 0
    assert out[0].embedding != out[1].embedding  # the title is embedded with the text
    assert len(memory) == 3
    again = embedder.run(documents=[docs[2], docs[0]])["documents"]
    assert embedder.reused == 2
    assert again[0].embedding == pytest.approx(out[2].embedding, abs=1e-7)
    assert again[1].id == docs[0].id and again[1].meta == docs[0].meta
    embedder.run(documents=[Document(content="A fourth text.", meta={"title": "New"})])
    assert len(memory) == 1  # full: it started again, with the new one
    other = indexing.document_embedder()
    other.normalize_embeddings = not other.normalize_embeddings
    assert other.key(docs[0]) != embedder.key(docs[0]) == indexing.document_embedder().key(docs[0])
    with pytest.raises(TypeError, match="list of Documents"):
        embedder.run(documents=["not a document"])


def test_pickers_of_one_embedder_share_the_sentences_they_embedded():
    from kit.prompts import SentencePicker, best_sentence_similarity

    chunk = Document(
        content="The sensor is rated to a depth of 40 metres. Lunch is served at noon.",
        meta={"doc_id": "kb-001", "title": "S2 manual"},
    )
    question = "How deep can the sensor go under water?"
    first = SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1)
    best = best_sentence_similarity(question, [chunk], first)
    second = SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1)
    second.warm_up()
    calls: list[str] = []
    for name in ("query_embedder", "sentence_embedder"):
        part = getattr(second, name)
        part.run = lambda *a, _run=part.run, _name=name, **k: calls.append(_name) or _run(*a, **k)
    assert best_sentence_similarity(question, [chunk], second) == best
    assert calls == ["query_embedder"]  # the question, as every answer pays; no sentence
    alone = SentencePicker(resolve_model(DEFAULT_EMBEDDER), sentences=1, shared=False)
    assert alone._vectors == {} and best_sentence_similarity(question, [chunk], alone) == best
    assert len(alone._vectors) == 2


def test_reuse_false_embeds_every_chunk_and_remembers_them():
    docs = load_documents("v1")[:2]
    indexing.build_index(docs)
    again = indexing.build_index(docs, reuse=False)
    assert again.reused == 0 and again.chunks > 0
    assert indexing.build_index(docs).reused == again.chunks  # and the memory holds them
