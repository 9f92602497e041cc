"""Index: load documents, cut them into chunks, embed the chunks and store them for retrieval.

The first stage of RAG (:mod:`kit.retrieval` finds chunks in the index, :mod:`kit.rag`
answers from them). Every step is a
Haystack 3 component wired into a Haystack ``Pipeline`` (:func:`indexing_pipeline`), so you can
print it and see its graph: documents (the bundled knowledge base, your own folder of
.md/.txt/.pdf/.html/.docx/.pptx/.csv/.xlsx files via ``kit.data.load_folder``, or any list of
Haystack Documents) -> ``tag`` (:class:`SourceTagger`: remember each chunk's source document
id) -> ``clean`` -> ``split`` (chunks of ``split_length`` words, ``split_overlap`` shared) ->
``cut`` (:class:`LongChunkCutter`: spreadsheet rows and text without spaces) -> ``embed`` (the
bundled MiniLM; text embedded before is reused, :mod:`kit.embeddings`) -> ``write`` into a
document store (Haystack's ``InMemoryDocumentStore``, made faster by :mod:`kit.store`, by
default; any Haystack store plugs in, e.g. Qdrant or pgvector).

:func:`build_index` does it all and returns an :class:`Index`: the store and the settings it was
built with. Bad input (a folder that does not exist, documents without text, a file that
cannot be converted, a split setting out of range) raises :class:`RagError` with one sentence
saying what to do.
"""

from __future__ import annotations

import itertools
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document, Pipeline, component
from haystack.components.preprocessors import DocumentCleaner, DocumentSplitter
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DocumentStore, DuplicatePolicy

from kit.citations import doc_id
from kit.data import VERSIONS, DataError, load_documents, load_folder
from kit.inputs import InputError, number
from kit.inputs import text as text_arg
from kit.models import DEFAULT_EMBEDDER, best_device, resolve_model
from kit.prompts import split_sentences
from kit.store import new_store

_HEADING_LINE = re.compile(r"\s*#{1,6}(\s|$)")
SPLIT_UNITS: tuple[str, ...] = ("word", "passage", "line", "period")
DEFAULT_SPLIT_LENGTH = 100  # words per chunk
DEFAULT_SPLIT_OVERLAP = 20  # words shared by neighbouring chunks
# Chunks embedded together when indexing on a CPU. Smaller batches keep MiniLM's activations in
# the CPU's cache: build_index of 384 chunks of 100 words, 2 cores, float32, median of 3 (AVX2
# emulated): batch 32 (Haystack's default) 40.6 chunks/s, batch 8 47.7; the same vectors.
# ONNX Runtime 1.23 (float32, all graph optimisations, 2 threads, batch 8) is no faster: the
# 189 v1 chunks at 37.5 chunks/s vs torch's 59.4 on the same AVX-512 CPU, 31.3 vs 27.8 against
# torch held to AVX2 (ORT still used AVX-512 there). Not kept (2026-12). Nor OpenVINO 2026.4
# (float32, torch model converted with ov.convert_model, 2 threads, same vectors to 2e-7):
# 64.9 vs torch's 60.7 chunks/s on the AVX-512 CPU, 45.6 vs 35.0 with torch held to AVX2
# (OpenVINO not held): 1.07-1.3x for a 181 MB dependency.
CPU_EMBED_BATCH = 8


class RagError(ValueError):
    """Bad input to the RAG stage (indexing here, retrieving in :mod:`kit.retrieval`, answering
    in :mod:`kit.rag`); the message says what is wrong and what to do."""


@component
class SourceTagger:
    """Give every document ``meta["doc_id"]`` (its source document id) and a ``title``.

    Chunks inherit the meta of their document, so after splitting every chunk still knows which
    document it came from: retrieval and citations are scored per document, not per chunk.
    """

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Return copies of ``documents`` with ``doc_id`` and ``title`` set in their meta."""
        tagged = []
        for doc in documents:
            ident = doc_id(doc)
            meta = {**doc.meta, "doc_id": ident}
            meta.setdefault("title", ident)
            tagged.append(Document(id=doc.id, content=doc.content, meta=meta))
        return {"documents": tagged}


CUT_ABOVE = 20
"""A word-split chunk longer than this many characters per word asked for is cut again
(:class:`LongChunkCutter`): English averages about 6 characters a word, so only a chunk that
splitting at spaces could not split is this long."""
PIECE_CHARS_PER_WORD = 6
"""The cut pieces' size, in characters per word asked for: about an ordinary chunk's (600
characters for 100 words; MiniLM reads about 256 tokens of it)."""


@component
class LongChunkCutter:
    """Cut chunks that splitting by words could not: Haystack's word splitter splits at spaces,
    so a CSV or spreadsheet whose cells hold no spaces ("Widget,4.50,12" on every row) or text
    in a script without spaces (Chinese, Japanese) stays one chunk of thousands of characters,
    of which the embedder reads only the first few hundred. A chunk over ``max_chars`` is cut
    at line ends (else at spaces, else anywhere) into pieces of at most ``piece_chars``; every
    other chunk passes unchanged."""

    def __init__(self, max_chars: int, piece_chars: int) -> None:
        self.max_chars = max_chars
        self.piece_chars = piece_chars

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Return the chunks, the over-long ones cut into pieces that keep their meta."""
        out = []
        for doc in documents:
            text = doc.content or ""
            if len(text) <= self.max_chars:
                out.append(doc)
                continue
            for part, piece in enumerate(_pieces(text, self.piece_chars)):
                out.append(Document(content=piece, meta={**doc.meta, "piece": part}))
        return {"documents": out}


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at the last line end (else
    space) before the limit; blank pieces dropped. One pass over the text."""
    pieces, start = [], 0
    while len(text) - start > limit:
        end = start + limit
        cut = text.rfind("\n", start + 1, end)
        if cut < 0:
            cut = text.rfind(" ", start + 1, end)
        if cut < 0:
            cut = end
        pieces.append(text[start:cut])
        start = cut
        while start < len(text) and text[start] in " \n":
            start += 1
    pieces.append(text[start:])
    return [p for p in pieces if p.strip()]


@dataclass
class Index:
    """A built index: the document store and the settings it was built with.

    ``store`` is any Haystack document store holding embedded chunks; ``embedder`` the folder or
    name of the embedding model (queries must be embedded with the same one).
    """

    store: Any
    embedder: str
    split_by: str = "word"
    split_length: int = DEFAULT_SPLIT_LENGTH
    split_overlap: int = DEFAULT_SPLIT_OVERLAP
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    reused: int = 0  # chunks whose vectors an earlier index had computed (kit.embeddings)

    @property
    def docs_per_second(self) -> float:
        """Indexing throughput: source documents per second (embedding included)."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def __repr__(self) -> str:
        return (
            f"Index({type(self.store).__name__}: {self.documents} documents -> {self.chunks} "
            f"chunks of {self.split_length} {self.split_by}s (overlap {self.split_overlap}), "
            f"built in {self.seconds:.1f} s"
            + (f", {self.reused} of the chunks' vectors reused)" if self.reused else ")")
        )


def embed_batch_size() -> int:
    """Chunks embedded together when indexing: :data:`CPU_EMBED_BATCH` on a CPU, 32 on a GPU."""
    return CPU_EMBED_BATCH if best_device() == "cpu" else 32


def document_embedder(
    embedder: str = DEFAULT_EMBEDDER, progress: bool = False, reuse: bool = True
) -> Any:
    """The indexing pipeline's ``embed`` component: Haystack's
    ``SentenceTransformersDocumentEmbedder`` for ``embedder`` (titles embedded with the text),
    which reuses the vectors of text embedded before unless ``reuse`` is False
    (:mod:`kit.embeddings`)."""
    from kit.embeddings import ReusingDocumentEmbedder  # heavy: sentence-transformers

    return ReusingDocumentEmbedder(
        model=resolve_model(embedder),
        progress_bar=progress,
        meta_fields_to_embed=["title"],
        local_files_only=True,
        batch_size=embed_batch_size(),
        reuse=reuse,
    )


def indexing_pipeline(
    store: Any,
    split_length: int = DEFAULT_SPLIT_LENGTH,
    split_overlap: int = DEFAULT_SPLIT_OVERLAP,
    split_by: str = "word",
    embedder: str = DEFAULT_EMBEDDER,
    progress: bool = False,
    reuse: bool = True,
) -> Pipeline:
    """The Haystack indexing pipeline: tag -> clean -> split -> (cut: :class:`LongChunkCutter`,
    when splitting by words) -> embed -> write into ``store`` (``progress``: the embedder's
    progress bar).

    Run it with ``pipeline.run({"tag": {"documents": docs}})``. Chunk titles are embedded with
    their text, so a chunk from "Returns policy" is found by a question about returns. ``embed``
    embeds only text no earlier index of this process embedded (:mod:`kit.embeddings`), or every
    chunk if ``reuse`` is False.
    """
    split_length, split_overlap = _check_split(split_length, split_overlap, split_by)
    keep_lines = split_by in ("passage", "line")
    pipeline = Pipeline()
    pipeline.add_component("tag", SourceTagger())
    pipeline.add_component(
        "clean",
        DocumentCleaner(remove_empty_lines=not keep_lines, remove_extra_whitespaces=not keep_lines),
    )
    pipeline.add_component(
        "split",
        DocumentSplitter(split_by=split_by, split_length=split_length, split_overlap=split_overlap),
    )
    steps = ["tag", "clean", "split", "embed", "write"]
    if split_by == "word":  # cells and scripts without spaces: one chunk otherwise
        cutter = LongChunkCutter(CUT_ABOVE * split_length, PIECE_CHARS_PER_WORD * split_length)
        pipeline.add_component("cut", cutter)
        steps.insert(3, "cut")
    pipeline.add_component("embed", document_embedder(embedder, progress, reuse))
    pipeline.add_component("write", DocumentWriter(store, policy=DuplicatePolicy.OVERWRITE))
    for sender, receiver in itertools.pairwise(steps):
        pipeline.connect(sender, receiver)
    return pipeline


def build_index(
    source: str | Path | Sequence[Document] | None = None,
    store: Any = None,
    split_length: int = DEFAULT_SPLIT_LENGTH,
    split_overlap: int = DEFAULT_SPLIT_OVERLAP,
    split_by: str = "word",
    embedder: str = DEFAULT_EMBEDDER,
    progress: bool = False,
    reuse: bool = True,
) -> Index:
    """Load, split, embed and store documents; return the :class:`Index`.

    ``source``: ``None`` or ``"v1"`` / ``"v2"`` (the bundled knowledge base), a folder or file of
    your own documents (read by ``kit.data.load_folder``), or a list of Haystack Documents.
    ``store``: any Haystack document store (default: a new in-memory one). ``progress``: a
    progress bar over the embedding (worth it for a real folder: minutes on a laptop). Text an
    earlier index of this process embedded is not embedded again (``index.reused`` counts it);
    ``reuse=False`` embeds every chunk (to time embedding, or to rebuild from scratch).
    """
    split_length, split_overlap = _check_split(split_length, split_overlap, split_by)
    if store is not None and not hasattr(store, "write_documents"):
        raise RagError(
            f"store must be a Haystack document store (e.g. InMemoryDocumentStore()), not "
            f"{type(store).__name__} {str(store)[:30]!r}; leave it out for the kit's own."
        )
    documents = load_source(source)
    store = new_store() if store is None else store
    pipeline = indexing_pipeline(
        store, split_length, split_overlap, split_by, embedder, progress=progress, reuse=reuse
    )
    start = time.perf_counter()
    result = pipeline.run({"tag": {"documents": documents}})
    seconds = time.perf_counter() - start
    reused = pipeline.get_component("embed").reused
    written = result.get("write", {}).get("documents_written", 0)
    if not written:
        raise RagError(
            "No chunks were written to the index: the documents have no text after cleaning."
        )
    return Index(
        store=store,
        embedder=embedder,
        split_by=split_by,
        split_length=split_length,
        split_overlap=split_overlap,
        documents=len(documents),
        chunks=written,
        seconds=seconds,
        reused=reused,
    )


def _exists(path: str | Path) -> bool:
    """Whether ``path`` names an existing file or folder (a long text is no path: False)."""
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError):  # name too long, a NUL character, ...
        return False


def load_source(source: str | Path | Sequence[Document] | None) -> list[Document]:
    """Documents to index from ``source`` (see :func:`build_index`); RagError if there are none."""
    missing = isinstance(source, str | Path) and not _exists(source)
    if missing and str(source) not in VERSIONS:
        raise RagError(
            f"Cannot load documents: {str(source)[:80]!r} is not a folder or file that exists "
            f"(nor {' or '.join(VERSIONS)}, the bundled knowledge base). Pass a folder path, "
            "a list of Documents, or None; to index a text itself, pass "
            "[Document(content=text)]."
        )
    if isinstance(source, Document):
        source = [source]  # one Document is a list of one
    try:
        if source is None or (isinstance(source, str) and source in VERSIONS):
            if source is not None and _exists(source):
                warnings.warn(
                    f"{source!r} names the bundled knowledge base ({source}); your folder "
                    f"{source!r} here is not read. To index it, pass './{source}' or "
                    f"Path({source!r}).",
                    stacklevel=3,
                )
            return load_documents(source or "v1")
        if isinstance(source, str | Path):
            return load_folder(source)
    except DataError as err:
        raise RagError(f"Cannot load documents: {err}") from None
    if isinstance(source, bytes | dict) or not isinstance(source, Iterable):
        raise RagError(
            f"Cannot load documents from {type(source).__name__} {str(source)[:40]!r}: pass a "
            "folder path, a list of Documents, or None (the bundled knowledge base)."
        )
    documents = list(source)
    if not documents:
        raise RagError("No documents to index: pass a folder, a list of Documents, or None.")
    bad = [d for d in documents if not isinstance(d, Document)]
    if bad:
        raise RagError(f"Expected Haystack Documents, got {type(bad[0]).__name__}.")
    if not any((d.content or "").strip() for d in documents):
        raise RagError("All documents are empty: there is no text to index.")
    return _skip_textless(documents)


def _skip_textless(documents: list[Document]) -> list[Document]:
    """The documents with some text beyond headings; the others are named in a warning."""
    textless = [not split_sentences(_without_headings(d.content or ""), 1) for d in documents]
    kept = [d for d, skip in zip(documents, textless, strict=True) if not skip]
    if any(textless):
        empty = [doc_id(d) for d, skip in zip(documents, textless, strict=True) if skip]
        warnings.warn(
            f"Skipped {len(empty)} document(s) with a title or metadata but no text: "
            f"{', '.join(empty)}. Add their text, or leave them out.",
            stacklevel=3,
        )
    if not kept:
        raise RagError("No document has text beyond its title: there is nothing to index.")
    return kept


def _without_headings(text: str) -> str:
    """``text`` without its Markdown heading lines (``# Returns policy``)."""
    return "\n".join(line for line in text.splitlines() if not _HEADING_LINE.match(line))


def chunks_of(index: Index | DocumentStore, doc: str) -> list[Document]:
    """The chunks the index holds for one source document, in order, with their embeddings."""
    doc = text_arg(doc, "doc (a document id, e.g. 'kb-004')")
    store = store_of(index)
    found = store.filter_documents({"field": "meta.doc_id", "operator": "==", "value": doc})
    stored = getattr(store, "storage", None)  # in memory: the stored chunks, embeddings included
    if isinstance(stored, dict):
        found = [stored.get(d.id, d) for d in found]
    return sorted(found, key=lambda d: d.meta.get("split_id", 0))


def _check_split(split_length: Any, split_overlap: Any, split_by: str) -> tuple[int, int]:
    """The splitting settings, checked (NumPy whole numbers accepted); RagError otherwise."""
    if split_by not in SPLIT_UNITS:
        raise RagError(f"split_by must be one of {SPLIT_UNITS}, not {split_by!r}.")
    try:
        length = int(number(split_length, "split_length", low=1, whole=True))
        overlap = int(number(split_overlap, "split_overlap", 0, length - 1, whole=True))
    except InputError as err:
        raise RagError(f"{err} (split_overlap: 0 to split_length - 1).") from None
    return length, overlap


def embedder_of(index: Index | DocumentStore) -> str:
    """The embedding model folder of an index (the kit's MiniLM for a bare document store)."""
    return resolve_model(getattr(index, "embedder", DEFAULT_EMBEDDER))


def store_of(index: Index | DocumentStore) -> Any:
    """The document store of an Index (or a store passed as is); RagError for anything else."""
    store = index.store if isinstance(index, Index) else index
    if not all(hasattr(store, m) for m in ("filter_documents", "count_documents")):
        raise RagError(
            f"Expected an index from build_index(...) (or a Haystack document store), not "
            f"{type(index).__name__} {str(index)[:40]!r}: e.g. build_rag(build_index('v1'))."
        )
    return store


__all__ = [
    "Index",
    "LongChunkCutter",
    "RagError",
    "SourceTagger",
    "build_index",
    "chunks_of",
    "document_embedder",
    "embedder_of",
    "indexing_pipeline",
    "load_source",
    "store_of",
]
