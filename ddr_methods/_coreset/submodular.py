"""Submodular subset selection as DeepCore implements it: similarities, functions, greedy maximisers.

Pure tensor code, no training: the selectors (:mod:`ddr_methods.submodular`, :mod:`ddr_methods.craig`)
feed it one class's per-sample gradient embeddings (:func:`ddr_methods._coreset.gradients.last_layer_gradients`).

Sources (github.com/PatrickZH/DeepCore @ 74ec709, ``deepcore/methods/``):

* :func:`cosine_similarity`: ``methods_utils/cossim.py``'s ``cossim_np`` (``0.5 + 0.5·cos``,
  values in ``[0, 1]``), the kernel of ``submodular.py``;
* :func:`craig_similarity`: ``craig.py``'s ``-1 · euclidean_dist_pair_np(g)`` shifted by
  ``−min + 1e-3`` (``methods_utils/euclidean.py``: ``sqrt(clip(‖x‖² + ‖y‖² − 2x·y, 1e-12))``);
* :class:`FacilityLocation`, :class:`GraphCut`: ``methods_utils/submodular_function.py``;
* :func:`greedy_maximize`: ``methods_utils/submodular_optimizer.py``'s ``NaiveGreedy`` and
  ``LazyGreedy`` (the default of ``main.py``'s ``--submodular_greedy`` and of ``craig.py``).

Everything is computed in float64 (DeepCore: float32 numpy). Ties go to the lowest index
(``argmax``'s first maximum, as numpy's). DeepCore returns the selected set as ascending indices
(``self.index[selected]``); here the picks come in the order they are made.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ddr import ConfigError, DataError

__all__ = ["GREEDY_CHOICES", "FacilityLocation", "GraphCut", "SubmodularFunction", "check_greedy",
           "cosine_similarity", "craig_similarity", "craig_weights", "greedy_maximize"]

CRAIG_SHIFT = 1e-3
"""``craig.py``: ``matrix -= np.min(matrix) - 1e-3`` keeps every similarity positive."""

EUCLIDEAN_CLIP = 1e-12
"""``euclidean.py``: squared distances are clipped at 1e-12 before the square root."""


def _check_embeddings(embeddings: torch.Tensor) -> torch.Tensor:
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise DataError(f"need 2-D embeddings [n, D] with n >= 1, got shape {tuple(embeddings.shape)}")
    if not bool(torch.isfinite(embeddings).all()):
        raise DataError("the embeddings hold NaN/inf; the scoring model diverged (lower selection_lr)")
    return embeddings.to(torch.float64)


def cosine_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """DeepCore's cosine kernel ``0.5 + 0.5·cos(g_i, g_j)`` of ``embeddings`` ``[n, D]`` -> float64 ``[n, n]``.

    Values lie in ``[0, 1]`` (the diagonal is 1). A zero row has cosine 0 with everything here
    (similarity 0.5); DeepCore's ``cossim_np`` divides by its zero norm and yields NaN.
    """
    x = _check_embeddings(embeddings)
    norm = torch.linalg.vector_norm(x, dim=1)
    denom = norm[:, None] * norm[None, :]
    cos = (x @ x.T) / torch.where(denom > 0, denom, torch.ones_like(denom))
    return 0.5 + 0.5 * torch.where(denom > 0, cos, torch.zeros_like(cos))


def craig_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """CRAIG's similarity in DeepCore: ``max_ij d_ij − d + 1e-3`` for Euclidean distances ``d`` -> float64 ``[n, n]``.

    ``d_ij = sqrt(max(‖g_i‖² + ‖g_j‖² − 2 g_i·g_j, 1e-12))`` (so ``d_ii = 1e-6``), negated and
    shifted so that the smallest similarity is ``1e-3`` (``craig.py``: ``matrix = -dist;
    matrix -= min(matrix) - 1e-3``). Units: those of the embeddings (gradient norms).
    """
    x = _check_embeddings(embeddings)
    sq = (x * x).sum(1)
    dist = torch.sqrt(torch.clamp(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), min=EUCLIDEAN_CLIP))
    similarity = -dist
    return similarity - (similarity.min() - CRAIG_SHIFT)


def _check_similarity(similarity: torch.Tensor) -> torch.Tensor:
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1] or len(similarity) == 0:
        raise DataError(f"need a square similarity matrix [n, n], got shape {tuple(similarity.shape)}")
    if not bool(torch.isfinite(similarity).all()):
        raise DataError("the similarity matrix holds NaN/inf")
    return similarity.to(torch.float64)


class SubmodularFunction(Protocol):
    """What :func:`greedy_maximize` maximises over the ground set ``0..n-1``."""

    n: int

    def gains(self, candidates: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """Marginal gains (float64 ``[m]``) of adding each of ``candidates`` (int64 ``[m]``) to the
        set marked by ``selected`` (bool ``[n]``)."""
        ...

    def add(self, pick: int) -> None:
        """Record that ``pick`` joined the set."""
        ...


class FacilityLocation:
    """``f(S) = Σ_i max_{j∈S} s_ij`` (DeepCore's ``FacilityLocation``; ``f(∅) = 0``).

    Args:
        similarity: ``[n, n]`` non-negative similarities ``s_ij`` (row ``i`` a ground-set element,
            column ``j`` a candidate), e.g. :func:`cosine_similarity` or :func:`craig_similarity`.

    ``gains`` returns ``Σ_i max(0, s_ij − m_i)`` with ``m_i = max_{k∈S} s_ik`` (0 for the empty set),
    the exact marginal gain ``f(S ∪ {j}) − f(S)`` for non-negative similarities.
    """

    def __init__(self, similarity: torch.Tensor) -> None:
        self.similarity = _check_similarity(similarity)
        self.n = len(self.similarity)
        self.cur_max = torch.zeros(self.n, dtype=torch.float64, device=self.similarity.device)

    def gains(self, candidates: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        columns = self.similarity[:, candidates]
        return torch.clamp(columns - self.cur_max[:, None], min=0.0).sum(0)

    def add(self, pick: int) -> None:
        self.cur_max = torch.maximum(self.cur_max, self.similarity[:, pick])


class GraphCut:
    """Graph cut ``f(S) = λ Σ_{i∈V, j∈S} s_ij − Σ_{i,j∈S} s_ij`` with DeepCore's ``GraphCut`` gain.

    Args:
        similarity: symmetric ``[n, n]`` similarities (DeepCore: :func:`cosine_similarity`).
        lam: ``λ``, the weight of the coverage term (DeepCore ``GraphCut(lam=1.)``; ``submodular.py``
            never changes it).

    ``gains`` returns DeepCore's ``λ·Σ_i s_ij − 2·Σ_{k∈S} s_kj``, which is the exact marginal gain
    ``f(S ∪ {j}) − f(S)`` plus ``s_jj`` (DeepCore leaves out the self-similarity; with the cosine
    kernel ``s_jj = 1`` for every non-zero embedding, so the greedy order is the same).
    """

    def __init__(self, similarity: torch.Tensor, lam: float = 1.0) -> None:
        self.similarity = _check_similarity(similarity)
        self.n = len(self.similarity)
        self.lam = float(lam)
        self.column_sums = self.similarity.sum(0)

    def gains(self, candidates: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        inside = self.similarity[selected][:, candidates].sum(0)
        return self.lam * self.column_sums[candidates] - 2.0 * inside

    def add(self, pick: int) -> None:
        pass  # the gain reads the selected mask


GREEDY_CHOICES = ("lazy", "naive")
""":func:`greedy_maximize`'s optimisers: DeepCore's ``LazyGreedy`` and ``NaiveGreedy``."""


def check_greedy(greedy: str) -> None:
    """ConfigError unless ``greedy`` is one of :data:`GREEDY_CHOICES`."""
    if greedy not in GREEDY_CHOICES:
        raise ConfigError(f"unknown greedy optimiser {greedy!r}; use one of {', '.join(GREEDY_CHOICES)}")


def greedy_maximize(function: SubmodularFunction, budget: int, *, greedy: str = "lazy") -> torch.Tensor:
    """Greedily pick ``budget`` elements of ``0..n-1`` maximising ``function``.

    ``naive`` (DeepCore ``NaiveGreedy``): each step evaluates every unselected element's gain and
    takes the largest. ``lazy`` (DeepCore ``LazyGreedy``, Minoux's accelerated greedy): gains are
    evaluated for all once, then each step re-evaluates the element with the largest stale gain
    until the same element is the maximum twice in a row, exactly as DeepCore's loop does; for a
    submodular function both pick the same set up to ties.

    Returns:
        int64 ``[budget]`` distinct positions in the order they were picked.

    Raises:
        DataError: ``budget`` is not in ``1..n``.
        ConfigError: an unknown ``greedy``.
    """
    n = function.n
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= n:
        raise DataError(f"cannot pick budget={budget!r} of {n} samples; it must be 1..{n}")
    check_greedy(greedy)
    device = getattr(function, "similarity", torch.empty(0)).device
    selected = torch.zeros(n, dtype=torch.bool, device=device)
    every = torch.arange(n, device=device)
    picks: list[int] = []
    if greedy == "naive":
        greedy_gain = torch.zeros(n, dtype=torch.float64, device=device)
        for _ in range(budget):
            greedy_gain[~selected] = function.gains(every[~selected], selected).to(torch.float64)
            pick = int(torch.argmax(greedy_gain))
            selected[pick] = True
            greedy_gain[pick] = float("-inf")
            function.add(pick)
            picks.append(pick)
    else:
        greedy_gain = function.gains(every, selected).to(torch.float64).clone()
        for _ in range(budget):
            best_gain = float("-inf")
            last = -1
            while True:
                current = int(torch.argmax(greedy_gain))
                if current == last:
                    break
                new_gain = float(function.gains(every[current:current + 1], selected)[0])
                greedy_gain[current] = new_gain
                if new_gain >= best_gain:
                    best_gain, last = new_gain, current
            selected[current] = True
            greedy_gain[current] = float("-inf")
            function.add(current)
            picks.append(current)
    return torch.tensor(picks, dtype=torch.int64)


def craig_weights(similarity: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """CRAIG's per-pick weights: 1 + the number of samples whose most similar pick it is.

    DeepCore ``craig.py``'s ``calc_weights``: for every sample (column ``j`` of ``similarity``
    ``[n, n]``) the pick with the largest ``s_pj`` (ties to the pick with the lowest sample index)
    is credited once; each pick starts at 1, so the weights sum to ``len(picks) + n``.

    Returns:
        float64 ``[len(picks)]`` weights aligned with ``picks`` (int64 positions ``0..n-1``).
    """
    similarity = _check_similarity(similarity)
    picks = picks.to(device=similarity.device, dtype=torch.int64)
    ordered, where = torch.sort(picks)
    nearest = torch.argmax(similarity[ordered], dim=0)  # [n] rank (in ascending pick index) of each sample's pick
    counts = torch.bincount(nearest, minlength=len(picks)).to(torch.float64) + 1.0
    weights = torch.empty(len(picks), dtype=torch.float64, device=similarity.device)
    weights[where] = counts
    return weights.cpu()
