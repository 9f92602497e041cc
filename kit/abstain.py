"""Learned "I don't know": when should a RAG system decline to answer?

A small model almost never says "I don't know" on its own: given sources, it answers something.
So the decision is learned from the **train** split, not set by hand. For each answer the RAG
system records five signals (:data:`FEATURES`):

- ``similarity``: cosine similarity of the best retrieved chunk to the question (retrieval's
  confidence that something relevant exists);
- ``sentence_similarity``: the same for the best single *sentence* of the sources shown
  (:func:`kit.prompts.best_sentence_similarity`): a chunk about the right topic without the
  asked-for fact scores high as a chunk and lower here. It also survives rewording, where
  ``coverage`` drops: the test questions are paraphrased, the train questions less so;
- ``coverage``: the share of the question's content words found in the sources shown
  (:func:`kit.prompts.keyword_overlap`): "the price of the S3" over sources that only
  mention the S2 leaves "s3" uncovered;
- ``idk_logprob``: how likely the generator finds the reply "I don't know" to this prompt
  (mean log-probability per token, :func:`kit.generate.reply_logprobs`): the model's own doubt;
- ``support``: the share of the answer's words found in the sources it was shown
  (:func:`kit.attribution.support`): an answer made of words the sources do not contain is
  likely made up.

A scikit-learn logistic regression turns the signals into a probability that the question is
unanswerable (fit by log-loss, so its probabilities are calibrated). The threshold is chosen on
cross-validated probabilities of the train split: the one that answers most questions right
while wrongly declining at most ``max_false_decline`` of the answerable ones. The curve of that
choice (threshold vs correct / wrongly declined / unanswerable declined) is shown to the learner
(:func:`plot_curve`). Build it with :func:`fit_abstainer`; use it with
``build_rag(..., abstainer=...)``.

A cheaper variant, :func:`fit_gate`, reads the three retrieval signals only
(:data:`RETRIEVAL_FEATURES`): it needs no generated answers to learn from (its threshold
declines the most unanswerable train questions within the same cap), so the comparison grid
can fit one in seconds and give it to every system that retrieves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kit import stats
from kit.citations import is_abstention
from kit.data import MIN_PER_CLASS, QARecord  # MIN_PER_CLASS: each kind a decision needs
from kit.evaluate import eval_records, is_correct, score_answers
from kit.generate import Answer
from kit.rag import RAG, RETRIEVAL_SIGNALS, SIGNALS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


FEATURES: tuple[str, ...] = SIGNALS
"""The signals the decision is learned from (see the module docstring)."""

RETRIEVAL_FEATURES: tuple[str, ...] = RETRIEVAL_SIGNALS
"""The first three: measured from retrieval alone, before anything is generated. A decision on
these (:func:`fit_gate`) learns from the train split's labels without generating an answer,
and the same one serves every RAG with the same embedder and retrieval settings."""
# Tried, not kept (2026-12): word-rarity signals (coverage weighted by IDF over the index's
# chunks, the best single source's weighted coverage, the IDF of the rarest missing word) next
# to these three. Cross-validated on the 128 train questions (20 fold seeds) the gate declined
# 69% of the unanswerable instead of 55%, wrongly declining 8% of the answerable. On the test
# split (cpu profile, fast-kind CPU, float32) it declined the same 5 of 9 unanswerable and
# wrongly declined 8 of 39 answerable, not 1: word-overlap signals do not survive the test
# questions' rewording (see ``sentence_similarity`` above). Nor does a narrower one (2026-12):
# the count of the question's names and numbers ("Aarhus", "6.0", "S3") missing from the sources
# shown. Train: missing for 45% of unanswerable, 8% of answerable questions; test: 25% and 10%.
# The gate with it declined 7 of the grid's 9 unanswerable test questions, and 9 of 39
# answerable ones wrongly (without: 5 and 1).

GATE_SIGNALS_TEXT = (
    "the best source's similarity to the question, its best sentence's, and the share of the "
    "question's words the sources hold"
)
"""The gate's three signals in words, as the reports say them."""

MAX_FALSE_DECLINE = 0.10
"""Default cap on the share of answerable questions the decision may wrongly decline."""

NO_THRESHOLD_TEXT = (
    "no threshold declines an unanswerable one without declining over "
    f"{MAX_FALSE_DECLINE:.0%} of the answerable ones"
)
"""Why a decision that never declines (:attr:`Abstainer.declines_any` False) is not used."""


class TooFewQuestions(ValueError):
    """Raised when the train questions hold too few answerable or unanswerable ones (at least
    :data:`kit.data.MIN_PER_CLASS` of each, their signals measured) to learn a decision from:
    the one failure a caller may turn into "no learned decision" and go on."""


@dataclass
class Abstainer:
    """A learned "I don't know" decision: scaler + logistic regression, and a threshold.

    ``classifier`` maps its ``features`` (:data:`FEATURES`, or :data:`RETRIEVAL_FEATURES` for
    a gate) to P(unanswerable); an answer is declined when that probability is at least
    ``threshold``. ``curve`` holds, per threshold, what the decision
    would do on the train split (cross-validated): ``correct``, ``wrongly_declined`` (answerable
    questions declined) and ``unanswerable_declined``. ``trained_on``: the question ids;
    ``data``: the :func:`train_signals` (or :func:`gate_signals`) table it learned from.
    """

    classifier: Any
    threshold: float
    curve: pd.DataFrame
    trained_on: list[str] = field(default_factory=list)
    data: pd.DataFrame | None = None  # the train_signals / gate_signals table it learned from
    features: tuple[str, ...] = FEATURES

    @property
    def declines_any(self) -> bool:
        """False when no threshold kept the wrong declines under the cap: :func:`choose_threshold`
        then returns 1.0, and the decision never declines."""
        return self.threshold < 1.0

    def probability(self, signals: dict[str, float]) -> float:
        """P(unanswerable) for one answer's signals (missing signals raise KeyError)."""
        row = np.array([[signals[f] for f in self.features]], dtype=float)
        return float(self.classifier.predict_proba(row)[0, 1])

    def declines(self, signals: dict[str, float]) -> bool:
        """True when the answer should be replaced by "I don't know"."""
        return self.probability(signals) >= self.threshold

    @property
    def coefficients(self) -> dict[str, float]:
        """The logistic regression's weight per (standardised) feature: the sign says which way
        each signal pushes towards "I don't know"."""
        weights = self.classifier[-1].coef_[0]
        return {f: round(float(w), 3) for f, w in zip(self.features, weights, strict=True)}

    def __repr__(self) -> str:
        return (
            f"Abstainer(threshold={self.threshold:.2f}, coefficients={self.coefficients}, "
            f"trained_on={len(self.trained_on)} train questions)"
        )


def _classifier(seed: int) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, random_state=seed))


def decision_curve(
    probability: Sequence[float],
    unanswerable: Sequence[bool],
    correct: Sequence[float],
    already_declined: Sequence[bool],
    thresholds: Sequence[float] | None = None,
) -> pd.DataFrame:
    """What declining at each threshold would do: one row per threshold.

    In: per question P(unanswerable), whether it is unanswerable, whether the answer as given was
    correct, and whether it was declined anyway (the model said "I don't know", or retrieval
    found nothing). Out: columns threshold, correct, wrongly_declined, unanswerable_declined.
    """
    p = np.asarray(probability, dtype=float)
    unans = np.asarray(unanswerable, dtype=bool)
    right = np.asarray(correct, dtype=float)
    before = np.asarray(already_declined, dtype=bool)
    grid = np.round(np.arange(0.05, 1.0, 0.05), 2) if thresholds is None else thresholds
    rows = []
    for t in grid:
        declined = before | (p >= t)
        now_correct = np.where(unans, declined, right * ~declined)
        rows.append(
            {
                "threshold": float(t),
                "correct": float(now_correct.mean()),
                "wrongly_declined": float(declined[~unans].mean()) if (~unans).any() else math.nan,
                "unanswerable_declined": float(declined[unans].mean()) if unans.any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


def choose_threshold(curve: pd.DataFrame, max_false_decline: float = MAX_FALSE_DECLINE) -> float:
    """The threshold with the most correct answers among those that wrongly decline at most
    ``max_false_decline``; on a tie the higher one (it declines less). 1.0 if none qualifies.

    A curve without answers to score (``correct`` all NaN, :func:`fit_gate`) ranks by
    ``unanswerable_declined`` instead."""
    ok = curve[curve["wrongly_declined"] <= max_false_decline]
    if ok.empty:
        return 1.0
    goal = "unanswerable_declined" if ok["correct"].isna().all() else "correct"
    best = ok[ok[goal] == ok[goal].max()]
    return float(best["threshold"].max())


def train_signals(
    rag: RAG, records: Sequence[QARecord] | None = None, limit: int | None = None
) -> pd.DataFrame:
    """``rag``'s answers to train questions, as what an abstainer learns from.

    In: a RAG system (any abstainer it has is not applied), train records (default: ``limit``
    questions of the train split, ``None``/0 = all, type mix kept). Out: one row per question:
    id, the :data:`FEATURES` (NaN when retrieval declined before the model), ``unanswerable``,
    ``correct`` (the answer as given) and ``declined`` (it said "I don't know" anyway). Records
    of the test split raise ValueError: the test split is for the final comparison only.
    """
    chosen = _train_records(rag, records, limit)
    answers = rag.answer_batch([r.question for r in chosen], signals=True, abstain=False)
    scores = score_answers(chosen, answers)
    correct, declined = scores["correct"].to_numpy(), scores["abstained"].to_numpy().astype(bool)
    return _signal_table(chosen, [a.signals for a in answers], FEATURES, correct, declined)


def _train_records(
    rag: RAG, records: Sequence[QARecord] | None, limit: int | None
) -> list[QARecord]:
    """``records`` (default: ``limit`` train questions, type mix kept) to fit a decision for
    ``rag`` on. ValueError for test records, and for a bm25 RAG (no dense similarity)."""
    if rag.mode == "bm25":
        raise ValueError(
            "The decision reads the dense similarity of the sources, which bm25 retrieval does "
            "not measure: fit it on a RAG with mode='hybrid' (or 'dense')."
        )
    chosen = eval_records("train", limit or None, records)
    if any(r.split == "test" for r in chosen):
        raise ValueError("Fit the abstainer on train questions: the test split is for the verdict.")
    return chosen


def gate_signals(
    rag: RAG, records: Sequence[QARecord] | None = None, limit: int | None = None
) -> pd.DataFrame:
    """The :data:`RETRIEVAL_FEATURES` of train questions, from retrieval alone (no answers).

    In and out as :func:`train_signals`, except that ``correct`` is NaN (nothing is generated)
    and ``declined`` marks the questions retrieval declines before any model.
    """
    chosen = _train_records(rag, records, limit)
    measured = [rag.retrieval_signals(r.question) for r in chosen]
    declined = [m is None for m in measured]
    return _signal_table(chosen, measured, RETRIEVAL_FEATURES, math.nan, declined)


def _signal_table(
    chosen: Sequence[QARecord],
    measured: Sequence[dict[str, float] | None],
    features: Sequence[str],
    correct: Any,
    declined: Any,
) -> pd.DataFrame:
    """One row per question: id, ``features`` (NaN where not measured), unanswerable, and the
    given ``correct`` and ``declined`` columns."""
    table = pd.DataFrame([{f: (m or {}).get(f, math.nan) for f in features} for m in measured])
    table.insert(0, "id", [r.id for r in chosen])
    table["unanswerable"] = [not r.answerable for r in chosen]
    table["correct"] = correct
    table["declined"] = declined
    return table


def learn_abstainer(
    table: pd.DataFrame,
    max_false_decline: float = MAX_FALSE_DECLINE,
    seed: int = 0,
    features: Sequence[str] = FEATURES,
) -> Abstainer:
    """Fit the decision on a :func:`train_signals` (or :func:`gate_signals`) table, reading
    ``features``; the same table gives the same abstainer.

    The threshold is chosen on cross-validated probabilities (fixed, stratified folds), then the
    classifier is refit on every row that reached the model.
    """
    features = tuple(features)
    missing = sorted(set(features) - set(table.columns))
    if missing:
        raise ValueError(f"The table has no column(s) {missing}: measure them first.")
    unans = table["unanswerable"].to_numpy(dtype=bool)
    usable = table[list(features)].notna().all(axis=1).to_numpy()
    if min(unans[usable].sum(), (~unans[usable]).sum()) < MIN_PER_CLASS:
        raise TooFewQuestions(
            f"Too few train questions to learn from: need at least {MIN_PER_CLASS} answerable "
            f"and {MIN_PER_CLASS} unanswerable ones whose signals were measured (not declined "
            "by retrieval already); pass more records (or limit=0)."
        )
    x, y = table[list(features)].to_numpy()[usable], unans[usable].astype(int)
    n_splits = min(5, int(y.sum()), int(len(y) - y.sum()))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # rows without every signal: retrieval declined them (decision_curve counts them as
    # declined), or the RAG keeps the answer as it cannot decide (kit.rag.RAG._decide)
    p = np.zeros(len(table))
    p[usable] = cross_val_predict(_classifier(seed), x, y, cv=folds, method="predict_proba")[:, 1]
    curve = decision_curve(p, unans, table["correct"], table["declined"])
    classifier = _classifier(seed).fit(x, y)
    threshold = choose_threshold(curve, max_false_decline)
    return Abstainer(classifier, threshold, curve, list(table["id"]), table, features)


def fit_abstainer(
    rag: RAG,
    records: Sequence[QARecord] | None = None,
    limit: int | None = None,
    max_false_decline: float = MAX_FALSE_DECLINE,
    seed: int = 0,
) -> Abstainer:
    """Learn when ``rag`` should say "I don't know", from its own answers to train questions:
    :func:`train_signals` then :func:`learn_abstainer` (see them for the arguments).

    The same inputs give the same abstainer: greedy answers, fixed cross-validation folds.
    """
    return learn_abstainer(train_signals(rag, records, limit), max_false_decline, seed)


def fit_gate(
    rag: RAG,
    records: Sequence[QARecord] | None = None,
    limit: int | None = None,
    max_false_decline: float = MAX_FALSE_DECLINE,
    seed: int = 0,
) -> Abstainer:
    """Learn when to say "I don't know" from retrieval alone: :func:`gate_signals` then
    :func:`learn_abstainer` on :data:`RETRIEVAL_FEATURES`. Nothing is generated, so it takes
    seconds; the threshold declines the most unanswerable train questions while wrongly
    declining at most ``max_false_decline`` of the answerable ones. Its ``curve``'s
    ``correct`` column is NaN (no answers to score). Give it to a RAG with the same embedder
    and retrieval settings: ``build_rag(index, abstainer=gate)``; it reads retrieval only,
    so it fits any generator (the comparison gives it to every RAG, on every index)."""
    table = gate_signals(rag, records, limit)
    return learn_abstainer(table, max_false_decline, seed, RETRIEVAL_FEATURES)


def decision_table(records: Sequence[QARecord], answers: Sequence[Answer]) -> pd.DataFrame:
    """What a learned decision did to one system's answers: one row per question.

    In: the questions and the system's answers (same order), made by a RAG with an abstainer.
    Out: system, id, unanswerable, who declined (at most one is True): ``by_retrieval``
    (nothing relevant found, the model never asked), ``by_model`` (the model said "I don't
    know" itself), ``by_decision`` (the decision replaced its reply, kept in
    ``Answer.withheld``); ``correct_without`` / ``correct`` (the grid's correct before and
    after the decision) and ``p_unanswerable`` (NaN where the decision was not applied).
    """
    if len(records) != len(answers):
        raise ValueError(f"{len(records)} questions but {len(answers)} answers")
    rows = []
    for rec, ans in zip(records, answers, strict=True):
        if ans.question and ans.question != rec.question:
            raise ValueError(f"answer to {ans.question!r} is paired with question {rec.id}")
        reply = ans.withheld or ans.text
        by_retrieval = not (ans.signals or ans.withheld) and is_abstention(ans.text)
        rows.append(
            {
                "system": ans.system,
                "id": rec.id,
                "unanswerable": not rec.answerable,
                "by_retrieval": by_retrieval,
                "by_model": is_abstention(reply) and not by_retrieval,
                "by_decision": bool(ans.withheld),
                "correct_without": float(is_correct(rec, reply)),
                "correct": float(is_correct(rec, ans.text)),
                "p_unanswerable": ans.signals.get("p_unanswerable", math.nan),
            }
        )
    return pd.DataFrame(rows)


SUMMARY_COLUMNS = (
    "system",
    "unanswerable declined",
    "answerable wrongly declined",
    "declined by the decision",
    "correct without",
    "correct with",
    "with vs without",
)


def decision_summary(table: pd.DataFrame | None) -> pd.DataFrame:
    """A :func:`decision_table` per system (:data:`SUMMARY_COLUMNS`): unanswerable questions
    declined and answerable ones wrongly declined, whoever declined (each "k of n" with its
    Wilson interval); how many replies the decision replaced; correct without and with the
    decision, and the paired comparison of the two in one sentence. No table: no rows."""
    if table is None or table.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    rows = [
        _summary_row(str(system), group) for system, group in table.groupby("system", sort=False)
    ]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _summary_row(system: str, group: pd.DataFrame) -> dict[str, str]:
    """One system's row of :func:`decision_summary`."""
    declined = group["by_retrieval"] | group["by_model"] | group["by_decision"]
    unans = group["unanswerable"].astype(bool)
    change = stats.paired_difference(
        group["correct"], group["correct_without"], f"{system} with it", "without", "correct"
    )
    return {
        "system": system,
        "unanswerable declined": _share(declined[unans]),
        "answerable wrongly declined": _share(declined[~unans]),
        "declined by the decision": f"{int(group['by_decision'].sum())} of {len(group)}",
        "correct without": stats.interval(group["correct_without"].tolist()).format(),
        "correct with": stats.interval(group["correct"].tolist()).format(),
        "with vs without": change.sentence(),
    }


def _share(flags: pd.Series) -> str:
    """``"5 of 9 (0.56 [0.27, 0.81])"``; "–" for no questions."""
    if flags.empty:
        return "–"
    return f"{int(flags.sum())} of {len(flags)} ({stats.interval(flags.astype(float).tolist())})"


def plot_curve(abstainer: Abstainer, title: str = 'When to say "I don\'t know"') -> Figure:
    """The decision curve on the train split: correct, wrongly declined and unanswerable declined
    against the threshold, with the chosen threshold marked."""
    import matplotlib.pyplot as plt  # heavy: matplotlib loads only to draw

    fig, ax = plt.subplots(figsize=(7, 3.6))
    curve = abstainer.curve
    for column, label in (
        ("correct", "answered correctly (all questions)"),
        ("unanswerable_declined", "unanswerable questions declined"),
        ("wrongly_declined", "answerable questions wrongly declined"),
    ):
        if curve[column].isna().all():  # a gate (fit_gate) generates no answers to score
            continue
        ax.plot(curve["threshold"], curve[column], marker=".", label=label)
    ax.axvline(abstainer.threshold, color="grey", linestyle="--", label="chosen threshold")
    ax.set_xlabel("decline when P(unanswerable) >= threshold (cross-validated on train)")
    ax.set_ylabel("share of questions")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
