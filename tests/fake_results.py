"""Small synthetic comparison results, shaped like kit.evaluate.score_answers output, for tests.

``fake_scores()`` has one row per system x question (4 systems x 8 questions, two per type);
``fake_answers()`` the matching {system: {question_id: Answer}} with retrieved Haystack
Documents, so the explorer can highlight passages.
"""

from __future__ import annotations

import pandas as pd
from haystack import Document

from kit.evaluate import citation_scores, summarise
from kit.generate import Answer

SYSTEMS = ("base", "rag", "finetuned", "hybrid")
QUESTIONS = [
    # id, type, question, gold, doc id, passage
    (
        "q1",
        "single",
        "How many days do customers have to return a Korvella meter?",
        "30 days",
        "kb-004",
        "Returns are handled by the service desk. Customers may return a meter within 30 days "
        "of delivery for a full refund. Opened calibration kits cannot be returned.",
    ),
    (
        "q2",
        "single",
        "Who approves travel above 500 euros?",
        "the finance director",
        "kb-010",
        "Travel is booked through the portal. Trips above 500 euros are approved by the finance "
        "director. Receipts are due within a week.",
    ),
    (
        "q3",
        "multi",
        "Which plant builds the sensor that the helpdesk supports?",
        "Tampere",
        "kb-020",
        "The helpdesk supports the KS-200 sensor. The KS-200 is built in the Tampere plant.",
    ),
    (
        "q4",
        "multi",
        "What warranty does the product made in Lyon carry?",
        "two years",
        "kb-021",
        "Lyon makes the KL-9 logger. The KL-9 logger carries a warranty of two years.",
    ),
    (
        "q5",
        "numeric",
        "What does the KS-200 cost?",
        "1,250 euros",
        "kb-030",
        "Price list. The KS-200 costs 1,250 euros before tax. Discounts apply above ten units.",
    ),
    (
        "q6",
        "numeric",
        "How many employees does Korvella have?",
        "340",
        "kb-031",
        "About us. Korvella Instruments employs 340 people in three countries.",
    ),
    ("q7", "unanswerable", "What is the CEO's shoe size?", "I don't know", "", ""),
    ("q8", "unanswerable", "Who won the 1998 office chess cup?", "I don't know", "", ""),
]
_RIGHT = {
    "base": {"q7"},
    "rag": {"q1", "q2", "q3", "q5", "q6", "q7", "q8"},
    "finetuned": {"q1", "q6"},
    "hybrid": {"q1", "q2", "q3", "q4", "q5", "q6", "q7"},
}
_LATENCY = {"base": 1.1, "rag": 3.2, "finetuned": 1.3, "hybrid": 2.5}
_PROMPT = {"base": 39, "rag": 700, "finetuned": 39, "hybrid": 400}


def _text(system: str, qid: str, gold: str, doc_id: str) -> str:
    right = qid in _RIGHT[system]
    if gold == "I don't know":
        return "I don't know." if right else "It is 42."
    core = gold if right else "I believe it is something else"
    cite = f" [{doc_id}]" if system in ("rag", "hybrid") and doc_id else ""
    return f"Answer: {core}.{cite}"


def fake_answers() -> dict[str, dict[str, Answer]]:
    """{system: {question_id: Answer}}; RAG and hybrid answers carry retrieved Documents."""
    out: dict[str, dict[str, Answer]] = {}
    for system in SYSTEMS:
        out[system] = {}
        for qid, _type, question, gold, doc_id, passage in QUESTIONS:
            docs = []
            if system in ("rag", "hybrid") and doc_id:
                docs = [
                    Document(
                        content=passage,
                        meta={"doc_id": doc_id, "title": f"Title of {doc_id}"},
                        score=0.81,
                    ),
                    Document(
                        content="An unrelated chunk about parking spaces.",
                        meta={"doc_id": "kb-099", "title": "Parking"},
                        score=0.12,
                    ),
                ]
            text = _text(system, qid, gold, doc_id)
            out[system][qid] = Answer(
                question=question,
                text=text,
                cited_ids=[doc_id] if docs and f"[{doc_id}]" in text else [],
                documents=docs,
                timings={"total": _LATENCY[system]},
                prompt_tokens=_PROMPT[system],
                new_tokens=12,
                system=system,
            )
    return out


def fake_scores() -> pd.DataFrame:
    """One row per system x question with every column kit.evaluate.score_answers writes."""
    rows = []
    answers = fake_answers()
    for system in SYSTEMS:
        for qid, qtype, question, gold, doc_id, _passage in QUESTIONS:
            answer = answers[system][qid]
            right = qid in _RIGHT[system]
            cited = ", ".join(answer.cited_ids)
            precision, recall = citation_scores(answer.cited_ids, [doc_id] if doc_id else [])
            rows.append(
                {
                    "system": system,
                    "id": qid,
                    "type": qtype,
                    "split": "test",
                    "seen_in_training": False,
                    "question": question,
                    "gold": gold,
                    "answer": answer.text,
                    "correct": float(right),
                    "exact": float(right),
                    "f1": 1.0 if right else 0.2,
                    "sas": 0.9 if right else 0.4,
                    "abstained": float("I don't know" in answer.text),
                    "cited": cited,
                    "cites": float(bool(cited)),
                    "citation_precision": precision,
                    "citation_recall": recall,
                    "style_ok": float(system in ("finetuned", "hybrid")),
                    "latency_s": _LATENCY[system],
                    "prompt_tokens": _PROMPT[system],
                    "new_tokens": 12,
                }
            )
    return pd.DataFrame(rows)


def fake_summary() -> pd.DataFrame:
    """kit.evaluate.summarise over :func:`fake_scores`."""
    return summarise(fake_scores())
