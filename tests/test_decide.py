"""kit.decide: the questionnaire's rules, the choice, and reasons that cite measured results."""

from __future__ import annotations

import pytest

from kit.decide import OPTIONS, Questionnaire, measured_metrics, recommend
from tests.fake_results import fake_summary


def test_changing_knowledge_and_citations_point_to_retrieval():
    rec = recommend(Questionnaire(knowledge_changes="daily", needs_citations=True, tone="none"))
    assert rec.choice == "rag"
    assert rec.scores["rag"] > rec.scores["finetuned"]
    assert any("changes every day" in r.text for r in rec.reasons)


def test_stable_knowledge_strict_style_and_tight_latency_point_to_fine_tuning():
    rec = recommend(
        Questionnaire(
            knowledge_changes="never",
            needs_citations=False,
            tone="strict",
            latency_budget_s=1.0,
            ml_skills="experienced",
        )
    )
    assert rec.choice == "finetuned"
    assert any("latency budget" in r.text for r in rec.reasons)


def test_style_and_freshness_together_point_to_the_hybrid():
    rec = recommend(Questionnaire(knowledge_changes="weekly", tone="strict"))
    assert rec.choice == "hybrid"


def test_small_knowledge_and_no_ml_skills_say_prompt_first():
    rec = recommend(
        Questionnaire(data_volume="tiny", ml_skills="none", needs_citations=False, tone="none")
    )
    assert rec.choice == "prompting"
    assert rec.label == OPTIONS["prompting"]


def test_no_ml_skills_never_choose_an_option_that_needs_training():
    rec = recommend(Questionnaire(tone="strict", ml_skills="none"))  # style points or not
    assert rec.choice == "rag" and rec.scores["hybrid"] > rec.scores["rag"]
    assert any("start without it" in r.text for r in rec.reasons)
    assert rec.ranking()[0][0] == rec.choice  # the scores line leads with the choice ...
    assert set(rec.ruled_out) == {"finetuned", "hybrid"}  # ... the others are marked
    assert "(ruled out)" in str(rec) and "(ruled out)" in rec.to_html()


def test_a_latency_budget_favours_fine_tuning_only_where_it_fits():
    slow = recommend(Questionnaire(latency_budget_s=1.0))  # fine-tuned: 1.7 s by default
    reason = next(r for r in slow.reasons if "latency budget" in r.text)
    assert "finetuned" not in reason.favours and "rag and finetuned and hybrid need" in reason.text
    fast = recommend(Questionnaire(latency_budget_s=2.0))
    assert "finetuned" in next(r for r in fast.reasons if "latency budget" in r.text).favours


def test_each_option_is_held_to_the_latency_budget_by_its_own_time():
    """A slow hybrid loses points though RAG fits; a fast hybrid keeps them though RAG misses."""
    slow_hybrid = {"latency_p50_s": {"rag": 3.0, "finetuned": 1.7, "hybrid": 9.0}}
    plain = recommend(Questionnaire(tone="strict"), {"latency_p50_s": {"rag": 3.0}})
    rec = recommend(Questionnaire(tone="strict", latency_budget_s=5.0), slow_hybrid)
    reason = next(r.text for r in rec.reasons if "latency budget" in r.text)
    assert "below what hybrid needs per answer here" in reason and "9.0 s" in reason
    assert rec.scores["hybrid"] == plain.scores["hybrid"] - 1
    assert rec.scores["rag"] == plain.scores["rag"]
    fast_hybrid = {"latency_p50_s": {"rag": 3.0, "finetuned": 1.7, "hybrid": 2.4}}
    rec = recommend(Questionnaire(latency_budget_s=2.5), fast_hybrid)
    assert rec.scores["hybrid"] == recommend(Questionnaire(latency_budget_s=9)).scores["hybrid"]


def test_a_time_not_measured_is_called_the_kits_reference_and_nan_is_not_measured():
    rec = recommend(Questionnaire(latency_budget_s=1.0))
    text = next(r.text for r in rec.reasons if "latency budget" in r.text)
    assert "by the kit's reference figures" in text and " here " not in text
    nan = float("nan")
    measured = {
        "latency_p50_s": {"rag": 3.0, "finetuned": 1.7, "hybrid": nan},
        "prompt_tokens": {"rag": 700.0, "finetuned": 39.0, "hybrid": 700.0},
        "new_tokens": {"rag": 40.0, "finetuned": 40.0, "hybrid": 40.0},
    }
    assert recommend(Questionnaire(knowledge_changes="yearly"), measured).choice  # no crash
    only_fast = {"latency_p50_s": {"rag": 0.4, "finetuned": 0.2}}  # hybrid not measured
    rec = recommend(Questionnaire(latency_budget_s=2.0), only_fast)
    assert not any("latency budget" in r.text for r in rec.reasons)  # not the 2.4 s reference
    rec = recommend(Questionnaire(latency_budget_s=2.0), {"latency_p50_s": {"rag": 3.0}})
    text = next(r.text for r in rec.reasons if "latency budget" in r.text)
    assert "rag needs per answer here" in text and "reference" not in text


def test_the_experiments_rows_stand_for_the_options_they_measure():
    import pandas as pd

    freshness = pd.DataFrame(
        {
            "system": ["rag (v1 index)", "rag (re-indexed v2)", "finetuned (trained on v1)"],
            "current": [0.0, 0.9, 0.1],
        }
    )
    privacy = pd.DataFrame(
        {"system": ["rag (admin: all documents)", "rag (employee role filter)"], "leaked": [1, 0]}
    )
    measured = measured_metrics(freshness=freshness, privacy=privacy)
    assert measured["freshness"] == {"rag": 0.9, "finetuned": 0.1}  # re-indexed, not v1
    assert measured["privacy"] == {"rag": 0.0}  # deployed with the role filter
    rec = recommend(Questionnaire(knowledge_changes="weekly", sensitive_data=True), measured)
    said = " ".join(r.evidence for r in rec.reasons)
    assert "freshness, changed questions" in said and "rag 90% vs finetuned 10%" in said
    assert "not measured yet: run notebooks/04_compare.ipynb (section 'Freshness')" not in said
    from types import SimpleNamespace

    from kit.decide import measured_from

    result = SimpleNamespace(summary=fake_summary(), extras={"freshness": freshness})
    both = measured_from(result)  # what notebook 05 reads from the cached comparison
    assert both["freshness"]["rag"] == 0.9 and "correct" in both and "privacy" not in both


def test_rare_updates_quote_the_break_even_of_the_measured_prompts():
    from kit import costs

    rows = fake_summary().set_index("system")
    rows.loc["rag", "prompt_tokens"] = 1100  # a longer RAG prompt: fine-tuning pays off sooner
    summary = rows.reset_index()
    said = next(
        r.text
        for r in recommend(Questionnaire(knowledge_changes="never"), summary).reasons
        if "rarely changes" in r.text
    )
    seeded = costs.CostInputs.from_measured(
        costs.measured_from_summary(summary), updates_per_month=1 / 12
    )  # as notebook 05's calculator is seeded
    assert f"above {costs.format_count(costs.break_even_queries(seeded))} queries" in said
    default = costs.break_even_queries(costs.CostInputs(updates_per_month=1 / 12))
    assert f"above {costs.format_count(default)} queries" not in said


def test_sensitive_data_counts_against_fine_tuning():
    plain = recommend(Questionnaire())
    sensitive = recommend(Questionnaire(sensitive_data=True))
    assert sensitive.scores["finetuned"] < plain.scores["finetuned"]
    assert any("sensitive" in r.text for r in sensitive.reasons)


def test_without_measurements_reasons_say_where_to_measure():
    rec = recommend(Questionnaire())
    assert rec.reasons
    for reason in rec.reasons:
        assert reason.evidence.startswith("not measured yet: run notebooks/04_compare.ipynb")


def test_with_measurements_reasons_quote_the_figures():
    measured = measured_metrics(fake_summary())
    measured["freshness"] = {"rag": 0.9, "finetuned": 0.1, "hybrid": 0.85}
    rec = recommend(Questionnaire(knowledge_changes="weekly"), measured)
    fresh = next(r for r in rec.reasons if "changes every week" in r.text)
    assert "rag 90% vs finetuned 10% vs hybrid 85%" in fresh.evidence
    cites = next(r for r in rec.reasons if "citations" in r.text)
    assert "citation_precision" in cites.evidence and "rag 100%" in cites.evidence


def test_a_summary_table_can_be_passed_directly():
    rec = recommend(Questionnaire(latency_budget_s=2.0), fake_summary())
    slow = next(r for r in rec.reasons if "latency budget" in r.text)
    assert "rag and hybrid need per answer here" in slow.text  # measured, not the default
    assert "3.2 s and 2.5 s of computing" in slow.text
    assert "rag 3.2 s vs finetuned 1.3 s" in slow.evidence


def test_output_forms():
    rec = recommend(Questionnaire())
    assert str(rec).startswith(f"Recommendation: {rec.label}")
    assert "Evidence:" in rec.to_html() and rec._repr_html_() == rec.to_html()
    assert rec.ranking()[0][0] == rec.choice


@pytest.mark.parametrize(
    "change",
    [{"knowledge_changes": "hourly"}, {"tone": "loud"}, {"ml_skills": "x"}, {"data_volume": "?"}],
)
def test_bad_answers_are_named(change):
    name = next(iter(change))
    with pytest.raises(ValueError, match=name):
        recommend(Questionnaire(**change))


def test_latency_budget_must_be_positive():
    with pytest.raises(ValueError, match="latency_budget_s"):
        recommend(Questionnaire(latency_budget_s=0))


def test_latency_and_cost_reasons_say_what_the_numbers_say():
    """A time that rounds onto the budget shows its second decimal; fine-tuning that is never
    cheaper is not called cheaper; the latency figure is named as compute per answer."""
    from kit.decide import _seconds

    assert _seconds(5.04, 5.0) == "5.04" and _seconds(5.4, 5.0) == "5.4"
    assert _seconds(5.0, 5.0) == "5.0" and _seconds(3.001, 3.0) == "3.001"
    measured = {"latency_p50_s": {"rag": 3.0, "finetuned": 1.7, "hybrid": 2.4}}
    rec = recommend(Questionnaire(latency_budget_s=1.0), measured)
    text = next(r.text for r in rec.reasons if "latency budget" in r.text)
    assert "need per answer here" in text and "of computing" in text and "waits longer" in text
    systems = ("rag", "finetuned", "hybrid")
    same_cost = {
        "prompt_tokens": dict.fromkeys(systems, 39.0),
        "new_tokens": dict.fromkeys(systems, 40.0),
        "latency_p50_s": dict.fromkeys(systems, 1.5),
    }
    rare = recommend(Questionnaire(knowledge_changes="yearly"), same_cost)
    text = next(r.text for r in rare.reasons if "rarely changes" in r.text)
    assert "not the cheaper system at any volume" in text
