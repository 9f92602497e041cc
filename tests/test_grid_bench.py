"""kit.grid_bench: the grid benchmark prints its figures (real models, a few questions)."""

from __future__ import annotations

import pytest

from kit import grid_bench
from kit.generate import Answer


def test_time_answers_counts_speed_and_equal_texts():
    def one(q: str) -> Answer:
        return Answer(q, q.upper(), new_tokens=3)

    def many(qs: list[str]) -> list[Answer]:
        return [Answer(q, q.upper() if q != "b" else "?", new_tokens=3) for q in qs]

    figures = grid_bench.time_answers(one, many, ["a", "b", "c"])
    assert figures["same_text"] == 2 and figures["questions"] == 3
    assert figures["alone_answers_per_s"] > 0 and figures["batched_tokens_per_s"] > 0


@pytest.mark.slow
def test_benchmark_prints_speeds_agreement_and_intervals(capsys, smoke_comparison):
    assert grid_bench.main(["--questions", "4", "--profile", "smoke", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    for system in ("rag", "base"):
        line = next(ln for ln in out.splitlines() if ln.startswith(system + " "))
        assert "one at a time" in line and "batched" in line and "same text" in line
    assert "cached comparison: 4 questions per system" in out
    assert "correct hybrid-raft" in out and "±" in out


def test_without_a_cached_comparison_it_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_CACHE", str(tmp_path))  # an empty cache: nothing computed yet
    for profile in ("smoke", None):  # a name, or the profile picked for this machine
        (line,) = grid_bench.stage_lines(profile)
        assert line.startswith("no cached comparison for the ") and "run `make demo`" in line
