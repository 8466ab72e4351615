"""The one thing a method produces: a :class:`DistilledSet`, its content hash, and the checks
that make it safe to train on (shapes, dtypes, labels, finite values, pixel space).

On-disk formats live in :mod:`ddr.store.formats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError, DistilledSetError

if TYPE_CHECKING:  # pragma: no cover
    import torch

PIXEL_SPACES = ("normalized", "zca", "pixel01")


@dataclass
class DistilledSet:
    """A distilled dataset.

    Attributes:
        images: float32 ``[N, C, H, W]`` in ``pixel_space``.
        labels: int64 ``[N]`` hard class labels.
        soft_labels: optional float32 ``[N, K]`` logits.
        lr: optional learned evaluation learning rate.
        pixel_space: ``normalized`` (dataset mean/std), ``zca`` or ``pixel01`` (0..1 pixels).
        label_strategy: the label strategy the set expects for acc_syn_any (None: method default).
        meta: method, params, dataset, ipc, seed, distill_seconds, peak_memory_bytes, ...
    """

    images: "torch.Tensor"
    labels: "torch.Tensor"
    soft_labels: "torch.Tensor | None" = None
    lr: float | None = None
    pixel_space: str = "normalized"
    label_strategy: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------


def distilled_sha256(ds: DistilledSet) -> str:
    """Hex sha256 identifying a distilled set's content.

    :func:`ddr.store.hashing.tensor_sha256` of dtype, shape and bytes of ``images``, ``labels``,
    ``soft_labels`` (a marker when absent) and ``lr`` (as a float64 scalar; a marker when
    absent). Pixel space and meta are not part of it: the hash proves which tensors an evaluation
    trained on.
    """
    import torch

    from ddr.store.hashing import tensor_sha256

    lr = None if ds.lr is None else torch.tensor(float(ds.lr), dtype=torch.float64)
    return tensor_sha256(ds.images, ds.labels, ds.soft_labels, lr)


# ---------------------------------------------------------------------------------------------
# Validation against the dataset a set is evaluated on
# ---------------------------------------------------------------------------------------------


def validate_distilled(
    ds: DistilledSet,
    *,
    num_classes: int,
    ipc: int,
    channels: int,
    image_size: tuple[int, int] | int,
    mean: Sequence[float],
    std: Sequence[float],
    resize: bool = False,
    expect_ipc_exact: bool = True,
) -> DistilledSet:
    """Check ``ds`` against the dataset it will be evaluated on and return a training-ready copy.

    Every failure is a :class:`DistilledSetError` saying what was found, what was expected and
    what to do. The returned set has float32 images ``[ipc*K, C, H, W]`` in ``normalized`` (or
    ``zca``) space, int64 labels, float32 soft labels and a float lr; the input is not modified.

    Args:
        num_classes: K of the dataset.
        ipc: images per class the evaluation is for.
        channels, image_size: the dataset's C and ``(H, W)`` (an int means square).
        mean, std: per-channel normalisation constants (fractions of the 0..1 range), used to
            normalise ``pixel01`` sets.
        resize: bilinearly resize (antialiased) a set of another spatial size instead of failing;
            the original ``[H, W]`` is recorded in ``meta["resized_from"]``.
        expect_ipc_exact: require exactly ``ipc`` images of every class; when False, every class
            needs between 1 and ``ipc`` images (the budget is an upper bound).

    Suspicious but legal findings (a ``normalized`` set whose values all lie in [0, 1], a
    ``pixel01`` set with values outside it) are appended to ``meta["warnings"]``.
    """
    import torch

    size = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    warnings = list(ds.meta.get("warnings", []))
    meta = dict(ds.meta)

    images = _checked_images(ds.images)
    labels = _checked_labels(ds.labels, images.shape[0], num_classes)
    _check_class_counts(labels, num_classes, ipc, expect_ipc_exact)
    if images.shape[1] != channels:
        raise DistilledSetError(
            f"distilled images have {images.shape[1]} channel(s) but the dataset has {channels}; "
            f"{_channel_hint(int(images.shape[1]), channels)}. ddr does not convert silently"
        )
    _check_finite(images, "images", "images")
    if tuple(images.shape[2:]) != size:
        if not resize:
            raise DistilledSetError(
                f"distilled images are {images.shape[2]}x{images.shape[3]} (HxW) but the dataset's are "
                f"{size[0]}x{size[1]}; re-distill at that size or allow resizing (resize=True / --resize)"
            )
        if ds.pixel_space == "zca":
            raise DistilledSetError(
                "cannot resize a ZCA-whitened set: whitening is tied to the image size; "
                "re-distill at the dataset's size"
            )
        meta["resized_from"] = [int(images.shape[2]), int(images.shape[3])]
        images = torch.nn.functional.interpolate(
            images, size=size, mode="bilinear", align_corners=False, antialias=True
        )

    soft = None
    if ds.soft_labels is not None:
        soft = _checked_soft_labels(ds.soft_labels, images.shape[0], num_classes)
    lr = _checked_lr(ds.lr)

    pixel_space = ds.pixel_space
    if pixel_space not in PIXEL_SPACES:
        raise DistilledSetError(f"unknown pixel space {pixel_space!r}; expected one of {', '.join(PIXEL_SPACES)}")
    lo, hi = float(images.min()), float(images.max())
    if pixel_space == "pixel01":
        if lo < -1e-3 or hi > 1 + 1e-3:
            warnings.append(
                f"set is marked pixel01 but its values span [{lo:.3g}, {hi:.3g}], outside [0, 1]: "
                "it may already be normalised"
            )
        images = _normalise(images, mean, std)
        pixel_space = "normalized"
    elif pixel_space == "normalized" and lo >= 0.0 and hi <= 1.0:
        warnings.append(
            f"set is marked normalized but all values lie in [{lo:.3g}, {hi:.3g}] within [0, 1]: "
            "it looks unnormalised (0..1 pixels); if so, mark it pixel01"
        )
    if warnings:
        meta["warnings"] = warnings
    return replace(
        ds, images=images.contiguous(), labels=labels, soft_labels=soft, lr=lr, pixel_space=pixel_space, meta=meta
    )


def _channel_hint(found: int, expected: int) -> str:
    if (found, expected) == (1, 3):
        return "convert the set to RGB first (repeat the grey channel 3 times, or re-export RGB images)"
    if (found, expected) == (3, 1):
        return "convert the set to greyscale first (e.g. ITU-R 601 luma weights)"
    return "was it distilled for another dataset?"


def _checked_images(images: Any) -> "torch.Tensor":
    import torch

    if not isinstance(images, torch.Tensor):
        raise DistilledSetError(f"distilled images must be a torch.Tensor [N,C,H,W], found a {type(images).__name__}")
    if images.dim() != 4:
        raise DistilledSetError(
            f"distilled images have shape {tuple(images.shape)}; expected 4-D [N, C, H, W]"
            + ("; a single image? add a batch dimension" if images.dim() == 3 else "")
        )
    if not images.is_floating_point():
        raise DistilledSetError(
            f"distilled images have dtype {images.dtype}; expected float. Convert 0..255 integers with "
            "images.float() / 255 and mark the set pixel01"
        )
    return images.detach().to(torch.float32)


def _checked_labels(labels: Any, n: int, num_classes: int) -> "torch.Tensor":
    import torch

    if not isinstance(labels, torch.Tensor):
        raise DistilledSetError(f"labels must be a torch.Tensor [N], found a {type(labels).__name__}")
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise DistilledSetError(
            f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; expected 1-D integer class "
            "indices [N] (soft labels belong in soft_labels)"
        )
    if labels.shape[0] != n:
        raise DistilledSetError(f"there are {n} images but {labels.shape[0]} labels; expected one label per image")
    labels = labels.detach().to(torch.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bool(bad.any()):
        values = sorted(set(labels[bad].tolist()))
        raise DistilledSetError(
            f"{int(bad.sum())} label(s) lie outside [0, {num_classes}) (values {values[:10]}); "
            "was the set distilled for a dataset with another number of classes?"
        )
    return labels


def _check_class_counts(labels: "torch.Tensor", num_classes: int, ipc: int, exact: bool) -> None:
    import torch

    counts = torch.bincount(labels, minlength=num_classes).tolist()
    missing = [c for c, count in enumerate(counts) if count == 0]
    if missing:
        raise DistilledSetError(
            f"class(es) {missing[:20]}{' ...' if len(missing) > 20 else ''} have no images "
            f"({len(missing)} of {num_classes} missing); a distilled set needs images of every class"
        )
    wrong = [(c, count) for c, count in enumerate(counts) if (count != ipc if exact else count > ipc)]
    if wrong:
        detail = ", ".join(f"class {c}: {count}" for c, count in wrong[:10])
        total = len(labels)
        raise DistilledSetError(
            f"the set has {total} images ({detail}{' ...' if len(wrong) > 10 else ''}) but the evaluation "
            f"expects {'exactly' if exact else 'at most'} ipc={ipc} per class (ipc*num_classes = "
            f"{ipc * num_classes}); evaluate at the IPC the set was distilled for (--ipc) or re-distill"
        )


def _check_finite(tensor: "torch.Tensor", what: str, unit: str) -> None:
    import torch

    nan, inf = torch.isnan(tensor), torch.isinf(tensor)
    if bool(nan.any()) or bool(inf.any()):
        rows = int((nan | inf).reshape(tensor.shape[0], -1).any(dim=1).sum())
        raise DistilledSetError(
            f"{what} contain {int(nan.sum())} NaN and {int(inf.sum())} Inf value(s) in {rows} of "
            f"{tensor.shape[0]} {unit}; distillation diverged: re-run it (lower learning rate) "
            "before evaluating"
        )


def _checked_soft_labels(soft: Any, n: int, num_classes: int) -> "torch.Tensor":
    import torch

    if not isinstance(soft, torch.Tensor) or not soft.is_floating_point():
        found = f"dtype {soft.dtype}" if isinstance(soft, torch.Tensor) else f"a {type(soft).__name__}"
        raise DistilledSetError(f"soft labels must be a float tensor [N, K] of logits, found {found}")
    if tuple(soft.shape) != (n, num_classes):
        raise DistilledSetError(
            f"soft labels have shape {tuple(soft.shape)}; expected [N, K] = [{n}, {num_classes}] "
            "(one logit vector per image over the dataset's classes)"
        )
    soft = soft.detach().to(torch.float32)
    _check_finite(soft, "soft labels", "rows")
    return soft


def _checked_lr(lr: Any) -> float | None:
    import torch

    if lr is None:
        return None
    try:
        value = float(lr.reshape(()).item()) if isinstance(lr, torch.Tensor) else float(lr)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DistilledSetError(f"the stored learning rate {lr!r} is not a number") from e
    if not math.isfinite(value) or value <= 0:
        raise DistilledSetError(
            f"the stored learning rate is {value}; expected a finite number > 0. The learned lr diverged: "
            "re-distill, or drop it to use the protocol's default lr"
        )
    return value


def _normalise(images: "torch.Tensor", mean: Sequence[float], std: Sequence[float]) -> "torch.Tensor":
    import torch

    c = images.shape[1]
    if len(mean) != c or len(std) != c or any(s <= 0 for s in std):
        raise ConfigError(
            f"dataset normalisation constants mean={list(mean)} std={list(std)} do not fit {c}-channel "
            "images (need one mean and one positive std per channel); fix the dataset spec"
        )
    m = torch.tensor(list(mean), dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    s = torch.tensor(list(std), dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    return (images - m) / s
