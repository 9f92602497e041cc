"""kit.store: the kit's in-memory store gives Haystack's results, faster (on the bundled index)."""

from __future__ import annotations

import pytest
from haystack import Document
from haystack.dataclasses import ByteStream, SparseEmbedding

from kit import retrieval
from kit.store import InMemoryStore, new_store


def test_kit_store_gives_the_same_results_as_haystacks_and_sees_new_documents(index):
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    plain = InMemoryDocumentStore(embedding_similarity_function="cosine")
    plain.write_documents(list(index.store.storage.values()))
    query = retrieval.retrieval_pipeline(index, "dense").get_component("embed_query")
    embedding = query.run(text="How deep can the S2 go?")["embedding"]
    ours = index.store.embedding_retrieval(embedding, top_k=10)
    theirs = plain.embedding_retrieval(embedding, top_k=10)
    assert [d.id for d in ours] == [d.id for d in theirs]
    assert [d.score for d in ours] == pytest.approx([d.score for d in theirs])
    assert all(d.embedding is None for d in ours)  # not carried through the pipeline
    best = index.store.embedding_retrieval(embedding, top_k=1, return_embedding=True)[0]
    stored = index.store.storage[best.id].embedding
    assert best.embedding == stored and best.embedding is not stored  # asked for: a copy
    filters = retrieval.role_filter("public")
    ours = index.store.embedding_retrieval(embedding, filters=filters, top_k=5)
    theirs = plain.embedding_retrieval(embedding, filters=filters, top_k=5)
    assert [d.id for d in ours] == [d.id for d in theirs]
    # The cached matrix is rebuilt after a write: a new, identical-to-the-query chunk wins.
    store = new_store()
    store.write_documents(list(index.store.storage.values())[:5])
    store.embedding_retrieval(embedding, top_k=1)
    store.write_documents([Document(id="new", content="x", embedding=embedding)])
    assert store.embedding_retrieval(embedding, top_k=1)[0].id == "new"
    store.delete_documents(["new"])
    assert store.embedding_retrieval(embedding, top_k=1)[0].id != "new"


@pytest.mark.parametrize("algorithm", ["BM25L", "BM25Okapi", "BM25Plus"])
def test_kit_store_bm25_gives_the_same_results_as_haystacks(index, algorithm):
    import asyncio

    from haystack.document_stores.in_memory import InMemoryDocumentStore

    def pair(chunks, return_embedding=False):
        options = {"return_embedding": return_embedding}  # the kit's default; Haystack's is True
        ours = InMemoryStore(bm25_algorithm=algorithm, **options)
        plain = InMemoryDocumentStore(bm25_algorithm=algorithm, shared=False, **options)
        for store in (ours, plain):
            store.write_documents(chunks)
        return ours, plain

    def same(ours, plain, query, **options):
        mine = ours.bm25_retrieval(query, **options)
        theirs = plain.bm25_retrieval(query, **options)
        assert [d.id for d in mine] == [d.id for d in theirs], (algorithm, query, options)
        # every field: content, meta, score, embedding, blob, sparse embedding
        assert [d.to_dict() for d in mine] == [d.to_dict() for d in theirs]
        return mine

    chunks = list(index.store.storage.values())
    chunks += [
        Document(id="no-text", content=None, meta={"access": "public"}, embedding=[0.1]),
        Document(
            id="with-blob",
            content="battery warranty card",
            meta={"access": "public"},
            blob=ByteStream(b"card", meta={"pages": 1}),
            sparse_embedding=SparseEmbedding(indices=[3], values=[0.5]),
        ),
    ]
    ours, plain = pair(chunks)
    public = retrieval.role_filter("public")
    assert len(same(ours, plain, "How deep can the S2 go?", top_k=7)) == 7
    assert len(same(ours, plain, "battery warranty", filters=public, top_k=7)) == 7
    assert len(same(ours, plain, "battery warranty", filters=public, scale_score=True)) == 10
    unknown = same(ours, plain, "zzzz unknown words", top_k=7)  # ties (Okapi) or nothing
    assert len(unknown) == (7 if algorithm == "BM25Okapi" else 0)
    assert all(d.embedding is None for d in ours.bm25_retrieval("battery", top_k=20))
    mine = ours.bm25_retrieval("battery warranty card", top_k=3)
    assert mine[0].id == "with-blob" and mine[0].blob.data == b"card"
    mine[0].meta["changed"] = True  # results are copies: the store's chunk is untouched
    mine[0].blob.meta["changed"] = True
    mine[0].sparse_embedding.values[0] = 9.0
    stored = ours.storage["with-blob"]
    assert "changed" not in stored.meta and "changed" not in stored.blob.meta
    assert stored.sparse_embedding.values == [0.5]
    found = asyncio.run(ours.bm25_retrieval_async("battery warranty", top_k=5))
    assert [d.id for d in found] == [
        d.id for d in plain.bm25_retrieval("battery warranty", top_k=5)
    ]
    # with embeddings returned: equal to the stored ones, but a copy
    ours, plain = pair(chunks, return_embedding=True)
    mine = same(ours, plain, "How deep can the S2 go?", top_k=3)
    assert mine[0].embedding and mine[0].embedding is not ours.storage[mine[0].id].embedding
    # an empty store, and a store whose chunks have no words at all
    assert same(*pair([]), "battery") == []
    blank = [Document(id=str(i), content=" ") for i in range(3)]
    assert len(same(*pair(blank), "battery")) == (3 if algorithm == "BM25Okapi" else 0)
    with pytest.raises(ValueError, match="non-empty"):
        ours.bm25_retrieval("")
    with pytest.raises(ValueError, match="filter syntax"):
        ours.bm25_retrieval("battery", filters={"field": "meta.access", "value": "public"})
