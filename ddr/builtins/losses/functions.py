"""The built-in losses: ``ce``, ``sce``, ``kl`` and ``mse_gt``.

A loss is called as ``loss(logits[B, K], targets) -> scalar`` with a :class:`ddr.engine.labels.Targets`.
Soft targets are logits; softmax is applied here, at the loss's temperature. The target side
never receives a gradient. Every loss computes in float32 whatever dtype the logits arrive in
(bf16 autocast), because the batch-level reductions are cheap and sensitive to rounding.

Hard labels are mixed the standard mixup/cutmix way: with ``targets.mix = Mix(perm, lam)`` the
per-sample cross-entropy is ``lam_i * CE(s_i, y_i) + (1 - lam_i) * CE(s_i, y_perm[i])``.

Strategies turn a loss *name* into a loss with :func:`build_loss`, which knows only the built-in
losses of this module; plugin losses arrive already built (the registry builds them).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ddr.engine.labels import Loss, Targets
from ddr.errors import ConfigError, UnknownComponentError

__all__ = [
    "BUILTIN_LOSSES",
    "CrossEntropy",
    "KLDivergence",
    "MSEWithHardLabels",
    "SoftCrossEntropy",
    "build_loss",
    "loss_name",
    "mixed_cross_entropy",
]


# -- parameter checks ---------------------------------------------------------------------------

def _fraction(value: object, what: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"loss '{owner}': {what} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def _positive(value: object, what: str, owner: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise ConfigError(f"loss '{owner}': {what} must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(value: object, what: str, owner: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ConfigError(f"loss '{owner}': {what} must be a finite number >= 0, got {value!r}")
    return float(value)


def _flag(value: object, what: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"loss '{owner}': {what} must be true or false, got {value!r}")
    return value


# -- shape checks (metadata only: no host sync) --------------------------------------------------

def _check_logits(logits: torch.Tensor, targets: Targets, owner: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(f"loss '{owner}': student logits must be a [B, K] tensor, got {shape}")
    hard = targets.hard
    if not isinstance(hard, torch.Tensor) or hard.shape != logits.shape[:1]:
        shape = tuple(hard.shape) if isinstance(hard, torch.Tensor) else type(hard).__name__
        raise ConfigError(
            f"loss '{owner}': hard labels must have shape [B] = [{logits.shape[0]}] to match the "
            f"logits {tuple(logits.shape)}, got {shape}"
        )


def _soft_targets(logits: torch.Tensor, targets: Targets, owner: str) -> torch.Tensor:
    """Return the batch's soft target logits ``[B, K]`` as detached float32, or raise."""
    soft = targets.soft
    if soft is None:
        raise ConfigError(
            f"loss '{owner}' needs soft targets (logits), but the label strategy gave only hard "
            "labels; use it with --label-strategy stored_soft or teacher, or use the loss 'ce'"
        )
    if soft.shape != logits.shape:
        raise ConfigError(
            f"loss '{owner}': soft targets have shape {tuple(soft.shape)} but the student logits "
            f"have {tuple(logits.shape)}; the soft labels (or the teacher) and the student must "
            "agree on the batch size and the number of classes K"
        )
    return soft.detach().float()


# -- the cross-entropy shared by `ce` and `mse_gt` -----------------------------------------------

def mixed_cross_entropy(logits: torch.Tensor, targets: Targets, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean hard-label cross-entropy of ``logits[B, K]`` (float32), mixing labels when
    ``targets.mix`` is set: ``lam_i * CE(s_i, y_i) + (1 - lam_i) * CE(s_i, y_perm[i])``.

    ``label_smoothing`` is the fraction (0..1) of the target mass spread uniformly over K.
    """
    logits = logits.float()
    per_sample = F.cross_entropy(logits, targets.hard, reduction="none", label_smoothing=label_smoothing)
    mix = targets.mix
    if mix is not None:
        if mix.perm.shape != targets.hard.shape or mix.lam.numel() not in (1, targets.hard.numel()):
            raise ConfigError(
                f"mix does not match the batch: perm {tuple(mix.perm.shape)} and lam "
                f"{tuple(mix.lam.shape)} must both be [B] = [{targets.hard.numel()}]"
            )
        lam = mix.lam.to(per_sample.dtype).reshape(-1)
        partner = F.cross_entropy(logits, targets.hard[mix.perm], reduction="none",
                                  label_smoothing=label_smoothing)
        per_sample = lam * per_sample + (1.0 - lam) * partner
    return per_sample.mean()


# -- the losses ----------------------------------------------------------------------------------

class CrossEntropy:
    """``ce``: hard-label cross-entropy with optional label smoothing and mixup/cutmix label mixing.

    Args:
        label_smoothing: fraction (0..1) of each target's mass spread uniformly over the classes.
    """

    name = "ce"
    needs_soft = False

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _fraction(label_smoothing, "label_smoothing", self.name)

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        _check_logits(logits, targets, self.name)
        return mixed_cross_entropy(logits, targets, self.label_smoothing)

    def __repr__(self) -> str:
        return f"CrossEntropy(label_smoothing={self.label_smoothing})"


class SoftCrossEntropy:
    """``sce``: soft cross-entropy ``mean_i sum_c -log_softmax(s_i/T)_c * softmax(t_i/T)_c``.

    DATM's evaluation loss (on its learned logits, T = 1).

    Args:
        temperature: T > 0, applied to student and target logits alike.
        scale_by_t2: multiply the loss by T² (keeps gradient magnitudes comparable across T).
    """

    name = "sce"
    needs_soft = True

    def __init__(self, temperature: float = 1.0, scale_by_t2: bool = False):
        self.temperature = _positive(temperature, "temperature", self.name)
        self.scale_by_t2 = _flag(scale_by_t2, "scale_by_t2", self.name)

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        _check_logits(logits, targets, self.name)
        t = self.temperature
        target_probs = F.softmax(_soft_targets(logits, targets, self.name) / t, dim=1)
        loss = -(target_probs * F.log_softmax(logits.float() / t, dim=1)).sum(dim=1).mean()
        return loss * (t * t) if self.scale_by_t2 else loss

    def __repr__(self) -> str:
        return f"SoftCrossEntropy(temperature={self.temperature}, scale_by_t2={self.scale_by_t2})"


class KLDivergence:
    """``kl``: ``KL(softmax(t/T) || softmax(s/T))`` summed over classes, averaged over the batch
    (``batchmean``), as SRe²L/RDED and the ``soft`` protocol train (T = 4 there by default).

    Args:
        temperature: T > 0, applied to student and target logits alike.
        scale_by_t2: multiply the loss by T² (Hinton et al.; off in SRe²L/RDED).
    """

    name = "kl"
    needs_soft = True

    def __init__(self, temperature: float = 4.0, scale_by_t2: bool = False):
        self.temperature = _positive(temperature, "temperature", self.name)
        self.scale_by_t2 = _flag(scale_by_t2, "scale_by_t2", self.name)

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        _check_logits(logits, targets, self.name)
        t = self.temperature
        target_log_probs = F.log_softmax(_soft_targets(logits, targets, self.name) / t, dim=1)
        loss = F.kl_div(F.log_softmax(logits.float() / t, dim=1), target_log_probs,
                        reduction="batchmean", log_target=True)
        return loss * (t * t) if self.scale_by_t2 else loss

    def __repr__(self) -> str:
        return f"KLDivergence(temperature={self.temperature}, scale_by_t2={self.scale_by_t2})"


class MSEWithHardLabels:
    """``mse_gt``: ``mse_weight * mean((s - t)²) + ce_weight * CE(s, y)`` (G-VBSM / EDC).

    The squared error compares raw logits (no temperature), averaged over all B·K entries; the
    cross-entropy uses the hard labels, mixed when the batch was mixed.

    Args:
        mse_weight: weight (>= 0) of the logit regression term.
        ce_weight: weight (>= 0) of the hard-label term; 0.025 is EDC's CIFAR value, G-VBSM uses
            0.15 (presets ``mse_gt.edc`` / ``mse_gt.gvbsm``).
    """

    name = "mse_gt"
    needs_soft = True

    def __init__(self, mse_weight: float = 1.0, ce_weight: float = 0.025):
        self.mse_weight = _non_negative(mse_weight, "mse_weight", self.name)
        self.ce_weight = _non_negative(ce_weight, "ce_weight", self.name)

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        _check_logits(logits, targets, self.name)
        soft = _soft_targets(logits, targets, self.name)
        mse = F.mse_loss(logits.float(), soft)
        return self.mse_weight * mse + self.ce_weight * mixed_cross_entropy(logits, targets)

    def __repr__(self) -> str:
        return f"MSEWithHardLabels(mse_weight={self.mse_weight}, ce_weight={self.ce_weight})"


BUILTIN_LOSSES: Mapping[str, type] = {
    "ce": CrossEntropy,
    "sce": SoftCrossEntropy,
    "kl": KLDivergence,
    "mse_gt": MSEWithHardLabels,
}
"""Built-in loss name -> class; how strategies resolve a loss name without the registry."""


def loss_name(loss: Callable[..., Any]) -> str:
    """A printable name of a built loss (its ``name`` attribute, else its type's name)."""
    return str(getattr(loss, "name", None) or type(loss).__name__)


def build_loss(loss: "str | Loss", **params: Any) -> Loss:
    """Return a loss callable.

    Args:
        loss: a built-in loss name (see :data:`BUILTIN_LOSSES`) or an already-built loss callable
            ``loss(logits[B, K], targets) -> scalar`` (how the registry passes plugin losses).
        params: the loss's parameters, e.g. ``temperature=4.0``; only with a loss name (a built
            loss was configured when it was built).

    Raises:
        UnknownComponentError: the name is not a built-in loss.
        ConfigError: a parameter the loss does not take, or parameters given with a built loss.
    """
    if isinstance(loss, str):
        cls = BUILTIN_LOSSES.get(loss)
        if cls is None:
            raise UnknownComponentError(
                f"unknown loss {loss!r}; built-in losses are {', '.join(sorted(BUILTIN_LOSSES))} "
                "(losses from plugins are resolved by name with `ddr list label-strategies`)"
            )
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ConfigError(
                f"loss {loss!r} does not take parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(accepted) or 'none'}"
            )
        return cls(**params)
    if isinstance(loss, type) or not callable(loss):
        raise ConfigError(
            f"loss must be a loss name or a built loss callable loss(logits, targets), got {loss!r}"
        )
    if params:
        raise ConfigError(
            f"parameter(s) {', '.join(sorted(params))} were given together with the already-built "
            f"loss {loss_name(loss)!r}; set them on that loss instead"
        )
    return loss
