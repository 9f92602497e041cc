"""Retrieve: find the chunks of an index that match a question, by keywords, embeddings or both.

The second stage of RAG (:mod:`kit.indexing` builds the index; :mod:`kit.rag` answers from
what is found). :func:`retrieval_pipeline` is a Haystack ``Pipeline`` you can print:

- ``bm25``: keyword retrieval (rare words count more): exact names and part numbers;
- ``dense``: the question embedded with the index's embedder, the chunks with the closest
  vectors (cosine similarity): paraphrases;
- ``hybrid``: both, their rankings fused by reciprocal rank fusion (``DocumentJoiner``).

Metadata filters restrict what can be found: :func:`role_filter` keeps a role to the access
levels the data set's manifest allows it. :func:`filter_fields` checks a filter's shape before
Haystack sees it; :func:`check_filters` (which a RAG runs on every filter) also refuses one on a
field no chunk has. :func:`retrieve` runs a pipeline and returns
a :class:`Retrieval` (the chunks, best first, with scores and timing). Any Haystack document
store plugs in: :data:`RETRIEVERS` names the retrievers of each known one.
"""

from __future__ import annotations

import importlib
import numbers
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.core.errors import PipelineRuntimeError
from haystack.document_stores.types import DocumentStore
from haystack.errors import FilterError
from haystack.utils.filters import COMPARISON_OPERATORS, LOGICAL_OPERATORS

from kit.citations import doc_id
from kit.data import DataError, load_manifest
from kit.indexing import Index, RagError, store_of
from kit.models import DEFAULT_EMBEDDER, resolve_model

MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")
"""Retrieval modes: keywords, embeddings, or both fused by reciprocal rank fusion."""


DEFAULT_CANDIDATES = 20  # chunks each retriever returns before fusion / cut to top_k

RETRIEVERS: dict[str, tuple[str | None, str | None]] = {
    "InMemoryDocumentStore": (
        "haystack.components.retrievers.in_memory.InMemoryBM25Retriever",
        "haystack.components.retrievers.in_memory.InMemoryEmbeddingRetriever",
    ),
    "QdrantDocumentStore": (
        None,
        "haystack_integrations.components.retrievers.qdrant.QdrantEmbeddingRetriever",
    ),
    "PgvectorDocumentStore": (
        "haystack_integrations.components.retrievers.pgvector.PgvectorKeywordRetriever",
        "haystack_integrations.components.retrievers.pgvector.PgvectorEmbeddingRetriever",
    ),
    "ElasticsearchDocumentStore": (
        "haystack_integrations.components.retrievers.elasticsearch.ElasticsearchBM25Retriever",
        "haystack_integrations.components.retrievers.elasticsearch.ElasticsearchEmbeddingRetriever",
    ),
    "OpenSearchDocumentStore": (
        "haystack_integrations.components.retrievers.opensearch.OpenSearchBM25Retriever",
        "haystack_integrations.components.retrievers.opensearch.OpenSearchEmbeddingRetriever",
    ),
}
"""Document store class name -> (keyword retriever, embedding retriever) for that store.

A store missing here, or without a keyword retriever (Qdrant), still works in ``dense`` mode if
you add its embedding retriever; add a line for a new store rather than changing the kit's code.
"""

INTEGRATION_PACKAGES = {
    "QdrantDocumentStore": "qdrant-haystack",
    "PgvectorDocumentStore": "pgvector-haystack",
    "ElasticsearchDocumentStore": "elasticsearch-haystack",
    "OpenSearchDocumentStore": "opensearch-haystack",
}
"""The PyPI package that brings each store's Haystack integration."""


def role_filter(role: str | None) -> dict[str, Any] | None:
    """The Haystack filter that keeps only the access levels ``role`` may read (None: no filter).

    Roles come from the data set's manifest: ``public``, ``employee``, ``admin``.
    """
    if role is None:
        return None
    if not isinstance(role, str):
        raise RagError(f"role must be one role's name as text, e.g. 'employee', not {role!r}.")
    try:
        allowed = load_manifest().allowed_access(role)
    except DataError as err:
        message = str(err)
        raise RagError(f"{message[:1].upper()}{message[1:]}.") from None
    return {"field": "meta.access", "operator": "in", "value": allowed}


def combine_filters(*filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """AND together Haystack filters, skipping ``None``; ``None`` if there are none."""
    present = [f for f in filters if f]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return {"operator": "AND", "conditions": present}


MAX_FILTER_DEPTH = 16
"""How deeply filters may nest (AND of OR of ...): deeper is a mistake, not a query."""


def filter_fields(filters: dict[str, Any] | None, depth: int = 0) -> set[str]:
    """Field names a Haystack filter refers to (``meta.access`` -> ``access``).

    Checks the filter's shape on the way, against Haystack's own lists of operators, so a typo
    gets a RagError that names it instead of an error from inside the pipeline.
    """
    if filters is None or (isinstance(filters, dict) and not filters):
        return set()
    if not isinstance(filters, dict):
        raise RagError(
            f"A filter must be a dict in Haystack's filter syntax, e.g. {{'field': "
            f"'meta.access', 'operator': '==', 'value': 'public'}}, not {str(filters)[:80]!r}."
        )
    if depth > MAX_FILTER_DEPTH:
        raise RagError(f"The filter nests more than {MAX_FILTER_DEPTH} levels deep; flatten it.")
    operator = filters.get("operator")
    if "conditions" in filters:
        conditions = filters["conditions"]
        if operator not in LOGICAL_OPERATORS or not isinstance(conditions, list):
            raise RagError(
                f"A filter with 'conditions' (a list) needs an operator among "
                f"{sorted(LOGICAL_OPERATORS)}; got operator {operator!r} in {str(filters)[:200]}."
            )
        if not conditions or not all(isinstance(c, dict) and c for c in conditions):
            raise RagError(
                f"A filter's 'conditions' must be a non-empty list of filters (dicts); got "
                f"{str(conditions)[:120]}."
            )
        out: set[str] = set()
        for cond in conditions:
            out |= filter_fields(cond, depth + 1)
        return out
    if "field" not in filters or "value" not in filters:
        raise RagError(
            "A filter needs 'field', 'operator' and 'value' (or 'operator' and 'conditions'), "
            f"e.g. {{'field': 'meta.access', 'operator': '==', 'value': 'public'}}; got {filters}."
        )
    if operator not in COMPARISON_OPERATORS:
        raise RagError(
            f"Unknown filter operator {operator!r} in {filters}: use one of "
            f"{', '.join(repr(o) for o in COMPARISON_OPERATORS)}."
        )
    if operator in ("in", "not in") and not isinstance(filters["value"], list):
        raise RagError(
            f"The operator {operator!r} takes a list of values, e.g. ['public', 'internal']; "
            f"got {filters['value']!r}."
        )
    if operator in (">", ">=", "<", "<=") and not _orderable(filters["value"]):
        raise RagError(
            f"The operator {operator!r} compares numbers or ISO dates ('2025-01-31'); got "
            f"{filters['value']!r} in {filters}."
        )
    return {str(filters["field"]).removeprefix("meta.")}


def _filter_error(filters: Any, cause: Exception) -> RagError:
    """A filter of the right shape that the index's values refuse (e.g. '>' on text)."""
    return RagError(
        f"The filter {str(filters)[:200]} cannot be applied to this index: {cause} Compare "
        "text fields with '==', '!=', 'in' or 'not in'."
    )


def _orderable(value: Any) -> bool:
    """A value ``>`` and ``<`` can compare in a Haystack filter: a number or an ISO date."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):  # NumPy numbers too
        return True
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _values_of(store: Any, fields: list[str], most: int = 8) -> dict[str, list[str]]:
    """A few distinct values of each meta field in the store (for a message)."""
    docs = store.filter_documents()
    return {
        f: sorted({str(d.meta.get(f)) for d in docs if f in (d.meta or {})})[:most] for f in fields
    }


def store_fields(index: Index | DocumentStore) -> set[str]:
    """Meta field names found on the documents in a store (plus ``id`` and ``content``)."""
    store = store_of(index)
    fields = {"id", "content"}
    info = getattr(store, "get_metadata_fields_info", None)
    if info is not None:
        try:
            return fields | {k.removeprefix("meta.") for k in info()}
        except NotImplementedError:
            pass
    for doc in store.filter_documents()[:1000]:
        fields |= set(doc.meta)
    return fields


def check_filters(store: Any, filters: dict[str, Any] | None, checked: set[str]) -> None:
    """RagError for a filter on a field no chunk of ``store`` has, or one the store's values
    refuse ('>' on text); a warning for a filter that matches no chunk ('Public' for
    'public'). A filter already in ``checked`` (its repr) is not queried again."""
    wanted = filter_fields(filters)
    if not wanted or store.count_documents() == 0:
        return
    known = store_fields(store)
    missing = sorted(wanted - known)
    if missing:
        raise RagError(
            f"No document in the index has the field(s) {missing}, so the filter would "
            f"match nothing. Fields you can filter on: "
            f"{sorted(f for f in known - {'content'} if not f.startswith('_'))}."
        )
    key = repr(filters)
    if key in checked:
        return
    checked.add(key)  # checked once per filter: a filter query costs a few ms
    try:
        matched = store.filter_documents(filters)
    except FilterError as err:
        raise _filter_error(filters, err) from None
    if not matched:  # e.g. 'Public' for 'public'
        seen = _values_of(store, sorted(wanted))
        warnings.warn(
            f"The filter {filters} matches no chunk of the index, so every answer will be "
            f'"I don\'t know". Values in the index: {seen}.',
            stacklevel=4,
        )


def retrieval_pipeline(
    index: Index | DocumentStore,
    mode: str = "hybrid",
    candidates: int = DEFAULT_CANDIDATES,
    embedder: str | None = None,
) -> Pipeline:
    """A Haystack query pipeline for ``mode`` returning ``candidates`` chunks, best first.

    - ``bm25``: ``bm25`` (keyword retriever);
    - ``dense``: ``embed_query`` -> ``dense`` (embedding retriever);
    - ``hybrid``: both, then ``join`` (DocumentJoiner, reciprocal rank fusion).

    Run it with the inputs from :func:`retrieval_inputs`.
    """
    # heavy: sentence-transformers loads only when a pipeline is built
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersTextEmbedder,
    )

    if mode not in MODES:
        raise RagError(f"Unknown retrieval mode {mode!r}; choose one of {MODES}.")
    if not isinstance(candidates, int) or candidates < 1:
        raise RagError(f"candidates must be a whole number >= 1, not {candidates!r}.")
    store = store_of(index)
    if embedder is None:
        embedder = index.embedder if isinstance(index, Index) else DEFAULT_EMBEDDER
    keyword_cls, embedding_cls = _retriever_classes(store, mode)
    pipeline = Pipeline()
    if mode in ("bm25", "hybrid"):
        pipeline.add_component("bm25", keyword_cls(document_store=store, top_k=candidates))
    if mode in ("dense", "hybrid"):
        pipeline.add_component(
            "embed_query",
            SentenceTransformersTextEmbedder(
                model=resolve_model(embedder), progress_bar=False, local_files_only=True
            ),
        )
        pipeline.add_component("dense", embedding_cls(document_store=store, top_k=candidates))
        pipeline.connect("embed_query.embedding", "dense.query_embedding")
    if mode == "hybrid":
        pipeline.add_component(
            "join", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=candidates)
        )
        pipeline.connect("bm25", "join")
        pipeline.connect("dense", "join")
    return pipeline


def retrieval_inputs(
    pipeline: Pipeline, question: str, filters: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The ``run`` inputs of a :func:`retrieval_pipeline` for one question and filter."""
    names = set(pipeline.graph.nodes)
    data: dict[str, dict[str, Any]] = {}
    if "bm25" in names:
        data["bm25"] = {"query": question, "filters": filters}
    if "embed_query" in names:
        data["embed_query"] = {"text": question}
        data["dense"] = {"filters": filters}
    return data


@dataclass
class Retrieval:
    """What retrieval found for one question.

    documents: chunks, best first, with their scores (BM25, cosine, or fused RRF score);
    similarity: cosine similarity of the best dense hit (``None`` in bm25 mode);
    seconds: time taken.
    """

    question: str
    mode: str
    documents: list[Document]
    similarity: float | None
    seconds: float

    @property
    def doc_ids(self) -> list[str]:
        """Source document ids of the chunks, best first, each once."""
        return unique_doc_ids(self.documents)

    def to_frame(self, n: int | None = None, width: int = 80) -> pd.DataFrame:
        """The first ``n`` chunks as a table: rank, doc_id, title, access, score, text (cut)."""
        rows = [
            {
                "rank": i,
                "doc_id": doc_id(d),
                "title": d.meta.get("title", ""),
                "access": d.meta.get("access", ""),
                "score": round(d.score, 4) if d.score is not None else None,
                "text": _preview(d.content or "", width),
            }
            for i, d in enumerate(self.documents[:n], start=1)
        ]
        return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame(rows)


def _preview(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def unique_doc_ids(documents: Iterable[Any]) -> list[str]:
    """Source document ids of ``documents`` in order, each once (chunks -> documents)."""
    return list(dict.fromkeys(doc_id(d) for d in documents))


def check_question(question: Any) -> str:
    """The question, stripped; RagError for anything but non-empty text."""
    if not isinstance(question, str):
        raise RagError(f"The question must be text, not {type(question).__name__}.")
    if not question.strip():
        raise RagError("The question is empty: type a question to answer.")
    return question.strip()


def retrieve(
    pipeline: Pipeline,
    question: str,
    filters: dict[str, Any] | None = None,
    mode: str | None = None,
) -> Retrieval:
    """Run a :func:`retrieval_pipeline` for one question; return a :class:`Retrieval`."""
    if not isinstance(pipeline, Pipeline):
        raise RagError(
            f"retrieve() runs a retrieval pipeline, not {type(pipeline).__name__}: "
            "retrieve(retrieval_pipeline(index), question), or rag.retrieve(question)."
        )
    question = check_question(question)
    names = set(pipeline.graph.nodes)
    if mode is None:
        mode = "hybrid" if "join" in names else ("dense" if "dense" in names else "bm25")
    elif mode not in MODES:
        raise RagError(f"Unknown retrieval mode {mode!r}; choose one of {MODES}.")
    filter_fields(filters)  # its shape, before Haystack sees it
    start = time.perf_counter()
    try:
        out = pipeline.run(
            retrieval_inputs(pipeline, question, filters), include_outputs_from={"dense"}
        )
    except PipelineRuntimeError as err:
        cause = err.__cause__
        if not isinstance(cause, FilterError):
            raise
        raise _filter_error(filters, cause) from None
    seconds = time.perf_counter() - start
    final = "join" if "join" in names else ("dense" if "dense" in names else "bm25")
    documents = list(out.get(final, {}).get("documents", []))
    dense = out.get("dense", {}).get("documents")
    similarity = None
    if dense is not None:
        similarity = max((d.score for d in dense if d.score is not None), default=-1.0)
    return Retrieval(question, mode, documents, similarity, seconds)


def _retriever_classes(store: Any, mode: str) -> tuple[Any, Any]:
    name = next((c.__name__ for c in type(store).__mro__ if c.__name__ in RETRIEVERS), "")
    if not name:
        name = type(store).__name__
        raise RagError(
            f"The kit does not know the retrievers of {name}; add them to kit.retrieval.RETRIEVERS "
            f"(known stores: {', '.join(RETRIEVERS)})."
        )
    paths = RETRIEVERS[name]

    def load(path: str | None, kind: str) -> Any:
        if path is None:
            raise RagError(
                f"{name} has no {kind} retriever in the kit, so mode {mode!r} cannot run on it; "
                "use mode='dense'."
            )
        module, _, cls = path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as err:
            package = INTEGRATION_PACKAGES.get(name, f"{name}'s Haystack integration")
            raise RagError(
                f"{cls} is not installed ({err}): pip install {package}, then run again."
            ) from None

    keyword = load(paths[0], "keyword (BM25)") if mode in ("bm25", "hybrid") else None
    embedding = load(paths[1], "embedding") if mode in ("dense", "hybrid") else None
    return keyword, embedding
