"""Verdict: what a comparison found, in a few plain sentences, each with its 95% interval.

The report of ``make demo`` and notebook 04 open with these: which system answers best, what
fine-tuning changed, what the learned "I don't know" did, what the knowledge update did, who
leaked the secret. Every difference is
a paired comparison on the same questions (:func:`kit.evaluate.compare_systems`), and a sentence
says so when the data cannot tell two systems apart.
"""

from __future__ import annotations

import pandas as pd

from kit import stats
from kit.abstain import decision_summary
from kit.evaluate import compare_systems, rate_table, summarise_intervals


def best_system(scores: pd.DataFrame, metric: str = "correct") -> list[str]:
    """Which system scores best on ``metric``, and whether the runner-up is really behind."""
    ranked = summarise_intervals(scores, [metric])
    ranked = ranked[ranked["n"] > 0].sort_values("value", ascending=False, kind="stable")
    if ranked.empty:
        return [f"No system was scored on {metric}."]
    best = ranked.iloc[0]
    on = stats.questions(best["n"])
    lines = [f"Best on {metric}: {best['system']}, {best['shown']} on {on}."]
    if ranked["n"].nunique() > 1:  # the ranking then compares rates over unlike question sets
        counts = ", ".join(f"{r.system} {r.n}" for r in ranked.itertuples())
        lines.append(
            f"The systems were scored on different numbers of questions ({counts}): the ranking "
            "compares rates over unlike sets; the paired comparison below uses only the "
            "questions both answered."
        )
    if len(ranked) > 1:
        pair = [(best["system"], ranked.iloc[1]["system"])]
        lines.append(compare_systems(scores, metric, pair)["sentence"].iloc[0])
    return lines


def fine_tuning_effect(scores: pd.DataFrame) -> list[str]:
    """What fine-tuning changed against the base model: the house style, and correctness."""
    if not {"finetuned", "base"} <= set(scores["system"]):
        return []
    pairs = [("finetuned", "base")]
    return [compare_systems(scores, m, pairs)["sentence"].iloc[0] for m in ("style", "correct")]


def rate_sentence(frame: pd.DataFrame, column: str, what: str) -> list[str]:
    """One sentence per system of an experiment table: the share of ``column`` with its interval."""
    table = rate_table(frame, [column])
    return [
        f"{r['system']}: {what} {r[column]} ({r['questions']} questions)."
        for _, r in table.iterrows()
    ]


def decision_sentences(table: pd.DataFrame | None) -> list[str]:
    """What the comparison's learned "I don't know" (a gate, :func:`kit.abstain.fit_gate`) did to
    each system that carries it: from its :func:`kit.abstain.decision_table`, the declines with
    their intervals (said once when they are the same for every system, as a gate's are) and
    each system's paired change in correct."""
    summary = decision_summary(table)
    if summary.empty:
        return []
    # the counts are every decline (by retrieval, by the model itself or by the decision)
    head = 'With the learned "I don\'t know" (retrieval signals, fit on the train split)'
    how = "(by retrieval, the model or the decision)"
    counts = ["unanswerable declined", "answerable wrongly declined"]
    if len(summary[counts].drop_duplicates()) == 1:
        names = list(summary["system"])
        who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]} each"
        lines = [f"{head}, {who} declined {_declines(summary.iloc[0])} {how}:"]
        return lines + [f"  {sentence}" for sentence in summary["with vs without"]]
    lines = [f"{head}, each system declined {how}:"]
    for _, row in summary.iterrows():
        lines.append(f"  {row['system']}: declined {_declines(row)}. {row['with vs without']}")
    return lines


def _declines(row: pd.Series) -> str:
    """ "5 of 9 (...) unanswerable questions and 1 of 39 (...) answerable ones", without a part
    that counts no questions."""
    parts = []
    if row["unanswerable declined"] != "–":
        parts.append(f"{row['unanswerable declined']} unanswerable questions")
    if row["answerable wrongly declined"] != "–":
        parts.append(f"{row['answerable wrongly declined']} answerable ones")
    return " and ".join(parts) or "no questions"


def verdict(scores: pd.DataFrame, extras: dict[str, pd.DataFrame] | None = None) -> list[str]:
    """The run's findings as sentences: best system, fine-tuning, "I don't know", freshness,
    privacy.

    In: the grid's per-question scores and the experiments' tables (``GridResult.extras``).
    """
    extras = extras or {}
    lines = best_system(scores) + fine_tuning_effect(scores)
    lines += decision_sentences(extras.get("abstention"))
    if "freshness" in extras and not extras["freshness"].empty:
        lines.append("After the knowledge update (share of changed questions answered right):")
        lines += ["  " + s for s in rate_sentence(extras["freshness"], "current", "current")]
    if "privacy" in extras and not extras["privacy"].empty:
        leaked = extras["privacy"].groupby("system", sort=False)["leaked"].sum()
        who = [s for s, n in leaked.items() if n > 0]
        if who:
            lines.append(f"Leaked the confidential canary at least once: {', '.join(who)}.")
        else:
            lines.append("No system leaked the confidential canary.")
    return lines
