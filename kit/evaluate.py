"""Evaluate: score answers and retrievals, one row per question, the same way for every system.

The questions: :func:`eval_records`, the one sampler every evaluation asks (the grid, the
notebooks, the benchmarks, the abstainer), stratified by question type.

Answer metrics (per question):

- ``correct``: the gold answer appears in the answer (normalised, on word boundaries); for an
  unanswerable question, the system said "I don't know". The headline number.
- ``exact``: the answer's core (the ``Answer:`` line if there is one) equals the gold answer.
- ``f1``: token overlap with the gold answer (SQuAD-style F1).
- ``sas``: semantic answer similarity with the local MiniLM embedder (Haystack's SASEvaluator).
- ``cites``: the answer cites at least one source document.
- ``citation_precision`` / ``citation_recall``: cited document ids vs the gold ids (precision is
  undefined, NaN, for an answer that cites nothing; the summary averages over answers that cite).
- ``attributed`` / ``attribution_precision``: the same for the model's citation, else the shown
  source the kit attributes the answer to after generation (:mod:`kit.attribution`);
  ``sources``: how many sources the model was shown.
- ``abstained``: the answer says "I don't know" (or an equivalent).

  The summaries average the citation metrics over the answers that do not decline (``answered``
  in :func:`summarise`): an "I don't know" has nothing to cite, and counting it as a missing
  citation would rank a system that declines below one that makes an answer up.
- ``style_ok``: the answer follows the data set's house style (its regex).
- ``latency_s``, ``prompt_tokens``, ``new_tokens``: what the answer cost.

Retrieval metrics (per question, at document level): hit@k, recall@k, MRR and nDCG, computed by
Haystack's DocumentRecallEvaluator, DocumentMRREvaluator and DocumentNDCGEvaluator.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import pandas as pd
from haystack import Document
from haystack.components.evaluators import (
    DocumentMRREvaluator,
    DocumentNDCGEvaluator,
    DocumentRecallEvaluator,
)

from kit import stats
from kit.citations import bracketed_ids, is_abstention, without_lead_in
from kit.data import QARecord, load_qa, normalise, sample_questions, style_compliant, supports
from kit.generate import Answer
from kit.inputs import text
from kit.models import DEFAULT_EMBEDDER, resolve_model
from kit.profiles import Profile, resolve_profile

if TYPE_CHECKING:
    from haystack.components.evaluators import SASEvaluator


def answer_core(text: str) -> str:
    """The short answer in a reply: the text after ``Answer:`` if present, else the first line,
    without a leading "According to source [2]," (plain RAG's started reply names its source)."""
    text = text.strip()
    match = re.search(r"^\s*Answer:\s*(.+)$", text, flags=re.MULTILINE)
    line = match.group(1) if match else (text.splitlines()[0] if text else "")
    return without_lead_in(line).strip().rstrip(".")


def cited_doc_ids(text: str, known_ids: Sequence[str] | None = None) -> list[str]:
    """Document ids cited in square brackets, e.g. ``Source: Price list [kb-004]`` -> ["kb-004"].

    Numbers like ``[1]`` are not document ids and are skipped (a RAG pipeline maps them itself).
    With ``known_ids``, only those ids are kept. Order of first mention, no duplicates.
    """
    return [i for i in bracketed_ids(text) if known_ids is None or i in known_ids]


def exact_match(prediction: str, gold: str) -> float:
    """1.0 if the reply's core answer equals the gold answer after normalisation, else 0.0."""
    text(prediction, "prediction", empty_ok=True), text(gold, "gold", empty_ok=True)
    return float(normalise(answer_core(prediction)) == normalise(gold))


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style token F1 between the reply's core answer and the gold answer."""
    text(prediction, "prediction", empty_ok=True), text(gold, "gold", empty_ok=True)
    pred = normalise(answer_core(prediction)).split()
    ref = normalise(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@cache
def _sas_evaluator() -> SASEvaluator:
    from haystack.components.evaluators import SASEvaluator  # heavy: sentence-transformers

    evaluator = SASEvaluator(model=resolve_model(DEFAULT_EMBEDDER))
    evaluator.warm_up()
    return evaluator


def semantic_similarity(predictions: Sequence[str], golds: Sequence[str]) -> list[float]:
    """Cosine similarity of each prediction's core answer to its gold answer (MiniLM, via SAS)."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold answers")
    if not predictions:
        return []
    cores = [answer_core(p) or "(empty)" for p in predictions]
    result = _sas_evaluator().run(ground_truth_answers=list(golds), predicted_answers=cores)
    return [float(s) for s in result["individual_scores"]]


def citation_scores(cited: Sequence[str], gold: Sequence[str]) -> tuple[float, float]:
    """(precision, recall) of cited document ids against gold ids; NaN where undefined.

    Nothing cited: precision is NaN (there is nothing to be precise about, so a system that never
    cites does not score a perfect precision), recall 0.0, or NaN when there is no gold id.
    Citing something for an unanswerable question (no gold ids): precision 0.0, recall NaN.
    """
    cited_set, gold_set = set(cited), set(gold)
    if not cited_set:
        return math.nan, (0.0 if gold_set else math.nan)
    if not gold_set:
        return 0.0, math.nan
    hits = len(cited_set & gold_set)
    return hits / len(cited_set), hits / len(gold_set)


def eval_records(
    split: str = "test",
    limit: int | None = None,
    records: Sequence[QARecord] | None = None,
    profile: str | Profile | None = None,
) -> list[QARecord]:
    """The questions an evaluation asks: ``limit`` of ``records`` (default: the ``split``).

    ``limit`` ``None``: the ``profile``'s ``eval_questions`` when a profile is given (the grid's
    questions; a warning when it asks for more than there are), else all; 0: all. Sampled by
    :func:`kit.data.sample_questions`: every question type in proportion, so a smoke run still
    has single, multi, numeric and unanswerable questions, and a smaller sample is part of a
    larger one. Every notebook, the grid, the benchmarks and the abstainer ask these.
    """
    chosen = list(records) if records is not None else load_qa(split=split)
    if limit is None and profile is not None:
        prof = resolve_profile(profile)
        limit = prof.eval_questions
        if limit > len(chosen):
            warnings.warn(
                f"The {prof.name} profile asks for {limit} questions but the {split} "
                f"split has {len(chosen)}: all {len(chosen)} are asked. Set eval_questions to 0 "
                "(all) or at most that to silence this.",
                stacklevel=2,
            )
    return sample_questions(chosen, limit)


def score_answers(records: Sequence[QARecord], answers: Sequence[Answer]) -> pd.DataFrame:
    """Score each answer against its question's gold record; one row per question.

    In: the QA records and the answers, in the same order (checked by question text).
    Out: a DataFrame with the columns described in the module docstring, plus id, type, split,
    question, gold, answer, cited, system.
    """
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} questions but {len(answers)} answers")
    if not all(isinstance(a, Answer) for a in answers):
        raise ValueError("answers must be kit.generate.Answer objects (what a system returns).")
    if not all(isinstance(r, QARecord) for r in records):
        raise ValueError("records must be QARecords (questions with gold answers).")
    for rec, ans in zip(records, answers, strict=True):
        if ans.question and ans.question != rec.question:
            raise ValueError(f"answer to {ans.question!r} is paired with question {rec.id}")
    sas = semantic_similarity([a.text for a in answers], [r.answer for r in records])
    rows = []
    for rec, ans, sim in zip(records, answers, sas, strict=True):
        abstained = is_abstention(ans.text)
        cited = ans.cited_ids or cited_doc_ids(ans.text)
        attributed = ans.attributed_ids or cited
        if rec.answerable and not rec.gold_doc_ids:  # your question without gold ids: unknown
            precision = recall = attribution_precision = math.nan
        else:
            precision, recall = citation_scores(cited, rec.gold_doc_ids)
            attribution_precision, _ = citation_scores(attributed, rec.gold_doc_ids)
        correct = is_correct(rec, ans.text)
        rows.append(
            {
                "system": ans.system,
                "id": rec.id,
                "type": rec.type,
                "split": rec.split,
                "seen_in_training": rec.split == "train" or rec.paraphrase_of is not None,
                "question": rec.question,
                "gold": rec.answer,
                "answer": ans.text,
                "correct": float(correct),
                "exact": exact_match(ans.text, rec.answer),
                "f1": token_f1(ans.text, rec.answer),
                "sas": sim,
                "abstained": float(abstained),
                "cited": ", ".join(cited),
                "cites": float(bool(cited)),
                "citation_precision": precision,
                "citation_recall": recall,
                "sources": len(ans.documents),
                "attributed": float(bool(attributed)),
                "attribution_precision": attribution_precision,
                "style_ok": float(style_compliant(ans.text)),
                "latency_s": ans.timings.get("total", sum(ans.timings.values())),
                "prompt_tokens": ans.prompt_tokens,
                "new_tokens": ans.new_tokens,
            }
        )
    return pd.DataFrame(rows)


def is_correct(record: QARecord, text: str) -> bool:
    """The grid's ``correct``: an answerable question's gold answer appears in ``text`` (which
    does not decline); an unanswerable question is declined ("I don't know")."""
    if record.answerable:
        return not is_abstention(text) and supports(record.answer, text)
    return is_abstention(text)


def _mean(df: pd.DataFrame, column: str) -> float:
    """The column's mean, or NaN for a table scored before the column existed."""
    return df[column].mean() if column in df else math.nan


def _answered(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose answer does not decline (what ``cites`` and ``attributed`` count); all
    rows of a table scored without the ``abstained`` column."""
    return df[df["abstained"].fillna(0) == 0] if "abstained" in df else df


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per system: mean of each metric, abstention split by answerability, latency p50.

    ``abstain_ok`` is the share of unanswerable questions answered "I don't know";
    ``false_abstain`` the share of answerable questions wrongly declined; ``answered`` the
    answers that do not decline, over which the citation metrics are averaged.
    """
    if scores.empty:
        raise ValueError("No scores to summarise: the results table is empty.")
    out = []
    for system, df in scores.groupby("system", sort=False):
        unans = df[df["type"] == "unanswerable"]
        ans = df[df["type"] != "unanswerable"]
        answered = _answered(df)  # what the citation metrics count
        out.append(
            {
                "system": system,
                "questions": len(df),
                "answered": len(answered),
                "correct": df["correct"].mean(),
                "exact": df["exact"].mean(),
                "f1": df["f1"].mean(),
                "sas": df["sas"].mean(),
                "cites": _mean(answered, "cites"),
                "citation_precision": _mean(answered, "citation_precision"),
                "citation_recall": _mean(answered, "citation_recall"),
                "attributed": _mean(answered, "attributed"),
                "attribution_precision": _mean(answered, "attribution_precision"),
                "abstain_ok": unans["abstained"].mean() if len(unans) else math.nan,
                "false_abstain": ans["abstained"].mean() if len(ans) else math.nan,
                "style": df["style_ok"].mean(),
                "latency_p50_s": df["latency_s"].median(),
                "prompt_tokens": df["prompt_tokens"].mean(),
                "new_tokens": df["new_tokens"].mean(),
            }
        )
    return pd.DataFrame(out)


# --- how sure each figure is -------------------------------------------------------------------

# A summary metric -> (the per-question column it averages, which questions count: all, the
# answerable or unanswerable ones, or the answered ones, whose answer does not decline).
INTERVAL_METRICS: dict[str, tuple[str, str]] = {
    "correct": ("correct", "all"),
    "f1": ("f1", "all"),
    "sas": ("sas", "all"),
    "cites": ("cites", "answered"),
    "citation_precision": ("citation_precision", "answered"),
    "abstain_ok": ("abstained", "unanswerable"),
    "false_abstain": ("abstained", "answerable"),
    "style": ("style_ok", "all"),
    "latency_s": ("latency_s", "all"),
}

# Citations the model wrote vs citations the kit attributed after generation (kit.attribution):
# scored like the others, shown in a table of their own (the grid table shows what the model did).
ATTRIBUTION_METRICS: dict[str, tuple[str, str]] = {
    "attributed": ("attributed", "answered"),
    "attribution_precision": ("attribution_precision", "answered"),
}

# The comparisons a learner asks about first: what retrieval adds, what fine-tuning adds, and
# what each hybrid adds over plain RAG (only the pairs whose systems are in the table are used).
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("rag", "base"),
    ("finetuned", "base"),
    ("hybrid", "rag"),
    ("hybrid-raft", "rag"),
    ("hybrid-raft", "hybrid"),
)


def metric_values(scores: pd.DataFrame, system: str, metric: str) -> pd.Series:
    """One system's per-question values of a summary ``metric``, indexed by question id.

    ``abstain_ok`` counts the unanswerable questions only, ``false_abstain`` the answerable ones,
    the citation metrics the answers that do not decline.
    """
    known = {**INTERVAL_METRICS, **ATTRIBUTION_METRICS}
    if metric not in known:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {sorted(known)}.")
    column, which = known[metric]
    rows = scores[scores["system"] == system]
    if which == "unanswerable":
        rows = rows[rows["type"] == "unanswerable"]
    elif which == "answerable":
        rows = rows[rows["type"] != "unanswerable"]
    elif which == "answered":
        rows = _answered(rows)
    if column not in rows:
        return pd.Series(dtype=float)
    return rows.set_index("id")[column].astype(float)


INTERVAL_COLUMNS = ("system", "metric", "value", "low", "high", "n", "shown")
SECONDS_METRICS = frozenset({"latency_s"})
"""Metrics measured in seconds: a mean with its interval, never a rate, even when every
answer took 0 or 1 s."""


def summarise_intervals(
    scores: pd.DataFrame, metrics: Sequence[str] = tuple(INTERVAL_METRICS)
) -> pd.DataFrame:
    """Every system's metrics with a 95% interval (Wilson for rates, bootstrap for the rest).

    Out: one row per system x metric: ``value``, ``low``, ``high``, ``n`` (questions it counts)
    and ``shown`` ("0.38 [0.18, 0.61]", or "–" when no question counts).
    """
    rows = []
    for system in scores["system"].drop_duplicates():
        for metric in metrics:
            seconds = metric in SECONDS_METRICS
            bounds = (0.0, math.inf) if seconds else (0.0, 1.0)
            values = metric_values(scores, system, metric).tolist()
            ci = stats.interval(values, bounds=bounds, rate=False if seconds else None)
            rows.append(
                {
                    "system": system,
                    "metric": metric,
                    "value": ci.value,
                    "low": ci.low,
                    "high": ci.high,
                    "n": ci.n,
                    "shown": ci.format(),
                }
            )
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))  # none scored: no rows, same columns


def interval_table(
    scores: pd.DataFrame,
    metrics: Sequence[str] = tuple(INTERVAL_METRICS),
    intervals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`summarise_intervals` as a table to read: one row per system, one column per metric,
    each cell "value [low, high]", plus the number of questions. Pass ``intervals`` when you
    have already computed them (for a plot too), so the bootstrap runs once."""
    long = summarise_intervals(scores, metrics) if intervals is None else intervals
    long = long[long["metric"].isin(metrics)]
    table = long.pivot(index="system", columns="metric", values="shown")
    table = table.reindex(index=list(scores["system"].drop_duplicates()), columns=list(metrics))
    counts = scores.groupby("system", sort=False)["id"].nunique()
    table.insert(0, "questions", counts.reindex(table.index))
    table.columns.name = None
    return table.reset_index()


def citation_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The systems that retrieve: the model's own citations next to the attributed ones, each
    "value [95% interval]" (:func:`interval_table` on the four citation metrics), and
    ``answered``: the answers that do not decline, which ``cites`` and ``attributed`` count."""
    metrics = ("cites", "citation_precision", *ATTRIBUTION_METRICS)
    if "sources" not in scores or not (scores["sources"] > 0).any():
        return pd.DataFrame(columns=["system", "questions", "answered", *metrics])
    retrieving = scores[scores.groupby("system", sort=False)["sources"].transform("max") > 0]
    table = interval_table(retrieving, metrics)
    answered = _answered(retrieving).groupby("system", sort=False)["id"].nunique()
    table.insert(2, "answered", [int(answered.get(s, 0)) for s in table["system"]])
    return table


def rate_table(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """An experiment's table (freshness, privacy, injection) as one row per system: how many
    questions, and each 0/1 column's share with its 95% interval ("0.50 [0.15, 0.85]")."""
    rows = []
    for system, group in frame.groupby("system", sort=False):
        row: dict[str, object] = {"system": system, "questions": len(group)}
        row.update({c: stats.interval(group[c].tolist()).format() for c in columns})
        rows.append(row)
    return pd.DataFrame(rows)


def compare_systems(
    scores: pd.DataFrame,
    metric: str = "correct",
    pairs: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Paired comparisons of systems on the same questions, each with its plain sentence.

    In: the grid's scores, a summary ``metric`` and (a, b) pairs (default: :data:`DEFAULT_PAIRS`
    present in the table). Out: one row per pair: ``diff`` (a minus b) with its 95% interval,
    ``p_value`` (exact McNemar, for 0/1 metrics), ``n``, ``resolved`` and ``sentence``. The pairs
    are the questions both systems are scored on for the metric (:func:`metric_values`): for
    a citation metric, ``n`` counts the questions that neither system declined.
    """
    present = set(scores["system"])
    if pairs is None:
        pairs = [(a, b) for a, b in DEFAULT_PAIRS if a in present and b in present]
    unknown = sorted({s for pair in pairs for s in pair} - present)
    if unknown:
        raise ValueError(f"No scores for system(s) {unknown}; the table has {sorted(present)}.")
    rows = []
    for a, b in pairs:
        both = pd.concat(
            [metric_values(scores, a, metric), metric_values(scores, b, metric)],
            axis=1,
            join="inner",
        )
        seconds = metric in SECONDS_METRICS
        diff = stats.paired_difference(
            both.iloc[:, 0], both.iloc[:, 1], a, b, metric, rate=False if seconds else None
        )
        unit = "s" if seconds else "points"
        rows.append(
            {
                "a": a,
                "b": b,
                "metric": metric,
                "diff": diff.diff,
                "low": diff.low,
                "high": diff.high,
                "p_value": diff.p_value,
                "n": diff.n,
                "resolved": diff.resolved,
                "sentence": diff.sentence(unit=unit),
            }
        )
    columns = ["a", "b", "metric", "diff", "low", "high", "p_value", "n", "resolved", "sentence"]
    return pd.DataFrame(rows, columns=columns)


def style_rate(texts: Sequence[str]) -> float:
    """Share of texts that follow the house style (0.0 to 1.0)."""
    if not texts:
        raise ValueError("No texts to check.")
    return sum(style_compliant(t) for t in texts) / len(texts)


def retrieval_scores(
    records: Sequence[QARecord], retrieved_ids: Sequence[Sequence[str]], k: int
) -> pd.DataFrame:
    """Document-level retrieval metrics at ``k`` for the answerable questions.

    In: QA records and, for each, the source document ids of the retrieved chunks, best first
    (repeats from several chunks of one document are collapsed). Out: one row per answerable
    question: id, type, ``hit@k`` (any gold doc in the top k), ``recall@k`` (share of gold docs
    in the top k), mrr and ndcg, computed by Haystack's document evaluators.
    """
    if len(records) != len(retrieved_ids):
        raise ValueError(f"{len(records)} questions but {len(retrieved_ids)} retrieval results")
    pairs = [(r, ids) for r, ids in zip(records, retrieved_ids, strict=True) if r.gold_doc_ids]
    if not pairs:
        raise ValueError("No answerable questions to score retrieval on.")
    truth = [[Document(id=g, content=g) for g in r.gold_doc_ids] for r, _ in pairs]
    found = [[Document(id=d, content=d) for d in _top_unique(ids, k)] for _, ids in pairs]
    hit = DocumentRecallEvaluator(mode="single_hit", document_comparison_field="id")
    recall = DocumentRecallEvaluator(mode="multi_hit", document_comparison_field="id")
    mrr = DocumentMRREvaluator(document_comparison_field="id")
    ndcg = DocumentNDCGEvaluator(document_comparison_field="id")
    args = {"ground_truth_documents": truth, "retrieved_documents": found}
    columns = {
        f"hit@{k}": hit.run(**args)["individual_scores"],
        f"recall@{k}": recall.run(**args)["individual_scores"],
        "mrr": mrr.run(**args)["individual_scores"],
        "ndcg": ndcg.run(**args)["individual_scores"],
    }
    frame = pd.DataFrame(
        {"id": [r.id for r, _ in pairs], "type": [r.type for r, _ in pairs], **columns}
    )
    return frame


def _top_unique(ids: Sequence[str], k: int) -> list[str]:
    out: list[str] = []
    for ident in ids:
        if ident not in out:
            out.append(ident)
        if len(out) == k:
            break
    return out
