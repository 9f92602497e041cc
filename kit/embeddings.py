"""Embed a chunk once: vectors an earlier index computed are reused, not computed again.

Embedding is most of what indexing costs on a laptop CPU: minutes for a folder of a few thousand
chunks. Yet most re-indexing embeds text that was embedded before: the updated
knowledge base (``v2``) changes a few documents of ``v1``; a folder of yours with one edited file
is indexed again; the prompt-injection experiment re-indexes the same documents minus one
sentence. A vector depends only on the model, its settings and the text it embeds (the chunk's
title and content), so the kit keeps the vectors it computed, by those, and embeds only new text:

- :class:`ReusingDocumentEmbedder` is Haystack's ``SentenceTransformersDocumentEmbedder`` with
  that memory: the indexing pipeline's ``embed`` component (:func:`kit.indexing.indexing_pipeline`).
  A reused vector equals a fresh one within float32 rounding (about 1e-7: a batch with other
  texts pads differently), not bit for bit. ``reuse=False`` embeds every chunk (and remembers
  the new vectors): what ``build_index(..., reuse=False)`` and a rebuild asked for do.
- :data:`MEMORY` is the process's memory (bounded; :meth:`EmbeddingMemory.clear` empties it).
- :func:`remember_store` adds the vectors of a saved index: a folder that changed is indexed again
  with only its changed text embedded (:func:`kit.saved_index.index_folder`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from haystack import Document, component
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
)

MEMORY_LIMIT = 100_000
"""Vectors :data:`MEMORY` keeps (float32, 384 numbers each for MiniLM: about 150 MB)."""


class EmbeddingMemory:
    """Vectors by (model and settings, embedded text), at most ``limit`` of them (when full, it
    starts again empty: the next index embeds its chunks as if none were seen)."""

    def __init__(self, limit: int = MEMORY_LIMIT) -> None:
        self.limit = limit
        self._vectors: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: str) -> list[float] | None:
        """The vector remembered under ``key`` (a new list of floats), or None."""
        vector = self._vectors.get(key)
        return None if vector is None else vector.tolist()

    def put(self, key: str, vector: Iterable[float]) -> None:
        """Remember ``vector`` under ``key`` (as float32: the model's own precision)."""
        if key not in self._vectors and len(self._vectors) >= self.limit:
            self._vectors.clear()
        self._vectors[key] = np.asarray(list(vector), dtype=np.float32)

    def clear(self) -> None:
        """Forget every vector."""
        self._vectors.clear()


MEMORY = EmbeddingMemory()
"""The vectors this process has computed (or loaded from a saved index), for every index."""


@component
class ReusingDocumentEmbedder(SentenceTransformersDocumentEmbedder):
    """Haystack's ``SentenceTransformersDocumentEmbedder`` that embeds only text it has not
    embedded before (see the module docstring); every argument is the embedder's own, plus
    ``memory`` (default :data:`MEMORY`) and ``reuse`` (False: embed every document, and
    remember the new vectors). After a run, ``reused`` is how many of its documents got a
    remembered vector."""

    def __init__(
        self,
        *args: Any,
        memory: EmbeddingMemory | None = None,
        reuse: bool = True,
        **kwargs: Any,
    ) -> None:
        # the parent named, not super(): @component builds a new class from this one
        SentenceTransformersDocumentEmbedder.__init__(self, *args, **kwargs)
        self.memory = MEMORY if memory is None else memory
        self.reuse = reuse
        self.reused = 0

    def key(self, doc: Document) -> str:
        """What a vector is remembered by: the model and every setting that changes its numbers,
        and the text embedded (the chunk's ``meta_fields_to_embed``, e.g. its title, and its
        content, as the embedder joins them)."""
        meta = doc.meta or {}
        fields = [str(meta[k]) for k in self.meta_fields_to_embed if meta.get(k) is not None]
        text = self.prefix + self.embedding_separator.join([*fields, doc.content or ""])
        return hashlib.sha256(f"{self._settings()}\0{text}{self.suffix}".encode()).hexdigest()

    def _settings(self) -> str:
        """The embedder's settings that change a vector, as one text."""
        names = ("model", "revision", "backend", "normalize_embeddings", "precision")
        names += ("truncate_dim", "model_kwargs", "tokenizer_kwargs", "config_kwargs")
        names += ("encode_kwargs", "quantization_ranges")
        return json.dumps({n: getattr(self, n, None) for n in names}, sort_keys=True, default=str)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """``documents`` with their embeddings, in the same order: remembered ones filled in,
        the others embedded (in batches, with the progress bar if asked) and remembered."""
        keys = [self.key(d) if isinstance(d, Document) else "" for d in documents]
        known = [self.memory.get(k) if self.reuse else None for k in keys]
        new = [d for d, v in zip(documents, known, strict=True) if v is None]
        embed = SentenceTransformersDocumentEmbedder.run
        embedded = iter(embed(self, documents=new)["documents"] if new else [])
        out = []
        for doc, key, vector in zip(documents, keys, known, strict=True):
            if vector is None:
                doc = next(embedded)
                self.memory.put(key, doc.embedding or [])
            else:
                doc = replace(doc, embedding=vector)
            out.append(doc)
        self.reused = len(documents) - len(new)
        return {"documents": out}


def remember_store(store: Any, embedder: ReusingDocumentEmbedder) -> int:
    """Remember the vectors of every chunk ``store`` holds, as ``embedder`` would key them (build
    the store with the same model and settings). Out: how many were remembered."""
    stored = getattr(store, "storage", None)  # in memory: the chunks with their embeddings
    chunks = stored.values() if isinstance(stored, dict) else store.filter_documents()
    count = 0
    for doc in chunks:
        if doc.embedding:
            embedder.memory.put(embedder.key(doc), doc.embedding)
            count += 1
    return count
