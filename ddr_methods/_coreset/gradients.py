"""Per-sample last-layer gradient embeddings, as DeepCore computes them.

DeepCore (Guo, Zhao & Bai, "DeepCore: A Comprehensive Library for Coreset Selection in Deep
Learning", DEXA 2022; github.com/PatrickZH/DeepCore, ``deepcore/methods/submodular.py``,
``craig.py``, ``gradmatch.py`` and ``grand.py``, each a ``calc_gradient``) embeds a sample by the
gradient of its cross-entropy loss with respect to the network's last linear layer
``logits = W h + b`` (``W`` ``[K, D]``, ``h = model.embed(x)`` ``[D]``). With ``p = softmax(logits)``
and ``y`` the one-hot label, that gradient is closed-form:

* ``dL/db = p − y`` (``[K]``),
* ``dL/dW = (p − y) hᵀ`` (``[K, D]``: row ``k`` is ``(p_k − y_k) · h``).

DeepCore's layout, kept here, is ``cat([dL/db, dL/dW.flatten()])``: the ``K`` bias entries first,
then ``W``'s gradient row by row (class-major), so entry ``K + k·D + d`` is ``(p_k − y_k) · h_d``;
``D = model.embed(x).shape[1]``, the width is ``K·(D + 1)``.

One difference from DeepCore: DeepCore differentiates ``nn.CrossEntropyLoss()`` (mean over the
batch) summed, so each of its vectors is scaled by ``1 / (its batch's size)``; here every vector is
the gradient of that sample's own loss (unscaled). The scale cancels in cosine similarities and
is uniform within one DeepCore batch; ``benchmarks/fidelity_coresets_submodular.py`` compares with
DeepCore's vectors multiplied back by their batch size (docs/fidelity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ddr import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["last_layer_gradients"]


def last_layer_gradients(
    model: "nn.Module",
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """Per-sample gradients of the cross-entropy loss w.r.t. the last linear layer, ``[n, K·(D+1)]``.

    Computed in closed form (no autograd), without gradients, in eval mode (the model's previous
    mode is restored), ``batch_size`` images per forward pass, each batch moved to the model's
    device. Logits are ``model.get_classifier()(model.embed(x))`` when the model has
    ``get_classifier`` (every built-in architecture: one forward pass), else ``model(x)``.

    Args:
        model: a network with ``embed(x) -> [B, D]`` whose last layer is linear on ``embed(x)``.
        images: float ``[n, C, H, W]`` in the model's input space.
        labels: int ``[n]`` class indices ``0..K-1``.
        batch_size: images per forward pass (memory only; results do not depend on it).

    Returns:
        float32 ``[n, K + K·D]`` on the model's device: ``softmax(logits) − onehot(label)`` (``K``
        columns), then the outer product ``(softmax − onehot) ⊗ embed(x)`` flattened class-major
        (column ``K + k·D + d``), DeepCore's ``calc_gradient`` layout.

    Raises:
        ConfigError: a non-positive ``batch_size`` or a model without ``embed``.
        DataError: mismatched/empty inputs, labels outside ``0..K-1``, non-finite outputs.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    embed = getattr(model, "embed", None)
    if not callable(embed):
        raise ConfigError(
            f"{type(model).__name__} has no embed(x) method; last-layer gradients need the "
            "penultimate features (every registered architecture exposes them)"
        )
    if labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"need images [n, ...] and labels [n]; got {tuple(images.shape)} and {tuple(labels.shape)}")
    if len(labels) == 0:
        raise DataError("cannot compute gradients of an empty set of images")
    get_classifier = getattr(model, "get_classifier", None)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(device)
                y = labels[start:start + batch_size].to(device=device, dtype=torch.int64)
                h = embed(x).flatten(1)
                logits = get_classifier()(h) if callable(get_classifier) else model(x)
                classes = logits.shape[1]
                if bool((y < 0).any()) or bool((y >= classes).any()):
                    raise DataError(f"labels must lie in 0..{classes - 1} (the model's {classes} outputs)")
                bias = torch.softmax(logits.float(), dim=1)
                bias[torch.arange(len(y), device=device), y] -= 1.0
                weight = bias.unsqueeze(2) * h.float().unsqueeze(1)  # [B, K, D]
                chunks.append(torch.cat([bias, weight.flatten(1)], dim=1))
    finally:
        model.train(was_training)
    out = torch.cat(chunks)
    if not bool(torch.isfinite(out).all()):
        raise DataError("the scoring model produced non-finite logits or features (NaN/inf)")
    return out
