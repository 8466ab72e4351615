"""ddr_methods._coreset.submodular and .gradmatch: exact numbers against brute force and numpy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from ddr.errors import ConfigError, DataError
from ddr_methods._coreset.gradmatch import orthogonal_matching_pursuit
from ddr_methods._coreset.submodular import (
    FacilityLocation,
    GraphCut,
    cosine_similarity,
    craig_similarity,
    craig_weights,
    greedy_maximize,
)

# Facility location: a small known non-negative similarity matrix (row: covered element, column:
# candidate; not symmetric, so that no two candidates tie).
S_FL = np.array([
    [1.0, 0.9, 0.1, 0.2, 0.0],
    [0.8, 1.0, 0.3, 0.1, 0.7],
    [0.1, 0.3, 0.95, 0.7, 0.4],
    [0.2, 0.1, 0.8, 1.0, 0.6],
    [0.0, 0.5, 0.4, 0.6, 0.8],
])
# Graph cut: symmetric, unit diagonal (DeepCore's cosine kernel has both).
S = np.array([
    [1.0, 0.9, 0.1, 0.2, 0.0],
    [0.9, 1.0, 0.3, 0.1, 0.2],
    [0.1, 0.3, 1.0, 0.8, 0.4],
    [0.2, 0.1, 0.8, 1.0, 0.6],
    [0.0, 0.2, 0.4, 0.6, 1.0],
])


def fl_value(s: np.ndarray, subset: list[int]) -> float:
    return float(s[:, subset].max(axis=1).sum()) if subset else 0.0


def gc_value(s: np.ndarray, subset: list[int], lam: float) -> float:
    return float(lam * s[:, subset].sum() - s[np.ix_(subset, subset)].sum())


def brute_greedy(value, n: int, k: int) -> list[int]:
    picks: list[int] = []
    for _ in range(k):
        gains = [value(picks + [j]) - value(picks) if j not in picks else -np.inf for j in range(n)]
        top2 = sorted(gains)[-2:]
        assert top2[1] - top2[0] > 1e-9, "the reference would have a tie: pick another matrix"
        picks.append(int(np.argmax(gains)))
    return picks


def test_facility_location_gains_are_the_brute_force_marginals():
    fn = FacilityLocation(torch.tensor(S_FL))
    selected = torch.zeros(5, dtype=torch.bool)
    # By hand: the empty set's gains are the column sums; after {1} (cover .9, 1, .3, .1, .5) the
    # others gain .1+.1, .65+.7, .4+.9+.1, .1+.5+.3; after {1, 3} (cover .9, 1, .7, 1, .6): .1, .25, .2.
    by_hand = [[2.1, 2.8, 2.55, 2.6, 2.5], [0.2, 1.35, 1.4, 0.9], [0.1, 0.25, 0.2]]
    subset: list[int] = []
    for step, pick in enumerate((1, 3, 2)):
        candidates = torch.arange(5)[~selected]
        gains = fn.gains(candidates, selected).numpy()
        expected = [fl_value(S_FL, subset + [j]) - fl_value(S_FL, subset) for j in candidates.tolist()]
        np.testing.assert_allclose(gains, expected, rtol=0, atol=1e-14)
        np.testing.assert_allclose(gains, by_hand[step], rtol=0, atol=1e-14)
        fn.add(pick)
        selected[pick] = True
        subset.append(pick)


@pytest.mark.parametrize("greedy", ["lazy", "naive"])
def test_facility_location_greedy_picks_equal_brute_force(greedy):
    picks = greedy_maximize(FacilityLocation(torch.tensor(S_FL)), 3, greedy=greedy)
    assert picks.tolist() == brute_greedy(lambda sub: fl_value(S_FL, sub), 5, 3) == [1, 3, 2]
    assert picks.dtype == torch.int64


@pytest.mark.parametrize("lam", [1.0, 2.5])
def test_graph_cut_gains_are_the_marginals_plus_the_self_similarity(lam):
    fn = GraphCut(torch.tensor(S), lam=lam)
    subset: list[int] = []
    selected = torch.zeros(5, dtype=torch.bool)
    for pick in (2, 0):
        gains = fn.gains(torch.arange(5), selected).numpy()
        expected = [gc_value(S, subset + [j], lam) - gc_value(S, subset, lam) + S[j, j] for j in range(5)]
        np.testing.assert_allclose(gains, expected, rtol=0, atol=1e-14)
        selected[pick] = True
        fn.add(pick)
        subset.append(pick)
    # By hand, lam 1 after {2, 0}: column sums minus twice the similarity to 2 and 0.
    if lam == 1.0:
        assert fn.gains(torch.tensor([1, 3, 4]), selected).tolist() == pytest.approx(
            [2.5 - 2 * (0.9 + 0.3), 2.7 - 2 * (0.2 + 0.8), 2.2 - 2 * (0.0 + 0.4)], abs=1e-14)


@pytest.mark.parametrize("greedy", ["lazy", "naive"])
def test_graph_cut_greedy_picks_equal_brute_force(greedy):
    lam = 2.5  # unit diagonal: DeepCore's gain is the marginal + 1, the same order
    picks = greedy_maximize(GraphCut(torch.tensor(S), lam=lam), 3, greedy=greedy)
    assert picks.tolist() == brute_greedy(lambda sub: gc_value(S, sub, lam), 5, 3)


def test_lazy_and_naive_greedy_agree_on_random_facility_location():
    gen = torch.Generator().manual_seed(3)
    for _ in range(20):
        sim = cosine_similarity(torch.randn(12, 6, generator=gen))
        lazy = greedy_maximize(FacilityLocation(sim), 5, greedy="lazy")
        naive = greedy_maximize(FacilityLocation(sim), 5, greedy="naive")
        assert lazy.tolist() == naive.tolist()


def test_greedy_breaks_ties_by_the_lowest_index():
    sim = torch.ones(4, 4)
    assert greedy_maximize(FacilityLocation(sim), 2).tolist() == [0, 1]
    assert greedy_maximize(FacilityLocation(sim), 2, greedy="naive").tolist() == [0, 1]


def test_greedy_rejects_bad_input():
    fn = FacilityLocation(torch.tensor(S_FL))
    with pytest.raises(DataError, match="budget=6 of 5"):
        greedy_maximize(fn, 6)
    with pytest.raises(DataError, match="budget=0"):
        greedy_maximize(fn, 0)
    with pytest.raises(ConfigError, match="unknown greedy optimiser 'stochastic'"):
        greedy_maximize(fn, 1, greedy="stochastic")
    with pytest.raises(DataError, match="square"):
        FacilityLocation(torch.zeros(2, 3))
    with pytest.raises(DataError, match="NaN"):
        GraphCut(torch.tensor([[float("nan")]]))


def test_cosine_similarity_by_hand():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    sim = cosine_similarity(g)
    assert sim.dtype == torch.float64
    assert sim[0].tolist() == pytest.approx([1.0, 0.5, 0.0, 0.5, 0.5 + 0.5 / np.sqrt(2)], abs=1e-15)
    assert sim[3].tolist() == [0.5] * 5  # a zero row: cosine 0 (DeepCore: NaN)
    with pytest.raises(DataError, match="NaN"):
        cosine_similarity(torch.tensor([[float("inf")]]))


def test_craig_similarity_by_hand():
    # Points 0, 1, 3 on a line: distances [[0,1,3],[1,0,2],[3,2,0]] (diagonal 1e-6 after the clip).
    sim = craig_similarity(torch.tensor([[0.0], [1.0], [3.0]]))
    expected = 3.0 - np.array([[1e-6, 1, 3], [1, 1e-6, 2], [3, 2, 1e-6]]) + 1e-3
    np.testing.assert_allclose(sim.numpy(), expected, rtol=0, atol=1e-12)
    assert float(sim.min()) == pytest.approx(1e-3)


def test_craig_weights_count_the_samples_each_pick_stands_for():
    # Points 0, 1, 3, 10, 11: picks 3 (x=10) and 0 (x=0) -> samples 0,1,2 nearest 0; 3,4 nearest 3.
    sim = craig_similarity(torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]]))
    assert craig_weights(sim, torch.tensor([3, 0])).tolist() == [1 + 2, 1 + 3]


# -- OMP ------------------------------------------------------------------------------------------------

def numpy_omp(A: np.ndarray, b: np.ndarray, budget: int, lam: float) -> tuple[list[int], np.ndarray]:
    """A plain numpy OMP: argmax projection, ridge least squares by np.linalg.lstsq, final NNLS."""
    resid, picks = b.copy(), []
    for _ in range(budget):
        proj = A.T @ resid
        proj[picks] = -np.inf
        picks.append(int(np.argmax(proj)))
        rows = A[:, picks].T
        if len(picks) == 1:
            x = np.array([proj[picks[0]] / (rows[0] @ rows[0])])
        else:
            x = np.linalg.lstsq(rows @ rows.T + lam * np.eye(len(picks)), rows @ b, rcond=None)[0]
        resid = b - rows.T @ x
    rows = A[:, picks].T
    weights = nnls(rows @ rows.T + lam * np.eye(len(picks)), rows @ b)[0] if budget > 1 else np.ones(1)
    return picks, weights


@pytest.mark.parametrize("lam", [0.0, 1.0, 10.0])
def test_omp_equals_a_numpy_least_squares_reference(lam):
    gen = np.random.default_rng(4)
    for _ in range(5):
        A = gen.normal(size=(8, 15))
        b = A.mean(axis=1)
        picks, weights = orthogonal_matching_pursuit(torch.from_numpy(A), torch.from_numpy(b), 4, lam=lam)
        ref_picks, ref_weights = numpy_omp(A, b, 4, lam)
        assert picks.tolist() == ref_picks
        np.testing.assert_allclose(weights.numpy(), ref_weights, rtol=1e-10, atol=1e-12)


def test_omp_recovers_a_sparse_combination_exactly():
    A = torch.eye(6, dtype=torch.float64)
    b = 2.0 * A[:, 5] + 1.0 * A[:, 2]
    picks, weights = orthogonal_matching_pursuit(A, b, 2, lam=0.0)
    assert picks.tolist() == [5, 2] and weights.tolist() == [2.0, 1.0]
    one, w = orthogonal_matching_pursuit(A, b, 1)
    assert one.tolist() == [5] and w.tolist() == [1.0]  # DeepCore: a single pick weighs 1


def test_omp_rejects_bad_input():
    A, b = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(DataError, match="budget=5 of 4"):
        orthogonal_matching_pursuit(A, b, 5)
    with pytest.raises(DataError, match=r"A \[d, n\] and b \[d\]"):
        orthogonal_matching_pursuit(A, torch.zeros(2), 1)
    with pytest.raises(ConfigError, match="lam"):
        orthogonal_matching_pursuit(A, b, 1, lam=-1.0)
    with pytest.raises(DataError, match="NaN"):
        orthogonal_matching_pursuit(torch.full((3, 4), float("nan")), b, 1)


def test_brute_force_helpers_are_consistent():
    # Sanity of the references themselves: facility location is monotone and submodular on S.
    for small, extra in itertools.product([[0], [0, 2]], [1, 3, 4]):
        big = small + [2 if 2 not in small else 1]
        gain_small = fl_value(S_FL, small + [extra]) - fl_value(S_FL, small)
        gain_big = fl_value(S_FL, big + [extra]) - fl_value(S_FL, big)
        assert gain_small >= gain_big >= 0
