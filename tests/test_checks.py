"""The exercise-check API (learntools style)."""

from __future__ import annotations

import pytest

from kit.checks import ExerciseFailed, Incorrect, Question, ____


def _even(n):
    if n % 2:
        raise Incorrect(f"{n} is odd; pick an even number.")
    return f"{n} is even."


def make() -> Question:
    return Question("Question 1", ["n"], _even, "Try 2.", "n = 2")


def test_evaluate_pass_fail_and_blank():
    q = make()
    assert q.evaluate(n=4).passed and "4 is even" in str(q.evaluate(n=4))
    wrong = q.evaluate(n=3)
    assert not wrong and "Incorrect" in str(wrong) and "3 is odd" in str(wrong)
    blank = q.evaluate(n=____)
    assert (
        not blank and not blank.attempted and "not attempted" in str(blank) and "`n`" in str(blank)
    )
    assert not q.evaluate().passed


def test_check_reads_the_callers_variables(capsys):
    q = make()
    n = 6  # noqa: F841 - read by q.check() from this frame
    q.check()
    assert "Correct. 6 is even." in capsys.readouterr().out
    q.check(n=5)
    assert "Incorrect. 5 is odd" in capsys.readouterr().out


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("KIT_CHECKS_STRICT", "1")
    with pytest.raises(ExerciseFailed, match="5 is odd"):
        make().check(n=5)
    make().check(n=8)  # passes silently enough


def test_hint_and_solution(capsys):
    q = make()
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert "Hint (Question 1): Try 2." in out and "n = 2" in out
    # the shipped solution really solves the question
    scope: dict = {}
    exec(q.solution_code, scope)
    assert q.evaluate(n=scope["n"]).passed
