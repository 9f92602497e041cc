"""kit.stats: intervals and paired comparisons against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kit import stats


def test_wilson_interval_matches_the_textbook_case():
    ci = stats.proportion_interval([1, 1, 1] + [0] * 7)  # 3 of 10
    assert (ci.value, ci.n) == (0.3, 10)
    assert ci.low == pytest.approx(0.1078, abs=1e-4) and ci.high == pytest.approx(0.6032, abs=1e-4)
    assert ci.format() == "0.30 [0.11, 0.60]"
    all_right = stats.proportion_interval([1] * 16)
    assert all_right.high == 1.0 and all_right.low == pytest.approx(0.8063, abs=1e-4)


def test_nothing_measured_is_a_dash_not_nan_or_a_crash():
    for empty in ([], [math.nan, math.nan]):
        assert str(stats.proportion_interval(empty)) == "–"
        assert str(stats.mean_interval(empty)) == "–"
        assert stats.interval(empty).n == 0
    diff = stats.paired_difference([], [], "rag", "base", "correct")
    assert diff.n == 0 and not diff.resolved and "no scored question" in diff.sentence()


def test_bootstrap_interval_of_a_mean_is_reproducible_and_covers_the_mean():
    values = [0.1, 0.4, 0.35, 0.8, 0.0, 0.55, 0.9, 0.2]
    a, b = stats.mean_interval(values), stats.mean_interval(values)
    assert a == b  # same seed, same interval
    assert a.low < a.value < a.high and a.value == pytest.approx(sum(values) / len(values))
    assert stats.mean_interval([0.5, 0.5]).format() == "0.50 [0.50, 0.50]"  # all the same
    one = stats.mean_interval([0.5], bounds=(0, 1))  # one value: no spread, so no interval
    assert math.isnan(one.low) and one.format() == "0.50 (1 value: no interval)"
    pair = stats.paired_difference([0.7], [0.5], "hybrid", "rag", "SAS")
    assert not pair.resolved and "one question gives no interval" in pair.sentence()
    assert "+20 points" in pair.sentence()
    assert stats.interval(values) == a and stats.interval([0, 1, 1]).n == 3
    with pytest.raises(ValueError, match="0/1"):
        stats.proportion_interval([0.5, 1])


def test_exact_mcnemar_counts_only_the_questions_where_the_systems_disagree():
    a = [1] * 6 + [0] * 1 + [1] * 5 + [0] * 4  # right on 6 that b misses, 5 both, 4 neither
    b = [0] * 6 + [1] * 1 + [1] * 5 + [0] * 4  # right on 1 that a misses
    assert stats.mcnemar_exact(a, b) == pytest.approx(16 / 128)  # 2 * P(X >= 6), X ~ Bin(7, .5)
    assert stats.mcnemar_exact([1, 0], [1, 0]) == 1.0


def test_a_difference_the_data_resolve_and_one_they_do_not():
    clear = stats.paired_difference(
        [1] * 12 + [0] * 4, [0] * 12 + [0] * 4, "raft", "rag", "correct"
    )
    assert clear.resolved and clear.diff == 0.75 and clear.low > 0
    assert clear.p_value is not None and clear.p_value < 0.001
    assert clear.sentence().startswith("raft scores higher than rag on correct: +75 points")
    close = stats.paired_difference([1, 0, 1, 0] * 4, [0, 1, 1, 0] * 4, "hybrid", "rag", "correct")
    assert close.diff == 0 and not close.resolved and close.low < 0 < close.high
    assert close.sentence().startswith("On 16 questions hybrid and rag cannot be told apart")
    seconds = stats.paired_difference([2.0, 2.5, 3.0] * 3, [1.0, 1.1, 0.9] * 3, "rag", "base")
    assert seconds.p_value < 0.01 and seconds.resolved
    assert "+1.50 s" in seconds.sentence(unit="s")
    three = stats.paired_difference([2.0, 2.5, 3.0], [1.0, 1.1, 0.9], "rag", "base", "latency")
    assert three.low > 0 and three.p_value == 0.25 and not three.resolved  # 3 pairs say little
    same = stats.paired_difference([1, 0, 0], [1, 0, 0], "finetuned", "base", "style")
    assert same.sentence() == (
        "finetuned and base score the same on style on all 3 questions "
        "(95% CI of the difference -71 to +71)."  # 3 questions say little
    )
    equal = stats.paired_difference([0.5, 0.25], [0.5, 0.25], "hybrid", "rag", "f1")
    assert equal.sentence() == "hybrid and rag score the same on f1 on all 2 questions."
    assert "+75 points, 95% CI" in clear.sentence()
    ninety = stats.paired_difference([1] * 12 + [0] * 4, [0] * 16, confidence=0.9)
    assert "+75 points, 90% CI" in ninety.sentence() and ninety.low > clear.low  # narrower


def test_a_0_1_difference_is_resolved_exactly_when_mcnemar_rejects():
    few = stats.paired_difference([1] * 4 + [0] * 44, [0] * 48, "hybrid", "rag", "correct")
    assert few.p_value == pytest.approx(0.125) and few.low < 0 < few.high and not few.resolved
    assert few.sentence().startswith("On 48 questions hybrid and rag cannot be told apart")
    for only_a in range(9):  # the interval and the test never disagree
        for only_b in range(9):
            a = [1] * only_a + [0] * only_b + [1] * 5 + [0] * 20
            b = [0] * only_a + [1] * only_b + [1] * 5 + [0] * 20
            diff = stats.paired_difference(a, b)
            assert diff.low <= diff.diff <= diff.high
            assert diff.resolved == (diff.p_value < 0.05), (only_a, only_b)
    (one,) = [stats.paired_difference([1], [0])]  # one question: nothing to resolve
    assert not one.resolved and one.low < 0
    five = stats.paired_difference([1] * 5 + [0] * 43, [0] * 48, "rag", "base", "correct")
    assert five.low < 0 and "+10 points, 95% CI -1 to +23" in five.sentence()  # not "-0"


def test_the_paired_interval_holds_the_true_difference_95_times_in_100():
    # A right where B is wrong on 10% of questions, never the other way round: an interval
    # that scaled by the observed disagreements ended at the estimate and held the truth in
    # about half of such runs
    rng, held = np.random.default_rng(0), 0
    for _ in range(400):
        a = (rng.random(48) < 0.1).astype(float)
        low, high = stats.mcnemar_interval(a, np.zeros(48))
        held += low <= 0.1 <= high
    assert held >= 0.95 * 400
    low, high = stats.mcnemar_interval([1] * 4 + [0] * 44, [0] * 48)
    assert high > 4 / 48 and round(low, 2) == -0.04 and round(high, 2) == 0.20
    low, high = stats.mcnemar_interval([1, 0] * 24, [1, 0] * 24)  # never disagree on 48
    assert low == -high and 0.07 < high < 0.08  # they still might on up to 7% of questions


def test_pairs_with_a_missing_value_are_left_out():
    diff = stats.paired_difference([1, math.nan, 0], [0, 1, math.nan])
    assert diff.n == 1 and diff.diff == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_difference([1, 0], [1])


def test_figures_are_rounded_to_what_their_interval_justifies():
    assert stats.justified_decimals(0.13) == 2  # a rate on 48 questions: 0.35 [0.23, 0.50]
    assert stats.justified_decimals(1.5) == 1  # seconds that vary by a second and a half
    assert stats.justified_decimals(30.0) == 0  # tokens that vary by tens
    assert stats.justified_decimals(0.004) == 2  # never more than two decimals
    assert stats.justified_decimals(0.0) == 2 and stats.justified_decimals(float("nan")) == 2
    seconds = stats.mean_interval([4.0, 6.5, 9.0, 5.5, 7.0, 3.0])
    assert seconds.half_width > 1 and seconds.format().count(".") == 3  # one decimal each
    assert seconds.format(digits=3).startswith(f"{seconds.value:.3f} [")  # asked: as asked


def test_a_bound_that_is_not_zero_never_reads_as_zero():
    """A resolved difference whose lower bound is just above zero must not print "+0.0"."""
    close = stats.Difference("a", "b", "correct", 0.1, 0.0004, 0.2, 48, 0.04, "paired bootstrap")
    assert close.resolved
    assert "CI +0.04 to +20" in close.sentence()
    assert stats._signed(-0.00003, "points") == "-0.003"
    assert stats._signed(0.004, "F1") == "+0.004" and stats._signed(0.25, "F1") == "+0.25"
    assert stats._signed(0.0, "points") == "+0" and stats._signed(-0.004, "points") == "-0.4"
    assert stats._signed(0.25, "points") == "+25"


def test_two_questions_never_resolve_a_score_difference_however_large():
    d = stats.paired_difference([0.5, 1.0], [0.0, 0.5], "a", "b", "f1")
    assert d.low == d.high == pytest.approx(0.5)  # no spread in the differences ...
    assert d.p_value == pytest.approx(0.5) and not d.resolved  # ... and no evidence either
    assert "cannot be told apart" in d.sentence()
    rng = np.random.default_rng(1)
    x = rng.beta(2, 3, 48)
    clear = stats.paired_difference(x, np.clip(x - 0.1 + rng.normal(0, 0.05, 48), 0, 1))
    assert clear.resolved and clear.p_value < 0.001 and "Wilcoxon" in clear.test


def test_a_small_samples_mean_interval_holds_the_truth_about_95_times_in_100():
    """Below MIN_BOOTSTRAP values the percentile bootstrap is too narrow (about 78% at n = 4 on
    these draws); Student's t holds the true mean about as often as it claims."""
    rng = np.random.default_rng(7)
    true_mean = 2 / 5  # beta(2, 3)
    for n in (4, 8):
        held = 0
        for _ in range(300):
            ci = stats.mean_interval(rng.beta(2, 3, n), bounds=(0, 1))
            held += ci.low <= true_mean <= ci.high
        assert held / 300 >= 0.9, (n, held)
    wide = stats.mean_interval([0.2, 0.9], bounds=(0.0, 1.0))
    assert (wide.low, wide.high) == (0.0, 1.0)  # a score's interval stays within 0 to 1


def test_seconds_are_measurements_even_when_every_one_is_zero_or_one():
    """A system without timings scores 0 s on every question: not a rate of 0%."""
    zeros = [0.0] * 6 + [1.0] * 2
    assert stats.interval(zeros).format() != stats.interval(zeros, rate=False).format()
    measured = stats.interval(zeros, rate=False, bounds=(0.0, math.inf))
    assert measured.low >= 0.0 and measured.value == 0.25
    d = stats.paired_difference([1.0] * 8, [0.0] * 8, "a", "b", "latency_s", rate=False)
    assert "Wilcoxon" in d.test and d.p_value is not None


def test_tiny_bounds_print_in_fixed_point_and_a_lone_interval_names_its_test():
    assert stats._signed(1e-7, "points") == "+0.00001"  # not "+1e-05"
    d = stats.paired_difference([0.5, 1.0], [0.0, 0.5], "a", "b", "f1")
    assert d.sentence().endswith("(+50 points, 95% CI +50 to +50; Wilcoxon signed-rank p = 0.5).")
