"""GSAM expert training: how DATM trains its experts (FTD's ``buffer_FTD.py``).

DATM (Guo et al., ICLR 2024) does not train its experts with MTT's plain SGD: its README (step 2,
NUS-HPC-AI-Lab/DATM ``README.md`` line 31) runs FTD's ``buffer/buffer_FTD.py`` with
``--train_epochs=100 --rho_max=0.01 --rho_min=0.01 --alpha=0.3 --lr_teacher=0.01 --mom=0.
--batch_train=256``, which trains every expert with GSAM (Zhuang et al., ICLR 2022, "Surrogate Gap
Guided Sharpness-Aware Minimization", Algorithm 1) in its adaptive form (ASAM's weight-scaled
perturbation, Kwon et al., ICML 2021). This module is ddr's own implementation of that step and of
the rho schedule it uses; every number below cites the official file and line (DATM @ 97ae510).

One GSAM step on a minibatch ``(x, y)`` with parameters ``w`` (all tensors of the network, taken
together as one vector; ``|w|`` and products elementwise), learning rate ``lr``, radius ``rho`` and
``alpha``:

1. ``g = grad L(w)`` (cross-entropy, batch mean).
2. Perturb: ``e = rho * w^2 * g / (||(|w| * g)|| + eps)`` (adaptive; plain GSAM:
   ``e = rho * g / (||g|| + eps)``), ``eps = 1e-12``; ``w <- w + e``
   (``buffer/gsam/gsam.py`` ``perturb_weights``, lines 41-53, with ``_grad_norm(weight_adaptive=True)``,
   lines 102-122; ``adaptive=True``: ``buffer_FTD.py`` line 147, ``type=bool, default=True``, and the
   README passes no ``--adaptive``).
3. ``g_p = grad L(w + e)`` on the same (augmented) minibatch, BatchNorm running statistics frozen
   (momentum 0, ``gsam.py`` line 168 and ``util.py`` lines 5-11).
4. Surrogate-gap decomposition (``gsam.py`` ``gradient_decompose``, lines 63-85):
   ``cos = <g, g_p> / (||g_p|| * ||g|| + eps)``, ``v = g - cos * ||g|| * g_p / (||g_p|| + eps)`` (the
   part of ``g`` orthogonal to ``g_p``), direction ``d = g_p - alpha * v``. These norms are plain
   (not weight-scaled).
5. ``w <- (w + e) - e`` (``unperturb``, lines 56-60), then the base optimizer's step: SGD with
   momentum 0 and weight decay 0 (``buffer_FTD.py`` line 81 with ``--mom`` / ``--l2`` defaults 0,
   lines 140-141, and the README's ``--mom=0.``): ``w <- w - lr * d``.

The radius follows the LR (``ProportionScheduler``, ``buffer/gsam/scheduler.py`` lines 5-42):
``rho = rho_min + (rho_max - rho_min) * (lr - lr_min) / (lr_max - lr_min)`` when ``lr_max > lr_min``,
else ``rho_max``; it is read before the first step (``gsam.py`` line 19) and after every step
(``utils/utils_gsam.py`` lines 421-422). ``buffer_FTD.py`` drives it with a constant LR (a ``StepLR``
with ``gamma=1``, line 84, and ``max_lr = min_lr = lr``, line 85), so ``rho`` is ``rho_max`` at every
step and the scheduler refuses ``rho_max != rho_min`` (``scheduler.py`` line 18): so does ddr.

Per epoch the official loop (``utils/utils_gsam.py`` ``epoch``, lines 374-422) draws shuffled
minibatches of 256 (``buffer_FTD.py`` line 64, the last one short), applies DSA once per minibatch
(lines 394-396; ``color_crop_cutout_flip_scale_rotate``, ``buffer_FTD.py`` line 133) and takes one GSAM
step on it; the trajectory is the list of parameters before training and after every epoch
(``buffer_FTD.py`` lines 95 and 108), MTT's format. :func:`train_gsam` does the same with ddr's data
order (a ``randperm`` of the pool per epoch from the expert's generator, as ddr's training loop) and
augmentation objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ddr import ConfigError, DdrError
from ddr.method.training import TrainData
from ddr_methods._trajectory import defaults as _defaults

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method import Split

__all__ = ["ADAPTIVE", "DEFAULT_ALPHA", "DEFAULT_RHO_MAX", "DEFAULT_RHO_MIN", "PERTURB_EPS", "ProportionalRho",
           "frozen_batchnorm_statistics", "gsam_step", "train_gsam"]

PERTURB_EPS = 1e-12
"""``perturb_eps`` of the official GSAM (``buffer/gsam/gsam.py`` line 7): added to every norm it divides by."""
DEFAULT_RHO_MAX: float = _defaults.GSAM_RHO_MAX
"""DATM's ``--rho_max=0.01`` (README.md line 31)."""
DEFAULT_RHO_MIN: float = _defaults.GSAM_RHO_MIN
"""DATM's ``--rho_min=0.01`` (README.md line 31)."""
DEFAULT_ALPHA: float = _defaults.GSAM_ALPHA
"""DATM's ``--alpha=0.3`` (README.md line 31)."""
ADAPTIVE: bool = _defaults.GSAM_ADAPTIVE
"""``buffer_FTD.py`` line 147: ``--adaptive`` defaults to True."""


# -- the radius schedule -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ProportionalRho:
    """The GSAM radius as a function of the learning rate (``ProportionScheduler``,
    ``buffer/gsam/scheduler.py`` lines 5-42): linear in the LR between ``(min_lr, min_rho)`` and
    ``(max_lr, max_rho)``; a constant ``max_rho`` when the LR is constant (``max_lr == min_lr``).

    Raises :class:`ddr.ConfigError` where the official scheduler's assertions fail (lines 18-22):
    ``max_lr < min_lr``, ``max_rho < min_rho``, or a constant LR with ``max_rho != min_rho``.
    """

    max_lr: float
    min_lr: float
    max_rho: float
    min_rho: float

    def __post_init__(self) -> None:
        values = (self.max_lr, self.min_lr, self.max_rho, self.min_rho)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ConfigError(f"GSAM rho schedule: every value must be a finite number, got {values}")
        if self.min_rho < 0:
            raise ConfigError(f"GSAM rho must be >= 0 (got rho_min={self.min_rho})")
        if self.max_rho < self.min_rho:
            raise ConfigError(f"GSAM rho_max={self.max_rho} is below rho_min={self.min_rho}; rho_max must be >= rho_min")
        if self.max_lr < self.min_lr:
            raise ConfigError(f"GSAM rho schedule: max_lr={self.max_lr} is below min_lr={self.min_lr}")
        if self.max_lr == self.min_lr and self.max_rho != self.min_rho:
            raise ConfigError(
                f"GSAM rho follows the learning rate, and the expert LR is constant ({self.max_lr}), so rho is "
                f"constant too: rho_max ({self.max_rho}) must equal rho_min ({self.min_rho}), as FTD's "
                "ProportionScheduler requires (DATM runs --rho_max=0.01 --rho_min=0.01)")

    def __call__(self, lr: float) -> float:
        """The radius at learning rate ``lr`` (same units as the parameters' norm)."""
        if self.max_lr > self.min_lr:
            return self.min_rho + (self.max_rho - self.min_rho) * (lr - self.min_lr) / (self.max_lr - self.min_lr)
        return self.max_rho


# -- one step ----------------------------------------------------------------------------------------

@contextmanager
def frozen_batchnorm_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``model`` keep their running statistics (momentum 0) inside the block,
    as the official GSAM's second forward pass does (``buffer/gsam/util.py`` lines 5-18)."""
    saved = [(m, m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module, _ in saved:
        module.momentum = 0.0
    try:
        yield
    finally:
        for module, momentum in saved:
            module.momentum = momentum


def _global_norm(tensors: list[torch.Tensor], weights: "Sequence[torch.Tensor] | None" = None) -> torch.Tensor:
    """``||concat(t)||_2`` (as the 2-norm of the per-tensor 2-norms); with ``weights``: of ``|w| * t``."""
    if weights is None:
        return torch.norm(torch.stack([t.norm(p=2) for t in tensors]), p=2)
    return torch.norm(torch.stack([(w.abs() * t).norm(p=2) for w, t in zip(weights, tensors)]), p=2)


def _gradients(model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor]) -> torch.Tensor:
    for p in model.parameters():
        p.grad = None
    with torch.enable_grad():
        loss = loss_fn(model)
        loss.backward()
    return loss.detach()


def gsam_step(model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor], *, lr: float, rho: float,
              alpha: float, adaptive: bool = ADAPTIVE, eps: float = PERTURB_EPS) -> torch.Tensor:
    """One GSAM step on ``model``'s parameters, in place (the module docstring's steps 1-5).

    Args:
        model: the network; every parameter that receives a gradient is updated.
        loss_fn: ``loss_fn(model)`` -> the scalar loss of one fixed minibatch; called twice (at ``w``
            and at ``w + e``), so it must not draw new randomness (augment the batch before).
        lr: the SGD learning rate of this step.
        rho: the perturbation radius (the rho schedule's value at ``lr``).
        alpha: the weight of the surrogate-gap term (``d = g_p - alpha * v``).
        adaptive: ASAM's weight-scaled perturbation (DATM: True).
        eps: added to the norms divided by (the official ``perturb_eps``, 1e-12).

    Returns:
        The loss at ``w`` before the step (a detached scalar tensor).
    """
    loss = _gradients(model, loss_fn)
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        grads = [p.grad.detach().clone() for p in params]  # type: ignore[union-attr]
        norm = _global_norm(grads, params if adaptive else None)
        scale = rho / (norm + eps)
        perturbation = []
        for p, g in zip(params, grads):
            e = g * scale.to(p)
            if adaptive:
                e = e * torch.pow(p, 2)
            p.add_(e)
            perturbation.append(e)
    with frozen_batchnorm_statistics(model):
        _gradients(model, loss_fn)
    with torch.no_grad():
        perturbed = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        inner: Any = 0.0
        for g, gp in zip(grads, perturbed):
            inner = inner + torch.sum(g * gp)
        new_norm, old_norm = _global_norm(perturbed), _global_norm(grads)
        cosine = inner / (new_norm * old_norm + eps)
        for p, g, gp, e in zip(params, grads, perturbed, perturbation):
            vertical = g - cosine * old_norm * gp / (new_norm + eps)
            direction = gp.add(vertical, alpha=-alpha)
            p.sub_(e)
            p.add_(direction, alpha=-lr)
    for p in model.parameters():
        p.grad = None
    return loss


# -- an expert's training ----------------------------------------------------------------------------

def _batches(pool: "Split", batch_size: int, generator: torch.Generator,
             device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch of ``(images [B,C,H,W], labels [B])`` on ``device``: THE training loop's
    epoch (:meth:`ddr.method.training.TrainData.batches`: a ``randperm`` of the pool from
    ``generator`` cut into minibatches, the last one short; streamed pools through its DataLoader)."""
    for index, images in TrainData(pool).batches(batch_size, generator, device):
        yield images.to(device), pool.labels[index.to(pool.labels.device)].to(device)


def train_gsam(model: nn.Module, pool: "Split", *, epochs: int, lr: float, batch_size: int, rho_max: float,
               rho_min: float, alpha: float, generator: torch.Generator, augmentation: Any = None,
               device: torch.device | str = "cpu", adaptive: bool = ADAPTIVE,
               on_epoch: Callable[[nn.Module], None] | None = None,
               progress: Callable[..., Any] | None = None) -> float:
    """Train ``model`` in place on ``pool``'s hard labels with GSAM, as ``buffer_FTD.py`` trains an expert.

    Args:
        pool: the training images (float32 ``[N,C,H,W]`` in the dataset's pixel space, in memory or
            streamed) and int64 labels ``[N]``.
        epochs: passes over the pool.
        lr: the constant SGD learning rate (momentum 0, weight decay 0).
        batch_size: images per minibatch (at most ``N``).
        rho_max, rho_min: the GSAM radius bounds (equal: the LR is constant).
        alpha: the surrogate-gap weight.
        generator: the data order and the augmentation draws.
        augmentation: ``None`` or a built augmentation (``aug(images, generator) -> (images, mix)``),
            applied once per minibatch before both gradient passes; one that mixes labels is refused.
        on_epoch: called with the model after every epoch (the trajectory's snapshots).
        progress: wraps the epoch loop in a progress bar.

    Returns:
        The loss of the last minibatch (cross-entropy at ``w`` before its step).
    """
    device = torch.device(device)
    schedule = ProportionalRho(max_lr=float(lr), min_lr=float(lr), max_rho=float(rho_max), min_rho=float(rho_min))
    model.to(device).train()
    batch_size = max(1, min(int(batch_size), len(pool)))
    last = torch.zeros((), device=device)
    epoch_range: Any = range(epochs)
    if progress is not None:
        epoch_range = progress(epoch_range, total=epochs, desc="epochs", leave=False)
    for epoch in epoch_range:
        for images, labels in _batches(pool, batch_size, generator, device):
            if augmentation:
                images, mix = augmentation(images, generator)
                if mix is not None:
                    raise ConfigError("GSAM experts take no label-mixing augmentation (mixup/cutmix); "
                                      "use dsa or none for expert_augmentation")

            def loss_fn(net: nn.Module, x: torch.Tensor = images, y: torch.Tensor = labels) -> torch.Tensor:
                return F.cross_entropy(net(x), y)

            last = gsam_step(model, loss_fn, lr=float(lr), rho=schedule(float(lr)), alpha=float(alpha),
                             adaptive=adaptive)
        value = float(last)
        if not math.isfinite(value):
            raise DdrError(f"GSAM expert training diverged (loss {value} in epoch {epoch + 1}) with lr {lr}, "
                           f"rho {rho_max}, alpha {alpha}; lower expert_lr or expert_rho_max")
        if on_epoch is not None:
            on_epoch(model)
            model.train()
    return float(last)
