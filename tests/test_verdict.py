"""kit.verdict: the report's opening sentences, on synthetic results with known answers."""

from __future__ import annotations

import pandas as pd

from kit import verdict
from kit.evaluate import INTERVAL_COLUMNS, interval_table, summarise_intervals
from tests.fake_results import fake_scores


def _extras() -> dict[str, pd.DataFrame]:
    fresh = pd.DataFrame(
        {
            "system": ["rag (re-indexed v2)"] * 4 + ["finetuned (trained on v1)"] * 4,
            "current": [1, 1, 1, 0, 0, 0, 0, 0],
        }
    )
    privacy = pd.DataFrame({"system": ["base", "rag (admin)"], "leaked": [0.0, 1.0]})
    return {"freshness": fresh, "privacy": privacy}


def test_the_verdict_names_the_best_system_and_what_the_data_can_tell():
    lines = verdict.verdict(fake_scores(), _extras())
    assert lines[0].startswith("Best on correct: rag, 0.88 [") and "on 8 questions" in lines[0]
    assert "rag and hybrid cannot be told apart" in lines[1]  # they differ on 2 of 8 questions
    assert any(line.startswith("finetuned") and "style" in line for line in lines)
    assert "  rag (re-indexed v2): current 0.75 [0.30, 0.95] (4 questions)." in lines
    assert lines[-1] == "Leaked the confidential canary at least once: rag (admin)."


def test_a_verdict_without_experiments_or_fine_tuning_still_reads():
    scores = fake_scores()
    nothing = scores.iloc[:0]  # no question scored: said, and a table of dashes, not a crash
    assert verdict.verdict(nothing) == ["No system was scored on correct."]
    assert list(summarise_intervals(nothing).columns) == list(INTERVAL_COLUMNS)
    assert interval_table(nothing).empty
    only = scores[scores["system"].isin(["rag", "hybrid"])]
    lines = verdict.verdict(only)
    assert lines[0].startswith("Best on correct: rag") and len(lines) == 2
    assert verdict.fine_tuning_effect(only) == []
    none_leaked = {"privacy": pd.DataFrame({"system": ["base"], "leaked": [0.0]})}
    assert verdict.verdict(only, none_leaked)[-1] == "No system leaked the confidential canary."


def test_the_verdict_says_what_the_learned_decision_did():
    # 20 questions, 4 unanswerable: the decision declines 3 of them and 1 answerable one
    unanswerable = [True] * 4 + [False] * 16
    by_decision = [True, True, True, False, True] + [False] * 15
    correct_without = [0.0] * 4 + [1.0] * 10 + [0.0] * 6
    correct = [1.0, 1.0, 1.0, 0.0, 0.0] + [1.0] * 9 + [0.0] * 6
    table = pd.DataFrame(
        {
            "system": "rag",
            "id": [f"q{i}" for i in range(20)],
            "unanswerable": unanswerable,
            "by_retrieval": False,
            "by_model": False,
            "by_decision": by_decision,
            "correct_without": correct_without,
            "correct": correct,
        }
    )
    head = 'With the learned "I don\'t know" (retrieval signals, fit on the train split)'
    lines = verdict.verdict(fake_scores(), {"abstention": table})
    said = next(line for line in lines if line.startswith(head))
    assert said.startswith(f"{head}, rag declined 3 of 4 (0.75 [")  # one system
    assert "1 of 16 (0.06 [" in said
    assert said.endswith("answerable ones (by retrieval, the model or the decision):")
    follows = lines[lines.index(said) + 1]
    assert follows.startswith("  On 20 questions rag with it and without cannot be told apart")
    # the same declines for two systems are said once; different ones per system
    other = table.assign(system="hybrid", correct=table["correct_without"])
    twice = verdict.decision_sentences(pd.concat([table, other]))
    assert ", rag and hybrid each declined 3 of 4 (" in twice[0] and len(twice) == 3
    assert twice[2] == (
        "  hybrid with it and without score the same on correct on all 20 questions "
        "(95% CI of the difference -17 to +17)."
    )
    fewer = other.assign(by_decision=False)
    apart = verdict.decision_sentences(pd.concat([table, fewer]))
    assert apart[0].endswith("each system declined (by retrieval, the model or the decision):")
    assert (
        apart[2].startswith("  hybrid: declined 0 of 4 (0.00 [") and "0 of 16 (0.00 [" in apart[2]
    )
    assert verdict.decision_sentences(pd.DataFrame()) == []


def test_a_ranking_over_unlike_question_sets_says_so():
    scores = fake_scores()
    rag_rows = scores.index[scores["system"] == "rag"]
    fewer = scores.drop(rag_rows[:4])  # rag scored on 4 of the 8 questions
    lines = verdict.best_system(fewer[fewer["system"].isin(["rag", "hybrid"])])
    assert any("different numbers of questions" in line for line in lines)
    same = verdict.best_system(scores[scores["system"].isin(["rag", "hybrid"])])
    assert not any("different numbers" in line for line in same)


def test_a_verdict_on_one_question_says_one_question():
    one = fake_scores()
    one = one[one["id"] == "q1"]
    text = "\n".join(verdict.verdict(one))
    assert "on 1 question." in text and "on the one question" in text
    assert "1 questions" not in text and "On 1 question " in text
