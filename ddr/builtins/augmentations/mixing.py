"""Label-mixing augmentations, mixup and cutmix, and the generator-driven Beta sampler they use.

Both pair each sample with ``images[perm]`` for one random permutation of the batch and return a
:class:`ddr.engine.augment.Mix`; the label strategy mixes the targets with it
(``t_i = lam_i * t_i + (1 - lam_i) * t_perm[i]``). One mixing coefficient per batch, as in the
SRe2L/RDED code and DD-Ranking (there the labels were not mixed; here they are, see Mix).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ddr.builtins.augmentations.checks import (
    check_batch,
    number,
    reject_unknown,
    resolve_aliases,
    signature_defaults,
)
from ddr.engine.augment import Mix
from ddr.engine.geometry import box_mask

_GAMMA_ROUNDS = 10
"""Candidates drawn per Gamma sample; Marsaglia-Tsang accepts each with probability > 0.95
(shape >= 1), so all ten fail with probability < 1e-13 and the fallback is never seen."""


def sample_log_gamma(shape_param: float, size: tuple[int, ...], generator: torch.Generator,
                     device: torch.device | str) -> torch.Tensor:
    """``log X`` for ``X ~ Gamma(shape_param, 1)``, float64 ``size``, drawn from ``generator``.

    Marsaglia & Tsang (2000), vectorised with a fixed number of candidates per sample; shapes
    below 1 use ``Gamma(a) = Gamma(a + 1) * U^(1/a)``. Works in log space so that tiny shapes
    (``U^(1/a)`` underflows) still give finite Beta samples.
    """
    boosted = shape_param < 1.0
    a = shape_param + 1.0 if boosted else shape_param
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    normal = torch.randn((_GAMMA_ROUNDS, *size), generator=generator, device=device, dtype=torch.float64)
    uniform = torch.rand((_GAMMA_ROUNDS, *size), generator=generator, device=device, dtype=torch.float64)
    v = (1.0 + c * normal) ** 3
    log_v = torch.log(v.clamp_min(1e-300))
    accept = (v > 0) & (torch.log(uniform) < 0.5 * normal**2 + d - d * v + d * log_v)
    first = torch.argmax(accept.to(torch.uint8), dim=0, keepdim=True)  # first accepted candidate
    never_accepted = torch.zeros(size, device=device, dtype=torch.float64)  # v = 1: X = d
    log_v = torch.where(accept.any(dim=0), log_v.gather(0, first).squeeze(0), never_accepted)
    log_x = math.log(d) + log_v
    if boosted:
        u = torch.rand(size, generator=generator, device=device, dtype=torch.float64).clamp_min(1e-300)
        log_x = log_x + torch.log(u) / shape_param
    return log_x


def sample_beta(a: float, b: float, size: tuple[int, ...], generator: torch.Generator,
                device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``Beta(a, b)`` samples of shape ``size`` drawn from ``generator`` (``a, b > 0``).

    ``X / (X + Y)`` with ``X ~ Gamma(a)``, ``Y ~ Gamma(b)``, computed as
    ``sigmoid(log X - log Y)``. (``torch.distributions.Beta`` cannot take a generator.)
    """
    log_x = sample_log_gamma(a, size, generator, device)
    log_y = sample_log_gamma(b, size, generator, device)
    return torch.sigmoid(log_x - log_y).to(dtype)


def _applies(prob: float, images: torch.Tensor, generator: torch.Generator) -> bool:
    """Batch-level Bernoulli(prob) decision (no draw when prob is 0 or 1)."""
    if prob >= 1.0:
        return True
    if prob <= 0.0:
        return False
    return bool(torch.rand(1, generator=generator, device=images.device) < prob)


class Mixup:
    """mixup (Zhang et al., 2018): ``x_i = lam * x_i + (1 - lam) * x_perm[i]``, ``lam ~ Beta(alpha, alpha)``.

    Parameters:
        alpha: Beta concentration (> 0); DD-Ranking's name ``lambda`` is accepted as an alias.
            SRe2L/RDED use 0.8 (preset ``mixup.sre2l``).
        prob: probability (0..1) that a batch is mixed at all; unmixed batches return no Mix.
    """

    differentiable = True
    _ALIASES = {"lambda": "alpha"}

    def __init__(self, alpha: float = 1.0, *, prob: float = 1.0, **aliases: Any) -> None:
        params = {"alpha": alpha, "prob": prob}
        resolve_aliases("mixup", params, aliases, self._ALIASES, signature_defaults(Mixup))
        reject_unknown("mixup", aliases, list(params) + list(self._ALIASES))
        self.alpha = number("mixup", "alpha", params["alpha"], low=0.0, low_open=True)
        self.prob = number("mixup", "prob", params["prob"], low=0.0, high=1.0)

    def __repr__(self) -> str:
        return f"Mixup(alpha={self.alpha}, prob={self.prob})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("mixup", images, generator)
        if not _applies(self.prob, images, generator):
            return images, None
        batch = images.shape[0]
        lam = sample_beta(self.alpha, self.alpha, (1,), generator, images.device, images.dtype)
        perm = torch.randperm(batch, generator=generator, device=images.device)
        weight = lam.view(1, 1, 1, 1)
        mixed = weight * images + (1.0 - weight) * images[perm]
        return mixed, Mix(perm=perm, lam=lam.expand(batch).clone())


class CutMix:
    """CutMix (Yun et al., 2019) as in SRe2L/RDED/DD-Ranking: one box per batch.

    ``lam0 ~ Beta(beta, beta)``; the box has sides ``floor(sqrt(1 - lam0) * H)`` by
    ``floor(sqrt(1 - lam0) * W)`` around a uniform integer centre, clipped to the image, and is
    filled from ``images[perm]``. The returned ``lam`` is the fraction of each image that stayed
    its own: ``1 - box_area / (H * W)`` after clipping.

    Parameters:
        beta: Beta concentration (> 0).
        prob: probability (0..1) that a batch is mixed at all; unmixed batches return no Mix.
    """

    differentiable = True

    def __init__(self, beta: float = 1.0, *, prob: float = 1.0, **unknown: Any) -> None:
        reject_unknown("cutmix", unknown, ("beta", "prob"))
        self.beta = number("cutmix", "beta", beta, low=0.0, low_open=True)
        self.prob = number("cutmix", "prob", prob, low=0.0, high=1.0)

    def __repr__(self) -> str:
        return f"CutMix(beta={self.beta}, prob={self.prob})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("cutmix", images, generator)
        if not _applies(self.prob, images, generator):
            return images, None
        batch, _, h, w = images.shape
        device = images.device
        lam = sample_beta(self.beta, self.beta, (1,), generator, device, torch.float64)
        side = torch.sqrt(1.0 - lam)
        half_h = torch.floor(h * side).long() // 2
        half_w = torch.floor(w * side).long() // 2
        centre_y = torch.randint(h, (1,), generator=generator, device=device)
        centre_x = torch.randint(w, (1,), generator=generator, device=device)
        box = box_mask((h, w), centre_y - half_h, centre_x - half_w, centre_y + half_h, centre_x + half_w)
        perm = torch.randperm(batch, generator=generator, device=device)
        mixed = torch.where(box.unsqueeze(1), images[perm], images)
        own = 1.0 - box.sum(dtype=images.dtype) / (h * w)
        return mixed, Mix(perm=perm, lam=own.expand(batch).clone())
