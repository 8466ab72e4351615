"""Shared machinery of the selection baselines (random, herding, K-center).

A selection baseline synthesises nothing: it picks ``ipc`` real images per class from the
training pool (``ctx.train``, i.e. the train split minus the protocol's validation split). This
module holds what those methods share, so each method module keeps only its own ordering rule:

* :func:`class_pools`: per-class indices into ``ctx.train``, checked to hold at least ``ipc``;
* :func:`feature_network` and :func:`embed_all`: the trained network (by default the protocol's
  cached real-data reference) and the batched penultimate embeddings herding and K-center use;
* :func:`select_in_feature_space`: embed each class, order it, keep the first ``ipc``;
* :func:`selected_subset`: the picks as a class-major :class:`~ddr.store.formats.DistilledSet` whose
  meta records the chosen indices.

Importing this module does not import torch (method plugins read :data:`FEATURE_NET_PARAMS`
at registration time); torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr import ConfigError, DataError, DistilledSetError, ParamSpec

__all__ = ["FEATURE_NET_PARAMS", "class_pools", "embed_all", "feature_network",
           "select_in_feature_space", "selected_subset"]

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ddr.method.context import DistillContext
    from ddr.method.distilled import DistilledSet

FEATURE_NET_PARAMS = (
    ParamSpec("arch", None, "architecture of a network trained here (null: the protocol's student)", type="str"),
    ParamSpec("feature_epochs", None, "null: select in the protocol's fully trained, cached real-data reference "
              "(as IDC); N: train a fresh network N epochs on the pool here (0: random init)", type="int", minimum=0),
    ParamSpec("feature_lr", 0.01, "SGD learning rate of a network trained here", minimum=0.0),
    ParamSpec("feature_batch_size", 256, "batch size of a network trained here", minimum=1),
    ParamSpec("feature_augmentation", None, "augmentation while training it here (null: none)", type="str"),
    ParamSpec("embed_batch_size", 512, "images per forward pass when embedding", minimum=1),
)
"""Parameters of the feature network shared by herding and K-center."""

FEATURE_NET_DEFAULTS: Mapping[str, Any] = {p.name: p.default for p in FEATURE_NET_PARAMS}

SelectionOrder = Callable[["torch.Tensor", int], "torch.Tensor"]
"""``order(features[n, D], k) -> int64 [k]`` positions (0..n-1) in the order they are picked."""


def check_features(features: "torch.Tensor", k: int) -> None:
    """Validate the input of a :data:`SelectionOrder`: 2-D finite features, ``1 <= k <= n``."""
    import torch

    if features.ndim != 2:
        raise DataError(f"selection needs 2-D features [n, D], got shape {tuple(features.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(features):
        raise DataError(f"cannot pick k={k!r} of {len(features)} samples; k must be 1..{len(features)}")
    if not bool(torch.isfinite(features).all()):
        raise DataError(
            "the feature network produced non-finite features (NaN/inf); lower feature_lr or "
            "feature_epochs"
        )


def class_pools(ctx: "DistillContext") -> list["torch.Tensor"]:
    """Per-class indices into ``ctx.train`` (int64, ascending), one tensor per class.

    Raises:
        ConfigError: ``ctx.ipc`` is not a positive integer.
        DataError: a class has fewer than ``ctx.ipc`` training images (selection is without
            replacement, so it cannot produce ``ipc`` distinct real images for that class).
    """
    if isinstance(ctx.ipc, bool) or not isinstance(ctx.ipc, int) or ctx.ipc < 1:
        raise ConfigError(f"ipc must be a positive integer (images per class), got {ctx.ipc!r}")
    pools = ctx.class_indices()
    if len(pools) != ctx.num_classes:
        raise DataError(
            f"the training pool has labels for {len(pools)} classes but the dataset declares "
            f"{ctx.num_classes}; check the dataset's labels (expected 0..{ctx.num_classes - 1})"
        )
    for label, pool in enumerate(pools):
        if len(pool) < ctx.ipc:
            smallest = min(len(p) for p in pools)
            raise DataError(
                f"class {label} has only {len(pool)} training images but ipc={ctx.ipc} distinct real "
                f"images per class were requested; a selection method picks without replacement, "
                f"so use ipc <= {smallest} for this dataset"
            )
    return pools


def feature_network(
    ctx: "DistillContext",
    *,
    arch: str | None = None,
    epochs: int | None,
    lr: float = 0.01,
    batch_size: int = 256,
    augmentation: str | None = None,
) -> "nn.Module":
    """The network herding and K-center embed with, in eval mode.

    ``epochs=None``: the protocol's real-data reference (``ctx.teacher()``), fully trained on the
    pool under the real-data recipe and cached, as IDC selects in a trained network. Otherwise a
    fresh network (``ctx.make_model(arch)``) trained ``epochs`` epochs here with the core loop
    (``ctx.train_model``: SGD, momentum 0.9, weight decay 5e-4, hard labels) on all of
    ``ctx.train``; ``epochs=0`` keeps the seeded random initialisation.

    Raises:
        DataError: the training pool is streamed (not in memory).
        ConfigError: a non-positive ``lr``/``batch_size`` or negative ``epochs``.
    """
    if epochs is None:
        if arch is not None:
            raise ConfigError("feature_epochs null selects in the protocol's reference model, whose architecture is "
                              "the protocol's teacher; set feature_epochs=N to train an 'arch' network here instead")
        model = ctx.teacher()
        model.eval()
        return model
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"feature_epochs must be an integer >= 0, got {epochs!r}")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
        raise ConfigError(f"feature_lr must be a positive number, got {lr!r}")
    _check_batch_size(batch_size, "feature_batch_size")
    if ctx.train.images is None:
        raise DataError(
            "training the feature network needs the training pool in memory, but this dataset "
            "streams its images; use random selection or an in-memory dataset"
        )
    model = ctx.make_model(arch=arch)
    if epochs > 0:
        aug = ctx.augmentation(augmentation) if augmentation else None
        model = ctx.train_model(
            model, ctx.train.images, ctx.train.labels,
            epochs=epochs, lr=float(lr), batch_size=batch_size, augmentation=aug,
        )
    model.eval()
    return model


def embed_all(model: "nn.Module", images: "torch.Tensor", batch_size: int = 512) -> "torch.Tensor":
    """Penultimate embeddings ``model.embed(x)`` of ``images`` ``[N, C, H, W]`` -> float ``[N, D]``.

    Runs without gradients in eval mode (the model's previous mode is restored), ``batch_size``
    images at a time, each batch moved to the model's device; features are flattened to 2-D.
    """
    import torch

    _check_batch_size(batch_size, "embed_batch_size")
    if not callable(getattr(model, "embed", None)):
        raise ConfigError(
            f"{type(model).__name__} has no embed(x) method; feature-space selection needs an "
            "architecture that exposes its penultimate features (every registered one must)"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    embed: Any = model.embed  # every registered architecture has embed() (checked above)
    try:
        with torch.no_grad():
            chunks = [embed(images[i:i + batch_size].to(device)).flatten(1)
                      for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    if not chunks:
        raise DataError("cannot embed an empty set of images")
    return torch.cat(chunks)


@dataclass(frozen=True)
class FeatureNetParams:
    """The feature-network parameters of a herding/K-center run (see :data:`FEATURE_NET_DEFAULTS`)."""

    arch: str | None
    epochs: int | None
    lr: float
    batch_size: int
    augmentation: str | None
    embed_batch_size: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "FeatureNetParams":
        """Read them from a method's resolved params; keys it lacks take the defaults."""
        merged = {**FEATURE_NET_DEFAULTS, **params}
        return cls(
            arch=merged["arch"],
            epochs=merged["feature_epochs"],
            lr=merged["feature_lr"],
            batch_size=merged["feature_batch_size"],
            augmentation=merged["feature_augmentation"],
            embed_batch_size=merged["embed_batch_size"],
        )


def select_in_feature_space(ctx: "DistillContext", order: SelectionOrder, *, method: str) -> "DistilledSet":
    """Train the feature network, then per class embed its images and keep ``order``'s first ``ipc``.

    Args:
        ctx: the distillation context; its params hold :data:`FEATURE_NET_DEFAULTS`' keys.
        order: the method's ordering rule on one class's features.
        method: the method's name (progress text and meta).
    """
    cfg = FeatureNetParams.from_params(ctx.params)
    pools = class_pools(ctx)
    model = feature_network(ctx, arch=cfg.arch, epochs=cfg.epochs, lr=cfg.lr,
                            batch_size=cfg.batch_size, augmentation=cfg.augmentation)
    picks = []
    feature_dim = 0
    for pool in ctx.progress(pools, total=len(pools), desc=f"{method}: selecting"):
        features = embed_all(model, ctx.train.take(pool), batch_size=cfg.embed_batch_size)
        feature_dim = int(features.shape[1])
        picks.append(pool[order(features, ctx.ipc).to(pool.device)])
    feature_net = "reference" if cfg.epochs is None else f"trained here, {cfg.epochs} epochs"
    return selected_subset(ctx, picks, method=method,
                           meta={"feature_arch": cfg.arch or ctx.arch, "feature_dim": feature_dim,
                                 "feature_net": feature_net})


def selected_subset(
    ctx: "DistillContext",
    picks: Sequence["torch.Tensor"],
    *,
    method: str,
    meta: Mapping[str, Any] | None = None,
) -> "DistilledSet":
    """The picked real images as a class-major distilled set.

    Args:
        picks: per class ``c`` (in class order), the int64 ``[ipc]`` indices into ``ctx.train``.
        method: the method's name.
        meta: extra entries for the set's meta.

    Returns:
        a :class:`~ddr.store.formats.DistilledSet` on the CPU: images float32 ``[K*ipc, C, H, W]``
        copied from ``ctx.train`` (class 0's ``ipc`` images first), their int64 labels, the
        dataset's pixel space, and meta ``method``, ``params``, ``ipc``, ``seed`` and
        ``selected_indices`` (per class, the indices into the training pool ``ctx.train``).
    """
    import torch

    from ddr.method.distilled import DistilledSet

    index = torch.cat([p.reshape(-1) for p in picks]).to(torch.int64)
    labels = ctx.train.labels[index.to(ctx.train.labels.device)].to(torch.int64).cpu()
    expected = torch.arange(ctx.num_classes).repeat_interleave(ctx.ipc)
    if labels.shape != expected.shape or not torch.equal(labels, expected):
        raise DistilledSetError(
            f"{method} picked {len(labels)} images that are not {ctx.ipc} per class in class order; "
            "this is a bug in the method"
        )
    images = ctx.train.take(index).detach().to(device="cpu", dtype=torch.float32)
    return DistilledSet(
        images=images,
        labels=labels,
        pixel_space=ctx.dataset.pixel_space,
        label_strategy="hard",
        meta={
            "method": method,
            "params": dict(ctx.params),
            "ipc": ctx.ipc,
            "seed": ctx.seed,
            "selected_indices": [p.reshape(-1).tolist() for p in picks],
            **dict(meta or {}),
        },
    )


def _check_batch_size(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
