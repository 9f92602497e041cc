"""Question writer: make a question set for your own documents, one retrieved chunk at a time.

No question set yet? :class:`QuestionWriter` shows the chunks of your index one by one, in a
shuffled order that covers every document before it repeats one. For each chunk you write a
question it answers and the answer (copied from the chunk, as the kit's gold answers are), or a
question the documents do not answer ("not answerable": its gold answer is "I don't know"), or
you skip the chunk. Every question is appended to a JSONL file at once, in the format
:func:`kit.data.load_questions` reads back, so nothing is lost when the kernel stops; opening
the same file again continues where you were. ``kit.widgets.question_writer`` puts buttons on it.

A question is saved as a ``test`` question (it scores the systems) unless you say ``train``:
train questions teach your RAG systems when to say "I don't know" and are not scored
(:func:`kit.your_data.fit_your_gate` learns from at least :data:`kit.data.MIN_PER_CLASS`
answerable and as many unanswerable train questions; :attr:`QuestionWriter.train_counts` counts
them). With ``--examples auto`` the fine-tune's examples are built from the train questions.

    writer = QuestionWriter(index, "my_questions.jsonl")
    writer.current.content          # read it
    writer.add("How many days of leave?", "27 days")
    writer.not_answerable("Who founded the company?", split="train")
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from haystack import Document

from kit.citations import doc_id
from kit.data import (
    IDK,
    DataError,
    QARecord,
    load_questions,
    means_unanswerable,
    normalise,
    read_text_file,
    supports,
    user_record,
)
from kit.data import train_counts as count_train_questions
from kit.inputs import text, user_path
from kit.runtime import lock_file


class QuestionWriter:
    """Write questions about chunks, one chunk at a time, saved as you go.

    In: ``chunks``, an index (anything with ``.store``) or a list of Haystack Documents; ``path``,
    the JSONL file to append to (created if missing); ``seed`` for the order of the chunks.
    """

    def __init__(self, chunks: Any, path: Path | str, seed: int = 0) -> None:
        docs = _chunks_of(chunks)
        if not docs:
            raise DataError("there are no chunks to write questions about: index a folder first")
        self.path = user_path(path, "question file", must="any", error=DataError)
        if self.path.suffix.lower() != ".jsonl" or self.path.is_dir():
            raise DataError(
                f"{self.path}: the writer saves JSONL; give a file name ending in .jsonl"
            )
        try:  # a place it cannot write is said now, not after the first question is written
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path.parent):  # the file itself untouched
                pass
            if self.path.exists() and not os.access(self.path, os.W_OK):
                raise PermissionError(13, "the file is read-only")
        except OSError as err:
            raise DataError(
                f"{self.path}: cannot write the question file here ({err.strerror or err}); "
                "give a path in a folder you can write, e.g. 'my_questions.jsonl'"
            ) from None
        self.records: list[QARecord] = self._read()
        asked = {g for r in self.records for g in r.gold_doc_ids}
        self._queue = _order(docs, seed, seen_docs=asked)
        self._pos = 0

    @property
    def current(self) -> Document | None:
        """The chunk to write a question about (None when every chunk has been shown)."""
        return self._queue[self._pos] if self._pos < len(self._queue) else None

    @property
    def count(self) -> int:
        """How many questions the file holds."""
        return len(self.records)

    @property
    def train_counts(self) -> tuple[int, int]:
        """(answerable, unanswerable) questions the file holds in the ``train`` split."""
        return count_train_questions(self.records)

    def add(self, question: str, answer: str, split: str = "test") -> QARecord:
        """Save a question the current chunk answers, with its answer, in ``split`` (``test``
        scores the systems, ``train`` teaches them when to say "I don't know"); go to the next
        chunk.

        Raises DataError when the question or the answer is empty, when the answer is not in
        the chunk (the kit scores an answer by whether the gold answer appears in it, so a gold
        answer copied from the source is what makes the score fair), or for a ``split`` other than
        ``test`` and ``train`` (nothing is written then, and the chunk stays).
        """
        chunk = self._need_chunk()
        answer = text(answer, "the answer", empty_ok=True).strip()
        if answer and means_unanswerable(answer):
            raise DataError(
                f'the answer {answer!r} reads as "I don\'t know" to the kit: use '
                "not_answerable() for a question the documents do not answer, or copy more "
                'words from the chunk ("cause unknown")'
            )
        if answer and not supports(answer, chunk.content or ""):
            raise DataError(
                f"the answer {answer!r} is not in the chunk; copy the words from it (or use "
                "not_answerable() for a question the documents do not answer)"
            )
        return self._save(question, answer, [doc_id(chunk)], split)

    def not_answerable(self, question: str, split: str = "test") -> QARecord:
        """Save a question the documents do not answer (gold: "I don't know") in ``split``;
        next chunk."""
        self._need_chunk()
        return self._save(question, IDK, [], split)

    def skip(self) -> Document | None:
        """Leave the current chunk without a question; return the next one."""
        self._pos += 1
        return self.current

    def _need_chunk(self) -> Document:
        if self.current is None:
            raise DataError(f"every chunk has been shown; {self.count} questions are saved")
        return self.current

    def _save(self, question: str, answer: str, gold: list[str], split: str) -> QARecord:
        question = text(question, "the question", empty_ok=True).strip()
        if not question or not answer:
            raise DataError("write a question and its answer first (both are needed)")
        row = {
            "question": question,
            "answer": answer,
            "gold_doc_ids": gold,
            "type": "unanswerable" if answer == IDK else "user",
            "split": split,
        }
        user_record({**row, "id": "new"}, f"{self.path} (new line)", "new")  # checked first
        with self.path.open("a", encoding="utf-8") as f:  # appended at once: nothing is lost
            lock_file(f)  # another writer on the same file (a second tab) waits for this line
            self.records = self._read()  # and what it wrote is counted for the next id
            self._refuse_repeat(question)
            new_id = self._next_id()
            start = "" if _ends_a_line(self.path) else "\n"  # a file saved without its last \n
            f.write(start + json.dumps({"id": new_id, **row}, ensure_ascii=False) + "\n")
        self.records = self._read()
        self._pos += 1
        return next(r for r in self.records if r.id == new_id)

    def _read(self) -> list[QARecord]:
        """The questions the file holds now (none for an empty or missing file)."""
        empty = not self.path.exists() or not read_text_file(self.path, "question file").strip()
        return [] if empty else load_questions(self.path)  # blank, or a BOM alone: no question

    def _refuse_repeat(self, question: str) -> None:
        """DataError when the file already holds ``question`` (a question file may hold each
        question once: :func:`kit.data.load_questions`)."""
        same = [r.id for r in self.records if normalise(r.question) == normalise(question)]
        if same:
            raise DataError(f"{same[0]} already asks this question; write another one, or skip")

    def _next_id(self) -> str:
        """``<file stem>-NNN``, one above the largest number in use (lines may be deleted)."""
        numbers = [
            int(r.id.rsplit("-", 1)[1])
            for r in self.records
            if r.id.startswith(f"{self.path.stem}-") and r.id.rsplit("-", 1)[1].isdigit()
        ]
        return f"{self.path.stem}-{max(numbers, default=0) + 1:03d}"


def _ends_a_line(path: Path) -> bool:
    """True when ``path`` is empty or its last byte ends a line (an editor may save the last
    line without one: the next line must not be glued to it)."""
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def _chunks_of(chunks: Any) -> list[Document]:
    """The chunks of an index (its store's documents) or a list of Documents, with text."""
    store = getattr(chunks, "store", None)
    if isinstance(chunks, Document):
        chunks = [chunks]
    elif store is None and (
        isinstance(chunks, str | bytes | dict) or not isinstance(chunks, Iterable)
    ):
        raise DataError(
            "give an index (build_index(...)) or a list of Haystack Documents, not "
            f"{type(chunks).__name__} {str(chunks)[:40]!r}"
        )
    docs = store.filter_documents() if store is not None else list(chunks)
    wrong = [d for d in docs if not isinstance(d, Document)]
    if wrong:
        raise DataError(
            "give an index (build_index(...)) or a list of Haystack Documents, not a list of "
            f"{type(wrong[0]).__name__}"
        )
    return [d for d in docs if (d.content or "").strip()]


def _order(docs: Sequence[Document], seed: int, seen_docs: set[str]) -> list[Document]:
    """Chunks in a shuffled order that takes one chunk of each document in turn, documents
    already asked about last (so 20 questions cover 20 documents when there are that many)."""
    by_doc: dict[str, list[Document]] = {}
    for d in sorted(docs, key=lambda d: (doc_id(d), d.id)):
        by_doc.setdefault(doc_id(d), []).append(d)
    rng = random.Random(seed)
    for group in by_doc.values():
        rng.shuffle(group)
    names = sorted(by_doc)
    rng.shuffle(names)
    names.sort(key=lambda name: name in seen_docs)  # stable: fresh documents first
    rounds = max(len(g) for g in by_doc.values())
    return [by_doc[n][i] for i in range(rounds) for n in names if i < len(by_doc[n])]
