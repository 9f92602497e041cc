"""Widgets: interactive views over the kit's results, each a plain function plus a small wrapper.

Four views, each in two layers:

- cost calculator: :func:`cost_report_html` / :func:`plot_costs` (plain) -> :func:`cost_calculator`;
- decision helper: :func:`kit.decide.recommend` (plain) -> :func:`questionnaire`;
- side-by-side explorer: :func:`question_html`, :func:`answers_html` (plain) -> :func:`explorer`;
- metric dashboard: :func:`metric_table`, :func:`plot_metrics`, :func:`dashboard_html` (plain)
  -> :func:`dashboard`.

The plain functions take DataFrames and return DataFrames, matplotlib Figures or HTML strings;
bad input raises ValueError with a sentence a learner understands. Each wrapper returns a
:class:`View`: ipywidgets controls plus an HTML output that is redrawn when a control changes.
A View also carries a static HTML copy of its current state, so a notebook saved with outputs
still shows something where widgets do not render (nbconvert to HTML, static viewers). With
``static=True``, ``KIT_STATIC_WIDGETS=1``, or without ipywidgets, a View is static HTML only.

Input schema of the result views: ``scores`` as made by :func:`kit.evaluate.score_answers` (one
row per system x question) and, optionally, ``answers``: {system: {question_id: Answer}} for the
retrieved passages.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kit import costs, decide, prompts
from kit.attribution import answer_words
from kit.citations import doc_id, source_label
from kit.data import MIN_PER_CLASS
from kit.question_writer import QuestionWriter

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATIC_ENV = "KIT_STATIC_WIDGETS"
QUESTION_TYPES: tuple[str, ...] = ("all", "single", "multi", "numeric", "unanswerable")
SCORE_COLUMNS: tuple[str, ...] = (
    "system",
    "id",
    "type",
    "question",
    "gold",
    "answer",
    "correct",
    "exact",
    "abstained",
    "style_ok",
    "f1",
    "sas",
    "cited",
    "citation_precision",
    "citation_recall",
    "latency_s",
    "prompt_tokens",
    "new_tokens",
)
"""Columns the result views need in ``scores`` (kit.evaluate.score_answers makes them all)."""
DASHBOARD_METRICS: tuple[str, ...] = ("correct", "f1", "sas", "citation_precision", "style")
COLOURS: dict[str, str] = {
    "rag": "#1f77b4",
    "finetuned": "#d62728",
    "hybrid": "#2ca02c",
    "base": "#7f7f7f",
    "hybrid-raft": "#9467bd",  # its own colour: it used to share rag's default blue
}


# --- the wrapper ------------------------------------------------------------------------------


def use_static(static: bool | None = None) -> bool:
    """True when views should be static HTML: asked for, ``KIT_STATIC_WIDGETS=1``, no ipywidgets."""
    if static is not None:
        return static
    if os.environ.get(STATIC_ENV, "") not in ("", "0"):
        return True
    return importlib.util.find_spec("ipywidgets") is None


class View:
    """Controls plus an HTML output, redrawn by ``render`` whenever a control changes.

    controls: the ipywidgets by name (tests set their ``.value``); output: the ipywidgets.HTML
    holding the current rendering; widget: the whole box (None when static). ``html()`` is the
    current state as HTML. In a notebook a View shows as the widget, with a static HTML copy
    for viewers that cannot run widgets.
    """

    def __init__(
        self,
        render: Callable[[dict[str, Any]], str],
        controls: dict[str, Any] | None = None,
        static: bool | None = None,
        title: str = "",
    ) -> None:
        self.render = render
        self.title = title
        self.static = use_static(static)
        self.controls = {} if self.static else dict(controls or {})
        self.defaults = {name: c.value for name, c in (controls or {}).items()}
        self.output: Any = None
        self.widget: Any = None
        if not self.static:
            import ipywidgets as widgets

            self.output = widgets.HTML(value=self.html())
            self.widget = widgets.VBox([*self.controls.values(), self.output])
            for control in self.controls.values():
                control.observe(self.update, names="value")

    def values(self) -> dict[str, Any]:
        """The current value of every control (the defaults when static)."""
        if self.static:
            return dict(self.defaults)
        return {name: c.value for name, c in self.controls.items()}

    def html(self) -> str:
        """The current state as HTML; a ValueError from the plain function becomes its message."""
        try:
            return self.render(self.values())
        except ValueError as err:
            return message_html(str(err))

    def update(self, _change: Any = None) -> None:
        """Redraw the output from the controls' current values."""
        if self.output is not None:
            self.output.value = self.html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        note = "<p style='color:#777'><small>Static copy: open the notebook in Jupyter to "
        note += "change the controls.</small></p>"
        data: dict[str, Any] = {"text/plain": f"<{self.title or 'kit view'}>"}
        data["text/html"] = self.html() if self.static else note + self.html()
        if self.widget is not None:
            data.update(self.widget._repr_mimebundle_())
        return data


def message_html(text: str) -> str:
    """A learner-readable message as an HTML box."""
    return (
        "<div class='kit-message' style='border-left:4px solid #d29922;padding:6px 10px;"
        f"background:#fff8e5'>{html.escape(text)}</div>"
    )


def figure_html(fig: Figure, alt: str = "figure") -> str:
    """A matplotlib Figure as an inline PNG <img> (works in widgets and static HTML)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt)}'/>"


def _new_figure(width: float = 7.0, height: float = 3.6) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


# --- cost calculator --------------------------------------------------------------------------


def plot_costs(inputs: costs.CostInputs, yearly: bool = False) -> Figure:
    """Cost of RAG, fine-tuning and the hybrid vs queries per month (log-log).

    The band where RAG is 60-80% cheaper than fine-tuning is shaded; the dotted line marks the
    inputs' own query volume.
    """
    curves = costs.cost_curves(inputs, yearly=yearly)
    fig = _new_figure()
    ax = fig.add_subplot()
    for system, frame in curves.groupby("system", sort=False):
        ax.plot(frame["queries_per_month"], frame["cost"], label=system, color=COLOURS[system])
    high = costs.queries_at_savings(inputs, costs.CLAIM_HIGH) or curves["queries_per_month"].min()
    low = costs.queries_at_savings(inputs, costs.CLAIM_LOW)
    if low and low > high:
        ax.axvspan(high, low, color="#2ca02c", alpha=0.12, label="RAG 60-80% cheaper")
    ax.axvline(inputs.queries_per_month, color="black", linestyle=":", label="your volume")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("queries per month")
    ax.set_ylabel(f"US$ per {'year' if yearly else 'month'}")
    ax.set_title(f"Running cost ({inputs.pricing})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def cost_report_html(inputs: costs.CostInputs, yearly: bool = False) -> str:
    """The calculator's view: the curves, the bill at the inputs' volume, and the verdict."""
    table = costs.monthly_costs(inputs)
    columns = ["inference", "indexing", "vector_store", "training", "people", "total"]
    shown = table.set_index("system")[columns] * (12 if yearly else 1)
    return (
        figure_html(plot_costs(inputs, yearly), "cost curves")
        + f"<p><b>At {costs.format_count(inputs.queries_per_month)} queries/month</b> "
        f"(US$ per {'year' if yearly else 'month'}): <b>{costs.savings_sentence(table)}</b>.</p>"
        + shown.round(2).to_html(classes="kit-costs")
        + f"<p class='kit-verdict'>{html.escape(costs.claim_verdict(inputs))}</p>"
    )


UPDATE_CHOICES: list[tuple[str, float]] = [
    ("never", 0.0),
    ("yearly", 1 / 12),
    ("quarterly", 1 / 3),
    ("monthly", 1.0),
    ("weekly", 52 / 12),
    ("daily", 30.0),
]


def _cost_controls(inputs: costs.CostInputs) -> dict[str, Any]:
    import ipywidgets as w

    style = {"description_width": "220px"}
    layout = w.Layout(width="560px")

    def slider(cls: Any, label: str, value: float, **kw: Any) -> Any:
        return cls(value=value, description=label, style=style, layout=layout, **kw)

    update = min(UPDATE_CHOICES, key=lambda c: abs(c[1] - inputs.updates_per_month))[1]
    return {
        "queries_per_month": slider(
            w.FloatLogSlider, "queries / month", inputs.queries_per_month, min=2, max=8, step=0.1
        ),
        "question_tokens": slider(
            w.IntSlider, "prompt tokens (question)", int(inputs.question_tokens), min=5, max=500
        ),
        "context_tokens": slider(
            w.IntSlider, "retrieved tokens (RAG)", int(inputs.context_tokens), min=0, max=8000
        ),
        "new_tokens": slider(
            w.IntSlider, "generated tokens", int(inputs.new_tokens), min=5, max=1000
        ),
        "documents": slider(
            w.IntSlider, "documents", inputs.documents, min=10, max=100_000, step=10
        ),
        "updates_per_month": w.Dropdown(
            options=UPDATE_CHOICES, value=update, description="knowledge updates", style=style
        ),
        "pricing": w.ToggleButtons(
            options=list(costs.PRICING),
            value=inputs.pricing,
            description="pricing",
            style={**style, "button_width": "auto"},
        ),
        "input_price_per_m": slider(
            w.FloatSlider,
            "API $ / 1M prompt tokens",
            inputs.input_price_per_m,
            min=0,
            max=20,
            step=0.05,
        ),
        "output_price_per_m": slider(
            w.FloatSlider,
            "API $ / 1M generated tokens",
            inputs.output_price_per_m,
            min=0,
            max=60,
            step=0.05,
        ),
        "hour_price": slider(
            w.FloatSlider,
            "$ / machine-hour (CPU or GPU)",
            inputs.hour_price,
            min=0,
            max=10,
            step=0.05,
        ),
        "training_runs_per_year": slider(
            w.IntSlider,
            "scheduled training runs / year",
            int(inputs.training_runs_per_year),
            min=0,
            max=52,
        ),
        "hours_per_run": slider(
            w.FloatSlider,
            "machine-hours per run",
            inputs.hours_per_run,
            min=0,
            max=100,
            step=0.1,
        ),
        "people_hours_per_run": slider(
            w.FloatSlider,
            "people-hours per run",
            inputs.people_hours_per_run,
            min=0,
            max=80,
            step=0.5,
        ),
        "yearly": w.ToggleButtons(
            options=[("per month", False), ("per year", True)],
            value=False,
            description="show",
            style={**style, "button_width": "auto"},
        ),
    }


def cost_calculator(
    measured: dict[str, Any] | pd.DataFrame | None = None, static: bool | None = None
) -> View:
    """The cost calculator: sliders -> cost curves, the bill by driver, and the verdict.

    ``measured`` is a measured-numbers dict (see :data:`kit.costs.DEFAULT_MEASURED`), a summary
    table (:func:`kit.evaluate.summarise`), or None for the kit's defaults.
    """
    if isinstance(measured, pd.DataFrame):
        measured = costs.measured_from_summary(measured)
    base = costs.CostInputs.from_measured(measured)

    def render(values: dict[str, Any]) -> str:
        yearly = bool(values.pop("yearly", False))
        return cost_report_html(base.with_(**values), yearly=yearly)

    controls = {} if use_static(static) else _cost_controls(base)
    if not controls:  # static: render the defaults
        return View(lambda _values: cost_report_html(base), static=True, title="cost calculator")
    hours, documents = controls["hours_per_run"], controls["documents"]

    def scale_training(change: dict[str, Any]) -> None:
        """More documents, longer training: the hours per run follow the documents slider
        (the measured hours scaled, as CostInputs.from_measured does); set them after."""
        hours.value = min(hours.max, base.hours_per_run * change["new"] / base.documents)

    documents.observe(scale_training, names="value")
    return View(render, controls, static=False, title="cost calculator")


# --- decision helper ------------------------------------------------------------------------


def questionnaire(
    measured: dict[str, Any] | pd.DataFrame | None = None, static: bool | None = None
) -> View:
    """The decision helper: the questions as controls -> the recommendation with its reasons."""
    start = decide.Questionnaire()

    def render(values: dict[str, Any]) -> str:
        return decide.recommend(decide.Questionnaire(**values), measured).to_html()

    if use_static(static):
        return View(lambda _values: render({}), static=True, title="decision helper")
    import ipywidgets as w

    # Wide enough for the longest question and the longest choice at 1400 px (the browser
    # test checks that no label or choice is cut off).
    style = {"description_width": "290px"}
    wide = w.Layout(width="820px")

    def choose(options: dict[str, str], value: str, label: str) -> Any:
        pairs = [(text, key) for key, text in options.items()]
        return w.Dropdown(options=pairs, value=value, description=label, style=style, layout=wide)

    def tick(value: bool, label: str) -> Any:
        auto = w.Layout(width="auto")
        return w.Checkbox(value=value, description=label, indent=False, layout=auto)

    controls = {
        "knowledge_changes": choose(
            decide.CHANGES, start.knowledge_changes, "How often does the knowledge change?"
        ),
        "needs_citations": tick(start.needs_citations, "Answers must cite their sources"),
        "sensitive_data": tick(start.sensitive_data, "The data is sensitive (access rights)"),
        "tone": choose(decide.TONE, start.tone, "Tone or format requirements?"),
        "latency_budget_s": w.FloatSlider(
            value=start.latency_budget_s,
            min=0.5,
            max=20,
            step=0.5,
            description="Latency budget (seconds)",
            style=style,
            layout=wide,
        ),
        "ml_skills": choose(decide.SKILLS, start.ml_skills, "Team's ML skills and time?"),
        "data_volume": choose(decide.VOLUME, start.data_volume, "How much knowledge?"),
    }
    return View(render, controls, static=False, title="decision helper")


# --- side-by-side explorer ------------------------------------------------------------------


def check_scores(scores: pd.DataFrame) -> None:
    """Raise ValueError (one sentence) if ``scores`` is empty or lacks a needed column."""
    if scores is not None and not isinstance(scores, pd.DataFrame):
        raise ValueError(
            "Pass the scores table (a pandas DataFrame, e.g. result.scores or "
            f"kit.evaluate.score_answers(...)), not {type(scores).__name__}."
        )
    if scores is None or len(scores) == 0:
        raise ValueError(
            "The results table is empty: run the comparison first (notebooks/04_compare.ipynb) "
            "and pass its scores."
        )
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(
            f"The results table lacks the column(s) {missing}: pass the scores made by "
            "kit.evaluate.score_answers."
        )


def _words(text: str) -> set[str]:
    """The content words of an answer or a sentence (the kit's one word rule:
    :func:`kit.attribution.answer_words`, which also drops citations and house-style labels)."""
    return set(answer_words(text))


def split_sentences(text: str) -> list[str]:
    """A passage's sentences for display: :func:`kit.prompts.split_sentences`, every one kept."""
    return prompts.split_sentences(text, min_words=1)


def best_sentence(passage: str, answer: str) -> tuple[int, float]:
    """(index, overlap) of the passage sentence sharing the most words with the answer.

    Overlap is the share of the sentence's content words that also occur in the answer; ties go
    to the sentence with more shared words. (-1, 0.0) for an empty passage.
    """
    answer_words = _words(answer)
    best, best_key = -1, (0.0, 0)
    for i, sentence in enumerate(split_sentences(passage)):
        words = _words(sentence)
        shared = len(words & answer_words)
        key = (shared / len(words) if words else 0.0, shared)
        if best < 0 or key > best_key:
            best, best_key = i, key
    return best, best_key[0]


def highlight_passage(passage: str, answer: str) -> str:
    """The passage as HTML, every character of it kept (list dashes, headings, line ends), with
    its best-supporting sentence in <mark> (see best_sentence)."""
    sentences = split_sentences(passage)
    index, overlap = best_sentence(passage, answer)
    if overlap <= 0 or not 0 <= index < len(sentences):
        return html.escape(passage)
    # the sentence as split_sentences wrote it (spaces collapsed, cells joined by " | "),
    # found again in the passage as it is
    words = [re.escape(w) for w in sentences[index].split() if w != "|"]
    found = re.search(r"[\s|]+".join(words), passage)
    if found is None:
        return html.escape(passage)
    start, end = found.span()
    marked = html.escape(passage[start:end])
    return f"{html.escape(passage[:start])}<mark>{marked}</mark>{html.escape(passage[end:])}"


def sources_html(cited: Sequence[str], documents: Sequence[Any], answer: str) -> str:
    """The cited documents of one answer, each with its best-supporting passage highlighted.

    ``documents`` are the retrieved Haystack Documents (.content, .meta["doc_id"], .meta["title"],
    .score); of several chunks of one document, the one best overlapping the answer is shown.
    """
    if not cited:
        return "<i>cites no source</i>"
    items = []
    for ident in cited:
        chunks = [d for d in documents if doc_id(d) == ident]
        if not chunks:
            items.append(f"<li><code>{html.escape(ident)}</code> <i>(not among the passages)</i>")
            continue
        doc = max(chunks, key=lambda d: best_sentence(d.content or "", answer)[1])
        title = html.escape(source_label(doc))
        score = f" · score {doc.score:.3f}" if getattr(doc, "score", None) is not None else ""
        items.append(
            f"<li><code>{html.escape(ident)}</code> {title}{score}<br>"
            f"<small>{highlight_passage(doc.content or '', answer)}</small></li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _answer_card(system: str, row: dict[str, Any], answer: Any | None) -> str:
    """One system's answer, scores, cost and sources as an HTML block."""
    cited = [c for c in str(row.get("cited") or "").split(", ") if c]
    if answer is not None:
        cited = list(answer.cited_ids) or cited
        sources = sources_html(cited, answer.documents, answer.text)
    elif cited:
        sources = ", ".join(f"<code>{html.escape(c)}</code>" for c in cited)
        sources += " <i>(pass answers= to see the passages)</i>"
    else:
        sources = "<i>cites no source</i>"
    marks = []
    if "correct" in row and pd.notna(row["correct"]):
        marks.append("✓ correct" if row["correct"] else "✗ wrong")
    for metric in ("f1", "sas", "citation_precision", "citation_recall"):
        if metric in row and pd.notna(row[metric]):
            marks.append(f"{metric} {row[metric]:.2f}")
    if "latency_s" in row and pd.notna(row["latency_s"]):
        marks.append(f"{row['latency_s']:.2f} s")
    if row.get("prompt_tokens"):
        marks.append(f"{int(row['prompt_tokens'])} + {int(row.get('new_tokens', 0))} tokens")
    colour = COLOURS.get(system, "#444")
    return (
        f"<div class='kit-answer' style='border-left:4px solid {colour};padding:4px 10px;"
        f"margin:6px 0'><b>{html.escape(system)}</b>: {html.escape(str(row['answer']))}<br>"
        f"<small>{' · '.join(marks)}</small><br>Sources: {sources}</div>"
    )


def question_html(
    scores: pd.DataFrame,
    question_id: str,
    answers: dict[str, dict[str, Any]] | None = None,
) -> str:
    """Every system's answer to one test question, side by side, with scores and sources."""
    check_scores(scores)
    rows = scores[scores["id"] == question_id]
    if rows.empty:
        raise ValueError(f"No question with id {question_id!r} in the results.")
    first = rows.iloc[0]
    head = (
        f"<p><b>{html.escape(str(first['question']))}</b> <small>({html.escape(question_id)}, "
        f"{html.escape(str(first['type']))})</small><br>Gold answer: "
        f"{html.escape(str(first['gold']))}</p>"
    )
    cards = [
        _answer_card(str(r["system"]), r, (answers or {}).get(r["system"], {}).get(question_id))
        for r in rows.to_dict("records")
    ]
    return head + "".join(cards)


def answers_html(question: str, answers: dict[str, Any]) -> str:
    """Answers to a question typed by the user: {system: Answer} -> HTML (no gold, no scores)."""
    if not question.strip():
        raise ValueError("The question is empty: type a question first.")
    if not answers:
        raise ValueError("The ask function returned no answers: it should return {system: Answer}.")
    cards = []
    for system, answer in answers.items():
        row = {
            "answer": answer.text,
            "latency_s": answer.timings.get("total", sum(answer.timings.values()) or None),
            "prompt_tokens": answer.prompt_tokens,
            "new_tokens": answer.new_tokens,
        }
        cards.append(_answer_card(system, row, answer))
    return f"<p><b>{html.escape(question)}</b></p>" + "".join(cards)


def answers_by_id(
    scores: pd.DataFrame, answers: dict[str, Sequence[Any]] | dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """{system: {question_id: Answer}} from either that form or {system: [Answer, ...]}.

    A list (as in ``kit.compare.GridResult.answers``) is in the order of that system's rows in
    ``scores``.
    """
    out: dict[str, dict[str, Any]] = {}
    for system, items in answers.items():
        if isinstance(items, dict):
            out[system] = dict(items)
            continue
        ids = list(scores.loc[scores["system"] == system, "id"])
        if len(ids) != len(items):
            raise ValueError(
                f"{len(items)} answers for {system!r} but {len(ids)} rows in the scores."
            )
        out[system] = dict(zip(ids, items, strict=True))
    return out


ASK_MISSING = (
    "Typing your own question needs a function that asks every system: "
    "explorer(scores, ask=my_ask), where my_ask(question) returns {system: Answer}."
)


def explorer(
    scores: pd.DataFrame,
    answers: dict[str, dict[str, Any]] | dict[str, Sequence[Any]] | None = None,
    ask: Callable[[str], dict[str, Any]] | None = None,
    static: bool | None = None,
) -> View:
    """Pick a test question (or type one) and see every system's answer side by side.

    ``answers`` ({system: {question_id: Answer}}, or {system: [Answer, ...]} in the order of the
    scores as in ``GridResult.answers``) adds the cited passages; ``ask(question)`` returning
    {system: Answer} answers typed questions.
    """
    try:
        check_scores(scores)
        answers = answers_by_id(scores, answers) if answers else None
    except ValueError as err:
        message = str(err)
        return View(lambda _v: message_html(message), static=True, title="explorer")
    firsts = scores.drop_duplicates("id")
    options = [
        (f"{r['id']} · {r['type']} · {str(r['question'])[:70]}", r["id"])
        for r in firsts.to_dict("records")
    ]

    def render(values: dict[str, Any]) -> str:
        typed = str(values.get("typed") or "").strip()
        if typed:
            if ask is None:
                return message_html(ASK_MISSING)
            return answers_html(typed, ask(typed))
        return question_html(scores, values["question"], answers)

    if use_static(static):
        first = options[0][1]
        return View(lambda _v: render({"question": first}), static=True, title="explorer")
    import ipywidgets as w

    controls = {
        "question": w.Dropdown(
            options=options,
            value=options[0][1],
            description="question",
            style={"description_width": "110px"},
            layout=w.Layout(width="95%"),
        ),
        "typed": w.Text(
            value="",
            placeholder="or type your own question and press Enter",
            description="your question",
            continuous_update=False,
            style={"description_width": "110px"},
            layout=w.Layout(width="95%"),
        ),
    }

    def pick(_change: Any) -> None:  # choosing from the list clears a typed question
        controls["typed"].value = ""

    # observed before the View's own update (observers run in order): the typed question is
    # gone when the view renders the pick, so it is not answered again on the way
    controls["question"].observe(pick, names="value")
    return View(render, controls, static=False, title="explorer")


# --- metric dashboard -----------------------------------------------------------------------


def metric_table(scores: pd.DataFrame, question_type: str = "all") -> pd.DataFrame:
    """The summary table (:func:`kit.evaluate.summarise`) over one question type, or all."""
    from kit.evaluate import summarise

    check_scores(scores)
    if question_type not in QUESTION_TYPES:
        raise ValueError(f"question_type must be one of {list(QUESTION_TYPES)}.")
    chosen = scores if question_type == "all" else scores[scores["type"] == question_type]
    if chosen.empty:
        raise ValueError(f"No {question_type!r} questions in the results.")
    return summarise(chosen)


def plot_metrics(
    table: pd.DataFrame,
    metrics: Sequence[str] = DASHBOARD_METRICS,
    intervals: pd.DataFrame | None = None,
) -> Figure:
    """Grouped bars: each metric (0-1) per system, and the seconds per answer beside.

    With ``intervals`` (:func:`kit.evaluate.summarise_intervals` of the same scores) every bar
    gets its 95% interval as an error bar, and the time panel shows the mean seconds per answer
    with its interval; without, the median seconds.
    """
    import numpy as np

    metrics = [m for m in metrics if m in table.columns]
    fig = _new_figure(9, 3.2)
    ax, ax_time = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(metrics))
    ci = intervals.set_index(["system", "metric"]) if intervals is not None else None
    for i, row in enumerate(table.to_dict("records")):
        system, colour = row["system"], COLOURS.get(row["system"])
        values = [0.0 if pd.isna(row[m]) else row[m] for m in metrics]
        ax.bar(x + i * width, values, width, label=system, color=colour)
        for j in (j for j, m in enumerate(metrics) if pd.isna(row[m])):  # not measured: "–", not 0
            ax.text(x[j] + i * width, 0.02, "–", ha="center", va="bottom", fontsize=8)
        if ci is None:
            ax_time.bar(i, row["latency_p50_s"], color=colour)
            continue
        lows, highs = _error_bars(ci, system, metrics, values)
        ax.errorbar(x + i * width, values, yerr=[lows, highs], fmt="none", ecolor="#333", lw=1)
        seconds = ci.loc[(system, "latency_s")] if (system, "latency_s") in ci.index else None
        if seconds is not None and seconds["n"]:
            err = [[seconds["value"] - seconds["low"]], [seconds["high"] - seconds["value"]]]
            if pd.isna(seconds["low"]):  # one value: no interval to draw
                err = None
            ax_time.bar(i, seconds["value"], color=colour, yerr=err, ecolor="#333")
    ax.set_xticks(x + width * (len(table) - 1) / 2, metrics, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("scores (higher is better)" + (", 95% intervals" if ci is not None else ""))
    ax_time.set_xticks(
        range(len(table)), list(table["system"]), fontsize=8, rotation=30, ha="right"
    )
    ax_time.set_title("mean seconds per answer" if ci is not None else "median seconds per answer")
    return fig


def _error_bars(
    ci: pd.DataFrame, system: str, metrics: Sequence[str], values: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Distances from each bar's top to its interval's ends (0 where nothing was measured)."""
    lows, highs = [], []
    for metric, value in zip(metrics, values, strict=True):
        row = ci.loc[(system, metric)] if (system, metric) in ci.index else None
        if row is None or not row["n"] or pd.isna(row["low"]):  # none measured, or one value
            lows.append(0.0)
            highs.append(0.0)
        else:
            lows.append(max(value - row["low"], 0.0))
            highs.append(max(row["high"] - value, 0.0))
    return lows, highs


def dashboard_html(scores: pd.DataFrame, question_type: str = "all") -> str:
    """The dashboard's view for one question type: every metric with its 95% interval, the bars
    with error bars, and which differences between systems the data resolve."""
    from kit.evaluate import compare_systems, interval_table, summarise_intervals

    table = metric_table(scores, question_type)
    chosen = scores if question_type == "all" else scores[scores["type"] == question_type]
    metrics = (*DASHBOARD_METRICS, "abstain_ok", "false_abstain", "latency_s")
    intervals = summarise_intervals(chosen, metrics)
    shown = interval_table(chosen, metrics, intervals).set_index("system")
    sentences = compare_systems(chosen, "correct")["sentence"]
    verdict = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    return (
        f"<p><b>{question_type}</b> questions: {chosen['id'].nunique()} questions x "
        f"{chosen['system'].nunique()} systems. Each cell: the value [95% interval].</p>"
        + shown.to_html(classes="kit-metrics", na_rep="–")
        + (f"<p>Is the difference real? (paired, same questions)</p><ul>{verdict}</ul>")
        + figure_html(plot_metrics(table, intervals=intervals), "metric bars")
    )


def dashboard(scores: pd.DataFrame, static: bool | None = None) -> View:
    """The metric dashboard: the summary table and bars, filtered by question type."""

    def render(values: dict[str, Any]) -> str:
        return dashboard_html(scores, values.get("question_type", "all"))

    if use_static(static):
        return View(lambda _v: render({}), static=True, title="dashboard")
    import ipywidgets as w

    controls = {
        "question_type": w.ToggleButtons(
            options=list(QUESTION_TYPES),
            value="all",
            description="questions",
            style={"button_width": "auto"},
        )
    }
    return View(render, controls, static=False, title="dashboard")


# --- measured numbers for the notebooks -------------------------------------------------------


def cached_summary() -> tuple[pd.DataFrame | None, str]:
    """The comparison's cached summary table if there is one, and a sentence saying which.

    Reads ``kit.compare.load_cached_results()`` when the comparison stage provides it; without a
    cache the views use the kit's documented defaults (:data:`kit.costs.DEFAULT_MEASURED`).
    """
    from kit import compare

    loader = getattr(compare, "load_cached_results", None)
    result = loader() if loader is not None else None
    summary = getattr(result, "summary", result)
    if isinstance(summary, pd.DataFrame) and not summary.empty:
        return summary, "Using the numbers measured by your comparison run (04_compare)."
    return None, (
        "No comparison results cached yet: using the kit's documented defaults, measured on "
        "its 2-core CPU. Run notebooks/04_compare.ipynb to measure your own."
    )


def cached_measured() -> dict[str, dict[str, float]] | None:
    """What the questionnaire reads from the cached comparison: the summary's metrics and the
    freshness and privacy experiments' (:func:`kit.decide.measured_from`); None without one."""
    from kit.compare import load_cached_results

    result = load_cached_results()
    return None if result is None else decide.measured_from(result)


# --- writing your own questions ---------------------------------------------------------------


def chunk_html(writer: QuestionWriter, message: str = "") -> str:
    """The writer's current chunk (title, page, text) and a status line, as HTML."""
    chunk = writer.current
    answerable, unanswerable = writer.train_counts
    status = f"<b>{writer.count}</b> question(s) saved in <code>{html.escape(str(writer.path))}"
    status += (
        f"</code>, of them train: {answerable} answerable, {unanswerable} not answerable "
        f'(the learned "I don\'t know" needs at least {MIN_PER_CLASS} of each). '
        f"{html.escape(message)}"
    )
    if chunk is None:
        return f"<p>Every chunk has been shown.</p><p>{status}</p>"
    return (
        f"<div style='border-left:4px solid #1f77b4;padding:4px 10px;max-width:820px'>"
        f"<b>{html.escape(source_label(chunk))}</b><br>{html.escape(chunk.content or '')}</div>"
        f"<p>{status}</p>"
    )


def question_writer(chunks: Any, path: str | Path, seed: int = 0) -> Any:
    """A form over :class:`kit.question_writer.QuestionWriter`: one chunk at a time, a question
    and its answer (copied from the chunk), whether it is a test or a train question ("Save
    as": it stays as chosen until changed), and three buttons: save, "not answerable from the
    documents" (gold: "I don't know"), skip. Each question is saved to ``path`` at once.

    In: an index or a list of chunks, the JSONL file. Out: an ipywidgets VBox whose
    ``.writer`` is the QuestionWriter (``kit.data.load_questions(path)`` reads the file back).
    """
    import ipywidgets as w

    writer = QuestionWriter(chunks, path, seed=seed)
    wide, style = w.Layout(width="820px"), {"description_width": "220px"}
    shown = w.HTML(chunk_html(writer))
    question = w.Text(description="Question", layout=wide, style=style)
    answer = w.Text(description="Answer (copied from the chunk)", layout=wide, style=style)
    split = w.ToggleButtons(
        options=[
            ("test: scores the systems", "test"),
            ('train: teaches them when to say "I don\'t know"', "train"),
        ],
        value="test",
        description="Save as",
        style={**style, "button_width": "auto"},
    )
    buttons = {
        "save": w.Button(description="Save question", button_style="primary"),
        "none": w.Button(
            description="Not answerable from the documents", layout=w.Layout(width="auto")
        ),
        "skip": w.Button(description="Skip this chunk"),
    }

    def act(kind: str) -> None:
        try:
            if kind == "save":
                writer.add(question.value, answer.value, split=split.value)
            elif kind == "none":
                writer.not_answerable(question.value, split=split.value)
            else:
                writer.skip()
            question.value, answer.value, message = "", "", "Saved." if kind != "skip" else ""
        except ValueError as err:  # DataError: say what to fix, keep what was typed
            message = str(err)
        shown.value = chunk_html(writer, message)

    for kind, button in buttons.items():
        button.on_click(lambda _b, kind=kind: act(kind))
    box = w.VBox([shown, question, answer, split, w.HBox(list(buttons.values()))])
    box.writer, box.buttons = writer, buttons
    box.fields = {"question": question, "answer": answer, "split": split}
    return box
