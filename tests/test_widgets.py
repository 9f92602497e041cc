"""kit.widgets without a browser: the plain view functions, and the wrappers driven by .value."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from kit import costs, widgets
from kit.evaluate import summarise_intervals
from kit.generate import Answer
from tests.fake_results import fake_answers, fake_scores

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return fake_scores()


@pytest.fixture(scope="module")
def answers() -> dict:
    return fake_answers()


# --- plain functions ----------------------------------------------------------------------------


def test_best_sentence_finds_the_supporting_sentence():
    passage = "Returns go to the desk. Customers may return a meter within 30 days. Kits no."
    index, overlap = widgets.best_sentence(passage, "Answer: within 30 days [kb-004]")
    assert index == 1 and overlap > 0
    marked = widgets.highlight_passage(passage, "within 30 days")
    assert "<mark>Customers may return a meter within 30 days.</mark>" in marked
    assert widgets.highlight_passage("<b>x</b>.", "nothing shared").count("<mark>") == 0
    assert "&lt;b&gt;" in widgets.highlight_passage("<b>x</b>.", "x")  # escaped


def test_question_html_shows_every_system_with_scores_and_passages(scores, answers):
    page = widgets.question_html(scores, "q1", answers)
    for system in ("base", "rag", "finetuned", "hybrid"):
        assert f"<b>{system}</b>" in page
    assert "Gold answer: 30 days" in page
    assert "✓ correct" in page and "✗ wrong" in page and "3.20 s" in page
    assert "<mark>Customers may return a meter within 30 days of delivery" in page
    assert "Parking" not in page  # only the cited document is shown, not every retrieved one


def test_question_html_without_answers_lists_the_cited_ids(scores):
    page = widgets.question_html(scores, "q1")
    assert "<code>kb-004</code>" in page and "pass answers=" in page


def test_metric_table_filters_by_type(scores):
    everything = widgets.metric_table(scores)
    numeric = widgets.metric_table(scores, "numeric")
    assert list(everything["questions"]) == [8, 8, 8, 8]
    assert list(numeric["questions"]) == [2, 2, 2, 2]
    rag = numeric.set_index("system").loc["rag", "correct"]
    assert rag == 1.0  # q5 and q6 are both right for RAG
    page = widgets.dashboard_html(scores, "unanswerable")
    assert "<b>unanswerable</b> questions: 2 questions x 4 systems" in page
    assert "data:image/png;base64" in page and "[95% interval]" in page
    assert "0.50 [0.09, 0.91]" in page  # hybrid declines 1 of the 2 unanswerable questions
    assert "cannot be told apart" in page  # on 2 questions no difference is resolved


def test_dashboard_of_one_question_shows_no_interval_for_a_score(scores):
    one = scores[scores["id"] == "q1"]
    page = widgets.dashboard_html(one)
    figure = widgets.plot_metrics(widgets.metric_table(one), intervals=summarise_intervals(one))
    assert len(figure.axes[1].patches) == 4  # every system's seconds, without an error bar
    assert "data:image/png;base64" in page  # drawn, with no error bar where none exists
    text = re.sub(r"data:image/png;base64,[^\"']+", "", page)
    assert "(1 value: no interval)" in text and not re.search(r"\bnan\b", text, re.I)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: widgets.metric_table(s.iloc[0:0]),
        lambda s: widgets.question_html(s.iloc[0:0], "q1"),
        lambda s: widgets.dashboard_html(s.iloc[0:0]),
    ],
)
def test_empty_results_raise_a_readable_error(scores, call):
    with pytest.raises(ValueError, match="results table is empty"):
        call(scores)


def test_other_bad_input(scores):
    with pytest.raises(ValueError, match="lacks the column"):
        widgets.metric_table(scores.drop(columns=["latency_s"]))
    for needed in ("exact", "abstained", "style_ok"):  # summarise reads them: said, no KeyError
        with pytest.raises(ValueError, match=f"lacks the column.*{needed}"):
            widgets.dashboard_html(scores.drop(columns=[needed]))
    with pytest.raises(ValueError, match="No question with id"):
        widgets.question_html(scores, "nope")
    with pytest.raises(ValueError, match="question_type must be"):
        widgets.metric_table(scores, "trivia")
    with pytest.raises(ValueError, match="No 'numeric' questions"):
        widgets.metric_table(scores[scores["type"] != "numeric"], "numeric")


def test_cost_report_shows_curves_bill_and_verdict():
    page = widgets.cost_report_html(costs.CostInputs.from_measured())
    assert page.startswith("<img src='data:image/png;base64,")
    assert "kit-costs" in page and "RAG 60-80% cheaper" in page
    fig = widgets.plot_costs(costs.CostInputs.from_measured())
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"rag", "finetuned", "hybrid", "RAG 60-80% cheaper"} <= set(labels)
    assert "<b>RAG saves " in page  # 10k queries a month: RAG is the cheaper one
    busy = costs.CostInputs.from_measured(queries_per_month=1e8)
    totals = costs.monthly_costs(busy).set_index("system")["total"]
    assert totals["finetuned"] < totals["rag"]
    saves = f"{1 - totals['finetuned'] / totals['rag']:.0%}"
    assert f"<b>fine-tuning saves {saves} " in widgets.cost_report_html(busy)  # not "-380%"


# --- wrappers: set a control's value, read the output -------------------------------------------


def test_cost_calculator_updates_when_a_slider_moves():
    view = widgets.cost_calculator()
    before = view.output.value
    assert "At 10k queries/month" in before
    view.controls["queries_per_month"].value = 1e7
    assert "At 10M queries/month" in view.output.value
    view.controls["pricing"].value = "self-hosted"
    inputs = costs.CostInputs.from_measured(queries_per_month=1e7, pricing="self-hosted")
    assert html.escape(costs.claim_verdict(inputs)) in view.output.value
    assert costs.claim_verdict(inputs) != costs.claim_verdict(inputs.with_(pricing="api"))


def test_more_documents_mean_longer_training_in_the_calculator():
    view = widgets.cost_calculator()
    base = costs.CostInputs.from_measured()
    view.controls["documents"].value = base.documents * 2
    assert view.controls["hours_per_run"].value == pytest.approx(base.hours_per_run * 2, abs=0.1)
    expected = costs.CostInputs.from_measured(documents=base.documents * 2)
    assert expected.hours_per_run == pytest.approx(view.controls["hours_per_run"].value, abs=0.1)
    view.controls["hours_per_run"].value = 3.0  # the learner's own figure still wins
    assert view.controls["hours_per_run"].value == 3.0


def test_cost_calculator_reads_a_summary_table(scores):
    from kit.evaluate import summarise

    view = widgets.cost_calculator(measured=summarise(scores))
    assert view.controls["context_tokens"].value == 661


def test_questionnaire_updates_its_recommendation():
    view = widgets.questionnaire()
    assert "Recommendation: hybrid" in view.output.value
    view.controls["tone"].value = "none"
    assert "Recommendation: RAG" in view.output.value
    view.controls["data_volume"].value = "tiny"
    view.controls["needs_citations"].value = False
    view.controls["ml_skills"].value = "none"
    assert "Recommendation: prompting alone first" in view.output.value


def test_dashboard_filter(scores):
    view = widgets.dashboard(scores)
    assert "<b>all</b> questions: 8 questions x 4 systems" in view.output.value
    view.controls["question_type"].value = "multi"
    assert "<b>multi</b> questions: 2 questions x 4 systems" in view.output.value


def test_explorer_dropdown_and_typed_question(scores, answers):
    asked = []

    def ask(question: str) -> dict[str, Answer]:
        asked.append(question)
        return {"rag": answers["rag"]["q5"]}

    view = widgets.explorer(scores, answers, ask=ask)
    assert "How many days" in view.output.value
    view.controls["question"].value = "q5"
    assert "What does the KS-200 cost?" in view.output.value
    assert "<mark>The KS-200 costs 1,250 euros before tax.</mark>" in view.output.value
    view.controls["typed"].value = "What does the sensor cost?"
    assert asked == ["What does the sensor cost?"]
    assert "<b>What does the sensor cost?</b>" in view.output.value
    view.controls["question"].value = "q2"  # picking from the list clears the typed question
    assert view.controls["typed"].value == ""
    assert "travel above 500 euros" in view.output.value
    assert asked == ["What does the sensor cost?"]  # not answered again on the way to q2


def test_explorer_without_ask_explains_what_is_missing(scores):
    view = widgets.explorer(scores)
    view.controls["typed"].value = "anything"
    assert "needs a function that asks every system" in view.output.value


def test_empty_results_show_a_message_instead_of_a_widget(scores):
    for view in (widgets.explorer(scores.iloc[0:0]), widgets.dashboard(scores.iloc[0:0])):
        assert "results table is empty" in view.html()
        assert "kit-message" in view._repr_mimebundle_()["text/html"]


# --- static fallback ----------------------------------------------------------------------------


def test_a_view_shows_as_widget_and_as_static_html(scores):
    bundle = widgets.dashboard(scores)._repr_mimebundle_()
    assert WIDGET_VIEW in bundle
    assert "Static copy" in bundle["text/html"] and "kit-metrics" in bundle["text/html"]


def test_static_html_follows_the_current_state(scores):
    view = widgets.dashboard(scores)
    view.controls["question_type"].value = "single"
    assert "<b>single</b> questions" in view._repr_mimebundle_()["text/html"]


@pytest.mark.parametrize("make", ["flag", "env"])
def test_static_mode_has_no_widget(scores, monkeypatch, make):
    if make == "env":
        monkeypatch.setenv(widgets.STATIC_ENV, "1")
        view = widgets.cost_calculator()
    else:
        view = widgets.cost_calculator(static=True)
    bundle = view._repr_mimebundle_()
    assert view.widget is None and WIDGET_VIEW not in bundle
    assert "kit-verdict" in bundle["text/html"]
    for make_view in (
        widgets.questionnaire,
        lambda static: widgets.explorer(scores, static=static),
    ):
        assert make_view(static=True).widget is None


def test_cached_summary_falls_back_to_the_defaults(monkeypatch):
    from kit import compare

    monkeypatch.setattr(compare, "load_cached_results", lambda: None, raising=False)
    summary, note = widgets.cached_summary()
    assert summary is None and "documented defaults" in note


def test_explorer_accepts_answers_as_lists_like_grid_result(scores, answers):
    as_lists = {
        system: [by_id[q] for q in scores.loc[scores["system"] == system, "id"]]
        for system, by_id in answers.items()
    }
    assert widgets.answers_by_id(scores, as_lists)["rag"]["q5"] is answers["rag"]["q5"]
    view = widgets.explorer(scores, as_lists)
    assert "<mark>Customers may return a meter" in view.output.value
    with pytest.raises(ValueError, match="answers for 'rag'"):
        widgets.answers_by_id(scores, {"rag": as_lists["rag"][:3]})


def test_a_highlighted_passage_keeps_every_character_of_the_document():
    """List dashes, headings and line ends stay; only the best sentence gains its <mark>."""
    passage = "## Returns\n- Kits - opened or not - go back to Ghent.\n- Meters within 30 days."
    marked = widgets.highlight_passage(passage, "within 30 days")
    assert marked.replace("<mark>", "").replace("</mark>", "") == passage
    assert "<mark>Meters within 30 days.</mark>" in marked
    row = "| Kit | Price |\n|---|---|\n| S2 sensor | 129 euros |"
    assert "<mark>S2 sensor | 129 euros</mark>" in widgets.highlight_passage(row, "129 euros")
