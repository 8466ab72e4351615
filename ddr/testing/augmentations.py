"""Contract check for augmentations: ``check_augmentation(aug_or_spec)``.

For plugin authors' tests::

    from ddr.testing.augmentations import check_augmentation

    def test_my_aug():
        check_augmentation(MyAug(strength=0.3))

Raises ``AssertionError`` naming the broken rule of the contract in :mod:`ddr.engine.augment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ddr.engine.augment import Mix
from ddr.plugin.registry import import_target
from ddr.plugin.specs import AugmentationSpec

_SEEDS_FOR_RANDOMNESS = (1, 2, 3, 4)


def instantiate(spec: AugmentationSpec, params: Mapping[str, Any] | None = None) -> Any:
    """Build the augmentation a spec describes: ``target(**defaults, **params)``."""
    return import_target(spec)(**{**dict(spec.defaults), **dict(params or {})})


def _run(aug: Any, images: torch.Tensor, seed: int) -> tuple[torch.Tensor, Mix | None]:
    generator = torch.Generator(device=images.device)
    generator.manual_seed(seed)
    result = aug(images, generator)
    assert isinstance(result, tuple) and len(result) == 2, (
        f"{aug!r} must return (images, Mix | None), got {type(result).__name__}")
    return result


def _check_mix(aug: Any, mix: Mix, images: torch.Tensor) -> None:
    batch = images.shape[0]
    assert isinstance(mix, Mix), f"{aug!r} returned {type(mix).__name__} as its mix, expected ddr.engine.augment.Mix or None"
    perm, lam = mix.perm, mix.lam
    assert perm.dtype == torch.int64 and tuple(perm.shape) == (batch,), (
        f"Mix.perm must be int64 [{batch}], got {perm.dtype} {tuple(perm.shape)}")
    assert torch.equal(perm.sort().values.cpu(), torch.arange(batch)), f"Mix.perm is not a permutation: {perm}"
    assert lam.is_floating_point() and tuple(lam.shape) == (batch,), (
        f"Mix.lam must be float [{batch}], got {lam.dtype} {tuple(lam.shape)}")
    assert perm.device == images.device and lam.device == images.device, "Mix tensors must be on the images' device"
    assert bool(((lam >= 0) & (lam <= 1)).all()), f"Mix.lam must lie in [0, 1], got {lam}"
    # mixed one-hot targets of 3 classes must keep a label mass of exactly 1 per sample
    onehot = torch.nn.functional.one_hot(torch.arange(batch, device=images.device) % 3, 3).to(lam.dtype)
    mixed = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]
    assert torch.allclose(mixed.sum(1), torch.ones_like(lam)), "mixed targets do not sum to 1"


def check_augmentation(
    aug_or_spec: Any,
    *,
    images: torch.Tensor | None = None,
    channels: int = 3,
    size: int = 32,
    batch: int = 8,
    params: Mapping[str, Any] | None = None,
    stochastic: bool = True,
) -> None:
    """Check an augmentation (or an :class:`~ddr.plugin.specs.AugmentationSpec`, built with its defaults
    and ``params``) against the contract.

    Checked: the output is a tensor of the input's shape, dtype and device, finite; the input
    is not modified in place; the same generator seed gives identical output (and mix); with
    ``stochastic`` some other seed gives a different output; gradients reach the input images
    (skipped when the augmentation sets ``differentiable = False``); a returned Mix has a
    permutation ``perm`` and ``lam`` in [0, 1], so mixed targets keep a mass of 1 per sample.

    Args:
        images: the test batch ``[B, C, H, W]``; by default standard-normal images
            ``[batch, channels, size, size]`` (normalised pixel space) from a fixed seed.
    """
    aug = instantiate(aug_or_spec, params) if isinstance(aug_or_spec, AugmentationSpec) else aug_or_spec
    if images is None:
        images = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(0))
    original = images.clone()

    out, mix = _run(aug, images, seed=0)
    assert isinstance(out, torch.Tensor), f"{aug!r} returned {type(out).__name__} images, expected a tensor"
    assert out.shape == images.shape, f"{aug!r} changed the shape {tuple(images.shape)} -> {tuple(out.shape)}"
    assert out.dtype == images.dtype, f"{aug!r} changed the dtype {images.dtype} -> {out.dtype}"
    assert out.device == images.device, f"{aug!r} moved the images {images.device} -> {out.device}"
    assert bool(torch.isfinite(out).all()), f"{aug!r} produced non-finite values"
    assert torch.equal(images, original), f"{aug!r} modified its input in place"
    if mix is not None:
        _check_mix(aug, mix, images)

    again, mix_again = _run(aug, images, seed=0)
    assert torch.equal(out, again), f"{aug!r}: the same generator seed gave different images"
    assert (mix is None) == (mix_again is None), f"{aug!r}: the same seed mixed once and not the other time"
    if mix is not None and mix_again is not None:
        assert torch.equal(mix.perm, mix_again.perm) and torch.equal(mix.lam, mix_again.lam), (
            f"{aug!r}: the same generator seed gave a different mix")

    if stochastic:
        assert any(not torch.equal(out, _run(aug, images, seed)[0]) for seed in _SEEDS_FOR_RANDOMNESS), (
            f"{aug!r} gave the same output for seeds 0..{max(_SEEDS_FOR_RANDOMNESS)}; if it is deterministic, "
            "pass stochastic=False")

    if getattr(aug, "differentiable", True):
        leaf = images.detach().clone().requires_grad_(True)
        result, _ = _run(aug, leaf, seed=0)
        weights = torch.randn(result.shape, generator=torch.Generator().manual_seed(1)).to(result)
        (result * weights).sum().backward()
        assert leaf.grad is not None, f"{aug!r} is not differentiable w.r.t. the images (no gradient)"
        assert bool(torch.isfinite(leaf.grad).all()), f"{aug!r} gives non-finite gradients"
        assert bool((leaf.grad != 0).any()), f"{aug!r} gives an all-zero gradient to the images"
