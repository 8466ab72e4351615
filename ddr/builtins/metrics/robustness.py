"""Adversarial robustness of a trained student: untargeted L-infinity FGSM and PGD.

A student's robust accuracy is the fraction of test images it classifies correctly both as they
are and after an attacker moved every pixel by at most ``epsilon`` (0..1 pixel units, so
``8/255`` is eight of 255 grey levels) to raise the student's cross-entropy loss:

* **FGSM** (fast gradient sign method; Goodfellow, Shlens and Szegedy, "Explaining and
  Harnessing Adversarial Examples", ICLR 2015): one step ``p + epsilon * sign(grad_p loss)``.
* **PGD** (projected gradient descent; Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep
  Learning Models Resistant to Adversarial Attacks", ICLR 2018): a uniform random start in the
  ball, then ``steps`` steps ``p + step_size * sign(grad_p loss)``, each projected back onto the
  ball and onto [0, 1]; the last iterate is the adversarial image, as in the paper. The default
  step size ``2.5 * epsilon / steps`` is the rule attributed to Madry et al. (the steps together
  cover 2.5 radii, so a walk can reach the ball's boundary from any start).

Both attacks are L-infinity ``|p_adv - p| <= epsilon`` per pixel value, clipped to the valid
range [0, 1], untargeted, with the summed cross-entropy over the batch as the loss (a sum, not a
mean, so an image's gradient does not depend on the batch it is in).

**Attack space.** ddr's datasets hold images in the *model's input space*: per-channel
``(p - mean) / std`` of 0..1 pixels ``p`` (``pixel_space="normalized"``), or, with ``--zca``,
ZCA-whitened 0..1 pixels ``(p - mu) W`` with no normalisation before or after
(``pixel_space="zca"``, :mod:`ddr.builtins.datasets.zca`). An epsilon is meaningful only in 0..1
pixels, so the attacks run there: :class:`PixelSpace` maps a model input to pixels and back, the
way back (:meth:`PixelSpace.to_input`) being differentiable, so the loss's gradient flows from
the model through normalisation and whitening to the pixels.

**Why not a library.** torchattacks (3.5.1, the best-known PyTorch package of attacks) was
weighed and not used:

* it assumes models that take [0, 1] images; ddr's students take normalised or ZCA-whitened
  inputs, so every call would need a wrapper model (``to_input`` then the student). Its own
  ``set_normalization_used`` covers mean/std but not ZCA, so the wrapper is :class:`PixelSpace`
  anyway, and the attack loops left to delegate are a dozen lines each;
* its random start draws from torch's global generator (``torch.empty_like(x).uniform_``), while
  every random number in ddr comes from an explicit generator derived from the run's seed
  (CONTRIBUTING.md), so a seeded, reproducible PGD would need a patched copy of its loop;
* it switches the model's mode itself and adds a dependency (with its own requirements) to
  every installation for two textbook attacks, for which this module's tests check the known
  properties directly (bounds, monotonicity in epsilon, FGSM's closed form on a linear model).

Here the model is put in eval mode and its parameters are frozen (``requires_grad=False``) for
the attack, so no parameter gradient is computed or accumulated and BatchNorm statistics do not
move; every module's ``training`` flag and every parameter's ``requires_grad`` flag are restored
afterwards, also when the attack raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ddr.builtins.datasets.zca import ZCA
from ddr.engine.data import ImageDataset
from ddr.errors import ConfigError, DataError

ATTACKS = ("fgsm", "pgd")
"""The attacks :func:`robust_accuracy` and :func:`measure` know."""
PARAMS = ("attack", "epsilon", "steps", "step_size", "max_images")
"""The keys of :func:`measure`'s ``params`` (``attack`` and ``epsilon`` are required)."""
DEFAULT_STEPS = 10
"""PGD steps when ``params`` does not name them."""
PGD_STEP_FACTOR = 2.5
"""Madry et al.'s step size: ``2.5 * epsilon / steps``."""

Attack = Literal["fgsm", "pgd"]


@dataclass(frozen=True)
class PixelSpace:
    """The map between a dataset's model inputs and 0..1 pixels.

    Attributes:
        mean, std: per-channel normalisation of 0..1 pixels, ``x = (p - mean) / std``; used when
            ``zca`` is ``None``.
        zca: the dataset's ZCA fit when its images are whitened (``x = (p - mu) W`` on the
            flattened 0..1 pixels, no normalisation), else ``None``.

    Both maps take and return ``[B, C, H, W]`` tensors in the input's dtype and on its device.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    zca: ZCA | None = None

    @classmethod
    def of(cls, dataset: ImageDataset) -> "PixelSpace":
        """The pixel space of ``dataset``'s images: its ``mean``/``std`` when they are normalised
        (``pixel_space="normalized"``), its ZCA fit (``dataset.zca``) when they are whitened
        (``pixel_space="zca"``). :class:`DataError` for any other space or a missing fit."""
        if dataset.pixel_space == "zca":
            if not isinstance(dataset.zca, ZCA):
                raise DataError(f"dataset '{dataset.name}' is ZCA-whitened but carries no ZCA fit "
                                "(ImageDataset.zca); load it through ddr's --zca path (apply_zca)")
            return cls(mean=tuple(dataset.mean), std=tuple(dataset.std), zca=dataset.zca)
        if dataset.pixel_space == "normalized":
            if len(dataset.mean) != dataset.channels or len(dataset.std) != dataset.channels:
                raise DataError(f"dataset '{dataset.name}' has {dataset.channels} channel(s) but "
                                f"{len(dataset.mean)} mean(s) and {len(dataset.std)} std(s)")
            if any(not s > 0 for s in dataset.std):
                raise DataError(f"dataset '{dataset.name}' has a non-positive std {dataset.std}")
            return cls(mean=tuple(float(m) for m in dataset.mean), std=tuple(float(s) for s in dataset.std))
        raise DataError(f"dataset '{dataset.name}' is in pixel space '{dataset.pixel_space}'; robustness "
                        "is measured on 'normalized' or 'zca' datasets")

    def to(self, device: torch.device | str) -> "PixelSpace":
        """A copy whose ZCA matrices live on ``device`` (so no call transfers them)."""
        return self if self.zca is None else replace(self, zca=self.zca.to(device))

    def _channels(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)

    def _affine(self, x: torch.Tensor, matrix: torch.Tensor, before: torch.Tensor | None,
                after: torch.Tensor | None) -> torch.Tensor:
        assert self.zca is not None
        if tuple(x.shape[1:]) != tuple(self.zca.shape):
            raise DataError(f"the ZCA fit is for images {list(self.zca.shape)}, got a batch {list(x.shape)}")
        rows = x.reshape(x.shape[0], -1)
        if before is not None:
            rows = rows - before.to(x.device, x.dtype)
        rows = rows @ matrix.to(x.device, x.dtype)
        if after is not None:
            rows = rows + after.to(x.device, x.dtype)
        return rows.reshape(x.shape)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs ``x`` ``[B, C, H, W]`` -> 0..1 pixels ``p`` ``[B, C, H, W]``:
        ``x * std + mean``, or ``x W_inv + mu`` for ZCA (kornia's ``inverse_transform``). Not
        clipped: a dataset's own images come back in [0, 1] up to float rounding."""
        if self.zca is not None:
            return self._affine(x, self.zca.inverse_transform, None, self.zca.mean)
        return x * self._channels(self.std, x) + self._channels(self.mean, x)

    def to_input(self, p: torch.Tensor) -> torch.Tensor:
        """0..1 pixels ``p`` ``[B, C, H, W]`` -> model inputs ``[B, C, H, W]``, the inverse of
        :meth:`to_pixels`: ``(p - mean) / std``, or ``(p - mu) W`` for ZCA (as the dataset's
        images were made). Differentiable in ``p`` (plain tensor ops, no in-place writes)."""
        if self.zca is not None:
            return self._affine(p, self.zca.transform, self.zca.mean, None)
        return (p - self._channels(self.mean, p)) / self._channels(self.std, p)


@contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with every parameter's ``requires_grad`` off for the block;
    restore each module's ``training`` flag and each parameter's ``requires_grad`` afterwards
    (also on an exception). Gradients are enabled inside (and inference mode is off), so an
    attack works when called under ``torch.no_grad()``."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        model.eval()
        for parameter, _ in flags:
            parameter.requires_grad_(False)
        with torch.inference_mode(False), torch.enable_grad():
            yield model
    finally:
        for module, training in modes:
            module.training = training
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _loss_gradient(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, space: PixelSpace) -> torch.Tensor:
    """``d/dp sum_i CE(model(to_input(p))_i, y_i)`` at ``pixels`` ``[B, C, H, W]`` -> ``[B, C, H, W]``."""
    p = pixels.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(space.to_input(p)), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, p)
    return gradient


def _project(adversarial: torch.Tensor, pixels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Clip ``adversarial`` to the L-inf ball of radius ``epsilon`` around ``pixels``, then to [0, 1]."""
    return torch.clamp(torch.minimum(torch.maximum(adversarial, pixels - epsilon), pixels + epsilon), 0.0, 1.0)


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon):
        raise ConfigError(f"epsilon must be a number in [0, 1] (0..1 pixel units, e.g. 8/255 = 0.0314); got {epsilon!r}")
    if not 0.0 <= epsilon <= 1.0:
        raise ConfigError(f"epsilon is in 0..1 pixel units and must lie in [0, 1] (e.g. 8/255 = 0.0314 for 8 of "
                          f"255 grey levels); got {epsilon}")
    return float(epsilon)


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps (PGD iterations) must be an integer >= 1, e.g. 10; got {steps!r}")
    return steps


def _check_step_size(step_size: float | None) -> float | None:
    if step_size is None:
        return None
    if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not (
            math.isfinite(step_size) and step_size > 0):
        raise ConfigError(f"step_size must be a positive number in 0..1 pixel units, or None for Madry et al.'s "
                          f"2.5 * epsilon / steps; got {step_size!r}")
    return float(step_size)


def _check_pixels(pixels: torch.Tensor, labels: torch.Tensor) -> None:
    if pixels.ndim != 4:
        raise DataError(f"attacks take pixels [B, C, H, W], got shape {list(pixels.shape)}")
    if labels.shape != (pixels.shape[0],):
        raise DataError(f"attacks take labels [B] for pixels {list(pixels.shape)}, got {list(labels.shape)}")


def fgsm(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, space: PixelSpace,
         epsilon: float) -> torch.Tensor:
    """FGSM (Goodfellow et al., ICLR 2015), untargeted, L-infinity.

    Args:
        model: the classifier, taking model inputs ``[B, C, H, W]`` -> logits ``[B, K]``; run in
            eval mode, its modes and ``requires_grad`` flags restored (:func:`frozen_eval`).
        pixels: float ``[B, C, H, W]`` clean images as 0..1 pixels (``space.to_pixels`` of the
            model inputs, clipped to [0, 1]), on the model's device.
        labels: int64 ``[B]`` true classes.
        space: the map from pixels to the model's inputs.
        epsilon: the L-inf radius in 0..1 pixel units (``8/255`` = 8 grey levels).

    Returns:
        Detached ``[B, C, H, W]`` adversarial pixels ``clip(p + epsilon * sign(grad_p CE), 0, 1)``
        (a zero gradient entry leaves that pixel value where it is).
    """
    epsilon = _check_epsilon(epsilon)
    _check_pixels(pixels, labels)
    pixels = pixels.detach()
    with frozen_eval(model):
        gradient = _loss_gradient(model, pixels, labels, space)
    return _project(pixels + epsilon * gradient.sign(), pixels, epsilon).detach()


def pgd(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, space: PixelSpace, epsilon: float,
        steps: int = DEFAULT_STEPS, step_size: float | None = None, random_start: bool = True,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD (Madry et al., ICLR 2018), untargeted, L-infinity, cross-entropy, last iterate.

    Args:
        model, pixels, labels, space, epsilon: as for :func:`fgsm`.
        steps: gradient-sign steps (>= 1).
        step_size: each step's size in 0..1 pixel units; ``None`` is ``2.5 * epsilon / steps``.
        random_start: start at ``clip(p + U(-epsilon, epsilon), 0, 1)`` (the paper's), else at ``p``.
        generator: draws the random start (on the generator's device, then moved to the pixels');
            required when ``random_start`` and ``epsilon > 0``, so every draw is seeded.

    Returns:
        Detached ``[B, C, H, W]`` adversarial pixels within ``epsilon`` of ``pixels`` and in [0, 1].
    """
    epsilon = _check_epsilon(epsilon)
    steps = _check_steps(steps)
    step = _check_step_size(step_size)
    step = PGD_STEP_FACTOR * epsilon / steps if step is None else step
    _check_pixels(pixels, labels)
    pixels = pixels.detach()
    adversarial = pixels.clone()
    if epsilon == 0.0:
        return adversarial
    if random_start:
        if generator is None:
            raise ConfigError("PGD's random start needs a torch.Generator (seeded from the run's seed); "
                              "pass generator=, or random_start=False")
        noise = torch.rand(pixels.shape, generator=generator, device=generator.device, dtype=pixels.dtype)
        adversarial = _project(pixels + (2.0 * noise.to(pixels.device) - 1.0) * epsilon, pixels, epsilon)
    with frozen_eval(model):
        for _ in range(steps):
            gradient = _loss_gradient(model, adversarial, labels, space)
            adversarial = _project(adversarial + step * gradient.sign(), pixels, epsilon)
    return adversarial.detach()


def _accuracies(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, space: PixelSpace, *,
                attack: str, epsilon: float, steps: int, step_size: float | None, random_start: bool,
                seed: int, batch_size: int, device: torch.device | str | None) -> tuple[float, float]:
    """``(clean, robust)`` accuracy fractions on ``images`` (model inputs); see :func:`robust_accuracy`."""
    if attack not in ATTACKS:
        raise ConfigError(f"unknown attack {attack!r}; set attack to one of {', '.join(ATTACKS)}")
    epsilon = _check_epsilon(epsilon)
    steps = _check_steps(steps)
    step_size = _check_step_size(step_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise DataError(f"robust accuracy takes images [N, C, H, W] and labels [N]; got {list(images.shape)} "
                        f"and {list(labels.shape)}")
    total = int(images.shape[0])
    if total == 0:
        raise DataError("robust accuracy needs at least one test image")
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else images.device
    device = torch.device(device)
    space = space.to(device)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    clean_hits = robust_hits = 0
    with frozen_eval(model):
        for start in range(0, total, batch_size):
            x = images[start:start + batch_size].to(device, torch.float32)
            y = labels[start:start + batch_size].to(device)
            with torch.no_grad():
                clean = model(x).argmax(dim=1) == y
            clean_hits += int(clean.sum())
            if epsilon == 0.0:
                robust_hits += int(clean.sum())
                continue
            pixels = space.to_pixels(x).clamp(0.0, 1.0)
            if attack == "fgsm":
                adversarial = fgsm(model, pixels, y, space, epsilon)
            else:
                adversarial = pgd(model, pixels, y, space, epsilon, steps=steps, step_size=step_size,
                                  random_start=random_start, generator=generator)
            with torch.no_grad():
                robust = model(space.to_input(adversarial)).argmax(dim=1) == y
            robust_hits += int((clean & robust).sum())
    return clean_hits / total, robust_hits / total


def robust_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, space: PixelSpace, *,
                    attack: Attack, epsilon: float, steps: int = DEFAULT_STEPS, step_size: float | None = None,
                    random_start: bool = True, seed: int = 0, batch_size: int = 256,
                    device: torch.device | str | None = None) -> float:
    """Fraction in [0, 1] of ``images`` the model classifies correctly both clean and under ``attack``.

    An image counts as robust when the model is right on it and on its adversarial version (as
    RobustBench and AutoAttack count), so robust accuracy never exceeds the clean one, and
    ``epsilon == 0`` returns the clean accuracy exactly (no attack runs).

    Args:
        model: the classifier (model inputs ``[B, C, H, W]`` -> logits ``[B, K]``), already on
            ``device``; evaluated in eval mode, its state restored afterwards.
        images: float32 ``[N, C, H, W]`` in the model's input space, as the dataset's test split
            holds them (normalised, or ZCA-whitened); mapped to 0..1 pixels with ``space`` and
            clipped to [0, 1] before the attack.
        labels: int64 ``[N]`` true classes.
        space: the dataset's :class:`PixelSpace` (``PixelSpace.of(dataset)``).
        attack: ``"fgsm"`` or ``"pgd"``.
        epsilon: L-inf radius in 0..1 pixel units, in [0, 1] (e.g. ``8/255``).
        steps: PGD steps (ignored by FGSM).
        step_size: PGD step in 0..1 pixel units; ``None`` is ``2.5 * epsilon / steps`` (Madry et al.).
        random_start: PGD's uniform random start in the ball.
        seed: seeds the CPU generator of PGD's random starts, drawn batch after batch (the
            result depends on ``seed`` and ``batch_size``).
        batch_size: images attacked at once.
        device: where to run; ``None`` is the device of the model's parameters.
    """
    return _accuracies(model, images, labels, space, attack=attack, epsilon=epsilon, steps=steps,
                       step_size=step_size, random_start=random_start, seed=seed, batch_size=batch_size,
                       device=device)[1]


class JobTestData(Protocol):
    """What :func:`measure` reads of the student job's test split."""

    images: torch.Tensor
    """float32 ``[N, C, H, W]`` in the model's input space, on ``device``."""
    labels: torch.Tensor
    """int64 ``[N]``."""
    dataset: ImageDataset
    device: torch.device
    seed: int


def _checked_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` validated, with defaults filled; :class:`ConfigError` naming what to set."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"robustness parameters must be a mapping with keys {', '.join(PARAMS)}; got {params!r}")
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        import difflib

        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(str(key), PARAMS, 1))
                 else repr(key) for key in unknown]
        raise ConfigError(f"unknown robustness parameter(s) {', '.join(hints)}; the parameters are {', '.join(PARAMS)}")
    for key in ("attack", "epsilon"):
        if params.get(key) is None:
            raise ConfigError(f"the robustness metric needs '{key}': set attack to one of {', '.join(ATTACKS)} "
                              "and epsilon to a radius in 0..1 pixel units (e.g. 8/255 = 0.0314)")
    attack = params["attack"]
    if attack not in ATTACKS:
        raise ConfigError(f"unknown attack {attack!r}; set attack to one of {', '.join(ATTACKS)}")
    steps = params.get("steps")
    step_size = params.get("step_size")
    if attack == "fgsm" and step_size is not None:
        raise ConfigError(f"step_size applies to pgd only (FGSM takes one step of size epsilon); unset step_size "
                          f"or set attack to pgd; got step_size={step_size!r}")
    max_images = params.get("max_images")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise ConfigError(f"max_images must be an integer >= 1 (the first N test images), or None for all; "
                          f"got {max_images!r}")
    return {"attack": attack, "epsilon": _check_epsilon(params["epsilon"]),
            "steps": _check_steps(DEFAULT_STEPS if steps is None else steps),
            "step_size": _check_step_size(step_size), "max_images": max_images}


def measure(model: nn.Module, test: JobTestData, params: Mapping[str, Any]) -> dict[str, float]:
    """The robustness metric of one trained student, run inside its student job.

    Args:
        model: the trained student, on ``test.device``.
        test: the job's test split (:class:`JobTestData`: ``images``, ``labels``, ``dataset``,
            ``device``, ``seed``).
        params: ``attack`` (``"fgsm"`` or ``"pgd"``), ``epsilon`` (float, 0..1 pixel units),
            ``steps`` (int, default 10), ``step_size`` (float or None: ``2.5 * epsilon / steps``),
            ``max_images`` (int or None: the first N test images, else all).

    Returns:
        ``{"clean": accuracy on the images measured, "robust": robust accuracy on them}``,
        fractions in [0, 1] (:func:`robust_accuracy`), PGD's random starts seeded by ``test.seed``.
    """
    settings = _checked_params(params)
    images, labels = test.images, test.labels
    if settings["max_images"] is not None:
        images, labels = images[:settings["max_images"]], labels[:settings["max_images"]]
    clean, robust = _accuracies(model, images, labels, PixelSpace.of(test.dataset), attack=settings["attack"],
                                epsilon=settings["epsilon"], steps=settings["steps"], step_size=settings["step_size"],
                                random_start=True, seed=int(test.seed), batch_size=256, device=test.device)
    return {"clean": clean, "robust": robust}
