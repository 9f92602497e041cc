"""Citations: read back which sources an answer cites, and whether it declines.

The model sees the retrieved text as numbered sources (``[1] Returns and refunds: Customers may
return ...``, laid out by :mod:`kit.prompts`) and is asked to cite the numbers it used, like
``[1]``. :func:`parse_citations` turns whatever the model wrote back into source document ids.
It accepts the numbers (``[1]``, ``[1, 2]``, ``[1][2]``, ``Source 2``), document ids in
brackets (``[kb-004]``, as the fine-tuned house style writes ``Source: Price list [kb-004]``),
bare ids of retrieved documents (``kb-004``) and titles of shown sources on a ``Source:`` line
(``Source: Price list 2025``).
Nothing is guessed: an answer that cites nothing gets no citation. :func:`is_abstention` tells
an answer that declines ("I don't know", "not in the sources") from one that answers.

Pure string functions, no model: the RAG stage (:mod:`kit.rag`), the hybrid stage and the
scoring (:mod:`kit.evaluate`) share them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

ABSTAIN = "I don't know"
_ABSTAIN_RE = re.compile(
    r"\b(i don'?t know|i do not know|i'?m not sure"
    r"|i cannot (?:find|answer)|i can'?t (?:find|answer)"
    # "there is no information about it", "not enough information to answer": a decline; "no
    # information (on your account) is shared with advertisers": an answer (a privacy policy's
    # own words): a short phrase after "information" (no "whether", "who", ... : those ask),
    # then a verb that is not "is (currently) available"
    r"|(?:no|not enough) information(?!(?:\s+(?:on|about|from|of|in|for|regarding)"
    r"(?:\s+(?!(?:whether|if|who|whom|whose|what|when|where|why|how|which)\b)[\w'-]+){1,3})?"
    r"\s+(?:is|was|are|were|will be)\s+(?:(?:currently|yet|presently|publicly|otherwise)\s+)?+"
    r"(?!(?:available|given|provided|found|included|mentioned|contained|stated|listed|known"
    r"|present|in|there|here)\b)\w)"
    r"|not (?:mentioned|covered|stated|found) in the (?:sources?|documents?|context))\b",
    re.IGNORECASE,
)

_BRACKETS = re.compile(r"\[([^\[\]\n]{1,80})\]")
_SOURCE_WORD = re.compile(r"\bsources?\s*#?\s*(\d{1,2})\b", re.IGNORECASE)
_SOURCE_LINE = re.compile(r"^\s*Sources?:(.*)$", re.IGNORECASE | re.MULTILINE)
_DOC_ID_SHAPE = re.compile(r"^[A-Za-z][A-Za-z]*-\d+$")  # kb-001, doc-12: the bundled id shape


_NUMBERS = re.compile(r"[\d\s,\-\u2013]+")  # [1], [1, 2], [1-2]: a RAG's source numbers
_FILE_NAME = re.compile(r"\.\w{1,5}$")  # "Pump Manual.pdf": a file's name keeps its spaces


def bracketed_ids(text: str) -> list[str]:
    """Document ids written in square brackets, in order of first mention, without repeats.

    An id is what the kit names a document by: ``[kb-004]``, a file's path in your folder
    (``[manuals/pump.md]``, ``[2024-prices.md]``, ``[Pump Manual.pdf]``). Source numbers
    (``[1]``, ``[1, 2]``) are not ids (:func:`parse_citations` maps those), nor are words with
    spaces that do not end like a file name (``[see below]``).
    """
    found: list[str] = []
    for inner in (m.strip() for m in _BRACKETS.findall(text)):
        if not inner or _NUMBERS.fullmatch(inner):
            continue
        if " " in inner and not _FILE_NAME.search(inner):
            continue
        if inner not in found:
            found.append(inner)
    return found


# How an answer begun by the default layout's started reply names its source ("According to
# source [2], ...", kit.prompts.REPLY_START; also "[1] and [2]"): the citation, not the answer.
_LEAD_IN = re.compile(
    r"^\s*according to (?:the )?sources?\s*(?:\[[^\]]*\]\s*(?:(?:,|and)\s*)?)+,?\s*",
    re.IGNORECASE,
)


def without_lead_in(text: str) -> str:
    """``text`` without a leading "According to source [2]," (the default layout's started
    reply): what the answer says, for the scores and signals that read its words."""
    return _LEAD_IN.sub("", text, count=1)


def is_abstention(text: str) -> bool:
    """True when an answer declines to answer ("I don't know", "not in the sources", ...)."""
    if not isinstance(text, str):
        raise ValueError(f"is_abstention reads an answer's text, not {type(text).__name__}.")
    return bool(_ABSTAIN_RE.search(text.replace("\u2019", "'")))


def doc_id(document: Any) -> str:
    """The source document id of a chunk: ``meta["doc_id"]``, else ``meta["id"]``, else its id."""
    meta = getattr(document, "meta", None) or {}
    return str(meta.get("doc_id") or meta.get("id") or getattr(document, "id", ""))


PAGE_WORDS: dict[str, str] = {"pdf": "p.", "pptx": "slide"}
"""How a chunk's ``meta["page_number"]`` is named, by the document kind it comes from."""


def source_label(document: Any) -> str:
    """How a cited chunk is named to a reader: its title (else its document id), with the page
    or slide it starts on for PDFs and slide decks, e.g. ``"Pump manual, p. 3"``."""
    meta = getattr(document, "meta", None) or {}
    label = str(meta.get("title") or doc_id(document))
    word, page = PAGE_WORDS.get(str(meta.get("kind", ""))), meta.get("page_number")
    return f"{label}, {word} {page}" if word and page else label


def parse_citations(
    text: str, documents: Sequence[Any] = (), known_ids: Sequence[str] | None = None
) -> list[str]:
    """Document ids an answer cites, in order of first mention, without repeats.

    In: the answer text; the documents that were shown as sources ``[1]``, ``[2]``, ... (their
    ``meta["doc_id"]`` is what a number maps to); optionally every id that exists in the index.
    Accepted: ``[1]``, ``[1, 2]``, ``[1][3]``, ``Source 2`` (unless copied from a shown source's
    text with the word before it: "power source 2"); doc ids in brackets (``[kb-004]``,
    ``[kb-004; kb-007]``) that are a shown source, in ``known_ids``, or shaped like ``kb-004``
    (with ``known_ids`` given: only with the prefix of a known id, so ``[kb-099]`` is a citation
    of a document that does not exist and ``[E-42]``, an error code, is none); bare ids of shown
    sources that read as ids (``kb-004``, ``manuals/pump.md``; not ``returns``, a word too); a
    shown source's title on a ``Source:`` line (whole words, any case). Numbers outside
    1..len(documents) are ignored.
    """
    shown = [doc_id(d) for d in documents]
    known = set(shown) | set(known_ids or ())
    prefixes = {i.split("-")[0].lower() for i in known if _DOC_ID_SHAPE.match(i)}

    def id_shaped(token: str) -> bool:
        shaped = _DOC_ID_SHAPE.match(token)
        return bool(shaped) and (known_ids is None or token.split("-")[0].lower() in prefixes)

    found: list[tuple[int, str]] = []  # (position in text, id)

    def add(pos: int, ident: str | None) -> None:
        if ident:
            found.append((pos, ident))

    for match in _BRACKETS.finditer(text):
        for token in re.split(r"[,;]|\band\b", match.group(1)):
            token = token.strip().strip("#").strip()
            if token.lower().startswith("source"):
                token = token[6:].strip(" s:#")
            if token.isdigit():
                add(match.start(), _by_number(int(token), shown))
            elif token in known or id_shaped(token):
                add(match.start(), token)
    for match in _SOURCE_WORD.finditer(text):
        if not _copied(text, match, documents):
            add(match.start(), _by_number(int(match.group(1)), shown))
    for ident in {i for i in shown if re.search(r"[-/.]", i)}:  # "returns" is a word too
        for match in re.finditer(rf"(?<![\w\[-]){re.escape(ident)}(?![\w\]-])", text):
            add(match.start(), ident)
    for line in _SOURCE_LINE.finditer(text):  # "Source: Price list 2025", no number or id
        for document in documents:
            meta = getattr(document, "meta", None) or {}
            for title in {str(meta.get(k) or "").strip() for k in ("title", "sheet")} - {""}:
                if re.search(rf"(?<!\w){re.escape(title)}(?!\w)", line.group(1), re.I):
                    add(line.start(), doc_id(document))
    return list(dict.fromkeys(ident for _, ident in sorted(found, key=lambda pair: pair[0])))


def _copied(text: str, match: re.Match[str], documents: Sequence[Any]) -> bool:
    """True when the answer's "source 2" is a phrase copied from a shown source's text, the
    word before it included ("Connect power source 2" from "Connect power source 2 to the
    left terminal"), not a citation; "(Source 2)" after a sentence cites."""
    before = re.search(r"(\w+) +$", text[: match.start()])
    if not before:  # "(Source 2)", or the answer's first words
        return False
    phrase = rf"\b{re.escape(before.group(1))}\s+{re.escape(match.group(0))}"
    return any(re.search(phrase, getattr(d, "content", "") or "", re.IGNORECASE) for d in documents)


def _by_number(number: int, shown: Sequence[str]) -> str | None:
    return shown[number - 1] if 1 <= number <= len(shown) else None
