"""kit.costs: the cost model's drivers, the break-even volume and the "60-80% cheaper" regions."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kit import costs
from kit.costs import CostInputs
from tests.fake_results import fake_summary

# A round-number setting whose bills can be worked out by hand.
SIMPLE = CostInputs(
    queries_per_month=1_000_000,
    question_tokens=100,
    context_tokens=900,
    hybrid_context_share=0.5,
    new_tokens=50,
    documents=1_000,
    changed_share=0.1,
    updates_per_month=2,
    input_price_per_m=1.0,
    output_price_per_m=2.0,
    embed_price_per_m=0.1,
    hour_price=1.0,
    doc_tokens=500,
    vector_store_per_month=10,
    training_runs_per_year=12,
    hours_per_run=3,
    people_hours_per_run=2,
    people_hour_price=50,
)


def _bill(inputs: CostInputs) -> dict[str, dict[str, float]]:
    return costs.monthly_costs(inputs).set_index("system").to_dict("index")


def test_defaults_are_seeded_from_the_measured_numbers():
    inputs = CostInputs.from_measured()
    measured = costs.DEFAULT_MEASURED["prompt_tokens"]
    prompts = costs.prompt_tokens(inputs)
    assert prompts["finetuned"] == measured["finetuned"]
    assert prompts["rag"] == pytest.approx(measured["rag"])
    assert prompts["hybrid"] == pytest.approx(measured["hybrid"], rel=0.02)
    assert prompts["rag"] > prompts["hybrid"] > prompts["finetuned"]
    # one 149 s run on 44 documents, scaled to 1,000 documents
    assert inputs.hours_per_run == pytest.approx(149 / 3600 * 1000 / 44, abs=0.01)


def test_measured_numbers_override_the_defaults():
    inputs = CostInputs.from_measured({"prompt_tokens": {"rag": 1039}}, documents=44)
    assert inputs.context_tokens == 1000
    assert inputs.hours_per_run == pytest.approx(149 / 3600, abs=0.01)
    with pytest.raises(ValueError, match="Unknown measured"):
        CostInputs.from_measured({"tokens": 3})


def test_api_bill_by_hand():
    bill = _bill(SIMPLE)
    # RAG: 1M x (1000 x $1 + 50 x $2) / 1M tokens = $1,100; re-embeds 2 x 100 docs x 500 tokens
    assert bill["rag"]["inference"] == pytest.approx(1100)
    assert bill["rag"]["indexing"] == pytest.approx(2 * 100 * 500 * 0.1 / 1e6)
    assert bill["rag"]["vector_store"] == 10
    assert bill["rag"]["training"] == 0 and bill["rag"]["people"] == 0
    # fine-tuned: 1M x (100 x $1 + 50 x $2) / 1M = $200; retrains at each of the 2 updates
    assert bill["finetuned"]["inference"] == pytest.approx(200)
    assert bill["finetuned"]["retrains_per_month"] == 2
    assert bill["finetuned"]["training"] == pytest.approx(2 * 3 * 1.0)
    assert bill["finetuned"]["people"] == pytest.approx(2 * 2 * 50)
    assert bill["finetuned"]["indexing"] == 0 and bill["finetuned"]["vector_store"] == 0
    # hybrid: half the retrieved tokens; retrains only on its own schedule (12 a year)
    assert bill["hybrid"]["inference"] == pytest.approx(650)
    assert bill["hybrid"]["retrains_per_month"] == 1
    for row in bill.values():
        parts = ("inference", "indexing", "vector_store", "training", "people")
        assert row["total"] == pytest.approx(sum(row[k] for k in parts))


def test_self_hosted_pays_for_machine_time():
    inputs = SIMPLE.with_(pricing="self-hosted", prefill_tokens_per_s=1000, decode_tokens_per_s=50)
    seconds = costs.seconds_per_answer(inputs)
    assert seconds["rag"] == pytest.approx(1000 / 1000 + 50 / 50)
    assert seconds["finetuned"] == pytest.approx(100 / 1000 + 1)
    bill = _bill(inputs)
    assert bill["rag"]["inference"] == pytest.approx(1_000_000 * 2.0 / 3600 * 1.0)
    assert bill["rag"]["indexing"] == pytest.approx(200 * inputs.indexing_seconds_per_doc / 3600)


def test_frequent_updates_make_fine_tuning_retrain_more():
    rare = _bill(SIMPLE.with_(updates_per_month=0.1))["finetuned"]
    often = _bill(SIMPLE.with_(updates_per_month=8))["finetuned"]
    assert rare["retrains_per_month"] == 1  # the 12 scheduled runs a year still happen
    assert often["retrains_per_month"] == 8
    assert often["total"] > rare["total"]


def test_savings_shrink_with_volume_and_grow_with_updates():
    base = CostInputs.from_measured()
    by_volume = [costs.rag_savings(base.with_(queries_per_month=q)) for q in (1e3, 1e5, 1e7)]
    assert by_volume == sorted(by_volume, reverse=True)
    by_updates = [costs.rag_savings(base.with_(updates_per_month=u)) for u in (1 / 12, 1, 30)]
    assert by_updates == sorted(by_updates)


def test_the_savings_sentence_names_the_cheaper_side():
    def said(rag: float, ft: float) -> str:
        return costs.savings_sentence(
            pd.DataFrame({"system": ["rag", "finetuned"], "total": [rag, ft]})
        )

    assert said(30.0, 100.0) == "RAG saves 70% compared with the other"
    assert said(480.0, 100.0) == "fine-tuning saves 79% compared with the other"  # not -380%
    assert said(5.0, 0.0) == "fine-tuning costs nothing at these inputs"  # not "-inf%"
    assert said(7.0, 7.0) == "RAG and fine-tuning cost the same"
    assert said(11.67, 7203.14) == "RAG saves over 99% compared with the other"  # not 100%
    assert said(294.87, 295.33) == "RAG saves under 1% compared with the other"  # not 0%


def test_break_even_and_savings_thresholds():
    q = costs.break_even_queries(SIMPLE)
    assert q is not None and q > 0
    totals = _bill(SIMPLE.with_(queries_per_month=q))
    assert totals["rag"]["total"] == pytest.approx(totals["finetuned"]["total"])
    for share in (0.6, 0.8):
        at = costs.queries_at_savings(SIMPLE, share)
        assert costs.rag_savings(SIMPLE.with_(queries_per_month=at)) == pytest.approx(share)
    # if RAG's prompt were no longer than the fine-tuned one, fine-tuning would never win
    assert costs.break_even_queries(SIMPLE.with_(context_tokens=0)) is None
    # the same with the kit's measured defaults and weekly updates, whose per-query costs
    # differed by rounding noise (8.29e+07bn queries a month, said as a break-even)
    weekly = CostInputs.from_measured(None, context_tokens=0, updates_per_month=52 / 12)
    assert costs.break_even_queries(weekly) is None
    assert "With weekly updates RAG stays cheaper at every volume" in costs.claim_verdict(
        CostInputs.from_measured(None, context_tokens=0)
    )


def test_claim_regions_cover_both_outcomes():
    regions = costs.claim_regions(CostInputs.from_measured())
    assert set(regions["region"]) == {
        "RAG >80% cheaper",
        "RAG 60-80% cheaper",
        "RAG <60% cheaper",
        "fine-tuning cheaper",
    }
    cell = regions.set_index(["updates_per_month", "queries_per_month"])["region"]
    assert cell[(1 / 12, 1e8)] == "fine-tuning cheaper"  # rare updates, huge volume
    assert cell[(30.0, 1e2)] == "RAG >80% cheaper"  # daily updates, small volume
    claim = regions[regions["region"] == "RAG 60-80% cheaper"]
    assert claim["savings"].between(0.6, 0.8).all()


def test_verdict_names_the_claim_and_where_fine_tuning_wins():
    text = costs.claim_verdict(CostInputs.from_measured())
    assert "RAG 60-80% cheaper from" in text
    assert "fine-tuning cheaper above" in text
    assert "With rare updates (once a year) fine-tuning is cheaper above" in text


def test_cost_curves_match_the_bill():
    inputs = CostInputs.from_measured()
    curves = costs.cost_curves(inputs, queries=[1e3, 1e6])
    assert len(curves) == 2 * len(costs.SYSTEMS)
    point = curves[(curves["queries_per_month"] == 1e6) & (curves["system"] == "rag")]
    assert point["cost"].item() == pytest.approx(
        _bill(inputs.with_(queries_per_month=1e6))["rag"]["total"]
    )
    yearly = costs.cost_curves(inputs, queries=[1e6], yearly=True)
    assert yearly["cost"].sum() == pytest.approx(
        12 * curves[curves.queries_per_month == 1e6].cost.sum()
    )
    with pytest.raises(ValueError, match="No query volumes"):
        costs.cost_curves(inputs, queries=[])


def test_measured_from_summary_reads_tokens_and_speeds():
    measured = costs.measured_from_summary(fake_summary())
    assert measured["prompt_tokens"]["rag"] == 700
    assert "base" not in measured["prompt_tokens"]
    # decode speed from the shortest prompt (finetuned: 12 tokens in 1.3 s)
    assert measured["decode_tokens_per_s"] == pytest.approx(12 / 1.3)
    assert measured["prefill_tokens_per_s"] > 0
    inputs = CostInputs.from_measured(measured)
    assert inputs.context_tokens == 661
    with pytest.raises(ValueError, match="needs rows"):
        costs.measured_from_summary(fake_summary().iloc[0:0])
    # your data without examples: base and rag only; rag's time also reads its long prompt
    table = fake_summary().set_index("system").loc[["base", "rag"]].reset_index()
    only_rag = costs.measured_from_summary(table)
    base = table.set_index("system").loc["base"]
    assert only_rag["decode_tokens_per_s"] == pytest.approx(base.new_tokens / base.latency_p50_s)
    assert "decode_tokens_per_s" not in costs.measured_from_summary(table.iloc[1:])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"pricing": "barter"}, "pricing must be"),
        ({"queries_per_month": -1}, "cannot be negative"),
        ({"decode_tokens_per_s": 0}, "above zero"),
    ],
)
def test_bad_inputs_say_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        costs.monthly_costs(SIMPLE.with_(**change))


def test_unknown_field_is_refused():
    with pytest.raises(ValueError, match="no field"):
        SIMPLE.with_(tokens=3)


def test_format_count():
    assert [costs.format_count(v) for v in (950, 12_345, 1_250_000)] == ["950", "12.3k", "1.25M"]
    assert [costs.format_count(v) for v in (999.6, 999_600, 2.5e9)] == ["1k", "1M", "2.5bn"]
    assert costs.format_count(2.5e12) == "over a trillion"  # not 2.5e+03bn
    assert not math.isnan(costs.rag_savings(SIMPLE))
