"""RAG measured: retrieval per mode, answers per mode and per prompt layout.

Above both the pipeline (:mod:`kit.rag`) and the scores (:mod:`kit.evaluate`):

- :func:`evaluate_retrieval` / :func:`summarise_retrieval`: recall@k, MRR and nDCG per question
  and mode with Haystack's evaluators (no generator: fast), latency p50 / p95;
- :func:`evaluate_rag`: a RAG over the evaluation questions, every answer scored by
  :func:`kit.evaluate.score_answers`, plus retrieval on the chunks the model was shown;
- :func:`compare_modes` / :func:`summarise_modes` / :func:`plot_modes`: the same for each
  retrieval mode, with one shared generator;
- :func:`compare_layouts` / :func:`summarise_layouts`: each prompt layout of
  :mod:`kit.prompts`, on the **train** split (a design choice is not made on the test split).

The questions come from :func:`kit.evaluate.eval_records`, the sampler every evaluation uses.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from haystack.document_stores.types import DocumentStore

from kit.evaluate import eval_records, retrieval_scores, score_answers, summarise
from kit.indexing import Index
from kit.profiles import Profile, resolve_profile
from kit.prompts import LAYOUTS, Layout
from kit.rag import RAG, RagError, build_rag, is_component
from kit.retrieval import (
    DEFAULT_CANDIDATES,
    MODES,
    retrieval_pipeline,
    retrieve,
    role_filter,
    unique_doc_ids,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kit.data import QARecord


def evaluate_retrieval(
    index: Index | DocumentStore,
    modes: Sequence[str] = MODES,
    k: int = 5,
    split: str = "test",
    records: Sequence[QARecord] | None = None,
    candidates: int = DEFAULT_CANDIDATES,
    role: str | None = None,
) -> pd.DataFrame:
    """Retrieval metrics per answerable question and mode (no generator: fast).

    Out: one row per (mode, question): mode, id, type, hit@k, recall@k, mrr, ndcg (Haystack's
    evaluators, at document level), similarity (best dense cosine), latency_ms.
    """
    # retrieval is scored against gold documents: questions without them are left out
    chosen = [r for r in eval_records(split, records=records) if r.answerable and r.gold_doc_ids]
    if not chosen:
        raise RagError(
            "No answerable questions with gold documents (gold_doc_ids) to evaluate retrieval "
            "on: add the ids of the documents that hold each answer to your question file"
        )
    filters = role_filter(role)
    frames = []
    for mode in modes:
        pipeline = retrieval_pipeline(index, mode, max(candidates, k))
        found = [retrieve(pipeline, r.question, filters, mode) for r in chosen]
        scores = retrieval_scores(chosen, [f.doc_ids for f in found], k)
        scores.insert(0, "mode", mode)
        scores["similarity"] = [f.similarity for f in found]
        scores["latency_ms"] = [1000 * f.seconds for f in found]
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


def summarise_retrieval(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per mode, with latency p50 / p95 in milliseconds."""
    metrics = [c for c in scores.columns if c.split("@")[0] in ("hit", "recall", "mrr", "ndcg")]
    rows = []
    for mode, df in scores.groupby("mode", sort=False):
        lat = sorted(df["latency_ms"])
        rows.append(
            {
                "mode": mode,
                "questions": len(df),
                **{m: df[m].mean() for m in metrics},
                "p50_ms": statistics.median(lat),
                "p95_ms": percentile(lat, 95),
            }
        )
    return pd.DataFrame(rows).set_index("mode")


def evaluate_rag(
    rag: RAG,
    split: str = "test",
    limit: int | None = None,
    records: Sequence[QARecord] | None = None,
    k: int = 5,
) -> pd.DataFrame:
    """Run ``rag`` over the eval questions (generation batched, as in the grid); one row per
    question with every score.

    Answer scores come from ``kit.evaluate.score_answers`` (correct, exact, f1, sas, abstention,
    citation precision / recall, ...); added: mode, retrieval hit@k / recall@k / mrr / ndcg (NaN
    for unanswerable questions and for those without gold documents), retrieve_s and generate_s
    (seconds per stage). Each record needs its own id.
    """
    chosen = eval_records(split, limit, records)
    if not chosen:
        raise RagError("No questions to evaluate.")
    ids = [r.id for r in chosen]
    if len(set(ids)) < len(ids):  # rows are joined by id below: a repeat would cross them
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise RagError(f"question id(s) {', '.join(twice)} are used twice; give each its own")
    answers = rag.answer_batch([r.question for r in chosen])  # the grid's batched path
    df = score_answers(chosen, answers)
    df.insert(1, "mode", rag.mode)
    df["retrieve_s"] = [a.timings.get("retrieve", math.nan) for a in answers]
    df["generate_s"] = [a.timings.get("generate", math.nan) for a in answers]
    answerable = [
        (r, a) for r, a in zip(chosen, answers, strict=True) if r.answerable and r.gold_doc_ids
    ]  # without gold documents: NaN retrieval scores
    if answerable:
        # Retrieval scored on the chunks the model was shown (top_k), as documents.
        ret = retrieval_scores(
            [r for r, _ in answerable], [unique_doc_ids(a.documents) for _, a in answerable], k
        )
        df = df.merge(ret.drop(columns=["type"]), on="id", how="left")
    return df


def compare_modes(
    index: Index | DocumentStore,
    modes: Sequence[str] = MODES,
    generator: Any = None,
    profile: str | Profile | None = None,
    limit: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`evaluate_rag` for each mode with one shared generator; rows of every mode.

    ``limit`` defaults to the profile's ``eval_questions`` (0 = all).
    """
    prof = resolve_profile(profile)
    if limit is None:
        limit = prof.eval_questions or None
    frames, shared = [], generator
    for mode in modes:
        rag = build_rag(index, mode=mode, generator=shared, profile=prof, **options)
        shared = rag.model_and_tokenizer if not is_component(generator) else generator
        frames.append(evaluate_rag(rag, limit=limit))
    return pd.concat(frames, ignore_index=True)


def compare_layouts(
    index: Index | DocumentStore,
    layouts: Sequence[str | Layout] | None = None,
    generator: Any = None,
    profile: str | Profile | None = None,
    limit: int | None = None,
    records: Sequence[QARecord] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`evaluate_rag` for each prompt layout (``kit.prompts.LAYOUTS`` by default) with one
    shared generator, on the **train** split; rows of every layout, with a ``layout`` column.

    The layout is a design choice, so it is chosen on the train split: the test split stays for
    the final comparison (records from it raise :class:`RagError`). ``limit`` questions (default
    the profile's ``eval_questions``, 0 = all) keep the split's mix of question types. A Haystack
    component as ``generator`` takes one layout (it can sit in one pipeline only), and not one
    that starts the reply (``cite-first``: the kit cannot make its chat template continue it).
    """
    chosen = eval_records("train", None, records)
    if any(r.split == "test" for r in chosen):
        raise RagError(
            "Choose a prompt layout on the train split: the test split is kept for the final "
            "comparison, and a layout picked on it would flatter the test score."
        )
    prof = resolve_profile(profile)
    if limit is None:
        limit = prof.eval_questions or None
    layouts = list(layouts or LAYOUTS)
    if is_component(generator) and len(layouts) > 1:
        raise RagError(
            "A Haystack component can sit in one pipeline only, and each layout needs its own: "
            "compare layouts with a model name or a (model, tokenizer) pair, or pass one layout."
        )
    frames, shared = [], generator
    for layout in layouts:
        rag = build_rag(index, generator=shared, profile=prof, layout=layout, **options)
        shared = rag.model_and_tokenizer if not is_component(generator) else generator
        scores = evaluate_rag(rag, limit=limit, records=chosen)
        scores.insert(1, "layout", rag.layout.name)
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


def summarise_layouts(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per layout: ``kit.evaluate.summarise`` (correct, cites, abstention, prompt tokens,
    latency, ...) of :func:`compare_layouts` output."""
    summary = summarise(scores.assign(system=scores["layout"]))
    return summary.rename(columns={"system": "layout"}).set_index("layout")


def summarise_modes(scores: pd.DataFrame) -> pd.DataFrame:
    """``kit.evaluate.summarise`` with one row per retrieval mode (plus recall@k if present)."""
    summary = summarise(scores.assign(system=scores["mode"])).rename(columns={"system": "mode"})
    extra = [c for c in scores.columns if c.startswith(("recall@", "hit@"))]
    for col in extra:
        summary[col] = summary["mode"].map(scores.groupby("mode")[col].mean())
    return summary.set_index("mode")


def plot_modes(retrieval: pd.DataFrame, answers: pd.DataFrame | None = None) -> Figure:
    """Bar charts comparing the modes: retrieval metrics, and answer scores if given.

    In: :func:`summarise_retrieval` output and optionally :func:`summarise_modes` output.
    """
    import matplotlib.pyplot as plt  # heavy: matplotlib loads only to draw

    panels = 2 if answers is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    metrics = [c for c in retrieval.columns if c.split("@")[0] in ("recall", "mrr", "ndcg")]
    retrieval[metrics].T.plot.bar(ax=axes[0][0], rot=0, ylim=(0, 1.05))
    axes[0][0].set_title("Retrieval (document level)")
    if answers is not None:
        cols = [
            c for c in ("correct", "f1", "sas", "citation_recall", "abstain_ok") if c in answers
        ]
        answers[cols].T.plot.bar(ax=axes[0][1], rot=0, ylim=(0, 1.05))
        axes[0][1].set_title("Answers")
    fig.tight_layout()
    return fig


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (linear interpolation, numpy's); NaN if empty."""
    return float(np.percentile(values, q)) if len(values) else math.nan
