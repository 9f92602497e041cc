"""Attribution: which of the shown sources an answer's words come from.

A 135M model copies a phrase from its sources well but rarely writes the ``[1]`` that says
where the phrase came from. Production RAG systems do not rely on the model alone for that:
they attribute the answer after generation, by matching it against the sources it was shown
(post-hoc attribution). The kit does the same, and keeps the two apart everywhere it scores:

- ``cites`` / ``citation_precision``: what the model wrote (:mod:`kit.citations`);
- ``attributed`` / ``attribution_precision``: the model's citation when it wrote one, else the
  shown document whose sources hold most of the answer's content words, if they hold enough.

Pure string functions, no model. Answers that decline ("I don't know") are never attributed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kit.citations import doc_id, is_abstention, without_lead_in
from kit.prompts import content_words

MIN_SUPPORT = 0.3
"""Share of the answer's content words one document's shown sources must hold to be named as
its source.

Chosen on 64 train questions (plain RAG, float32), when each shown source counted alone (a
document's sentences count together since 2026-12; the figures were not measured again): the
threshold that attributes the most answers to a right document while at least 3 in 4
attributions are right. 0.3 attributed 78% of the answers (of all 64, declines included), 75%
of them to a gold document; 0.4: 67% / 78%; 0.6: 34% / 84%; 0.8: 20% / 81%."""


def answer_words(answer: str) -> list[str]:
    """The content words of an answer, without its citations (``[1]``, a leading "According to
    source [2],"), the house style's ``Answer:`` label or ``Source:`` line."""
    answer = without_lead_in(answer)
    lines = [line for line in answer.splitlines() if not line.strip().startswith("Source:")]
    text = re.sub(r"\[[^\]]*\]|^\s*Answer:", " ", "\n".join(lines), flags=re.MULTILINE)
    return content_words(text)


def support(answer: str, sources: Sequence[Any]) -> float:
    """Share of the answer's content words that appear in the sources' text (0.0 to 1.0).

    In: the answer text and the documents the model was shown (anything with ``.content``).
    An answer with no content words has support 0.0.
    """
    words = answer_words(answer)
    if not words:
        return 0.0
    seen = set(content_words(" ".join(getattr(d, "content", "") or "" for d in sources)))
    return sum(w in seen for w in words) / len(words)


def attribute(answer: str, sources: Sequence[Any], min_support: float = MIN_SUPPORT) -> list[str]:
    """The id of the shown document that best supports ``answer``, as a one-item list; empty
    when the answer declines, has no content words, or no document holds ``min_support`` of
    them. A document's shown sources count together (a layout that shows sentences may show
    two of one document, each holding half the answer). Ties go to the document shown first
    (the one the retriever ranked higher)."""
    if not sources or is_abstention(answer):
        return []
    by_doc: dict[str, list[Any]] = {}
    for source in sources:
        by_doc.setdefault(doc_id(source), []).append(source)
    scores = {doc: support(answer, shown) for doc, shown in by_doc.items()}
    best = max(scores, key=scores.__getitem__)  # the first of equals: shown first
    return [best] if scores[best] >= min_support else []
