"""ddr.report.statistics against scipy/numpy on known data: intervals, t tests, Holm, letters, power."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ddr.report import statistics as st


def test_t_interval_and_estimate_of_one_distillation_match_scipy() -> None:
    values = [0.61, 0.64, 0.58, 0.66, 0.63]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    ci = st.t_interval(values)
    assert ci is not None and (ci.low, ci.high) == pytest.approx((low, high), abs=1e-12)
    e = st.estimate([values])
    assert e.mean == pytest.approx(np.mean(values), abs=1e-15) and e.std == pytest.approx(np.std(values, ddof=1))
    assert e.n == 5 and e.groups == 1 and e.ci is not None and e.ci.low == pytest.approx(low, abs=1e-12)
    assert "one distillation" in e.ci.method and e.covers == "students of one distillation"
    one = st.estimate([[0.7]])
    assert one.n == 1 and one.ci is None and one.std == 0.0
    assert st.estimate([]).mean is None and st.estimate([[None]]).n == 0  # type: ignore[list-item]


def test_one_sample_paired_and_welch_tests_are_scipys() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.1, 7), rng.normal(0.45, 0.2, 9)
    one = st.one_sample_test(a - 0.5)
    ref = stats.ttest_1samp(a - 0.5, 0.0)
    assert one is not None and (one.statistic, one.p_value, one.df) == pytest.approx((ref.statistic, ref.pvalue, 6))
    ci = ref.confidence_interval(0.95)
    assert (one.ci.low, one.ci.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    paired = st.paired_test(a, b[:7])
    ref = stats.ttest_rel(a, b[:7])
    assert paired is not None and (paired.statistic, paired.p_value) == pytest.approx((ref.statistic, ref.pvalue))
    welch = st.welch_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert welch is not None and (welch.statistic, welch.p_value, welch.df) == pytest.approx(
        (ref.statistic, ref.pvalue, ref.df))
    ci = ref.confidence_interval(0.95)
    assert (welch.ci.low, welch.ci.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert st.one_sample_test([0.3]) is None and st.welch_test([1.0], [1.0, 2.0]) is None
    with pytest.raises(ValueError, match="equal length"):
        st.paired_test([1.0, 2.0], [1.0])


def test_constant_differences_are_certain_not_nan() -> None:
    same = st.one_sample_test([0.02, 0.02, 0.02])
    zero = st.one_sample_test([0.0, 0.0])
    assert same is not None and same.p_value == 0.0 and zero is not None and zero.p_value == 1.0


def test_a_paired_test_finds_what_an_unpaired_one_misses() -> None:
    """Students that share seeds share most of their noise: method A is better than B by 0.01 at
    every seed, while seeds differ by ± 0.05. Paired: certain. Unpaired: lost in the spread."""
    seeds = np.array([0.52, 0.61, 0.47, 0.58, 0.66, 0.50, 0.55, 0.63])
    jitter = np.array([0.001, -0.002, 0.0015, 0.0, -0.001, 0.002, -0.0005, 0.001])
    a, b = seeds + 0.01 + jitter, seeds
    paired, welch = st.paired_test(a, b), st.welch_test(a, b)
    assert paired is not None and welch is not None
    assert paired.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue) and paired.p_value < 1e-5
    assert welch.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue) and welch.p_value > 0.5


def test_holm_on_a_worked_example_and_against_its_definition() -> None:
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = list(rng.uniform(0, 0.2, rng.integers(1, 8)))
        adjusted = st.holm(p)
        order = np.argsort(p)
        m = len(p)
        expected = np.maximum.accumulate([min(1.0, (m - k) * p[i]) for k, i in enumerate(order)])
        assert [adjusted[i] for i in order] == pytest.approx(list(expected))
    assert st.holm([]) == []


def test_hierarchical_bootstrap_is_deterministic_and_counts_distillation_variance() -> None:
    groups = [[0.60, 0.61, 0.62], [0.70, 0.71, 0.69], [0.50, 0.52, 0.51], [0.66, 0.64, 0.65]]
    first, again = st.estimate(groups), st.estimate(groups)
    assert first.ci == again.ci and first.groups == 4 and first.n == 12
    assert first.mean == pytest.approx(np.mean(np.concatenate(groups)), abs=1e-15)
    assert "hierarchical bootstrap over 4 distillations" in first.ci.method
    means = st.hierarchical_bootstrap(groups)
    assert means.shape == (st.BOOTSTRAP_REPS,)
    assert float(means.mean()) == pytest.approx(first.mean, abs=0.005)
    # the spread comes from the distillations: close to the bootstrap of the 4 group means alone,
    # wider than a t interval that treats the 12 students as independent
    pooled_t = st.t_interval(np.concatenate(groups))
    group_means = np.array([np.mean(g) for g in groups])
    boot_sd_of_means = group_means.std(ddof=0) / math.sqrt(len(groups))
    assert float(means.std()) == pytest.approx(boot_sd_of_means, rel=0.15)
    assert pooled_t is not None
    width_t = pooled_t.high - pooled_t.low
    assert (first.ci.high - first.ci.low) > 1.3 * width_t  # 1.47x here
    flat = st.estimate([[0.5, 0.5], [0.5, 0.5]])
    assert flat.ci is not None and flat.ci.low == flat.ci.high == 0.5


def test_letter_groups_separate_exactly_the_significant_pairs() -> None:
    assert st.letter_groups(3, set()) == ["a", "a", "a"]
    assert st.letter_groups(4, {(0, 3), (1, 3), (0, 2)}) == ["a", "ab", "bc", "c"]
    assert st.letter_groups(3, {(0, 1), (0, 2), (1, 2)}) == ["a", "b", "c"]
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 7))
        pairs = {(i, j) for i, j in itertools.combinations(range(n), 2) if rng.random() < 0.4}
        letters = st.letter_groups(n, pairs)
        for i, j in itertools.combinations(range(n), 2):
            share = bool(set(letters[i]) & set(letters[j]))
            assert share == ((i, j) not in pairs), (n, pairs, letters)


def test_rank_range() -> None:
    better = {(0, 2), (1, 2)}  # 0 and 1 beat 2; 0 vs 1 unknown
    assert [st.rank_range(k, 3, better) for k in range(3)] == [(1, 2), (1, 2), (3, 3)]
    assert st.rank_range(0, 4, set()) == (1, 4)


@pytest.mark.parametrize(("d", "paired", "n"), [(0.5, False, 64), (0.8, False, 26), (0.2, False, 394),
                                                (0.5, True, 34), (1.0, True, 10)])
def test_required_n_matches_the_published_tables(d: float, paired: bool, n: int) -> None:
    """Cohen (1988), Table 2.4.1 (two-sample, α = 0.05 two-sided, power 0.8: d 0.5 → 64, 0.8 → 26,
    0.2 → 393 by its normal approximation, 394 exactly); paired d 0.5 → 34, d 1.0 → 10 (G*Power)."""
    assert st.required_n(d * 0.02, 0.02, paired=paired) == n
    assert st.power_two_sided(n, d, paired=paired) >= 0.8 > st.power_two_sided(n - 1, d, paired=paired)
    assert st.required_n(0.0, 0.1, paired=False) is None and st.required_n(0.1, 0.0, paired=True) == 2
    assert st.required_n(1e-9, 1.0, paired=False) is None  # beyond MAX_N
