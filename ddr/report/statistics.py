"""The statistics behind a leaderboard: intervals, tests, multiple comparisons, tie groups, power.

A leaderboard number is a mean over *students* (fresh networks trained on one distilled set) and,
when a method was distilled with several seeds, over *distillations*. The two levels are nested:
students of one distilled set share its luck, so the replicate that a claim about the METHOD
rests on is the distillation. Every function here says which level it covers.

- :func:`estimate`: mean, sample std (ddof=1) and a 95 % interval. One distillation: Student's t
  interval over its students (``mean ± t_{0.975, n-1}·s/√n``). Several: a two-stage
  (hierarchical) percentile bootstrap — resample distillations with replacement, then the
  students of each drawn distillation with replacement (Davison & Hinkley 1997, §3.8; Ren et al.
  2010, "Nonparametric bootstrapping for hierarchical data"), :data:`BOOTSTRAP_REPS` draws from a
  fixed seed, so the same data always gives the same interval.
- :func:`one_sample_test`, :func:`paired_test`, :func:`welch_test`: two-sided t tests, exactly
  ``scipy.stats.ttest_1samp`` / ``ttest_rel`` / ``ttest_ind(equal_var=False)``.
- :func:`holm`: Holm's step-down adjustment of p-values (Holm 1979).
- :func:`letter_groups`: the compact letter display (Piepho 2004, "An algorithm for a
  letter-based representation of all-pairwise comparisons", insert-and-absorb): entries sharing
  a letter cannot be told apart.
- :func:`rank_range`: the ranks an entry can take given which differences are significant.
- :func:`required_n`: replicates per entry for a t test to detect a difference with given power
  (noncentral t, Cohen 1988 ch. 2).

numpy always, scipy lazily; never torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Values = Sequence[float] | np.ndarray
"""Numbers as a sequence or a 1-D array."""

ALPHA = 0.05
"""Two-sided significance level of every test and 1 − the coverage of every interval."""
LEVEL = 1.0 - ALPHA
BOOTSTRAP_REPS = 4000
"""Bootstrap draws of a hierarchical interval (percentile method)."""
BOOTSTRAP_SEED = 20_240_521
"""Fixed seed of the bootstrap: an interval is a function of the data alone."""
POWER = 0.8
"""Target power of :func:`required_n`."""
MAX_N = 1_000_000


@dataclass(frozen=True)
class Interval:
    """A ``level`` confidence interval ``[low, high]`` and how it was computed."""

    low: float
    high: float
    method: str


@dataclass(frozen=True)
class Estimate:
    """Mean, sample std over all students (ddof=1), counts, and the interval (None when n < 2)."""

    mean: float | None
    std: float | None
    n: int
    groups: int
    ci: Interval | None

    @property
    def covers(self) -> str:
        """What the spread covers, in words."""
        if self.groups > 1:
            return f"{self.groups} distillations × students"
        return "students of one distillation"


@dataclass(frozen=True)
class TestResult:
    """A two-sided t test: the mean (difference), t, degrees of freedom, p and the t interval."""

    mean: float
    statistic: float
    df: float
    p_value: float
    ci: Interval
    n: int
    method: str


def _values(values: Values) -> np.ndarray:
    array = np.asarray([float(v) for v in values if v is not None], dtype=np.float64)
    return array[np.isfinite(array)]


def _sample_std(array: np.ndarray) -> float:
    return float(array.std(ddof=1)) if array.size > 1 else 0.0


def t_interval(values: Values, level: float = LEVEL) -> Interval | None:
    """Student's t interval of the mean of ``values`` (None for fewer than 2 values)."""
    from scipy import stats

    array = _values(values)
    n = array.size
    if n < 2:
        return None
    mean = float(array.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * _sample_std(array) / math.sqrt(n)
    return Interval(mean - half, mean + half, f"t interval over {n} values")


def hierarchical_bootstrap(groups: Sequence[Values], *, reps: int = BOOTSTRAP_REPS,
                           seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """``reps`` bootstrap means of nested data: per draw, ``len(groups)`` groups with replacement,
    then within each drawn group as many values as it has, with replacement; the mean of all
    drawn values (so a group weighs by its size, as the plain mean does). Shape ``[reps]``."""
    arrays = [_values(g) for g in groups]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return np.empty(0)
    sizes = np.array([a.size for a in arrays])
    width = int(sizes.max())
    table = np.zeros((len(arrays), width))
    for k, a in enumerate(arrays):
        table[k, : a.size] = a
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(arrays), size=(reps, len(arrays)))          # [reps, G]
    n_drawn = sizes[drawn]                                                   # [reps, G]
    picks = np.floor(rng.random((reps, len(arrays), width)) * n_drawn[..., None]).astype(np.int64)
    mask = np.arange(width)[None, None, :] < n_drawn[..., None]
    values = table[drawn[..., None], picks] * mask
    return values.sum(axis=(1, 2)) / mask.sum(axis=(1, 2))


def bootstrap_interval(groups: Sequence[Values], level: float = LEVEL, *, reps: int = BOOTSTRAP_REPS,
                       seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """Percentile interval of :func:`hierarchical_bootstrap` (None without 2 groups)."""
    groups = [g for g in groups if _values(g).size]
    if len(groups) < 2:
        return None
    means = hierarchical_bootstrap(groups, reps=reps, seed=seed)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(low), float(high),
                    f"hierarchical bootstrap over {len(groups)} distillations, then students ({reps} draws, percentile)")


def estimate(groups: Sequence[Values], level: float = LEVEL) -> Estimate:
    """:class:`Estimate` of nested values (``groups[d]``: the students of distillation ``d``)."""
    cleaned = [_values(g) for g in groups]
    cleaned = [g for g in cleaned if g.size]
    if not cleaned:
        return Estimate(None, None, 0, 0, None)
    pooled = np.concatenate(cleaned)
    mean, std = float(pooled.mean()), _sample_std(pooled)
    if len(cleaned) > 1:
        ci = bootstrap_interval(cleaned, level)
    else:
        ci = t_interval(pooled, level)
        if ci is not None:
            ci = Interval(ci.low, ci.high, f"t interval over {pooled.size} students of one distillation")
    return Estimate(mean, std, int(pooled.size), len(cleaned), ci)


def _t_result(diffs: np.ndarray, method: str, level: float) -> TestResult | None:
    """The one-sample t test of ``diffs`` against 0, as scipy computes it, with a t interval."""
    from scipy import stats

    n = diffs.size
    if n < 2:
        return None
    mean, sd = float(diffs.mean()), _sample_std(diffs)
    if sd == 0.0:  # scipy returns nan; a constant non-zero difference is as certain as data gets
        p = 1.0 if mean == 0.0 else 0.0
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        return TestResult(mean, t, n - 1, p, Interval(mean, mean, method), n, method)
    with warnings.catch_warnings():  # near-constant differences: scipy warns, the answer (p ≈ 0) stands
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_1samp(diffs, 0.0)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return TestResult(mean, float(res.statistic), float(n - 1), float(res.pvalue),
                      Interval(mean - half, mean + half, method), n, method)


def one_sample_test(values: Values, *, what: str = "values", level: float = LEVEL) -> TestResult | None:
    """Two-sided t test of mean(values) = 0 (``scipy.stats.ttest_1samp``); None for n < 2."""
    return _t_result(_values(values), f"one-sample t over {what}", level)


def paired_test(a: Values, b: Values, *, what: str = "pairs",
                level: float = LEVEL) -> TestResult | None:
    """Two-sided paired t test of mean(a − b) = 0 (``scipy.stats.ttest_rel``); None for < 2 pairs."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have equal length, got {x.size} and {y.size}")
    return _t_result(x - y, f"paired t over {what}", level)


def welch_test(a: Values, b: Values, *, what: str = "values",
               level: float = LEVEL) -> TestResult | None:
    """Welch's two-sided t test of mean(a) = mean(b) (``scipy.stats.ttest_ind(equal_var=False)``),
    with the Welch–Satterthwaite degrees of freedom; None unless both have ≥ 2 values."""
    from scipy import stats

    x, y = _values(a), _values(b)
    if x.size < 2 or y.size < 2:
        return None
    method = f"Welch t over {what}"
    diff = float(x.mean() - y.mean())
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = float(va + vb)
    if se2 == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        return TestResult(diff, 0.0 if diff == 0.0 else math.copysign(math.inf, diff), float(x.size + y.size - 2), p,
                          Interval(diff, diff, method), x.size + y.size, method)
    df = se2 ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return TestResult(diff, float(res.statistic), float(df), float(res.pvalue),
                      Interval(diff - half, diff + half, method), x.size + y.size, method)


def holm(p_values: Values) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: sorted ascending, the k-th smallest
    (0-based) becomes ``max_{j ≤ k} min(1, (m − j)·p_(j))``."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def letter_groups(n: int, different: set[tuple[int, int]]) -> list[str]:
    """Compact letter display of ``n`` entries (in display order, best first) given the pairs
    ``(i, j)`` that differ significantly: entries that share a letter are not significantly
    different. Piepho's insert-and-absorb: start with one letter holding everyone; for each
    significant pair split every letter holding both in two (one without i, one without j);
    drop letters contained in another. Letters are named a, b, … in order of their best member."""
    columns: list[set[int]] = [set(range(n))]
    for i, j in sorted({(min(p), max(p)) for p in different}):
        split: list[set[int]] = []
        for column in columns:
            if i in column and j in column:
                split += [column - {i}, column - {j}]
            else:
                split.append(column)
        columns = [c for k, c in enumerate(split)
                   if c and not any((c < o) or (c == o and k2 < k) for k2, o in enumerate(split))]
    columns.sort(key=lambda c: (min(c), sorted(c)))
    names = "abcdefghijklmnopqrstuvwxyz"
    letters = [""] * n
    for k, column in enumerate(columns):
        name = names[k] if k < len(names) else f"[{k}]"
        for member in sorted(column):
            letters[member] += name
    return letters


def rank_range(index: int, n: int, better: set[tuple[int, int]]) -> tuple[int, int]:
    """Best and worst rank (1-based) of entry ``index`` among ``n``: ``better`` holds ``(i, j)``
    for every significant "i beats j"; the entry ranks at best after all entries that beat it and
    at worst before all it beats."""
    beaten_by = sum(1 for i, j in better if j == index)
    beats = sum(1 for i, j in better if i == index)
    return 1 + beaten_by, n - beats


def power_two_sided(n: int, effect: float, *, paired: bool, alpha: float = ALPHA) -> float:
    """Power of a two-sided t test with ``n`` replicates per entry (pairs when ``paired``) at the
    standardised effect ``effect`` (Δ/sd, of the differences when paired)."""
    from scipy import stats

    if paired:
        df, ncp = n - 1, effect * math.sqrt(n)
    else:
        df, ncp = 2 * n - 2, effect * math.sqrt(n / 2)
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def required_n(delta: float, sd: float, *, paired: bool, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """The smallest number of replicates per entry (pairs when ``paired``) for which a two-sided
    t test at ``alpha`` detects a true difference ``delta`` with probability ≥ ``power``, when the
    replicates' sd is ``sd`` (of the differences when paired). None when ``delta`` is 0 or the
    answer exceeds :data:`MAX_N`; 2 when ``sd`` is 0."""
    delta, sd = abs(float(delta)), float(sd)
    if delta == 0.0 or not math.isfinite(delta):
        return None
    if sd <= 0.0:
        return 2
    effect = delta / sd

    def ok(k: int) -> bool:
        return power_two_sided(k, effect, paired=paired, alpha=alpha) >= power

    low, high = 2, 2
    while not ok(high):
        low, high = high, high * 2
        if high > MAX_N:
            return None
    if ok(low):
        return low
    while high - low > 1:  # power grows with n: bisect the first n that reaches it
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high
