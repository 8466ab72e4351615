"""Pixel tensors -> normalised float32 tensors, and the per-channel statistics used to normalise.

Pixel inputs are either uint8 ``[N, C, H, W]`` (0..255) or floating point ``[N, C, H, W]`` already
in the 0..1 range. Normalised outputs are ``(x - mean) / std`` per channel, float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

CHUNK = 4096
"""Images processed at once, to bound the float temporaries of large uint8 datasets."""


def _as_unit_range(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images.to(torch.float32)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalise pixels per channel.

    Args:
        images: uint8 ``[N, C, H, W]`` in 0..255, or float ``[N, C, H, W]`` in 0..1.
        mean, std: ``C`` values, fractions of the 0..1 range.

    Returns:
        float32 ``[N, C, H, W]`` equal to ``(images / 255 - mean) / std`` (uint8 input) or
        ``(images - mean) / std`` (float input).
    """
    if images.ndim != 4 or images.shape[1] != len(mean) or len(mean) != len(std):
        raise ValueError(
            f"normalize expects [N, C, H, W] with C = len(mean) = len(std); got shape "
            f"{tuple(images.shape)}, {len(mean)} means, {len(std)} stds"
        )
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    out = torch.empty(images.shape, dtype=torch.float32)
    for start in range(0, images.shape[0], CHUNK):
        chunk = _as_unit_range(images[start:start + CHUNK])
        out[start:start + CHUNK] = (chunk - m) / s
    return out


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population standard deviation of pixels in the 0..1 range.

    Args:
        images: uint8 ``[N, C, H, W]`` or float ``[N, C, H, W]`` in 0..1.

    Returns:
        ``(mean, std)``, each a tuple of ``C`` floats rounded to 4 decimals (accumulated in
        float64, so the result does not depend on chunking).
    """
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, images.shape[0], CHUNK):
        chunk = _as_unit_range(images[start:start + CHUNK]).to(torch.float64)
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += chunk.square().sum(dim=(0, 2, 3))
        count += chunk.numel() // channels
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def label_tensor(labels: Sequence[int] | np.ndarray) -> torch.Tensor:
    """Class indices as an int64 ``[N]`` tensor."""
    return torch.as_tensor(np.asarray(labels, dtype=np.int64))
