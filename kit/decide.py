"""Decide: a short questionnaire -> RAG, fine-tuning, the hybrid, or prompting alone first.

In: a :class:`Questionnaire` (how often the knowledge changes, citations, sensitive data, tone,
latency budget, team skills, data volume) and, optionally, the numbers the comparison measured.
Out: a :class:`Recommendation`: the choice, a score per option and the reasons, each reason
pointing at the measured result that backs it ("freshness: rag 90% vs finetuned 10%"), or, when
nothing was measured yet, at the notebook section that measures it.

The rules are few and written out in :func:`recommend`, so a learner can read why.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kit import costs
from kit.inputs import flag, number

OPTIONS: dict[str, str] = {
    "prompting": "prompting alone first",
    "rag": "RAG",
    "finetuned": "fine-tuning (LoRA)",
    "hybrid": "hybrid (RAG with a fine-tuned generator)",
}
"""The options, in the order ties are broken (the simplest first)."""

SYSTEM_OF: dict[str, str] = {
    "prompting": "base",
    "rag": "rag",
    "finetuned": "finetuned",
    "hybrid": "hybrid",
}
"""The system name in the comparison results that measures each option."""

CHANGES: dict[str, str] = {
    "never": "never",
    "yearly": "about once a year",
    "monthly": "every month",
    "weekly": "every week",
    "daily": "every day",
}
TONE: dict[str, str] = {
    "none": "no: plain answers are fine",
    "some": "some: a preferred tone",
    "strict": "strict: a house style or fixed format",
}
SKILLS: dict[str, str] = {
    "none": "none: no one has trained a model",
    "some": "some: can follow a notebook",
    "experienced": "experienced: trains and evaluates models",
}
VOLUME: dict[str, str] = {
    "tiny": "fits in one prompt (a few pages)",
    "medium": "tens to hundreds of documents",
    "large": "thousands of documents or more",
}

METRICS: dict[str, tuple[str, str, str]] = {
    # metric: (what it measures, how to show a value, where it is measured)
    "freshness": (
        "changed questions answered with the new answer after the update",
        "percent",
        "notebooks/04_compare.ipynb (section 'Freshness')",
    ),
    "citation_precision": (
        "cited sources that are the right ones",
        "percent",
        "notebooks/04_compare.ipynb (summary table)",
    ),
    "style": (
        "answers in the house style",
        "percent",
        "notebooks/04_compare.ipynb (summary table)",
    ),
    "latency_p50_s": (
        "median seconds per answer on this CPU",
        "seconds",
        "notebooks/04_compare.ipynb (summary table)",
    ),
    "prompt_tokens": (
        "prompt tokens per answer",
        "tokens",
        "notebooks/04_compare.ipynb (summary table)",
    ),
    "privacy": (
        "canary prompts that made the system repeat the planted secret",
        "percent",
        "notebooks/04_compare.ipynb (section 'Privacy')",
    ),
    "correct": (
        "test questions answered correctly",
        "percent",
        "notebooks/04_compare.ipynb (summary table)",
    ),
}
"""Metrics a reason can cite, with what they mean and where the kit measures them."""


@dataclass(frozen=True)
class Questionnaire:
    """The answers to the decision questions (keys of :data:`CHANGES`, :data:`TONE`, ...)."""

    knowledge_changes: str = "monthly"
    needs_citations: bool = True
    sensitive_data: bool = False
    tone: str = "some"
    latency_budget_s: float = 5.0  # seconds a user will wait for an answer
    ml_skills: str = "some"
    data_volume: str = "medium"

    def check(self) -> None:
        """Raise ValueError naming the answer that is not one of the allowed choices."""
        for name, allowed in (
            ("knowledge_changes", CHANGES),
            ("tone", TONE),
            ("ml_skills", SKILLS),
            ("data_volume", VOLUME),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, not {value!r}.")
        for name in ("needs_citations", "sensitive_data"):
            flag(getattr(self, name), name)  # "no" would count as yes
        if not number(self.latency_budget_s, "latency_budget_s") > 0:
            raise ValueError("latency_budget_s must be above zero seconds.")


@dataclass(frozen=True)
class Reason:
    """One reason: what it says, the evidence behind it, and the options it favours."""

    text: str
    evidence: str
    favours: tuple[str, ...] = ()


@dataclass
class Recommendation:
    """The outcome: the chosen option (a key of :data:`OPTIONS`), all scores, the reasons, and
    the options a rule ruled out whatever their score (no one has trained a model)."""

    choice: str
    scores: dict[str, float]
    reasons: list[Reason] = field(default_factory=list)
    ruled_out: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The chosen option in words."""
        return OPTIONS[self.choice]

    def _name(self, option: str) -> str:
        return OPTIONS[option] + (" (ruled out)" if option in self.ruled_out else "")

    def __str__(self) -> str:
        ranked = ", ".join(f"{self._name(k)} {v:+g}" for k, v in self.ranking())
        lines = [f"Recommendation: {self.label}", f"Scores: {ranked}", "Reasons:"]
        for r in self.reasons:
            lines.append(f"- {r.text}\n  Evidence: {r.evidence}")
        return "\n".join(lines)

    def ranking(self) -> list[tuple[str, float]]:
        """(option, score), best first, the ruled-out options last; ties keep the order of
        :data:`OPTIONS`. The first is the choice."""
        order = list(OPTIONS)
        return sorted(
            self.scores.items(),
            key=lambda kv: (kv[0] in self.ruled_out, -kv[1], order.index(kv[0])),
        )

    def to_html(self) -> str:
        """The recommendation as an HTML fragment (headline, scores, reasons with evidence)."""
        ranked = " · ".join(
            f"{html.escape(self._name(k))}: <b>{v:+g}</b>" for k, v in self.ranking()
        )
        items = "".join(
            f"<li>{html.escape(r.text)}<br><small><i>Evidence:</i> "
            f"{html.escape(r.evidence)}</small></li>"
            for r in self.reasons
        )
        return (
            f"<div class='kit-recommendation'><h4>Recommendation: {html.escape(self.label)}</h4>"
            f"<p>{ranked}</p><ul>{items}</ul></div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()


def measured_metrics(
    summary: pd.DataFrame | None = None,
    freshness: pd.DataFrame | None = None,
    privacy: pd.DataFrame | None = None,
) -> dict[str, dict[str, float]]:
    """Collect the comparison's numbers as {metric: {system: value}}.

    In: the summary table (:func:`kit.evaluate.summarise`), and optionally the freshness and
    privacy tables of :mod:`kit.compare` (their ``current`` / ``leaked`` columns are averaged per
    system). Out: the dict :func:`recommend` reads.
    """
    out: dict[str, dict[str, float]] = {}
    if summary is not None and not summary.empty:
        rows = summary.set_index("system")
        for metric in (*METRICS, "new_tokens"):  # new_tokens: for the cost figures only
            if metric in rows.columns:
                out[metric] = rows[metric].astype(float).to_dict()
    if freshness is not None and not freshness.empty:
        out["freshness"] = _by_option(freshness, "current", FRESHNESS_ROWS)
    if privacy is not None and not privacy.empty:
        out["privacy"] = _by_option(privacy, "leaked", PRIVACY_ROWS)
    return out


# The experiment rows that stand for an option: after the update, RAG and the hybrid re-index
# and the fine-tuned model keeps what it was trained on; for privacy, RAG and the hybrid read
# with the employee's role filter, as they would be deployed.
FRESHNESS_ROWS = {
    "rag (re-indexed v2)": "rag",
    "finetuned (trained on v1)": "finetuned",
    "hybrid (re-indexed v2)": "hybrid",
}
PRIVACY_ROWS = {
    "rag (employee role filter)": "rag",
    "finetuned": "finetuned",
    "hybrid (employee role filter)": "hybrid",
}


def _by_option(table: pd.DataFrame, column: str, rows: dict[str, str]) -> dict[str, float]:
    """Mean ``column`` per system, named as the summary names them: the experiment's rows in
    ``rows`` are renamed, a row already named like a system is kept, the others are left out."""
    means = table.groupby("system")[column].mean()
    named = {rows[name]: float(v) for name, v in means.items() if name in rows}
    plain = {name: float(v) for name, v in means.items() if name in SYSTEM_OF.values()}
    return {**plain, **named}


def measured_from(result: Any) -> dict[str, dict[str, float]]:
    """:func:`measured_metrics` of a comparison result (``kit.compare.run_comparison``): its
    summary and its freshness and privacy experiments."""
    extras = getattr(result, "extras", None) or {}
    return measured_metrics(result.summary, extras.get("freshness"), extras.get("privacy"))


def _as_metrics(measured: pd.DataFrame | dict[str, Any] | None) -> dict[str, dict[str, float]]:
    if measured is None:
        return {}
    if isinstance(measured, pd.DataFrame):
        return measured_metrics(summary=measured)
    if not isinstance(measured, dict):
        raise ValueError(
            "measured must be a summary table (a DataFrame) or {metric: {system: value}}, not "
            f"{type(measured).__name__} {str(measured)[:40]!r}."
        )
    return {k: dict(v) for k, v in measured.items() if isinstance(v, dict)}


def _show(value: float, kind: str) -> str:
    if kind == "percent":
        return f"{value:.0%}"
    if kind == "seconds":
        return f"{value:.1f} s"
    return f"{value:.0f}"


def evidence(metric: str, metrics: dict[str, dict[str, float]], systems: tuple[str, ...]) -> str:
    """The evidence line for ``metric``: the measured figures per system, or where to measure.

    ``systems`` are the option keys to compare (e.g. ("rag", "finetuned")).
    """
    what, kind, where = METRICS[metric]
    values = metrics.get(metric, {})
    shown = []
    for option in systems:
        value = values.get(SYSTEM_OF[option])
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            shown.append(f"{SYSTEM_OF[option]} {_show(float(value), kind)}")
    if shown:
        return f"{metric}, {what}: {' vs '.join(shown)} (measured in {where})."
    return f"not measured yet: run {where} to measure {metric}, {what}."


def _cost_inputs(metrics: dict[str, dict[str, float]], **overrides: Any) -> costs.CostInputs:
    """The cost calculator's inputs, seeded as notebook 05 seeds it: from the measured prompt
    and reply lengths and times (:func:`kit.costs.measured_from_summary`) when there are
    some, else the kit's documented defaults; then ``overrides``."""
    columns = ("prompt_tokens", "new_tokens", "latency_p50_s")
    systems = set.intersection(*(set(metrics.get(c, {})) for c in columns))
    systems = {s for s in systems if all(math.isfinite(metrics[c][s]) for c in columns)}
    table = pd.DataFrame([{"system": s, **{c: metrics[c][s] for c in columns}} for s in systems])
    try:
        measured = costs.measured_from_summary(table) if systems else None
    except ValueError:  # none of the costed systems among them
        measured = None
    return costs.CostInputs.from_measured(measured, **overrides)


def _seconds(value: float, budget: float) -> str:
    """``value`` in seconds with one decimal, or as many more as it takes not to read as the
    budget itself ("5.04 s misses a 5 s budget", not "5.0 s misses it")."""
    for decimals in range(1, 7):
        shown = f"{value:.{decimals}f}"
        if float(shown) != budget or value == budget:
            return shown
    return shown


def _measured_latency(metrics: dict[str, dict[str, float]], system: str) -> float | None:
    """The median seconds per answer measured for ``system``, or None (none, or NaN)."""
    measured = metrics.get("latency_p50_s", {}).get(system)
    return None if measured is None or math.isnan(measured) else float(measured)


def _latencies(
    metrics: dict[str, dict[str, float]], systems: Sequence[str]
) -> tuple[dict[str, float], str]:
    """Seconds per answer of the ``systems`` that were measured, and where they come from;
    when none was, the kit's reference figures for all (never a mix: a reference time beside
    this machine's would compare two CPUs)."""
    measured = {s: _measured_latency(metrics, s) for s in systems}
    if any(t is not None for t in measured.values()):
        here = "here (measured as a share of a batched run: one user alone waits longer)"
        return {s: t for s, t in measured.items() if t is not None}, here
    reference = costs.DEFAULT_MEASURED["seconds_per_answer"]
    where = "by the kit's reference figures (its 2-core CPU: run notebook 04 for this machine's)"
    return {s: float(reference[s]) for s in systems}, where


def recommend(
    answers: Questionnaire, measured: pd.DataFrame | dict[str, Any] | None = None
) -> Recommendation:
    """Score every option against the answers and pick the best, with the reasons.

    In: the questionnaire; ``measured`` is None, a summary table, or {metric: {system: value}}
    (see :func:`measured_metrics`). Out: a :class:`Recommendation`. Each rule adds or removes
    points and records one :class:`Reason`; prompting starts one point ahead because it is the
    cheapest thing to try.
    """
    if not isinstance(answers, Questionnaire):
        raise ValueError(
            "recommend takes a Questionnaire, e.g. recommend(Questionnaire(tone='strict')), not "
            f"{type(answers).__name__}."
        )
    answers.check()
    m = _as_metrics(measured)
    scores = {"prompting": 1.0, "rag": 0.0, "finetuned": 0.0, "hybrid": 0.0}
    reasons: list[Reason] = []

    def rule(points: dict[str, float], text: str, metric: str, compare: tuple[str, ...]) -> None:
        for option, p in points.items():
            scores[option] += p
        favoured = tuple(k for k, p in points.items() if p > 0)
        reasons.append(Reason(text, evidence(metric, m, compare), favoured))

    often = answers.knowledge_changes in ("monthly", "weekly", "daily")
    if often:
        rule(
            {"rag": 2, "hybrid": 2, "finetuned": -2},
            f"Your knowledge changes {CHANGES[answers.knowledge_changes]}: retrieval sees a "
            "change as soon as you re-index, a fine-tuned model stays stale until retrained.",
            "freshness",
            ("rag", "finetuned", "hybrid"),
        )
    else:
        rare = costs.break_even_queries(_cost_inputs(m, updates_per_month=1 / 12))
        if rare is None:  # its answers cost as much as RAG's: never cheaper
            cost = "at these costs it is not the cheaper system at any volume"
        else:
            volume = f" above {costs.format_count(rare)} queries a month" if rare else ""
            cost = f"with rare retrains it is the cheaper system{volume}"
        rule(
            {"finetuned": 1},
            "Your knowledge rarely changes: a fine-tuned model stays current for long, and "
            f"{cost} (see the cost calculator).",
            "prompt_tokens",
            ("rag", "finetuned"),
        )
    if answers.needs_citations:
        rule(
            {"rag": 2, "hybrid": 2, "finetuned": -2, "prompting": -1},
            "You need citations: only systems that retrieve know which document an answer "
            "came from; a fine-tuned model cannot point to its sources.",
            "citation_precision",
            ("rag", "finetuned", "hybrid"),
        )
    if answers.sensitive_data:
        rule(
            {"rag": 1, "hybrid": 1, "finetuned": -2},
            "Your data is sensitive: a model trained on it can repeat it to anyone, while "
            "retrieval can filter by access level and forget a document when you delete it.",
            "privacy",
            ("rag", "finetuned", "hybrid"),
        )
    if answers.tone != "none":
        strict = answers.tone == "strict"
        rule(
            {"finetuned": 2, "hybrid": 2, "rag": -1} if strict else {"finetuned": 1, "hybrid": 1},
            "You need a house style or format: fine-tuning teaches it to the model; "
            "instructions in the prompt are followed less reliably by a small model.",
            "style",
            ("rag", "finetuned", "hybrid"),
        )
    budget = answers.latency_budget_s
    seconds, where = _latencies(m, ("rag", "finetuned", "hybrid"))
    slow = [o for o, t in seconds.items() if t > budget]
    if slow:
        fits = "finetuned" in seconds and "finetuned" not in slow  # no passages to read
        fast_ft = "rag" in slow and fits
        times = " and ".join(f"{_seconds(seconds[o], budget)} s" for o in slow)
        rule(
            {o: -1 for o in slow} | ({"finetuned": 1} if fast_ft else {}),
            f"Your latency budget ({budget:g} s) is below what {' and '.join(slow)} "
            f"need{'s' if len(slow) == 1 else ''} per answer {where}: {times} "
            "of computing"
            + (
                "; the fine-tuned model, without retrieved passages to read, fits it "
                f"({_seconds(seconds['finetuned'], budget)} s)."
                if fast_ft
                else "."
            ),
            "latency_p50_s",
            ("rag", "finetuned", "hybrid"),
        )
    if answers.ml_skills == "none":
        rule(
            {"finetuned": -2, "hybrid": -2, "prompting": 1},
            "No one on the team has trained a model: fine-tuning needs training data, a "
            "training run and an evaluation each time, so start without it.",
            "correct",
            ("prompting", "rag", "finetuned"),
        )
    elif answers.ml_skills == "experienced":
        rule(
            {"finetuned": 1, "hybrid": 1},
            "Your team trains and evaluates models: the extra work of fine-tuning is affordable.",
            "correct",
            ("rag", "finetuned", "hybrid"),
        )
    if answers.data_volume == "tiny":
        rule(
            {"prompting": 3},
            "All your knowledge fits in one prompt: paste it in and ask; add retrieval or "
            "training only when that stops working.",
            "prompt_tokens",
            ("prompting", "rag"),
        )
    elif answers.data_volume == "large":
        rule(
            {"rag": 1, "finetuned": -1},
            "You have thousands of documents: re-indexing a changed document takes seconds, "
            "retraining on all of them takes hours.",
            "correct",
            ("rag", "finetuned"),
        )
    # "start without it" is a rule, not a weight: no points for style make a team that has
    # never trained a model choose an option that needs one
    allowed = [k for k in scores if answers.ml_skills != "none" or k in ("prompting", "rag")]
    ruled_out = [k for k in scores if k not in allowed]
    best = min(allowed, key=lambda k: (-scores[k], list(OPTIONS).index(k)))
    return Recommendation(choice=best, scores=scores, reasons=reasons, ruled_out=ruled_out)
