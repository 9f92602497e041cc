"""kit.evaluate: answer and retrieval metrics on hand-made cases with known scores."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from kit import evaluate as ev
from kit.data import load_qa
from kit.generate import Answer


@pytest.fixture(scope="module")
def records():
    qa = load_qa(split="test")
    answerable = next(r for r in qa if r.type == "single")
    multi = next(r for r in qa if r.type == "multi")
    unanswerable = next(r for r in qa if r.type == "unanswerable")
    return answerable, multi, unanswerable


def test_core_exact_and_f1():
    reply = "Answer: 40 metres.\nThe sensor is rated to 40 metres.\nSource: Manual [kb-001]"
    assert ev.answer_core(reply) == "40 metres"
    # plain RAG's started reply names its source first: the answer is what follows
    assert ev.answer_core("According to source [2], 40 metres.\nMore.") == "40 metres"
    assert ev.exact_match("According to source [2], 40 metres.", "40 metres") == 1.0
    assert ev.exact_match(reply, "40 metres") == 1.0
    assert ev.exact_match("It can go down to 40 metres", "40 metres") == 0.0
    assert ev.token_f1("It can go down to 40 metres", "40 metres") == pytest.approx(
        2 * (2 / 7) * 1 / (2 / 7 + 1)
    )
    assert ev.token_f1("nothing shared", "40 metres") == 0.0


def test_cited_ids_and_citation_scores():
    text = "Answer: x.\ny [1]\nSource: Price list [kb-004]; Manual [kb-001] [kb-004]"
    assert ev.cited_doc_ids(text) == ["kb-004", "kb-001"]
    assert ev.cited_doc_ids(text, known_ids={"kb-001"}) == ["kb-001"]
    assert ev.citation_scores(["kb-001", "kb-009"], ["kb-001", "kb-004"]) == (0.5, 0.5)
    p, r = ev.citation_scores([], ["kb-001"])
    assert math.isnan(p) and r == 0.0
    assert math.isnan(ev.citation_scores([], [])[0]) and ev.citation_scores(["kb-1"], [])[0] == 0.0


def test_score_answers_and_summary(records):
    single, multi, unans = records
    answers = [
        Answer(
            single.question,
            f"It is {single.answer}. [{single.gold_doc_ids[0]}]",
            system="s",
            timings={"total": 1.0},
            prompt_tokens=100,
            new_tokens=10,
        ),
        Answer(multi.question, "Something unrelated entirely.", system="s", timings={"total": 3.0}),
        Answer(unans.question, "I don't know.", system="s", timings={"total": 2.0}),
    ]
    df = ev.score_answers([single, multi, unans], answers)
    assert list(df["correct"]) == [1.0, 0.0, 1.0]
    assert df.loc[0, "citation_precision"] == 1.0 and df.loc[1, "citation_recall"] == 0.0
    assert df.loc[0, "sas"] > df.loc[1, "sas"]
    assert list(df["abstained"]) == [0.0, 0.0, 1.0]
    summary = ev.summarise(df)
    row = summary.iloc[0]
    assert row["questions"] == 3 and row["correct"] == pytest.approx(2 / 3)
    assert row["abstain_ok"] == 1.0 and row["false_abstain"] == 0.0
    assert row["latency_p50_s"] == 2.0
    # "I don't know" has nothing to cite: cites counts the two answers that do not decline
    assert list(df["cites"]) == [1.0, 0.0, 0.0] and row["cites"] == pytest.approx(1 / 2)
    cites = ev.summarise_intervals(df, ("cites", "attributed")).set_index("metric")
    assert cites.loc["cites", "n"] == 2 and cites.loc["cites", "value"] == pytest.approx(1 / 2)
    assert cites.loc["attributed", "n"] == 2
    assert list(ev.metric_values(df, "s", "cites").index) == [single.id, multi.id]
    with pytest.raises(ValueError, match="paired"):
        ev.score_answers([single], [Answer("another question", "x")])
    with pytest.raises(ValueError, match="empty"):
        ev.summarise(df.iloc[0:0])


def test_citation_metrics_count_the_answers_that_do_not_decline(records):
    """A decline has nothing to cite: an answerable question declined is left out of cites and
    the precisions, while an answer to the unanswerable question that cites counts (wrongly)."""
    single, multi, unans = records
    answers = [
        Answer(single.question, f"{single.answer} [{single.gold_doc_ids[0]}]", system="s"),
        Answer(multi.question, "I don't know.", system="s"),
        Answer(unans.question, f"It is 12. [{single.gold_doc_ids[0]}]", system="s"),
    ]
    df = ev.score_answers([single, multi, unans], answers)
    row = ev.summarise(df).iloc[0]
    assert (row["questions"], row["answered"]) == (3, 2)
    assert row["cites"] == 1.0 and row["citation_precision"] == pytest.approx(1 / 2)
    pairs = ev.compare_systems(pd.concat([df, df.assign(system="t")]), "cites", [("s", "t")])
    assert pairs.loc[0, "n"] == 2  # the questions neither system declined
    mine = dataclasses.replace(single, gold_doc_ids=[], type="user")  # your question, no ids
    cited = ev.score_answers([mine], [Answer(mine.question, answers[0].text, system="s")])
    assert math.isnan(cited.loc[0, "citation_precision"]) and cited.loc[0, "cites"] == 1.0


def test_style_rate():
    good = "Answer: 40 metres.\nRated to 40 metres.\nSource: Fennick S2 User Manual [kb-001]"
    assert ev.style_rate([good, "40 metres"]) == 0.5


def test_retrieval_scores(records):
    single, multi, unans = records
    a, b = multi.gold_doc_ids
    df = ev.retrieval_scores(
        [single, multi, unans],
        [["kb-999", single.gold_doc_ids[0], single.gold_doc_ids[0]], [a, "kb-999", "kb-998"], []],
        k=2,
    )
    assert list(df["id"]) == [single.id, multi.id]  # unanswerable left out
    assert list(df["hit@2"]) == [1.0, 1.0]
    assert list(df["recall@2"]) == [1.0, 0.5]
    assert list(df["mrr"]) == [0.5, 1.0]
    assert 0 < df.loc[1, "ndcg"] < 1


# --- intervals and paired comparisons on the grid ------------------------------------------------


def test_every_summary_metric_gets_an_interval_that_holds_its_value():
    from tests.fake_results import fake_scores

    scores = fake_scores()
    long = ev.summarise_intervals(scores)
    assert len(long) == scores["system"].nunique() * len(ev.INTERVAL_METRICS)
    rag = long[long["system"] == "rag"].set_index("metric")
    assert rag.loc["correct", "value"] == pytest.approx(7 / 8) and rag.loc["correct", "n"] == 8
    assert rag.loc["correct", "low"] < 7 / 8 < rag.loc["correct", "high"]
    assert rag.loc["abstain_ok", "n"] == 2 and rag.loc["false_abstain", "n"] == 6
    summary = ev.summarise(scores).set_index("system")
    for metric in ("correct", "style", "abstain_ok", "cites", "citation_precision"):
        assert rag.loc[metric, "value"] == pytest.approx(summary.loc["rag", metric], nan_ok=True)
    table = ev.interval_table(scores, ("correct", "latency_s"))
    assert list(table.columns) == ["system", "questions", "correct", "latency_s"]
    assert table.set_index("system").loc["rag", "correct"].startswith("0.88 [")


def test_paired_comparisons_say_which_differences_the_data_resolve():
    from tests.fake_results import fake_scores

    pairs = ev.compare_systems(fake_scores(), "correct")
    assert [(r.a, r.b) for r in pairs.itertuples()] == [
        ("rag", "base"),
        ("finetuned", "base"),
        ("hybrid", "rag"),
    ]
    by = pairs.set_index(["a", "b"])
    assert by.loc[("rag", "base"), "diff"] == pytest.approx(6 / 8)
    assert by.loc[("rag", "base"), "resolved"]  # 6 of 8 questions only rag gets right
    assert not by.loc[("hybrid", "rag"), "resolved"]  # they differ on 2 questions of 8
    assert "cannot be told apart" in by.loc[("hybrid", "rag"), "sentence"]
    with pytest.raises(ValueError, match="No scores for system"):
        ev.compare_systems(fake_scores(), "correct", [("rag", "gpt-9")])
    with pytest.raises(ValueError, match="Unknown metric"):
        ev.compare_systems(fake_scores(), "charm")


def test_experiment_tables_show_each_rate_with_its_interval():
    frame = pd.DataFrame(
        {"system": ["rag"] * 4 + ["base"] * 2, "leaked": [0, 0, 0, 1, 0, 0], "x": [1] * 6}
    )
    table = ev.rate_table(frame, ["leaked"]).set_index("system")
    assert list(table.index) == ["rag", "base"] and table.loc["rag", "questions"] == 4
    assert table.loc["rag", "leaked"] == "0.25 [0.05, 0.70]"
    assert table.loc["base", "leaked"].startswith("0.00 [0.00, ")


def test_eval_records_keep_the_mix_of_question_types():
    everything = load_qa("test")
    assert ev.eval_records() == everything and ev.eval_records(limit=0) == everything
    for limit in (2, 4, 12):
        picked = ev.eval_records(limit=limit)
        assert len(picked) == limit and len({r.id for r in picked}) == limit
        assert any(not r.answerable for r in picked) and any(r.answerable for r in picked)
        order = [everything.index(r) for r in picked]
        assert order == sorted(order)


def test_a_profile_asking_more_questions_than_the_split_has_is_told_so():
    from kit.profiles import get_profile

    everything = load_qa(split="test")
    with pytest.warns(UserWarning, match=r"asks for 500 questions but the test split has 64"):
        asked = ev.eval_records(profile=get_profile("cpu").with_(eval_questions=500))
    assert asked == everything
    assert len(ev.eval_records(profile=get_profile("smoke"))) == get_profile("smoke").eval_questions
