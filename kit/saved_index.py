"""Saved indexes: embed a folder once, reuse it after a restart, rebuild it when it changed.

Embedding a real folder takes minutes on a laptop; a notebook restart should not redo it. The
in-memory store of Haystack saves to and loads from a JSON file (``save_to_disk`` /
``load_from_disk``); this module adds what makes reuse safe:

- a record next to it (``kit-index.json``, written last) of the settings the index was built
  with (embedder, splitting) and a fingerprint of the folder (every file's path, size and
  content hash, and the access default);
- :func:`load_index` refuses a saved index whose settings differ from the ones asked for, with
  a message, instead of mixing vectors of two embedders;
- :func:`index_folder` reuses the saved index when the folder and the settings are unchanged
  and rebuilds (and saves again) when they are not; :func:`bundled_index` does the same for the
  bundled knowledge base, in the kit's cache.

A folder's index is saved next to it (``my-docs.kit-index/`` beside ``my-docs/``): that folder
itself is never written to. One file's index is saved beside the file, in the file's folder
(``notes.md.kit-index/``), and loading that folder leaves it out (:func:`kit.data.folder_files`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit import __version__
from kit.data import (
    ACCESS_RULES,
    FOLDER_SUFFIXES,
    SAVED_INDEX_SUFFIX,
    VERSIONS,
    DataError,
    folder_access,
    folder_files,
    load_folder,
    unreadable,
)
from kit.indexing import (
    DEFAULT_SPLIT_LENGTH,
    DEFAULT_SPLIT_OVERLAP,
    Index,
    RagError,
    build_index,
    document_embedder,
    load_source,
)
from kit.inputs import user_path
from kit.models import DEFAULT_EMBEDDER, cache_dir
from kit.store import new_store

if TYPE_CHECKING:
    from haystack import Document

STORE_FILE = "store.json"
RECORD_FILE = "kit-index.json"
SETTINGS = ("embedder", "split_by", "split_length", "split_overlap")


def expanded(location: str | Path) -> Path:
    """``location`` with ``~`` expanded; a RagError (not a traceback) for ``~someone`` when this
    machine has no such user."""
    try:
        return Path(location).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        raise RagError(f"{location}: no such user's home folder; write the full path") from None


def default_location(folder: str | Path) -> Path:
    """Where :func:`index_folder` saves the index of ``folder``: beside it, never inside it
    (beside the name you gave: a symbolic link's target may be read-only or shared). For one
    file, beside the file (``a.md.kit-index``): loading its folder leaves that out."""
    folder = Path(os.path.abspath(expanded(folder)))
    return folder.parent / f"{folder.name}{SAVED_INDEX_SUFFIX}"


def folder_fingerprint(folder: str | Path, options: str = "") -> str:
    """A hash of what indexing reads: each loadable file's relative path, size and content
    (hidden files and unsupported types are left out, as :func:`kit.data.load_folder` does),
    ``options``, how the folder is loaded (the access default, skipping bad files), and the kit
    version and :data:`kit.data.ACCESS_RULES` (a kit that reads access levels or files
    differently rebuilds: an index saved under looser rules is never reused)."""
    folder = Path(folder).expanduser()
    rules = f"kit={__version__} access-rules={ACCESS_RULES} options={options}"
    digest = hashlib.sha256(rules.encode())
    files = [folder] if folder.is_file() else folder_files(folder)  # what load_folder reads
    for path in files:
        rel = path.relative_to(folder) if path != folder else Path(path.name)
        if not path.is_file():  # a file given itself counts, hidden name or not
            continue
        if path.suffix.lower() not in FOLDER_SUFFIXES:
            continue
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError as err:  # a file the converters skipped quietly, e.g. no permission
            raise DataError(unreadable(path, err)) from None
    return digest.hexdigest()[:20]


def folder_state(folder: str | Path, default_access: str | None, skip_bad: bool) -> str:
    """:func:`folder_fingerprint` of ``folder`` loaded with these :func:`kit.data.load_folder`
    options: take it before loading, and pass it with the documents to :func:`index_folder`."""
    return folder_fingerprint(folder, f"{default_access}, skip_bad={skip_bad}")


def settings_of(index: Index) -> dict[str, Any]:
    """The settings an index was built with, as :func:`load_index` compares them (a model
    folder given as a Path, as its text)."""
    values = {key: getattr(index, key) for key in SETTINGS}
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def save_index(index: Index, location: str | Path, fingerprint: str = "") -> Path:
    """Save ``index`` (an in-memory store) to the folder ``location``; return that folder.

    The record of settings and fingerprint is written last: a save that did not finish has no
    record and is never loaded."""
    where = expanded(location)
    if not hasattr(index.store, "save_to_disk"):
        raise RagError(
            f"{type(index.store).__name__} keeps its own data (a database): it needs no saving"
        )
    where.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds every chunk, confidential too
    (where / RECORD_FILE).unlink(missing_ok=True)
    index.store.save_to_disk(str(where / STORE_FILE))
    (where / STORE_FILE).chmod(0o600)
    record = {
        **settings_of(index),
        "fingerprint": fingerprint,
        "documents": index.documents,
        "chunks": index.chunks,
        "seconds": index.seconds,
        "reused": index.reused,
        "kit": __version__,
        "access_rules": ACCESS_RULES,
        "saved": time.strftime("%Y-%m-%d %H:%M"),
    }
    (where / RECORD_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return where


def read_record(location: str | Path) -> dict[str, Any] | None:
    """The record of a saved index, or None when there is no finished save at ``location``."""
    path = expanded(location) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def load_index(location: str | Path, **expected: Any) -> Index:
    """Load the index saved at ``location``.

    ``expected``: settings the caller needs (``embedder``, ``split_by``, ``split_length``,
    ``split_overlap``); a saved index built with other values is refused with a RagError that
    says which and how to rebuild, since queries must be embedded like the stored chunks.
    """
    where = expanded(location)
    record = read_record(where)
    if record is None or not (where / STORE_FILE).is_file():
        raise RagError(
            f"{where}: no saved index here (or its save did not finish); build one with "
            "kit.saved_index.index_folder(folder) (your documents) or bundled_index() (the "
            "bundled ones)"
        )
    if record.get("access_rules") != ACCESS_RULES:  # who may see a chunk was decided otherwise
        raise RagError(
            f"{where}: the saved index was built by a kit that read access levels by other "
            f"rules ({record.get('access_rules', 'older')}, now {ACCESS_RULES}); rebuild it: "
            "index_folder(folder, rebuild=True), or python -m kit serve --docs FOLDER"
        )
    wrong = {k: (record.get(k), v) for k, v in expected.items() if record.get(k) != v}
    if wrong:
        said = "; ".join(
            f"{k} was {old!r}, you asked for {new!r}" for k, (old, new) in wrong.items()
        )
        raise RagError(
            f"{where}: the saved index was built with other settings ({said}); pass the "
            "settings it was built with, or build one with yours (index_folder(folder, ...) or "
            "bundled_index(...) rebuild it)"
        )
    try:  # the same store class build_index makes
        store = type(new_store()).load_from_disk(str(where / STORE_FILE))
    except Exception as err:  # damaged, or saved by another kit version: say so, never half-load
        raise RagError(
            f"{where}: the saved index cannot be read ({type(err).__name__}: {err}); rebuild it "
            "with index_folder(folder, rebuild=True) or bundled_index(rebuild=True)"
        ) from None
    return Index(
        store=store,
        **{k: record[k] for k in SETTINGS},
        documents=record.get("documents", 0),
        chunks=record.get("chunks", 0),
        seconds=record.get("seconds", 0.0),
        reused=record.get("reused", 0),
    )


def _check_access(documents: Sequence[Document], expected: dict[str, str], options: str) -> None:
    """DataError unless every document's access level is the one the folder's options give
    (documents loaded with other options must not be saved under these ones)."""
    for doc in documents:
        meta = getattr(doc, "meta", None) or {}
        want = expected.get(str(meta.get("source")))
        if want is None:
            raise DataError(
                f"documents: {meta.get('source')!r} is not a file of this folder; pass the "
                "documents load_folder(folder) returned, or leave documents out"
            )
        if meta.get("access") != want:
            raise DataError(
                f"documents: {meta.get('source')!r} has access {meta.get('access')!r}, but the "
                f"folder read with {options} gives {want!r}; load the documents with the same "
                "options as index_folder (load_folder(folder, default_access=..., skip_bad=...)) "
                "or leave documents out"
            )


def index_folder(
    folder: str | Path,
    location: str | Path | None = None,
    default_access: str | None = None,
    skip_bad: bool = False,
    rebuild: bool = False,
    embedder: str | Path = DEFAULT_EMBEDDER,
    split_by: str = "word",
    split_length: int = DEFAULT_SPLIT_LENGTH,
    split_overlap: int = DEFAULT_SPLIT_OVERLAP,
    log: Any = print,
    documents: Sequence[Document] | None = None,
    read_as: str | None = None,
) -> Index:
    """The index of a folder of your documents: the saved one when the folder and the settings
    are unchanged, else built (:func:`kit.indexing.build_index` on :func:`kit.data.load_folder`)
    and saved. ``location``: where to save (default :func:`default_location`);
    ``default_access`` / ``skip_bad``: as :func:`kit.data.load_folder` (part of the
    fingerprint: another access default rebuilds); ``rebuild``: build even if a saved index
    fits; ``documents``: the folder's documents if you have just loaded them with these access
    options (a rebuild then does not read and convert every file a second time), and
    ``read_as``, :func:`folder_state` taken before they were loaded: when the folder changed
    since, they are read again, so an index is never saved under a newer state than its text.
    Out: the Index (``index.seconds`` is the build time)."""
    folder = user_path(folder, "folder", error=DataError)  # a folder, or one file in it
    where = expanded(location) if location is not None else default_location(folder)
    settings = dict(
        embedder=str(embedder),  # a Path and its text name the same model folder
        split_by=split_by,
        split_length=split_length,
        split_overlap=split_overlap,
    )
    fingerprint = folder_state(folder, default_access, skip_bad)
    if documents is not None and read_as not in (None, fingerprint):  # edited since they were read
        documents = None

    def build(reuse: bool) -> Index:
        docs = documents
        if docs is None:
            docs = load_folder(folder, default_access=default_access, skip_bad=skip_bad)
        else:
            options = f"default_access={default_access!r}, skip_bad={skip_bad}"
            _check_access(docs, folder_access(folder, default_access, skip_bad), options)
        # minutes on a laptop: shown
        return build_index(list(docs), progress=True, reuse=reuse, **settings)

    return _reused_or_built(where, fingerprint, settings, str(folder), build, rebuild, log)


def bundled_index(
    version: str = "v1",
    location: str | Path | None = None,
    rebuild: bool = False,
    split_length: int = DEFAULT_SPLIT_LENGTH,
    split_overlap: int = DEFAULT_SPLIT_OVERLAP,
    split_by: str = "word",
    embedder: str = DEFAULT_EMBEDDER,
    log: Any = print,
) -> Index:
    """The index of the bundled knowledge base (``"v1"`` or ``"v2"``), as
    :func:`kit.indexing.build_index` builds it, saved in the kit's cache (default
    ``<cache>/indexes/kb-<version>``) and loaded from there while the documents and the
    settings are unchanged: a notebook restarted is not embedded again. ``rebuild``: build even
    if a saved index fits. Out: the Index."""
    if version not in VERSIONS:
        raise RagError(
            f"bundled_index takes a version of the bundled knowledge base, {' or '.join(VERSIONS)}"
            f", not {str(version)[:80]!r}; for a folder of yours use index_folder(folder)"
        )
    where = bundled_location(version) if location is None else expanded(location)
    settings = dict(
        embedder=embedder, split_by=split_by, split_length=split_length, split_overlap=split_overlap
    )
    documents = load_source(version)
    fingerprint = documents_fingerprint(documents)
    what = f"the bundled documents ({version})"

    def build(reuse: bool) -> Index:
        return build_index(documents, reuse=reuse, **settings)

    return _reused_or_built(where, fingerprint, settings, what, build, rebuild, log)


def bundled_location(version: str = "v1") -> Path:
    """Where :func:`bundled_index` saves the bundled knowledge base's index: in the kit's cache."""
    return cache_dir() / "indexes" / f"kb-{version}"


def documents_fingerprint(documents: Sequence[Document]) -> str:
    """A hash of documents' ids, text and metadata, and of the kit version and access rules
    (what :func:`folder_fingerprint` is for a folder)."""
    digest = hashlib.sha256(f"kit={__version__} access-rules={ACCESS_RULES}".encode())
    for doc in sorted(documents, key=lambda d: str(d.id)):
        meta = json.dumps(doc.meta, sort_keys=True, default=str)
        digest.update(f"{doc.id}\0{meta}\0{doc.content}\0".encode())
    return digest.hexdigest()[:20]


def _reused_or_built(
    where: Path,
    fingerprint: str,
    settings: dict[str, Any],
    what: str,
    build: Callable[[bool], Index],
    rebuild: bool,
    log: Any,
) -> Index:
    """The index saved at ``where`` if it was built from the same documents with the same
    settings (and ``rebuild`` is False); else ``build(reuse)``, saved there: with the vectors of
    the saved index's unchanged text (``reuse``), or, when ``rebuild`` is asked for, every chunk
    embedded again."""
    saved = None if rebuild else _saved_if_same(where, fingerprint, settings, what, log)
    if saved is not None:
        if _same_kit(read_record(where)):
            _remember(saved)  # an index built from it later (v2 after v1) embeds only new text
        return saved
    if not rebuild:
        _remember_saved(where, settings["embedder"], log)
    return _saved(build(not rebuild), where, fingerprint, log)


def _same_kit(record: dict[str, Any] | None) -> bool:
    """Whether a saved index's record says this kit version saved it (its vectors were made
    with the embedder settings of today's code)."""
    return (record or {}).get("kit") == __version__


def _remember(index: Index) -> int:
    """Put the vectors of ``index``'s chunks in the process's memory (:mod:`kit.embeddings`), so
    an index built later embeds only text this one does not hold. Out: how many."""
    from kit.embeddings import remember_store  # heavy: sentence-transformers

    return remember_store(index.store, document_embedder(index.embedder))


def _remember_saved(where: Path, embedder: str, log: Any) -> None:
    """Before a rebuild: keep the vectors of the index saved at ``where`` (if it was built with
    ``embedder``), so only text that changed is embedded again."""
    record = read_record(where)
    if record is None or record.get("embedder") != embedder or not _same_kit(record):
        return
    try:
        kept = _remember(load_index(where, embedder=embedder))
    except RagError:
        return  # damaged: everything is embedded again
    log(f"Kept the {kept} vectors of the saved index: only changed text is embedded again")


def _saved_if_same(
    where: Path, fingerprint: str, settings: dict[str, Any], what: str, log: Any
) -> Index | None:
    """The index saved at ``where`` if it was built from the same documents (``fingerprint``)
    with the same settings, else None (and ``log`` says why it is rebuilt)."""
    record = read_record(where)
    if record is None:
        return None
    same = record.get("fingerprint") == fingerprint
    if not (same and all(record.get(k) == v for k, v in settings.items())):
        log(f"{what} or the settings changed since the index in {where} was saved: rebuilding")
        return None
    try:
        index = load_index(where, **settings)
    except RagError as err:
        log(f"{err}: rebuilding")
        return None
    log(f"Reusing the saved index in {where} (saved {record.get('saved')})")
    return index


def _saved(index: Index, where: Path, fingerprint: str, log: Any) -> Index:
    """``index``, saved at ``where`` when that place is writable (said either way)."""
    try:
        save_index(index, where, fingerprint)
        log(f"Index saved to {where}")
    except OSError as err:  # a read-only place: the index still works, it is just not saved
        log(f"Could not save the index to {where} ({err}); pass location= a writable folder")
    return index
