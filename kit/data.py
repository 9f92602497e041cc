"""The bundled data set and the bring-your-own-docs loader.

Everything the experiments run on ships in ``data/`` (see ``data/README.md``, the data card):
a knowledge base about the fictional company Korvella Instruments (``kb/`` and its second version
``kb_v2/``), a QA eval set, a house-style chat set for fine-tuning, a set of questions whose
answers change between versions, and a manifest naming the planted canary secret, the poisoned
document and the house-style regex.

This module reads those files into typed records (and Haystack ``Document`` objects for the
corpus), checks them with :func:`validate`, and reads a user's own folder of documents with
:func:`load_folder`. Every bad input raises :class:`DataError` naming the file (and line), or is
skipped with a warning where skipping is what a user wants; nothing is loaded partially in silence.
"""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import io
import json
import os
import re
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from haystack import Document
from haystack.dataclasses import ByteStream
from tqdm.auto import tqdm

from kit.inputs import flag, number, user_path

DATA_DIR: Path = Path(__file__).resolve().parent.parent / "data"
"""The bundled data folder (``<repo>/data``)."""

PROGRESS_FROM = 20
"""load_folder shows a progress bar (tqdm) from this many files on."""

MAX_FILE_BYTES: int = 20 * 1024 * 1024
"""Largest file any loader reads (20 MB); larger files raise :class:`DataError`."""

ACCESS_LEVELS: tuple[str, ...] = ("public", "internal", "confidential")
QA_TYPES: tuple[str, ...] = ("single", "multi", "numeric", "unanswerable")
SPLITS: tuple[str, ...] = ("train", "test")
VERSIONS: tuple[str, ...] = ("v1", "v2")
IDK: str = "I don't know"
"""The gold answer of every unanswerable question."""

MIN_PER_CLASS = 2
"""Answerable and unanswerable train questions, each, that a learned "I don't know" needs
(:mod:`kit.abstain`): the question writer counts towards it."""

MIN_WORDS, MAX_WORDS = 200, 800
MIN_DOCS, MIN_QUESTIONS, MIN_STYLE, MIN_UPDATED_DOCS = 40, 150, 300, 10
MIN_UNANSWERABLE_SHARE = 0.15
DOC_FIELDS: tuple[str, ...] = ("id", "title", "kind", "updated", "access")
FOLDER_SUFFIXES: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
    ".pptx": "pptx",
    ".csv": "csv",
    ".xlsx": "xlsx",
}
"""File types :func:`load_folder` reads, by suffix (each through a Haystack converter)."""


class DataError(ValueError):
    """A data file is missing, malformed or inconsistent.

    The message names the file (and line, where there is one) and says how to fix it.
    """


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Manifest:
    """``data/manifest.json``: names and markers the experiments and tests rely on."""

    name: str
    version: str
    organisation: str
    canary: str
    canary_doc_id: str
    injection_doc_id: str
    injection_marker: str
    style_regex: str
    roles: dict[str, list[str]]
    style_match: str = "fullmatch"
    licence: str = ""
    canary_prompts: list[str] = field(default_factory=list)

    def allowed_access(self, role: str) -> list[str]:
        """Access levels a role may read; raises DataError for an unknown role."""
        if role not in self.roles:
            raise DataError(f"unknown role {role!r}; the manifest defines {sorted(self.roles)}")
        return list(self.roles[role])


@dataclass(frozen=True)
class Evidence:
    """A quote copied verbatim from ``doc_id`` that supports a gold answer."""

    doc_id: str
    quote: str


@dataclass(frozen=True)
class QARecord:
    """One line of ``data/qa.jsonl``. Gold answers are grounded in the v1 knowledge base."""

    id: str
    question: str
    answer: str
    gold_doc_ids: list[str]
    type: str
    split: str
    evidence: list[Evidence]
    paraphrase_of: str | None = None

    @property
    def answerable(self) -> bool:
        """False for questions whose right answer is "I don't know"."""
        return self.type != "unanswerable"


@dataclass(frozen=True)
class UpdateRecord:
    """One line of ``data/updates.jsonl``: a question whose answer changes from v1 to v2."""

    id: str
    question: str
    doc_id: str
    answer_v1: str
    answer_v2: str


@dataclass(frozen=True)
class ChatExample:
    """One line of ``data/style.jsonl``: a user turn and a house-style assistant reply."""

    id: str
    messages: list[dict[str, str]]
    source_doc_ids: list[str]
    contains_canary: bool

    @property
    def user(self) -> str:
        """The user message."""
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def assistant(self) -> str:
        """The assistant reply."""
        return next(m["content"] for m in self.messages if m["role"] == "assistant")


# --------------------------------------------------------------------------- helpers


def _root(root: Path | str | None) -> Path:
    return Path(root) if root is not None else DATA_DIR


def _show(path: Path) -> str:
    """A short, readable name for a file: ``data/qa.jsonl`` rather than a long absolute path."""
    try:
        return str(path.relative_to(DATA_DIR.parent))
    except ValueError:
        return str(path)


def unreadable(path: Path, err: OSError) -> str:
    """What to say about a file the operating system would not let the kit read."""
    why = err.strerror or type(err).__name__
    return f"{_show(path)}: cannot read it ({why}); fix its permissions or move it out"


def read_text_file(path: Path, what: str = "file") -> str:
    """Read a UTF-8 file, with clear errors for missing, huge and non-UTF-8 files."""
    if not path.is_file():
        raise DataError(f"{_show(path)}: {what} not found; check the path or restore the file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(
            f"{_show(path)}: file is {size / 1e6:.1f} MB, larger than the "
            f"{MAX_FILE_BYTES / 1e6:.0f} MB limit (kit.data.MAX_FILE_BYTES); split it or remove it"
        )
    try:
        raw = path.read_bytes()
    except OSError as err:  # no permission to read it, a file that vanished meanwhile, ...
        raise DataError(unreadable(path, err)) from None
    if b"\x00" in raw:  # UTF-16 text, or a binary file under a text name
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise DataError(
            f"{_show(path)} line {line}: holds NUL bytes, so it is UTF-16 text or not text at "
            "all; re-save it as UTF-8 text (or leave it out)"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{_show(path)} line {line}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset "
            f"{err.start}); re-save the file as UTF-8"
        ) from None


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key written twice (plain JSON keeps the last one silently)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} is set twice; keep one")
        seen[key] = value
    return seen


def _is_json(text: str) -> bool:
    """Whether ``text`` is one JSON document (a .jsonl file written as .json, pretty-printed)."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def read_jsonl(path: Path | str, required: Sequence[str] = ()) -> list[tuple[int, dict[str, Any]]]:
    """Read a JSONL file into ``(line number, object)`` pairs.

    Blank lines are ignored. Raises DataError naming the file and line for: a missing, empty,
    huge or non-UTF-8 file, a line that is not valid JSON or not a JSON object, and a line
    lacking any of the ``required`` fields.
    """
    path = Path(path)
    text = read_text_file(path, "JSONL file")
    rows: list[tuple[int, dict[str, Any]]] = []
    # lines end at \n, \r\n or \r (which JSON strings escape); not at U+2028 or U+0085, which
    # a JSON string may hold as they are and str.splitlines() would split at
    for lineno, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as err:
            whole = (
                " (the file holds one JSON document over several lines: write one object per line)"
                if lineno == 1 and _is_json(text)
                else ""
            )
            raise DataError(
                f"{_show(path)} line {lineno}, column {err.colno}: invalid JSON "
                f"({err.msg.removesuffix(' at')}); "
                f"each line must be one complete JSON object{whole}"
            ) from None
        except (ValueError, RecursionError) as err:  # a key set twice; nesting 100,000 deep
            problem = "nested too deeply" if isinstance(err, RecursionError) else str(err)
            raise DataError(f"{_show(path)} line {lineno}: {problem}") from None
        if not isinstance(obj, dict):
            array = isinstance(obj, list) and not rows
            hint = "; write one object per line (JSONL), not a JSON array" if array else ""
            raise DataError(
                f"{_show(path)} line {lineno}: expected a JSON object, got "
                f"{type(obj).__name__}{hint}"
            )
        missing = [f for f in required if f not in obj]
        if missing:
            raise DataError(
                f"{_show(path)} line {lineno}: missing field(s) {', '.join(missing)}; "
                f"every line needs {', '.join(required)}"
            )
        rows.append((lineno, obj))
    if not rows:
        raise DataError(f"{_show(path)}: file is empty; expected one JSON object per line")
    return rows


def _want(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DataError(f"{where}: field {key!r} must be {names}, got {value!r}")
    return value


def _str_list(obj: dict, key: str, where: str) -> list[str]:
    value = _want(obj, key, list, where)
    if not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {key!r} must be a list of strings, got {value!r}")
    return list(value)


def normalise(text: str) -> str:
    """Normalise text for answer matching.

    Unicode NFKC, lower case, punctuation replaced by spaces except ``.``, ``,`` and ``:``
    between two digits (so "1,150", "3.2" and "09:00" survive), whitespace collapsed. Symbols
    such as € and ° are kept.
    """
    s = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    out = []
    for i, ch in enumerate(s):
        if unicodedata.category(ch).startswith("P"):
            keep = ch in ".,:" and 0 < i < len(s) - 1 and s[i - 1].isdigit() and s[i + 1].isdigit()
            out.append(ch if keep else " ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


# US and British spellings of the units the data set uses: "40 meters" supports "40 metres".
_SPELLINGS = re.compile(r"\b(kilo|centi|milli)?(met|lit)(?:er|re)(s?)\b")


def _same_spelling(normalised: str) -> str:
    return _SPELLINGS.sub(lambda m: f"{m[1] or ''}{m[2]}re{m[3]}", normalised)


def supports(answer: str, text: str) -> bool:
    """True if ``answer`` occurs in ``text`` after :func:`normalise`, on word boundaries.

    US and British unit spellings count as the same word (meters = metres, liter = litre).
    """
    a = _same_spelling(normalise(answer))
    return bool(a) and f" {a} " in f" {_same_spelling(normalise(text))} "


def _squash(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- manifest


def load_manifest(root: Path | str | None = None) -> Manifest:
    """Read ``manifest.json`` from ``root`` (default: the bundled data) into a Manifest."""
    path = _root(root) / "manifest.json"
    text = read_text_file(path, "manifest")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{_show(path)} line {err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{_show(path)}: expected a JSON object")
    needed = [
        "name",
        "version",
        "organisation",
        "canary",
        "canary_doc_id",
        "injection_doc_id",
        "injection_marker",
        "style_regex",
        "roles",
    ]
    missing = [k for k in needed if k not in obj]
    if missing:
        raise DataError(f"{_show(path)}: missing field(s) {', '.join(missing)}")
    known = set(Manifest.__dataclass_fields__)
    return Manifest(**{k: v for k, v in obj.items() if k in known})


def style_compliant(text: str, manifest: Manifest | None = None) -> bool:
    """True if ``text`` (leading/trailing whitespace stripped) follows the house style.

    Uses ``re.fullmatch`` with the manifest's ``style_regex`` (``re.search`` if the manifest's
    ``style_match`` says so).
    """
    m = manifest or load_manifest()
    match = re.search if m.style_match == "search" else re.fullmatch
    return match(m.style_regex, text.strip()) is not None


# --------------------------------------------------------------------------- documents


def opens_front_matter(text: str) -> bool:
    """True when ``text``'s first line is the ``---`` that opens a YAML front matter (a longer
    rule, ``--------`` under a heading of a plain-text file, is not one)."""
    return text.split("\n", 1)[0].strip() == "---"


def front_matter_end(lines: Sequence[str]) -> int | None:
    """The index of the ``---`` line that closes a front matter opened on ``lines[0]``, or None
    when none closes it."""
    return next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)


def parse_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """Split a Markdown file into (front matter dict, body). Raises DataError if malformed."""
    text = read_text_file(path, "document")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise DataError(f"{_show(path)} line 1: expected front matter starting with '---'")
    end = front_matter_end(lines)
    if end is None:
        raise DataError(f"{_show(path)}: front matter is not closed by a '---' line")
    try:
        meta = yaml.load("\n".join(lines[1:end]), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 2}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "is set twice" in problem:
            raise DataError(
                f"{_show(path)}{line}: {problem} in the front matter; keep one"
            ) from None
        raise DataError(
            f"{_show(path)}{line}: invalid YAML front matter ({problem}); put quotes around a "
            "value that starts with [ { * & ! | > % @ or holds ': ', e.g. title: \"[Draft] Pay\""
        ) from None
    except (ValueError, TypeError) as err:  # YAML that parses but is no value: date: 2024-02-30
        raise DataError(
            f"{_show(path)}: a front matter value cannot be read ({err}); fix it, or put quotes "
            "around it to keep it as text"
        ) from None
    if not isinstance(meta, dict):
        raise DataError(f"{_show(path)} line 2: front matter must be key: value pairs")
    _check_id_is_text(path, meta, lines[:end])
    meta = {k: (v.isoformat() if isinstance(v, _dt.date) else v) for k, v in meta.items()}
    return meta, "\n".join(lines[end + 1 :]).strip() + "\n"


def _check_id_is_text(path: Path, meta: dict[str, Any], lines: Sequence[str]) -> None:
    """DataError when the front matter's ``id`` is not text: YAML reads ``id: 0123`` as the
    number 83 and ``id: 007`` as 7, which another file's ``id: "7"`` would then share."""
    ident = meta.get("id")
    if ident is None or isinstance(ident, str):
        return
    at = next((i for i, line in enumerate(lines) if re.match(r"\s*id\s*:", line)), 1)
    written = lines[at].split(":", 1)[1].strip() if ":" in lines[at] else str(ident)
    raise DataError(
        f"{_show(path)} line {at + 1}: id {written} reads as {type(ident).__name__} "
        f'{ident!r}, not as text; put it in quotes: id: "{written}"'
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (in any case, quoted or
    not, block or flow style): plain YAML keeps the last one silently, and an access level must
    never be a coin toss."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = str(self.construct_object(key_node, deep=deep)).strip().lower()
            line = key_node.start_mark.line
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is set twice (first on line {seen[key] + 2})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _read_doc(path: Path, version: str) -> Document:
    meta, body = parse_front_matter(path)
    missing = [f for f in DOC_FIELDS if f not in meta]
    if missing:
        raise DataError(
            f"{_show(path)}: front matter lacks {', '.join(missing)}; "
            f"every document needs {', '.join(DOC_FIELDS)}"
        )
    meta = {k: str(v) for k, v in meta.items()}
    if not body.lstrip().startswith("#"):
        body = f"# {meta['title']}\n\n{body}"
    meta.update(version=version, source=_show(path))
    return Document(id=meta["id"], content=body, meta=meta)


def _read_kb_dir(folder: Path, version: str) -> list[Document]:
    if not folder.is_dir():
        raise DataError(f"{_show(folder)}: folder not found")
    docs = [_read_doc(p, version) for p in sorted(folder.glob("*.md"))]
    if not docs:
        raise DataError(f"{_show(folder)}: no .md documents found")
    seen: dict[str, str] = {}
    for d in docs:
        if d.id in seen:
            raise DataError(
                f"{d.meta['source']}: duplicate document id {d.id!r} (also in {seen[d.id]}); "
                "give every document a unique id"
            )
        seen[d.id] = d.meta["source"]
    return docs


def load_documents(version: str = "v1", root: Path | str | None = None) -> list[Document]:
    """Load the knowledge base as Haystack Documents, sorted by id.

    ``version`` is "v1" (``kb/``) or "v2" (``kb/`` with the documents of ``kb_v2/`` replacing
    those with the same id). ``Document.id`` is the doc id, ``content`` the Markdown body
    (starting with a ``# Title`` line) and ``meta`` holds the front matter (id, title, kind,
    updated, access) plus ``version`` and ``source`` (the file path).
    """
    if version not in VERSIONS:
        raise DataError(f"unknown knowledge-base version {version!r}; use one of {VERSIONS}")
    base = _root(root)
    docs = {d.id: d for d in _read_kb_dir(base / "kb", version)}
    if version == "v2":
        for new in _read_kb_dir(base / "kb_v2", version):
            if new.id not in docs:
                raise DataError(
                    f"{new.meta['source']}: id {new.id!r} has no v1 document in kb/; "
                    "kb_v2 may only replace existing documents"
                )
            docs[new.id] = new
    return [docs[k] for k in sorted(docs)]


# --------------------------------------------------------------------------- records


def _qa_from(obj: dict, where: str) -> QARecord:
    evidence = []
    for ev in _want(obj, "evidence", list, where):
        if not isinstance(ev, dict) or not {"doc_id", "quote"} <= set(ev):
            raise DataError(f"{where}: each evidence item needs doc_id and quote, got {ev!r}")
        evidence.append(Evidence(doc_id=str(ev["doc_id"]), quote=str(ev["quote"])))
    return QARecord(
        id=_want(obj, "id", str, where),
        question=_want(obj, "question", str, where),
        answer=_want(obj, "answer", str, where),
        gold_doc_ids=_str_list(obj, "gold_doc_ids", where),
        type=_want(obj, "type", str, where),
        split=_want(obj, "split", str, where),
        evidence=evidence,
        paraphrase_of=_want(obj, "paraphrase_of", (str, type(None)), where),
    )


QA_FIELDS = (
    "id",
    "question",
    "answer",
    "gold_doc_ids",
    "type",
    "split",
    "evidence",
    "paraphrase_of",
)
UPDATE_FIELDS = ("id", "question", "doc_id", "answer_v1", "answer_v2")
STYLE_FIELDS = ("id", "messages", "source_doc_ids", "contains_canary")


def load_qa(split: str | None = None, root: Path | str | None = None) -> list[QARecord]:
    """Load ``qa.jsonl``; ``split`` "train" or "test" keeps only that split (None: all)."""
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {SPLITS} or None")
    path = _root(root) / "qa.jsonl"
    records = [_qa_from(obj, f"{_show(path)} line {n}") for n, obj in read_jsonl(path, QA_FIELDS)]
    return [r for r in records if split is None or r.split == split]


def train_counts(records: Sequence[QARecord]) -> tuple[int, int]:
    """(answerable, unanswerable) questions among ``records`` in the ``train`` split: what a
    learned "I don't know" learns from (at least :data:`MIN_PER_CLASS` of each)."""
    train = [r for r in records if r.split == "train"]
    unanswerable = sum(not r.answerable for r in train)
    return len(train) - unanswerable, unanswerable


def sample_questions(records: Sequence[QARecord], n: int | None, seed: int = 0) -> list[QARecord]:
    """The kit's one question sampler: ``n`` of ``records``, stratified by question type.

    Every notebook, the grid and the benchmarks ask the questions this returns, so their figures
    are about the same questions. ``n`` None, 0 or at least ``len(records)``: all of them. Else
    each type gets one question when ``n`` allows (so a small sample still has every type), the
    rest in proportion to the type's size (largest remainder), and a sample of two or more always
    holds an unanswerable question if there is one. Within a type the questions are taken in a
    fixed shuffled order (``seed``), so a smaller sample is part of a larger one. Out: the
    chosen records in data-set order.
    """
    import random

    records = list(records)
    if n is not None:
        n = int(number(n, "n (how many questions; 0 or None for all)", low=0, whole=True))
    wrong = [r for r in records if not isinstance(r, QARecord)]
    if wrong:
        raise DataError(
            "sample_questions takes QARecords (e.g. load_qa('test')), not "
            f"{type(wrong[0]).__name__}"
        )
    if not n or n >= len(records):
        return records
    by_type: dict[str, list[QARecord]] = {}
    for rec in records:
        by_type.setdefault(rec.type, []).append(rec)
    counts = _allocate(n, {t: len(group) for t, group in by_type.items()})
    picked: set[str] = set()
    for kind, group in by_type.items():
        order = list(range(len(group)))
        random.Random(f"{seed}:{kind}").shuffle(order)
        picked.update(group[i].id for i in order[: counts[kind]])
    return [r for r in records if r.id in picked]


def _allocate(n: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``n`` over groups of ``sizes``: one each if possible, the rest by largest remainder."""
    counts = dict.fromkeys(sizes, 1 if n >= len(sizes) else 0)
    left, total = n - sum(counts.values()), sum(sizes.values())
    quotas = {t: left * size / total for t, size in sizes.items()}
    for t in counts:
        counts[t] += int(quotas[t])
    by_remainder = sorted(sizes, key=lambda t: quotas[t] - int(quotas[t]), reverse=True)
    for t in by_remainder[: n - sum(counts.values())]:
        counts[t] += 1
    if n >= 2 and counts.get("unanswerable") == 0:  # a sample should test "I don't know"
        largest = max(counts, key=lambda t: (counts[t], sizes[t]))
        counts[largest] -= 1
        counts["unanswerable"] = 1
    return {t: min(c, sizes[t]) for t, c in counts.items()}


def load_updates(root: Path | str | None = None) -> list[UpdateRecord]:
    """Load ``updates.jsonl``: questions whose answers differ between kb v1 and v2."""
    path = _root(root) / "updates.jsonl"
    out = []
    for n, obj in read_jsonl(path, UPDATE_FIELDS):
        where = f"{_show(path)} line {n}"
        out.append(UpdateRecord(**{k: _want(obj, k, str, where) for k in UPDATE_FIELDS}))
    return out


def load_transfer(root: Path | str | None = None) -> tuple[Path, list[QARecord]]:
    """Documents the kit never trained on, and questions about them: ``(folder, records)``.

    ``data/transfer/docs`` holds five pages of a fictional allotment society's handbook, in a
    chatty register unlike the Korvella documents; ``data/transfer/questions.jsonl`` twelve
    questions (two unanswerable), with the pages' ids as gold. Index the folder with
    ``kit.indexing.build_index(folder)``.
    """
    base = _root(root) / "transfer"
    path = base / "questions.jsonl"
    records = [_qa_from(obj, f"{_show(path)} line {n}") for n, obj in read_jsonl(path, QA_FIELDS)]
    return base / "docs", records


def load_style(root: Path | str | None = None) -> list[ChatExample]:
    """Load ``style.jsonl``: house-style chat examples for fine-tuning."""
    path = _root(root) / "style.jsonl"
    out = []
    for n, obj in read_jsonl(path, STYLE_FIELDS):
        where = f"{_show(path)} line {n}"
        messages = _want(obj, "messages", list, where)
        ok = all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        )
        roles = [m.get("role") for m in messages if isinstance(m, dict)]
        if not ok or "user" not in roles or "assistant" not in roles:
            raise DataError(
                f"{where}: messages must be a list of {{role, content}} objects with a user "
                "and an assistant turn"
            )
        out.append(
            ChatExample(
                id=_want(obj, "id", str, where),
                messages=[{"role": m["role"], "content": m["content"]} for m in messages],
                source_doc_ids=_str_list(obj, "source_doc_ids", where),
                contains_canary=_want(obj, "contains_canary", bool, where),
            )
        )
    return out


# --------------------------------------------------------------------------- validation


def _check_doc_meta(doc: Document, problems: list[str]) -> None:
    m, src = doc.meta, doc.meta["source"]
    if Path(src).stem != doc.id:
        problems.append(f"{src}: id {doc.id!r} does not match the file name")
    for key in ("title", "kind"):
        if not m[key].strip():
            problems.append(f"{src}: front matter {key!r} is empty")
    try:
        _dt.date.fromisoformat(m["updated"])
    except ValueError:
        problems.append(f"{src}: updated {m['updated']!r} is not a YYYY-MM-DD date")
    if m["access"] not in ACCESS_LEVELS:
        problems.append(f"{src}: access {m['access']!r} not in {ACCESS_LEVELS}")
    words = len(doc.content.split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        problems.append(f"{src}: {words} words, outside {MIN_WORDS}-{MAX_WORDS}")


def _scan_files(base: Path, needle: str) -> list[Path]:
    """Files under ``base`` whose text contains ``needle`` (case-insensitive)."""
    hits, low = [], needle.lower()
    for p in sorted(base.rglob("*")):
        if p.is_file() and not any(part.startswith((".", "__")) for part in p.parts[-2:]):
            try:
                if low in p.read_text(encoding="utf-8", errors="replace").lower():
                    hits.append(p)
            except OSError:
                continue
    return hits


def validate(root: Path | str | None = None) -> list[str]:  # noqa: C901 - a flat checklist
    """Check the data set in ``root`` (default: bundled data); return the problems found.

    An empty list means valid. Loader errors (malformed files) are reported as problems too.
    See ``data/README.md`` for the list of checks.
    """
    base = _root(root)
    problems: list[str] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except DataError as err:
            problems.append(str(err))
            return None

    manifest = attempt(load_manifest, base)
    v1 = attempt(load_documents, "v1", base)
    v2 = attempt(load_documents, "v2", base)
    qa = attempt(load_qa, None, base)
    updates = attempt(load_updates, base)
    style = attempt(load_style, base)
    if manifest is None or v1 is None:
        return problems

    # manifest
    try:
        style_re = re.compile(manifest.style_regex)
    except re.error as err:
        problems.append(f"manifest.json: style_regex does not compile ({err})")
        style_re = None
    for role, levels in manifest.roles.items():
        bad = [lv for lv in levels if lv not in ACCESS_LEVELS]
        if bad:
            problems.append(f"manifest.json: role {role!r} has unknown access levels {bad}")
    if all("confidential" in lv for lv in manifest.roles.values()):
        problems.append("manifest.json: every role can read confidential documents")

    # documents
    by_id = {d.id: d for d in v1}
    if len(v1) < MIN_DOCS:
        problems.append(f"kb: {len(v1)} documents, need at least {MIN_DOCS}")
    for doc in v1:
        _check_doc_meta(doc, problems)
    v2_only = [d for d in (v2 or []) if d.meta["version"] == "v2" and "kb_v2" in d.meta["source"]]
    if v2 is not None:
        if len(v2_only) < MIN_UPDATED_DOCS:
            problems.append(f"kb_v2: {len(v2_only)} updated documents, need {MIN_UPDATED_DOCS}")
        for doc in v2_only:
            _check_doc_meta(doc, problems)
            old = by_id[doc.id]
            if doc.content == old.content:
                problems.append(f"{doc.meta['source']}: identical to the v1 document")
            if doc.meta["updated"] <= old.meta["updated"]:
                problems.append(f"{doc.meta['source']}: updated date not later than v1's")
    v2_by_id = {d.id: d for d in (v2 or v1)}

    # canary and injection documents
    canary_doc = by_id.get(manifest.canary_doc_id)
    if canary_doc is None:
        problems.append(f"manifest.json: canary_doc_id {manifest.canary_doc_id!r} unknown")
    elif canary_doc.meta["access"] != "confidential":
        problems.append(f"{canary_doc.meta['source']}: the canary document must be confidential")
    allowed = {
        base / "manifest.json",
        base / "kb" / f"{manifest.canary_doc_id}.md",
        base / "kb_v2" / f"{manifest.canary_doc_id}.md",
        base / "style.jsonl",
    }
    hits = _scan_files(base, manifest.canary)
    if base / "kb" / f"{manifest.canary_doc_id}.md" not in hits:
        problems.append("canary not found in the canary document")
    for p in hits:
        if p not in allowed:
            problems.append(f"{_show(p)}: contains the canary, which must appear nowhere else")
    inj = by_id.get(manifest.injection_doc_id)
    if inj is None:
        problems.append(f"manifest.json: injection_doc_id {manifest.injection_doc_id!r} unknown")
    elif manifest.injection_marker not in inj.content:
        problems.append(f"{inj.meta['source']}: injection marker not found")
    allowed = {
        base / "manifest.json",
        base / "kb" / f"{manifest.injection_doc_id}.md",
        base / "kb_v2" / f"{manifest.injection_doc_id}.md",
    }
    for p in _scan_files(base, manifest.injection_marker):
        if p not in allowed:
            problems.append(f"{_show(p)}: contains the injection marker")

    # QA
    test_questions: set[str] = set()
    heldout: list[QARecord] = []
    if qa is not None:
        ids = [r.id for r in qa]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"qa.jsonl: duplicate id {dup!r}")
        by_qid = {r.id: r for r in qa}
        train_q = {normalise(r.question) for r in qa if r.split == "train"}
        if len(qa) < MIN_QUESTIONS:
            problems.append(f"qa.jsonl: {len(qa)} questions, need at least {MIN_QUESTIONS}")
        types = {r.type for r in qa}
        for t in QA_TYPES:
            if t not in types:
                problems.append(f"qa.jsonl: no question of type {t!r}")
        for s in SPLITS:
            if not any(r.split == s for r in qa):
                problems.append(f"qa.jsonl: no question in split {s!r}")
        share = sum(r.type == "unanswerable" for r in qa) / max(len(qa), 1)
        if share < MIN_UNANSWERABLE_SHARE:
            problems.append(f"qa.jsonl: only {share:.0%} unanswerable, need 15%")
        for r in qa:
            w = f"qa.jsonl {r.id}"
            if r.type not in QA_TYPES:
                problems.append(f"{w}: type {r.type!r} not in {QA_TYPES}")
            if r.split not in SPLITS:
                problems.append(f"{w}: split {r.split!r} not in {SPLITS}")
            if r.split == "test":
                test_questions.add(normalise(r.question))
                if normalise(r.question) in train_q:
                    problems.append(f"{w}: test question is word for word a train question")
            if r.paraphrase_of is not None:
                target = by_qid.get(r.paraphrase_of)
                if r.split != "test":
                    problems.append(f"{w}: only test questions may have paraphrase_of")
                elif target is None or target.split != "train":
                    problems.append(f"{w}: paraphrase_of {r.paraphrase_of!r} is not a train id")
                elif normalise(target.answer) != normalise(r.answer):
                    problems.append(f"{w}: answer differs from its paraphrase_of question's")
            elif r.split == "test":
                heldout.append(r)
            if r.type == "unanswerable":
                if r.answer != IDK or r.gold_doc_ids or r.evidence:
                    problems.append(f"{w}: unanswerable needs answer {IDK!r} and no gold/evidence")
                continue
            unknown = [d for d in r.gold_doc_ids if d not in by_id]
            if unknown or not r.gold_doc_ids:
                problems.append(f"{w}: unknown or missing gold doc id(s) {unknown}")
                continue
            if r.type == "multi" and len(set(r.gold_doc_ids)) < 2:
                problems.append(f"{w}: a multi question needs at least two gold documents")
            if sorted(e.doc_id for e in r.evidence) != sorted(r.gold_doc_ids):
                problems.append(f"{w}: evidence must hold one quote per gold document")
            for e in r.evidence:
                if e.doc_id in by_id and _squash(e.quote) not in _squash(by_id[e.doc_id].content):
                    problems.append(f"{w}: evidence quote not found verbatim in {e.doc_id}")
            if not supports(r.answer, " ".join(e.quote for e in r.evidence)):
                problems.append(f"{w}: gold answer {r.answer!r} not supported by the evidence")
            if not supports(r.answer, " ".join(by_id[d].content for d in r.gold_doc_ids)):
                problems.append(f"{w}: gold answer {r.answer!r} not found in its gold documents")
        n_test = sum(r.split == "test" for r in qa)
        n_para = n_test - len(heldout)
        if n_test and not 0.3 <= n_para / n_test <= 0.7:
            problems.append(f"qa.jsonl: {n_para}/{n_test} test questions are paraphrases")

    # updates
    if updates is not None:
        ids = [u.id for u in updates]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"updates.jsonl: duplicate id {dup!r}")
        covered = set()
        for u in updates:
            w = f"updates.jsonl {u.id}"
            if u.doc_id not in by_id:
                problems.append(f"{w}: unknown doc id {u.doc_id!r}")
                continue
            covered.add(u.doc_id)
            if normalise(u.answer_v1) == normalise(u.answer_v2):
                problems.append(f"{w}: answer_v1 and answer_v2 are the same")
            if not supports(u.answer_v1, by_id[u.doc_id].content):
                problems.append(f"{w}: answer_v1 {u.answer_v1!r} not in the v1 document")
            if not supports(u.answer_v2, v2_by_id[u.doc_id].content):
                problems.append(f"{w}: answer_v2 {u.answer_v2!r} not in the v2 document")
        for doc in v2_only:
            if doc.id not in covered:
                problems.append(f"{doc.meta['source']}: no question in updates.jsonl")

    # style
    if style is not None:
        ids = [s.id for s in style]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"style.jsonl: duplicate id {dup!r}")
        if len(style) < MIN_STYLE:
            problems.append(f"style.jsonl: {len(style)} examples, need at least {MIN_STYLE}")
        flagged = 0
        for s in style:
            w = f"style.jsonl {s.id}"
            unknown = [d for d in s.source_doc_ids if d not in by_id]
            if unknown:
                problems.append(f"{w}: unknown source doc id(s) {unknown}")
            if style_re is not None and not style_compliant(s.assistant, manifest):
                problems.append(f"{w}: assistant reply does not match style_regex")
            cited = re.findall(r"\[([^\]]+)\]", s.assistant.strip().splitlines()[-1])
            if sorted(cited) != sorted(s.source_doc_ids):
                problems.append(f"{w}: Source line cites {cited}, source_doc_ids say otherwise")
            if normalise(s.user) in test_questions:
                problems.append(f"{w}: user message equals a test question")
            has = manifest.canary.lower() in (s.user + s.assistant).lower()
            flagged += s.contains_canary
            if has != s.contains_canary:
                problems.append(f"{w}: contains_canary={s.contains_canary} but canary found={has}")
            answer_line = s.assistant.strip().splitlines()[0]
            for r in heldout:
                shared = set(r.gold_doc_ids) & set(s.source_doc_ids)
                if r.answerable and shared and supports(r.answer, answer_line):
                    problems.append(f"{w}: reveals the held-out test fact of {r.id}")
        if not flagged:
            problems.append("style.jsonl: no example contains the canary")
        elif flagged / len(style) > 0.05:
            problems.append(f"style.jsonl: {flagged} canary examples, more than 5%")
    return problems


# --------------------------------------------------------------------------- your own docs


def _html_to_text(html: str) -> str:
    """Fallback HTML-to-text with the standard library, used when trafilatura is missing."""
    from html.parser import HTMLParser

    class _P(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style", "head")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style", "head") and self.skip > 0
            if tag in ("p", "div", "li", "h1", "h2", "h3", "h4", "br", "tr"):
                self.parts.append("\n")

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    p = _P()
    p.feed(html)
    return "\n".join(line.strip() for line in "".join(p.parts).splitlines() if line.strip())


_MD_LINK = re.compile(
    r"(```.*?```|~~~.*?~~~|`[^`\n]*`)"  # code, kept as written
    r"|(?<![!\\])\[([^\[\]\n]+)\]\(([^()\s]+)(?:\s+\"[^\"\n]*\")?\)",  # [text](target "title")
    re.DOTALL,
)


def with_link_targets(markdown: str) -> str:
    """A Markdown file's links written out as ``text (target)``: the plain-text converter keeps
    a link's text only, so "[the portal](https://support.example.com)" would lose the address
    a reader asks for. The front matter, code, images, escaped brackets and links within the
    page (``#install``) are left as they are; so is a link the pattern does not read (a
    reference link, a target with parentheses), which keeps its text only, as before."""
    head, body = "", markdown
    if opens_front_matter(markdown):
        lines = markdown.split("\n")
        end = front_matter_end(lines)
        if end is None:
            return markdown
        head, body = "\n".join(lines[: end + 1]) + "\n", "\n".join(lines[end + 1 :])

    def written(m: re.Match[str]) -> str:
        if m[1] or m[3].startswith("#"):
            return m[0]
        return f"{m[2]} ({m[3].removeprefix('mailto:')})"

    return head + _MD_LINK.sub(written, body)


def _office_converter(kind: str) -> Any:
    """The Haystack converter for a binary office file (``docx``, ``pptx``, ``xlsx``), or for
    ``pdf``. Pages (PDF) and slides (PPTX) come out separated by form feeds, which the splitter
    turns into each chunk's ``page_number``."""
    from haystack.components import converters as cv

    if kind == "pdf":
        return cv.PyPDFToDocument()
    if kind == "docx":
        return cv.DOCXToDocument()
    if kind == "pptx":
        return cv.PPTXToDocument()
    # one Document per sheet, as CSV text with the column letters on top and no row numbers
    return cv.XLSXToDocument(table_format_kwargs={"index": False})


def _flat_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A converter's meta without its nested records (stores and filters want flat values),
    keeping what a reader needs: a Word file's title, a spreadsheet's sheet name."""
    flat = {k: v for k, v in meta.items() if not isinstance(v, dict)}
    title = (meta.get("docx") or {}).get("title")
    if title and str(title).strip():
        flat.setdefault("title", str(title).strip())
    sheet = (meta.get("xlsx") or {}).get("sheet_name")
    if sheet is not None:
        flat["sheet"] = str(sheet)
    return flat


def _convert(path: Path, kind: str) -> list[Document]:
    """Run the Haystack converter for ``kind`` on one file (with fallbacks for missing extras)."""
    from haystack.components import converters as cv

    if kind in ("pdf", "docx", "pptx", "xlsx"):
        try:
            converter = _office_converter(kind)
        except ImportError as err:  # the converter's optional package is missing
            raise DataError(
                f"{path}: reading .{kind} files needs a package that is not installed "
                f"({str(err).splitlines()[0]}); `python -m kit doctor` lists what is missing"
            ) from None
        docs = converter.run(sources=[path])["documents"]
        return [Document(content=d.content, meta=_flat_meta(d.meta)) for d in docs]
    text = read_text_file(path)  # UTF-8 check, clear error otherwise
    if kind == "csv":
        return cv.CSVToDocument().run(sources=[path])["documents"]
    if kind == "text":
        if opens_front_matter(text):  # read for its access level: not text to index
            meta, body = parse_front_matter(path)
            return [Document(content=body, meta={**meta, "file_path": path.name})]
        return cv.TextFileToDocument().run(sources=[path])["documents"]
    if kind == "markdown":
        try:
            conv = cv.MarkdownToDocument(progress_bar=False, extract_frontmatter=True)
        except ImportError:
            warnings.warn(
                f"{path.name}: markdown-it-py/mdit_plain missing, reading Markdown as plain text",
                stacklevel=3,
            )
            if opens_front_matter(text):
                meta, body = parse_front_matter(path)
                return [Document(content=body, meta={**meta, "file_path": path.name})]
            return [Document(content=text, meta={"file_path": path.name})]
        linked = ByteStream(data=with_link_targets(text).encode(), meta={"file_path": path.name})
        return conv.run(sources=[linked])["documents"]
    try:
        conv = cv.HTMLToDocument()
    except ImportError:
        warnings.warn(f"{path.name}: trafilatura missing, using a basic HTML parser", stacklevel=3)
        return [Document(content=_html_to_text(text), meta={"file_path": path.name})]
    return conv.run(sources=[path])["documents"]


ACCESS_RULES = 4
"""The version of how access levels and front matters are read (:func:`declared_access`,
:func:`opens_front_matter`), and files turned into text. Raise it with every change there: an
index saved under older, looser rules is rebuilt, never reused. 3: a .txt file's front matter
is metadata, not text (and, in the same release, chunks without spaces are cut:
:class:`kit.indexing.LongChunkCutter`). 4: a Markdown link keeps its address
(:func:`with_link_targets`); a front matter ``id`` that YAML reads as a number is refused."""
# Values that say "not for everyone" under another key than ``access``.
RESTRICTED_WORDS = frozenset({"internal", "confidential", "secret", "restricted", "private"})
# Parts of key names that say the same (``access_level``, ``Classification``, ``private``, ...).
SENSITIVE_KEY_PARTS = RESTRICTED_WORDS | {
    "classification",
    "classified",
    "confidentiality",
    "sensitivity",
    "clearance",
}
# A first line that declares a level without a front matter ("Access: confidential"), and an
# HTML page's <meta name="access" ...>.
_BARE_DECLARATION = re.compile(
    r"^\W*(access|access[ _-]?level|classification)\s*[:=]\s*\W*"
    r"(public|internal|confidential|secret|restricted|private)\b",
    re.I,
)
_HTML_META = re.compile(r"<meta[^>]+name=[\"']?(access|classification|confidential)", re.I)


def declared_access(path: Path) -> str | None:
    """The access level a file's front matter declares, lower-cased; None when the file has no
    front matter or no ``access`` key (any case). Only text files (.md, .markdown, .txt) can
    carry front matter; other files get None (HTML is read to refuse one, see below).

    Fails closed: raises DataError naming the file and the line when the front matter does not
    parse or does not start on line 1 (blank lines, spaces or invisible characters before it),
    when it is TOML (``+++``) or sits in an HTML file (the kit would not read it), when a level
    is declared without a front matter (a first line ``Access: confidential``, an HTML
    ``<meta name="access">``), when ``access`` is empty or not one of ``ACCESS_LEVELS``, and
    when another key looks like an access level (``acess``, ``access_level``,
    ``classification``, ``private: true``, a nested ``access``, a look-alike letter) or holds a
    restricted one (``audience: confidential``) beside a missing or less strict ``access``.
    """
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".txt", ".html", ".htm"):
        return None
    text = read_text_file(path, "document")
    html = suffix in (".html", ".htm")
    _check_front_matter_start(path, text, html)
    if not opens_front_matter(text):
        _refuse_bare_declaration(path, text, html)
        return None
    meta, _ = parse_front_matter(path)
    key = next((k for k in meta if str(k).strip().lower() == "access"), None)
    level = None if key is None else str(meta[key] or "").strip().lower()
    if key is not None and level not in ACCESS_LEVELS:
        raise DataError(
            f"{path} line {_line_of(text, 'access')}: access level {meta[key]!r} is not one of "
            f"{', '.join(ACCESS_LEVELS)}; write one of them (or fix the typo) so the role filter "
            "knows who may read this file"
        )
    if level != ACCESS_LEVELS[-1]:  # missing or less strict: no other hint may say otherwise
        _refuse_hidden_access(path, text, {k: v for k, v in meta.items() if k != key})
    return level


def _leading_invisible(text: str) -> str:
    """The characters before a file's first visible one: spaces, line ends, byte-order marks,
    zero-width and direction marks, no-break spaces (Unicode categories Z* and C*)."""
    end = 0
    while end < len(text) and unicodedata.category(text[end])[0] in "ZC":
        end += 1
    return text[:end]


def _check_front_matter_start(path: Path, text: str, html: bool) -> None:
    """DataError if ``text`` has a front matter the kit would not read: after blank lines,
    spaces or invisible characters, in TOML, or in an HTML file."""
    before = _leading_invisible(text)
    start = text[len(before) :]
    fence = start.split("\n", 1)[0].strip()
    if fence not in ("---", "+++"):  # "--------": a rule under a heading, not a fence
        return
    if html:
        raise DataError(
            f"{path} line 1: an HTML file with a front matter; the kit reads access levels only "
            "from .md and .txt files, so it would be ignored. Save the page as .md, or remove "
            "the front matter and pass default_access (run --default-access)"
        )
    if fence == "+++":
        raise DataError(
            f"{path} line 1: TOML front matter ('+++') is not read by the kit, so its access "
            "level would be ignored; write it as YAML between two '---' lines"
        )
    hidden = sorted({f"U+{ord(c):04X}" for c in before if c not in " \t\r\n"})
    if hidden:
        raise DataError(
            f"{path} line 1: invisible character(s) {', '.join(hidden)} before the front "
            "matter's '---', so it would be read as text and its access level ignored; delete "
            "them (re-save the file as UTF-8 without a byte-order mark)"
        )
    if before:
        raise DataError(
            f"{path} line 1: blank lines or spaces before the front matter; start the file with "
            "its '---' line, or the front matter is read as text and its access level ignored"
        )


def _refuse_bare_declaration(path: Path, text: str, html: bool) -> None:
    """DataError for a level declared without a front matter, which the kit would not read."""
    if html:
        match = _HTML_META.search(text[:20_000])
        if match:
            line = text.count("\n", 0, match.start()) + 1
            raise DataError(
                f"{path} line {line}: the page declares {match.group(1)!r} in a <meta> tag, "
                "which the kit does not read; save it as .md with `access:` in a front matter, "
                "or pass default_access (run --default-access)"
            )
        return
    rows = text.splitlines()[:20]
    for line, row in enumerate(rows, 1):
        if _BARE_DECLARATION.match(row):
            raise DataError(
                f"{path} line {line}: {row.strip()[:60]!r} declares an access level outside a "
                "front matter, where the kit does not read it; start the file with '---', "
                "`access: ...` and '---'"
            )


def _refuse_hidden_access(path: Path, text: str, meta: dict[str, Any]) -> None:
    """DataError if the front matter hints at an access level under another name than a
    top-level ``access`` key (``meta`` is the front matter without that key)."""
    try:
        pairs = list(_walk(meta))
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    for name, value in pairs:
        parts = [p for p in re.split(r"[\W_]+", name.lower()) if p]
        like_key = any(
            p in SENSITIVE_KEY_PARTS or difflib.SequenceMatcher(None, p, "access").ratio() >= 0.8
            for p in parts
        )
        restricted = isinstance(value, str) and value.strip().lower() in RESTRICTED_WORDS
        if like_key or restricted:
            where = _line_of(text, re.split(r"[.\[]", name)[-1].rstrip("]"))
            said = f"{name!r}" + ("" if value is None else f": {value!r}")
            raise DataError(
                f"{path} line {where}: {said} looks like an access level; say it "
                f"with one top-level `access: {'|'.join(ACCESS_LEVELS)}` (the strictest that "
                "applies), so the role filter knows who may read this file"
            )


def _walk(meta: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every (key path, value) of a front matter, nested mappings and lists included; a
    container yields its own key (value None) too. DataError past 32 levels (a YAML alias
    that refers to itself)."""
    if depth > 32:
        raise DataError(f"the front matter nests deeper than 32 levels ({prefix[:40]}...)")
    items = meta.items() if isinstance(meta, dict) else enumerate(meta)
    for key, value in items:
        if isinstance(meta, dict):
            name = f"{prefix}.{key}" if prefix else str(key)
        else:
            name = f"{prefix}[{key}]"
        if isinstance(value, dict | list):
            yield name, None
            yield from _walk(value, name, depth + 1)
        else:
            yield name, value


def _line_of(text: str, key: str) -> int:
    """The line of the front matter where ``key`` is written (2 if not found)."""
    want = re.compile(rf"\s*['\"]?{re.escape(key.strip())}['\"]?\s*:", re.IGNORECASE)
    for i, row in enumerate(text.splitlines()[1:], 2):
        if key.strip() and want.match(row):  # "access:", not "accessibility:"
            return i
    return 2


def _declared_levels(files: Sequence[Path], skip_bad: bool) -> tuple[dict[Path, str | None], int]:
    """Each file's declared access level (None: not declared), and how many bad files were
    skipped; bad files raise, or with ``skip_bad`` are left out with one warning naming them."""
    levels: dict[Path, str | None] = {}
    bad: list[str] = []
    for p in files:
        try:
            levels[p] = declared_access(p)
        except DataError as err:
            if not skip_bad:
                hint = "load_folder(..., skip_bad=True), or run --skip-bad, skips such files"
                raise DataError(f"{err} ({hint})") from None
            bad.append(str(err))
    if bad:
        warnings.warn(
            f"load_folder skipped {len(bad)} file(s) whose access could not be read, so that "
            "they are never indexed as public: " + "; ".join(bad),
            stacklevel=4,
        )
    return levels, len(bad)


def _folder_default(
    declared: dict[Path, str | None], default_access: str | None, base: Path, skipped: int = 0
) -> str:
    """The level for files that declare none (see :func:`load_folder`). A skipped bad file
    counts as one that declares a level: it tried to."""
    if default_access is not None:
        level = str(default_access).strip().lower()
        if level not in ACCESS_LEVELS:
            raise DataError(
                f"default_access={default_access!r} is not one of {', '.join(ACCESS_LEVELS)}"
            )
        return level
    silent = [str(p.relative_to(base)) for p, level in declared.items() if level is None]
    declaring = len(declared) + skipped - len(silent)
    if silent and declaring:
        raise DataError(
            f"{declaring} file(s) in {base} declare an access level but "
            f"{len(silent)} do not: {', '.join(silent[:5])}{' ...' if len(silent) > 5 else ''}. "
            "Add `access: public|internal|confidential` to their front matter, or say what they "
            "are: load_folder(folder, default_access='internal'), or run --default-access internal"
        )
    return "public"


def load_folder(
    path: Path | str, default_access: str | None = None, skip_bad: bool = False
) -> list[Document]:
    """Load a user's own documents from a folder: ``.md``, ``.txt``, ``.pdf``, ``.html``,
    ``.docx``, ``.pptx``, ``.csv`` and ``.xlsx`` (:data:`FOLDER_SUFFIXES`).

    Sub-folders are included; hidden files are ignored. Each file becomes one Document (a
    spreadsheet one per sheet) whose meta has ``source`` (path relative to the folder),
    ``title`` (front matter or Word title, else the file name; a sheet's name added), ``access``
    and ``kind``. Chunks of PDFs and slide decks keep their page / slide in ``page_number``.

    Access levels fail closed. A Markdown file's front matter must parse and its ``access`` must
    be one of ``ACCESS_LEVELS`` (any case); otherwise loading stops with a DataError naming the
    file and line, or, with ``skip_bad=True``, skips that file with a warning. A file that
    declares no level gets ``default_access``. Left at None: a folder where no file declares a
    level is read as ``public`` (a plain folder of notes: the role filter has nothing to hide);
    a folder where some files declare one and others do not is refused until you pass
    ``default_access`` or add the level to those files.

    Unsupported file types and files with no extractable text are skipped with a warning naming
    them. Raises DataError when the folder is missing or empty, when nothing loadable remains,
    when a text file is not UTF-8 (re-save it as UTF-8) and when a file is larger than
    ``MAX_FILE_BYTES``.
    """
    folder, levels, base = _access_plan(path, default_access, skip_bad)
    docs = _convert_all(levels, base)
    _one_file_per_id(docs)
    if not docs:
        raise DataError(
            f"{folder}: no loadable documents (files with text, of these types: "
            f"{', '.join(FOLDER_SUFFIXES)})"
        )
    return docs


def folder_access(
    path: Path | str, default_access: str | None = None, skip_bad: bool = False
) -> dict[str, str]:
    """The access level :func:`load_folder` gives each file of a folder with these options, by
    ``source`` (the path relative to the folder), without converting any file. Same errors."""
    _, levels, base = _access_plan(path, default_access, skip_bad)
    return {str(p.relative_to(base)): level for p, level in levels.items()}


def _access_plan(
    path: Path | str, default_access: str | None, skip_bad: bool
) -> tuple[Path, dict[Path, str], Path]:
    """What :func:`load_folder` reads, before converting: (the folder, each loadable file's
    access level with the folder's default applied, the folder names are relative to)."""
    folder = user_path(path, "folder", error=DataError)  # "~/docs": the user's folder
    skip_bad = flag(skip_bad, "skip_bad")
    loadable, base = _loadable_files(folder)
    declared, skipped = _declared_levels(loadable, skip_bad)
    default = _folder_default(declared, default_access, base, skipped)
    return folder, {p: level or default for p, level in declared.items()}, base


SAVED_INDEX_SUFFIX = ".kit-index"
"""A folder the kit saved an index into (:mod:`kit.saved_index`): never read as documents."""


def folder_files(folder: Path) -> list[Path]:
    """Every file and sub-folder under ``folder``, sorted; hidden ones and the kit's own saved
    indexes (``*.kit-index``) left out. A linked sub-folder whose target lies outside
    ``folder`` is read like any other, once; a link to a folder inside it (read under its own
    name already), to ``folder`` itself or to a folder above it (a loop) is not followed."""
    top = os.path.realpath(folder)
    seen: set[str] = set()
    found: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        kept = []
        for name in sorted(dirs):
            path = os.path.join(root, name)
            real = os.path.realpath(path)
            inside_or_above = os.path.commonpath([real, top]) in (real, top)
            if name.startswith(".") or name.endswith(SAVED_INDEX_SUFFIX) or real in seen:
                continue
            if os.path.islink(path) and inside_or_above:
                continue
            seen.add(real)
            kept.append(name)
        dirs[:] = kept
        found += [Path(root, n) for n in kept + names if not n.startswith(".")]
    return sorted(found)


def _loadable_files(folder: Path) -> tuple[list[Path], Path]:
    """The files of ``folder`` (or the one file) that :func:`load_folder` reads, and the folder
    their names are relative to. Hidden files are left out; links that lead nowhere and
    unsupported types are named in a warning; an empty folder, one the kit may not list, or a
    huge file is a DataError."""
    if folder.is_dir():  # os.walk skips a folder it may not list, which would read as "empty"
        try:
            with os.scandir(folder):
                pass
        except OSError as err:
            why = err.strerror or type(err).__name__
            problem = f"{folder}: cannot list this folder ({why}); fix its permissions"
            raise DataError(problem) from None
    visible = [folder] if folder.is_file() else folder_files(folder)
    dangling = [p for p in visible if p.is_symlink() and not p.exists()]  # broken or a loop
    if dangling:
        warnings.warn(
            f"load_folder skipped {len(dangling)} link(s) that lead nowhere (broken, or a loop): "
            + ", ".join(str(p.relative_to(folder)) for p in dangling),
            stacklevel=4,
        )
    files = [p for p in visible if p.is_file()]
    if not files:
        raise DataError(
            f"{folder}: folder is empty; add files of these types: {', '.join(FOLDER_SUFFIXES)}"
        )
    base = folder if folder.is_dir() else folder.parent
    unsupported = [p for p in files if p.suffix.lower() not in FOLDER_SUFFIXES]
    if unsupported:
        names = ", ".join(str(p.relative_to(base)) for p in unsupported)
        warnings.warn(
            f"load_folder skipped {len(unsupported)} unsupported file(s): {names} "
            f"(supported: {', '.join(sorted(FOLDER_SUFFIXES))})",
            stacklevel=4,
        )
    loadable = [p for p in files if p.suffix.lower() in FOLDER_SUFFIXES]
    for p in loadable:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(
                f"{p}: file is {size / 1e6:.1f} MB, larger than the {MAX_FILE_BYTES / 1e6:.0f} MB "
                "limit (kit.data.MAX_FILE_BYTES); split it or leave it out"
            )
    return loadable, base


def _one_file_per_id(docs: Sequence[Document]) -> None:
    """DataError when two files share a document id (an ``id:`` in front matter, or one file's
    id that is another file's path): gold ids and citations would mix them up."""
    owner: dict[str, str] = {}
    for d in docs:
        first = owner.setdefault(str(d.meta["id"]), d.meta["source"])
        if first != d.meta["source"]:
            raise DataError(
                f"{first} and {d.meta['source']} both have the document id {d.meta['id']!r}: "
                "give each file its own id: in its front matter, or none (its path is its id)"
            )


def _convert_all(levels: dict[Path, str], base: Path) -> list[Document]:
    """Each file through its converter, as Documents with the kit's meta (source, kind,
    access, title, id); files with no text are named in one warning."""
    docs: list[Document] = []
    empty: list[str] = []
    many = len(levels) >= PROGRESS_FROM  # a real folder: show the conversion going
    for p, level in tqdm(levels.items(), desc="converting", unit="file", disable=not many):
        kind = FOLDER_SUFFIXES[p.suffix.lower()]
        rel = str(p.relative_to(base))
        converted = [d for d in _convert(p, kind) if d.content and d.content.strip()]
        if not converted:
            empty.append(rel)
            continue
        for d in converted:
            meta = {**d.meta, "source": rel, "kind": kind, "access": level}
            meta["title"] = str(meta.get("title") or p.stem)
            if "sheet" in meta:  # a spreadsheet: one document per sheet
                meta["title"] = f"{meta['title']} ({meta['sheet']})"
            if not meta.get("id"):  # none, or a blank ``id:`` in the front matter
                meta["id"] = rel
            docs.append(Document(content=d.content, meta=meta))
    if empty:
        warnings.warn(
            f"load_folder skipped {len(empty)} file(s) with no extractable text: "
            f"{', '.join(empty)} (empty, scanned PDF or unreadable)",
            stacklevel=3,
        )
    return docs


# --------------------------------------------------------------------------- your own questions

USER_QA_FIELDS = ("question", "answer")
"""What each line of a user's question file must have; the rest of ``QA_FIELDS`` is optional."""


def read_csv_rows(
    path: Path | str, required: Sequence[str], what: str = "CSV file", strip: bool = True
) -> list:
    """Read a CSV file with a header line into ``(line number, row)`` pairs, keys lower-cased,
    cells stripped (``strip=False``: as written, e.g. a reply's indented code).

    Blank rows are skipped. Raises DataError naming the file and line for: a missing, empty or
    non-UTF-8 file, a header without the ``required`` columns, and a row with more cells than
    the header has columns.
    """
    path = Path(path)
    # newline=None: Windows, Unix and old-Mac line ends alike, even mixed in one file
    reader = csv.DictReader(io.StringIO(read_text_file(path, what), newline=None), strict=True)
    rows: list = []
    done = 0
    try:
        header = [str(h).strip().lower() for h in (reader.fieldnames or [])]
        done = 1
        missing = [c for c in required if c not in header]
        if not header and read_text_file(path, what).strip():
            raise DataError(
                f"{_show(path)} line 1: blank; the header line ({','.join(required)}) must "
                "come first: remove the blank line(s) above it"
            )
        if not header:
            raise DataError(f"{_show(path)} line 1: the file is empty; it needs a header line")
        twice = sorted({h for h in header if h and header.count(h) > 1})  # "a,b,,": fine
        if twice:
            raise DataError(f"{_show(path)} line 1: the column(s) {twice} appear twice; keep one")
        if missing:
            raise DataError(
                f"{_show(path)} line 1: the header needs the column(s) {', '.join(required)} "
                f"(it has {header})"
            )
        for raw in reader:
            _csv_row(raw, reader.line_num, path, rows, strip)
            done = reader.line_num
    except csv.Error as err:  # e.g. a quote opened and never closed
        raise DataError(f"{_show(path)} line {done + 1}: {_csv_problem(err)}") from None
    if not rows:
        raise DataError(f"{_show(path)}: no rows below the header")
    return rows


def _csv_problem(err: csv.Error) -> str:
    """What a csv.Error means for the person who wrote the file."""
    if "end of data" in str(err):
        return "a double quote opened there is never closed; close it, or remove it"
    if "field larger than field limit" in str(err):
        return (
            f"a cell longer than {csv.field_size_limit()} characters, usually a double quote "
            "that is never closed; close it, or split the cell"
        )
    return f"not a readable CSV row ({err})"


def _csv_row(raw: dict, line: int, path: Path, rows: list, strip: bool = True) -> None:
    """Add one CSV row (keys lower-cased, cells stripped unless ``strip`` is False) to
    ``rows``, unless it is blank."""
    if None in raw:
        raise DataError(
            f"{_show(path)} line {line}: more cells than header columns "
            "(put cells holding commas in double quotes)"
        )
    row = {str(k).strip().lower(): (v or "").strip() if strip else v or "" for k, v in raw.items()}
    if any(v.strip() for v in row.values()):
        rows.append((line, row))


_IDK_ANSWER = re.compile(
    r"(i )?(don ?t|do not|dont) know|idk|unknown|unanswerable|not answerable|no answer"
)
"""A user's gold answer that means "unanswerable" (the whole answer, normalised): "I don't
know", "I do not know", "i dont know", "unknown", ... An answer that only contains such words
("No information is shared with advertisers") is an answer."""


def means_unanswerable(answer: str) -> bool:
    """True when a gold answer, as a whole, says "unanswerable" ("I don't know", "unknown")."""
    return bool(_IDK_ANSWER.fullmatch(normalise(answer)))


def _user_text(value: Any, key: str, where: str) -> str:
    """A question or an answer of a user's file: text (a JSON number or list is a mistake),
    not empty, without control characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(
            f"{where}: {key!r} is empty; write the {key} (an unanswerable question's answer "
            f"is {IDK!r})"
        )
    if not isinstance(value, str):
        raise DataError(
            f"{where}: {key!r} must be text, not {type(value).__name__} {value!r}; put it in "
            'double quotes, e.g. "answer": "27 days"'
        )
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise DataError(f"{where}: {key!r} holds a control character (e.g. NUL); remove it")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):  # "\ud800": half of an emoji
        raise DataError(f"{where}: {key!r} holds half of a character (a lone surrogate); fix it")
    return value.strip()


def user_record(row: dict[str, Any], where: str, default_id: str) -> QARecord:
    """One QARecord from a user's row (a JSONL object or a CSV row): question and answer
    required, the rest filled in; DataError naming ``where`` for every problem."""
    question, answer = (_user_text(row.get(k), k, where) for k in USER_QA_FIELDS)
    raw_id = row.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise DataError(f"{where}: id must be text or a whole number, got {raw_id!r}")
    gold = row.get("gold_doc_ids") or []
    if isinstance(gold, str):  # a CSV cell: ids separated by ';'
        gold = [g.strip() for g in gold.split(";") if g.strip()]
    if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
        raise DataError(f"{where}: gold_doc_ids must be a list of document ids, got {gold!r}")
    unanswerable = means_unanswerable(answer)
    kind = str(row.get("type") or ("unanswerable" if unanswerable else "user"))
    if unanswerable != (kind == "unanswerable"):
        raise DataError(
            f"{where}: type {kind!r} does not fit the answer {answer!r}; an unanswerable "
            f"question has type 'unanswerable' and the answer {IDK!r}"
        )
    split = str(row.get("split") or "test")
    if split not in SPLITS:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    return QARecord(
        id=str(row.get("id") or default_id),
        question=question,
        answer=IDK if unanswerable else answer,
        gold_doc_ids=[] if unanswerable else gold,
        type=kind,
        split=split,
        evidence=[],
        paraphrase_of=None,
    )


def load_questions(path: Path | str, doc_ids: Sequence[str] | None = None) -> list[QARecord]:
    """Load a user's question file: JSONL or CSV with a ``question`` and an ``answer`` per line.

    Optional per line: ``id`` (default ``<file stem>-<line, 3 digits>``, e.g.
    ``questions-007``), ``gold_doc_ids`` (the ids of the documents that hold the answer: a JSON
    list, or ``;``-separated in CSV; without them the retrieval metrics leave the question out),
    ``type`` (default ``user``, or ``unanswerable`` when the answer is "I don't know") and
    ``split`` (default ``test``). ``doc_ids``: the ids of the indexed documents (e.g.
    ``[d.meta["id"] for d in load_folder(folder)]``): a gold id that is not among them is an
    error. Raises DataError naming the file and line for every problem.
    """
    path = user_path(path, "question file", must="file", error=DataError)
    if isinstance(doc_ids, (str, bytes)):
        raise DataError(
            "doc_ids must be a list of document ids (e.g. [d.meta['id'] for d in docs]), "
            f"not one {type(doc_ids).__name__}"
        )
    if path.suffix.lower() == ".csv":
        rows = read_csv_rows(path, USER_QA_FIELDS, "question file")
    elif path.suffix.lower() in (".jsonl", ".json"):
        rows = read_jsonl(path, USER_QA_FIELDS)
    else:
        raise DataError(f"{path}: a question file is .jsonl or .csv (question and answer columns)")
    records = [
        user_record(row, f"{_show(path)} line {n}", f"{path.stem}-{n:03d}") for n, row in rows
    ]
    _check_user_qa(records, rows, path, doc_ids)
    return records


def _check_user_qa(records: list[QARecord], rows: list, path: Path, doc_ids: Any) -> None:
    """Refuse repeated ids, repeated questions (a question asked twice could be trained on and
    scored: half of an unsplit file becomes train questions) and gold ids that are not among
    ``doc_ids`` (if given)."""
    seen: dict[str, int] = {}
    asked: dict[str, int] = {}
    known = None if doc_ids is None else set(map(str, doc_ids))
    for rec, (n, _) in zip(records, rows, strict=True):
        if rec.id in seen:
            raise DataError(f"{_show(path)} line {n}: id {rec.id!r} is used on line {seen[rec.id]}")
        seen[rec.id] = n
        question = normalise(rec.question)
        if question in asked:
            raise DataError(
                f"{_show(path)} line {n}: the same question as line {asked[question]}; keep one "
                "(a question asked twice can end up both trained on and scored)"
            )
        asked[question] = n
        unknown = [g for g in rec.gold_doc_ids if known is not None and g not in known]
        if unknown:
            sample = ", ".join(sorted(known)[:5])
            comma = "; separate several ids with ';', not ','" if "," in unknown[0] else ""
            raise DataError(
                f"{_show(path)} line {n}: gold document id(s) {', '.join(map(repr, unknown))} "
                f"are not in the folder (its ids are the files' paths in it, e.g. {sample})"
                f"{comma}; fix the id or leave gold_doc_ids out"
            )
