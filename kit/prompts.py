"""Prompt layouts: how the retrieved sources and the question are laid out for the model.

A 135M-parameter model cannot follow a long, formal prompt, but it can copy a phrase from a short,
plainly laid-out context. How the same retrieved text is shown changes how often it answers right,
so the layout is a knob you measure (``kit.rag_eval.compare_layouts``, on the *train* split), not a
guess. Each :class:`Layout` says

- which text the model reads: the ``top_k`` retrieved chunks whole, or only the ``sentences``
  most similar to the question (picked by :class:`SentencePicker` with the index's embedder);
- how each source is labelled: ``[n]`` and, if ``titles``, the document's title; never a file
  name, a path or another metadata field (:func:`source_title`);
- where the question and the instructions go, and whether a worked example comes first;
- whether the prompt also starts the reply (``reply_start``): the prompt then ends inside the
  assistant's turn, and the model continues the words written for it.

The kit's default, :data:`DEFAULT_LAYOUT` (``cite-first``), is the one that answered most train
questions right with the bundled model: the ``sentences`` layout with the reply begun as
"According to source [". The small model rarely cites when only asked to; started this way it
writes a source's number first, then an answer drawn from that source. Notebook 01 shows the
measurement and the exercise asks you to beat it. The hybrids use :data:`ADAPTER_LAYOUT`: their
adapters learned a reply format of their own.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from haystack import Document, component

from kit.citations import ABSTAIN, doc_id
from kit.generate import DEFAULT_SYSTEM

RULES = (
    "Answer the question using only the numbered sources. "
    "After the answer, cite the source you used in square brackets, like [1]. "
    f"If the sources do not contain the answer, reply exactly: {ABSTAIN}."
)
"""The instructions most layouts put in the system message, after the kit's ``DEFAULT_SYSTEM``."""

COPY_RULES = (
    "Answer with a short phrase copied from the sources, then the source number in brackets, "
    f"like [1]. If the sources do not say, reply: {ABSTAIN}."
)
"""Shorter instructions, asking for a copied phrase: used after the question or in examples."""

REPLY_START = "According to source ["
"""How the default layout starts the model's reply: the model writes the source's number and
then its answer, "According to source [2], the hub takes 64 sensors." (see the module
docstring)."""

EXAMPLE = (
    "Sources:\n[1] The office opens at 8:00 and closes at 17:30 on weekdays.\n\n"
    "[2] Parking costs 4 euros per day.\n\nQuestion: How much does parking cost per day?",
    "4 euros per day [2]",
)
"""One worked example (user turn, assistant turn) about a made-up office, for few-shot layouts."""


@dataclass(frozen=True)
class Layout:
    """One way to lay out a RAG prompt.

    name / description: what a learner sees in tables. system: the system message.
    user: a Jinja template of the user message with ``{{ sources }}`` and ``{{ question }}``.
    titles: label each source with its document title (never a file name).
    sentences: show only this many sentences (the most similar to the question) of the top_k
    chunks instead of the chunks whole; ``None`` shows the chunks.
    example: a worked (user, assistant) exchange placed before the real question, or ``None``.
    reply_start: the words the reply begins with, written into the prompt: the prompt ends
    inside the assistant's turn and the model continues from them (``"According to source ["``
    makes it name a source before it answers); ``""`` leaves the whole reply to the model.
    """

    name: str
    description: str
    system: str = f"{DEFAULT_SYSTEM} {RULES}"
    user: str = "Sources:\n{{ sources }}\n\nQuestion: {{ question }}"
    titles: bool = True
    sentences: int | None = None
    example: tuple[str, str] | None = None
    reply_start: str = ""

    def messages(self) -> list[tuple[str, str]]:
        """The (role, template) pairs of the chat prompt, in order; the started reply last."""
        turns = [("system", self.system)]
        if self.example:
            turns += [("user", self.example[0]), ("assistant", self.example[1])]
        turns.append(("user", self.user))
        return [*turns, ("assistant", self.reply_start)] if self.reply_start else turns


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "chunks",
            "the top_k chunks whole, titled; rules in the system message; question last",
        ),
        Layout(
            "chunks-untitled",
            "as chunks, but each source labelled by its number only",
            titles=False,
        ),
        Layout(
            "question-first",
            "the question before the sources, short copy-a-phrase rules after them",
            system=DEFAULT_SYSTEM,
            user="Question: {{ question }}\n\nSources:\n{{ sources }}\n\n" + COPY_RULES,
            titles=False,
        ),
        Layout(
            "worked-example",
            "one worked example first, then the top_k chunks and the question",
            system=f"{DEFAULT_SYSTEM} {COPY_RULES}",
            titles=False,
            example=EXAMPLE,
        ),
        Layout(
            "sentences",
            "only the 4 sentences of the top_k chunks most like the question, titled",
            sentences=4,
        ),
        Layout(
            "cite-first",
            "as sentences, and the reply begun with 'According to source [': the model names a "
            "source, then answers",
            sentences=4,
            reply_start=REPLY_START,
        ),
    )
}
"""The layouts notebook 01 compares; add your own with ``Layout(...)``."""

DEFAULT_LAYOUT = "cite-first"
"""The layout ``build_rag`` uses unless told otherwise (see the module docstring for why)."""

ADAPTER_LAYOUT = "sentences"
"""The layout of the hybrids (``kit.hybrid.hybrid_rag``): their adapters learned a reply format
of their own (``Answer: ...`` ... ``Source: ...``), which a reply start would override. RAFT
examples show the default layout's sources without its started reply: this layout's prompt."""


def get_layout(layout: str | Layout) -> Layout:
    """A Layout from its name (see :data:`LAYOUTS`) or the Layout itself; ValueError if unknown."""
    if isinstance(layout, Layout):
        return layout
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown prompt layout {layout!r}; use one of {sorted(LAYOUTS)}.")
    return LAYOUTS[layout]


# --------------------------------------------------------------------------- source labels

_FILE_LIKE = re.compile(r"[/\\]|\.[A-Za-z0-9]{1,5}$")


def source_title(document: Any) -> str | None:
    """The document's title to show the model, or ``None`` when it has no real one.

    A title that is only the file name, the file's stem, a path or the document id (what
    ``kit.data.load_folder`` falls back to when a file has no title) is not shown: the model would
    copy it into its answer. A spreadsheet's sheet keeps its own name: "prices (Rates 2025)"
    from ``prices.xlsx`` is shown as "Rates 2025"; a default name ("Sheet1") is no title.
    """
    meta = getattr(document, "meta", None) or {}
    title = str(meta.get("title") or "").strip()
    names = {doc_id(document)}
    for key in ("source", "file_path", "id"):
        if meta.get(key):
            path = PurePath(str(meta[key]))
            names |= {str(meta[key]), path.name, path.stem}
    sheet = str(meta.get("sheet") or "").strip()
    if sheet and title.endswith(f" ({sheet})"):
        book = title.removesuffix(f" ({sheet})")
        if book in names or _FILE_LIKE.search(book):
            return None if re.fullmatch(r"sheet\s*\d*", sheet, re.IGNORECASE) else sheet
        return title
    if not title or title in names or _FILE_LIKE.search(title):
        return None
    return title


_MARKS = re.compile(r"(?:^|(?<=\s))#{1,6}\s+")  # a Markdown heading's marks: "## "


def _flatten(text: str, title: str | None = None) -> str:
    """Text on one line, without Markdown heading marks, and without the document's ``title``
    where a ``# Title`` heading starts the text (the source label shows it already).

    Indexing collapses blank lines (Haystack's DocumentCleaner), so a chunk often reads
    ``# Title The first paragraph ...`` on one line: only the marks and the title go, never the
    paragraph after them.
    """
    flat = " ".join((text or "").split())
    if title and _MARKS.match(flat):
        rest = _MARKS.sub("", flat, count=1)
        if rest.startswith(title):
            flat = rest[len(title) :].lstrip()
    return _MARKS.sub("", flat)


def format_sources(documents: Sequence[Any], titles: bool = True) -> str:
    """The sources as the model reads them: ``[n] Title: text``, one paragraph each, best first.

    Only a real title (:func:`source_title`) is shown; no file name, path or doc id.
    """
    lines = []
    for number, document in enumerate(documents, start=1):
        title = source_title(document)
        label = f"[{number}] {title}: " if title and titles else f"[{number}] "
        lines.append(label + _flatten(document.content, title))
    return "\n\n".join(lines)


# --------------------------------------------------------------------------- sentence picking

_WORD = re.compile(r"[a-z0-9][a-z0-9.,%€$-]*[a-z0-9%]|[a-z0-9]", re.IGNORECASE)
_STOP = frozenset(  # a word list reads better as text
    (  # noqa: SIM905
        "the a an of to in on at for and or is are was were be by with from as it its this that "
        "these those can do does what which who how when where why there their they you your "
        "has have had not no per one"
    ).split()
)


def content_words(text: str) -> list[str]:
    """The lower-cased words of ``text`` that carry content (numbers kept, stop words dropped)."""
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP]


_ANY_WORD = re.compile(r"\w+")  # words in any script: Latin, Cyrillic, Greek, CJK runs, ...
# Words an English question nearly always has and other European languages do not use ("is",
# "was", "in", "a", "of", "do", "for" are left out: Dutch, German, Portuguese and others use them).
_ENGLISH = frozenset(
    (  # noqa: SIM905
        "the what which who whom whose how when where why does did are were can could should "
        "would this that these those there their they you your has have with from its and much "
        "many about"
    ).split()
)
# Function words of other European languages (two letters or more), the evidence that a question
# is not English: French, German, Spanish, Italian, Portuguese, Dutch, Nordic, Polish/Czech.
_FOREIGN = frozenset(
    (  # noqa: SIM905
        "le la les des du une est et quel quelle quels combien pour avec dans sur qui que "
        "der die das dem ist ein eine und wie wer wo welche welcher für mit nicht auf "
        "el los las es una qué cuánto cuánta cuántos cuál dónde para con por "
        "il lo gli quanto quanta quale dove per che qual quantos onde com não "
        "het een en hoe wat hoeveel waar voor met niet og och er ett hvor hvad hur vad "
        "jak co ile czy jest"
    ).split()
)


# Function words of _FOREIGN that English text also uses ("die", "per", "con", "la", ...): one of
# them in English sources says nothing about the sources' language.
_ALSO_ENGLISH = frozenset("die met per en et es er com con co la le el il".split())  # noqa: SIM905


def _scripts(text: str, share: float = 0.0) -> set[str]:
    """The non-Latin scripts ("CYRILLIC", "GREEK", "CJK", ...) of more than ``share`` of the
    letters in ``text`` (a stray "µ" in English sources does not make them Greek)."""
    names = [unicodedata.name(ch, "") for ch in text if ch.isalpha()]
    counts: dict[str, int] = {}
    for n in names:
        if n and not n.startswith("LATIN"):
            counts[n.split()[0]] = counts.get(n.split()[0], 0) + 1
    return {script for script, k in counts.items() if k > share * len(names)}


def _written_in(text: str, markers: Sequence[str], scripts: set[str]) -> bool:
    """Whether ``text`` is written in the question's language, or at least not in English: it
    uses the question's script (5% of its letters) or half of the question's function words
    (``markers``), or other languages' function words make up 5% of its words."""
    words = [w.lower() for w in _ANY_WORD.findall(text)]
    foreign = sum(w in _FOREIGN and w not in _ALSO_ENGLISH for w in words)
    if scripts & _scripts(text, 0.05) or foreign >= max(1, 0.05 * len(words)):
        return True
    return bool(markers) and 2 * sum(w in set(words) for w in markers) >= len(markers)


def reads_as_foreign(question: str, text: str, max_shared: float = 0.5) -> bool:
    """True when ``question`` reads as another language than English and ``text``.

    In: a question and the text it would be answered from (the retrieved chunks). True when the
    question has none of the words English questions nearly always have (the, what, how, does,
    ...), shows another language (a function word such as "le", "der", "qué", "hoeveel", or a
    word in another script) that ``text`` does not show too, and at most ``max_shared`` of its
    words occur in ``text``: "Quel est le prix du capteur Fennick S2 ?" shares only "fennick"
    and "s2" with English sources. A terse English query ("Buoy dimensions?", "ERR_42
    meaning?") shows no other language and passes; so does a question in the language of your
    own documents ("Wer macht die Wartung?" over German sources, which hold "der", "und", ...).
    """
    words = [w.lower() for w in _ANY_WORD.findall(question)]
    if not words or any(w in _ENGLISH for w in words):
        return False
    markers = [w for w in words if w in _FOREIGN and w not in _ALSO_ENGLISH]
    scripts = _scripts(question)
    if not scripts and not markers:  # "per", "con", "die" alone: English too
        return False
    seen = {w.lower() for w in _ANY_WORD.findall(text)}
    if _written_in(text, markers, scripts):
        return False
    return sum(w in seen for w in words) / len(words) <= max_shared


def nothing_to_look_up(question: str) -> bool:
    """True when ``question`` has no word to retrieve by: no content word ("???", "the of")
    and no word in another script (``content_words`` reads Latin letters and digits only, so
    "芬尼克泵的转速是多少？" must still be looked up)."""
    if content_words(question):
        return False
    return not any(not w.isascii() for w in _ANY_WORD.findall(question))


def keyword_overlap(question: str, text: str) -> float:
    """Share of the question's content words that appear in ``text`` (0.0 to 1.0)."""
    wanted = set(content_words(question))
    return len(wanted & set(content_words(text))) / len(wanted) if wanted else 0.0


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s+-\s+|^\s*[-*+]\s+")  # also list items
_HEADING = re.compile(r"#{1,6}\s+")


# a line that ends its sentence (also '?**', '."', '.”'), or an HTML comment
_LINE_END = re.compile(r"(?:[.!?:;][\"'”’»)\]*_]*|-->)$")
# a list item (any bullet), a heading, a table row, a rule or a code fence
_BLOCK = re.compile(r"\s*(?:[-*+•·▪–]\s|\d+[.)]\s|#|\||[-=*_]{3,}\s*$|```|~~~)")
WRAPPED_LINE = 40
"""Characters a line needs to read as hard-wrapped: a PDF's printed line, a .txt wrapped at
72; shorter lines (a heading, a list item its markers stripped by a converter) stand alone."""

_CELLS = re.compile(r"[\s|,;]+")  # what separates words, table cells and CSV cells


def _is_record(line: str) -> bool:
    """True for a line that reads as a CSV or spreadsheet row ("Widget7,4.50,12",
    "Pump S2,129,In stock", tab-separated cells): at least two commas, and no fewer commas
    than spaces; or a tab."""
    commas = line.count(",")
    return "\t" in line or (commas >= 2 and commas >= line.strip().count(" "))


def _runs_on(previous: str, line: str) -> bool:
    """True when ``line`` continues the sentence ``previous`` left open at a hard wrap: the
    previous line is long and ends without a sentence's end, the next starts in lower case or
    with a digit, and neither is a block (list item, heading, table row, rule, fence) or a
    spreadsheet row."""
    before, after = previous.strip(), line.strip()
    return (
        len(before) >= WRAPPED_LINE
        and (after[:1].islower() or after[:1].isdigit())
        and not _LINE_END.search(before)
        and not (_BLOCK.match(previous) or _BLOCK.match(line))
        and not (_is_record(previous) or _is_record(line))
    )


def unwrap_lines(text: str) -> list[str]:
    """The lines of ``text`` with hard-wrapped sentences joined again: a PDF's printed lines,
    a .txt wrapped at 72 characters ("Customers who return a sensor must first ask for" /
    "a return number."). Only where a line clearly runs on (:func:`_runs_on`): a heading or a
    list item whose marker a converter stripped stays a line of its own."""
    lines: list[str] = []
    for line in text.splitlines():
        if lines and _runs_on(lines[-1], line):
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
        else:
            lines.append(line)
    return lines


def split_sentences(text: str, min_words: int = 3) -> list[str]:
    """The units a chunk is read in: sentences, list items, and table rows kept whole (a price
    is useless without its row's label). Each at least ``min_words`` words; Markdown heading
    marks, table rules and list markers dropped. Hard-wrapped lines are joined first
    (:func:`unwrap_lines`)."""
    units = []
    for line in unwrap_lines(text or ""):
        line = _HEADING.sub("", line.strip())
        if not line or set(line) <= set("|-: "):
            continue
        if line.startswith("|"):
            units.append(" | ".join(c.strip() for c in line.strip("|").split("|")))
        else:
            units += _SENTENCE_END.split(line)
    return [" ".join(u.split()) for u in units if _words(u) >= min_words]


def _words(unit: str) -> int:
    """How many words, table cells or CSV cells ``unit`` holds (empty cells do not count)."""
    return sum(1 for w in _CELLS.split(unit) if w)


SENTENCE_CACHE = 50_000
"""Sentence vectors all :class:`SentencePicker` objects of one embedder keep between them
(float32, 384 numbers: about 77 MB)."""

_SHARED: dict[str, dict[str, np.ndarray]] = {}
"""Per embedder: sentence -> vector, shared by every SentencePicker of this process (the grid's
RAG systems read the same sources for the same questions)."""


def forget_shared_sentences() -> None:
    """Empty the sentence vectors the pickers share: the next picks embed their sentences again
    (``python -m kit bench rag`` does it before it times what embedding costs)."""
    for vectors in _SHARED.values():
        vectors.clear()


@component
class SentencePicker:
    """Keep only the ``sentences`` sentences of the retrieved chunks most similar to the question.

    In: the question and the chunks (best first). Out: one Document per picked sentence, in the
    order they appear in the chunks, each keeping its chunk's meta (doc id, title), so citations
    still map to source documents. A sentence's score is, like hybrid retrieval, meaning plus
    words: the cosine of its MiniLM embedding to the question's (Haystack's SentenceTransformers
    embedders, the index's own model) + ``keyword_weight`` x the share of the question's content
    words it contains (:func:`keyword_overlap`). The vectors of the sentences it has embedded
    are kept for every picker of the same embedder (``shared=False``: for this one); the
    question is embedded at every call, as it costs every answer.
    """

    def __init__(
        self, embedder: str, sentences: int = 4, keyword_weight: float = 0.6, shared: bool = True
    ) -> None:
        # heavy: sentence-transformers loads only when a layout picks sentences
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersDocumentEmbedder,
            SentenceTransformersTextEmbedder,
        )

        if sentences < 1:
            raise ValueError(f"sentences must be >= 1, not {sentences}.")
        self.sentences = sentences
        self.keyword_weight = keyword_weight
        # sentence -> embedding (see cosines()): shared with every picker of this embedder, or
        # (shared=False) this picker's own
        mine: dict[str, np.ndarray] = {}
        self._vectors = _SHARED.setdefault(str(embedder), mine) if shared else mine
        self.query_embedder = SentenceTransformersTextEmbedder(
            model=embedder, normalize_embeddings=True, progress_bar=False, local_files_only=True
        )
        self.sentence_embedder = SentenceTransformersDocumentEmbedder(
            model=embedder, normalize_embeddings=True, progress_bar=False, local_files_only=True
        )

    def warm_up(self) -> None:
        """Load the embedding model (once; Haystack shares it with the retriever's embedder)."""
        self.query_embedder.warm_up()
        self.sentence_embedder.warm_up()

    def cosines(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """The cosine of each sentence's embedding to the question's. A sentence seen before,
        by any picker of the same embedder (the same chunks come back for many questions and
        systems), is not embedded again."""
        self.warm_up()
        query = np.array(self.query_embedder.run(text=question)["embedding"])
        unique = list(dict.fromkeys(sentences))
        new = [s for s in unique if s not in self._vectors]
        if len(self._vectors) + len(new) > SENTENCE_CACHE:  # bounded: a big index, many asks
            self._vectors.clear()
            new = unique
        if new:
            embedded = self.sentence_embedder.run(documents=[Document(content=s) for s in new])
            for text, doc in zip(new, embedded["documents"], strict=True):
                # the model's own float32 numbers: kept exactly, half the memory of float64
                self._vectors[text] = np.array(doc.embedding, dtype=np.float32)
        vectors = [self._vectors[s] for s in sentences]
        matrix = np.array(vectors, dtype=np.float64).reshape(len(sentences), -1)
        return matrix @ query  # normalised: dot = cosine

    @component.output_types(documents=list[Document])
    def run(self, question: str, documents: list[Document]) -> dict[str, list[Document]]:
        """The picked sentences as Documents (see the class docstring)."""
        candidates = [
            Document(content=sentence, meta=dict(chunk.meta))
            for chunk in documents
            for sentence in split_sentences(chunk.content or "")
        ]
        if len(candidates) <= self.sentences:
            return {"documents": candidates or list(documents)}
        cosine = self.cosines(question, [d.content or "" for d in candidates])
        words = np.array([keyword_overlap(question, d.content or "") for d in candidates])
        score = cosine + self.keyword_weight * words
        best = sorted(np.argsort(-score, kind="stable")[: self.sentences])
        return {"documents": [candidates[i] for i in best]}


def best_sentence_similarity(
    question: str, documents: Sequence[Document], picker: SentencePicker
) -> float:
    """The highest cosine between the question and any sentence of ``documents``: a source can
    be about the question's topic as a whole (high chunk similarity) and still hold no sentence
    that answers it, as "the phone number of the Porto reception" over the Porto office's page
    without one. Sources without a sentence of 3 words count whole; NaN when they are empty."""
    sentences = [s for d in documents for s in split_sentences(d.content or "")]
    sentences = sentences or [d.content for d in documents if (d.content or "").strip()]
    return float(picker.cosines(question, sentences).max()) if sentences else math.nan
