"""GradMatch's orthogonal matching pursuit (OMP), as DeepCore implements it.

Killamsetty et al., "GRAD-MATCH: Gradient Matching based Data Subset Selection for Efficient Deep
Model Training", ICML 2021, Algorithm 1: pick a subset whose weighted gradient sum matches the
full (here: the class's mean) gradient, ``min_w ‖A w − b‖² + λ‖w‖²`` with ``‖w‖₀ ≤ budget``.

Source: DeepCore @ 74ec709 ``deepcore/methods/gradmatch.py``, ``orthogonal_matching_pursuit_np``
(itself from krishnatejakk/GradMatch ``omp_solvers.py``), step by step:

1. ``projections = Aᵀ r`` (``r``, the residual, starts at ``b``); pick the unpicked column with
   the largest projection (signed, not absolute; ties to the lowest index);
2. the first pick's coefficient is ``projections[j] / ‖a_j‖²``; later ones solve the ridge system
   ``(A_S A_Sᵀ + λI) x = A_S b`` (``A_S`` ``[k, d]``: the picked columns as rows);
3. ``r = b − A_Sᵀ x``; repeat until ``budget`` picks;
4. the returned weights are the non-negative least squares solution of the same ridge system
   (``scipy.optimize.nnls``); with one pick its weight is 1.

DeepCore keeps only the picks whose final NNLS weight is non-zero (so a class may get fewer than
``budget`` samples); :func:`orthogonal_matching_pursuit` returns every pick with its weight and the
caller decides. Computed in float64 (DeepCore: float32 numpy on the CPU path).
"""

from __future__ import annotations

import torch

from ddr import ConfigError, DataError

__all__ = ["orthogonal_matching_pursuit"]


def orthogonal_matching_pursuit(
    A: torch.Tensor, b: torch.Tensor, budget: int, *, lam: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """OMP picks of ``budget`` columns of ``A`` matching ``b``, and their NNLS weights.

    Args:
        A: ``[d, n]`` design matrix, one column per candidate (GradMatch: per-sample gradients,
            :func:`ddr_methods._coreset.gradients.last_layer_gradients` transposed).
        b: ``[d]`` target (GradMatch without a validation set: the mean of ``A``'s columns).
        budget: picks, ``1..n``.
        lam: ridge coefficient ``λ`` (DeepCore/GradMatch default 1.0), in the squared units of ``A``.

    Returns:
        ``(picks, weights)``: int64 ``[budget]`` column indices in pick order and float64
        ``[budget]`` non-negative weights aligned with them (some may be 0), on the CPU.
    """
    from scipy.optimize import nnls

    if A.ndim != 2 or b.ndim != 1 or A.shape[0] != b.shape[0]:
        raise DataError(f"need A [d, n] and b [d]; got {tuple(A.shape)} and {tuple(b.shape)}")
    n = A.shape[1]
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= n:
        raise DataError(f"cannot pick budget={budget!r} of {n} samples; it must be 1..{n}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0 or lam == float("inf"):
        raise ConfigError(f"lam must be a finite number >= 0, got {lam!r}")
    A = A.to(torch.float64)
    b = b.to(device=A.device, dtype=torch.float64)
    if not (bool(torch.isfinite(A).all()) and bool(torch.isfinite(b).all())):
        raise DataError("OMP's inputs hold NaN/inf; the scoring model diverged (lower selection_lr)")
    available = torch.ones(n, dtype=torch.bool, device=A.device)
    every = torch.arange(n, device=A.device)
    resid = b.clone()
    picks: list[int] = []
    rows = A.new_zeros((0, A.shape[0]))
    system = rows.new_zeros((0, 0))
    for _ in range(budget):
        projections = A.T @ resid
        pick = int(every[available][torch.argmax(projections[available])])
        picks.append(pick)
        available[pick] = False
        column = A[:, pick]
        rows = torch.cat([rows, column[None]])
        if len(picks) == 1:
            norm = column.dot(column)
            x = (projections[pick] / norm if norm > 0 else torch.zeros_like(norm)).reshape(1)
        else:
            system = rows @ rows.T + lam * torch.eye(len(picks), dtype=torch.float64, device=A.device)
            x = torch.linalg.solve(system, rows @ b)
        resid = b - rows.T @ x
    if budget == 1:
        weights = torch.ones(1, dtype=torch.float64)
    else:
        solution, _ = nnls(system.cpu().numpy(), (rows @ b).cpu().numpy())
        weights = torch.from_numpy(solution).to(torch.float64)
    return torch.tensor(picks, dtype=torch.int64), weights
