"""Batched spatial operations on ``[B, C, H, W]`` images, one parameter set per sample.

Everything here is a tensor op on the images' device (no Python loop over samples) and is
differentiable with respect to the images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def warp_affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``images`` through per-sample affine maps.

    Args:
        images: ``[B, C, H, W]``.
        theta: ``[B, 2, 3]`` maps from output to input coordinates, both normalised to
            ``[-1, 1]`` at the outer pixel edges (``align_corners=False``).

    Returns:
        ``[B, C, H, W]``, bilinear, zeros outside the input.
    """
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_theta(top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor,
               image_size: tuple[int, int], mirror: torch.Tensor | None = None) -> torch.Tensor:
    """Affine maps ``[B, 2, 3]`` that resize the boxes ``(top, left, height, width)`` (pixels,
    float ``[B]``) to the full image, mirrored left-right where ``mirror`` (bool ``[B]``) is set."""
    h, w = image_size
    scale_x = width / w
    if mirror is not None:
        scale_x = torch.where(mirror, -scale_x, scale_x)
    zero = torch.zeros_like(scale_x)
    row_x = torch.stack([scale_x, zero, (2 * left + width) / w - 1], dim=1)
    row_y = torch.stack([zero, height / h, (2 * top + height) / h - 1], dim=1)
    return torch.stack([row_x, row_y], dim=1)


def translate(images: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, filling uncovered pixels with zeros.

    ``out[b, :, i, j] = images[b, :, i + shift_y[b], j + shift_x[b]]`` where that pixel exists,
    else 0 (this is a zero-padded random crop). ``shift_y``/``shift_x`` are int64 ``[B]``.
    """
    b, c, h, w = images.shape
    rows = torch.arange(h, device=images.device).unsqueeze(0) + shift_y.unsqueeze(1)  # [B, H]
    cols = torch.arange(w, device=images.device).unsqueeze(0) + shift_x.unsqueeze(1)  # [B, W]
    inside = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
    out = images.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    return out * inside.unsqueeze(1).to(images.dtype)


def box_mask(image_size: tuple[int, int], top: torch.Tensor, left: torch.Tensor,
             bottom: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Bool ``[B, H, W]``, true inside the half-open pixel boxes ``[top, bottom) x [left, right)``
    (int64 ``[B]`` each; boxes may reach outside the image)."""
    h, w = image_size
    rows = torch.arange(h, device=top.device).unsqueeze(0)
    cols = torch.arange(w, device=top.device).unsqueeze(0)
    in_rows = (rows >= top.unsqueeze(1)) & (rows < bottom.unsqueeze(1))
    in_cols = (cols >= left.unsqueeze(1)) & (cols < right.unsqueeze(1))
    return in_rows.unsqueeze(2) & in_cols.unsqueeze(1)


def mirror(images: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images selected by ``where`` (bool ``[B]``)."""
    return torch.where(where[:, None, None, None], images.flip(3), images)


_CROP_ATTEMPTS = 10
"""Candidate boxes per sample, as torchvision's RandomResizedCrop tries before falling back."""


def sample_crop_boxes(batch: int, image_size: tuple[int, int], scale: tuple[float, float],
                      ratio: tuple[float, float], generator: torch.Generator,
                      device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """torchvision's ``RandomResizedCrop.get_params`` for a whole batch at once.

    Each sample gets the first of ten candidates whose area is ``U(scale)`` of the image and whose
    aspect ratio (width / height) is log-uniform in ``ratio`` that fits in the image, else the
    central crop of the largest box with a ratio inside ``ratio``.

    Returns:
        ``(top, left, height, width)``, float32 ``[batch]`` each, in whole pixels.
    """
    h, w = image_size
    shape = (batch, _CROP_ATTEMPTS)
    area = h * w * (scale[0] + (scale[1] - scale[0]) * torch.rand(shape, generator=generator, device=device))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(shape, generator=generator, device=device))
    widths = torch.round(torch.sqrt(area * aspect))
    heights = torch.round(torch.sqrt(area / aspect))
    fits = (widths > 0) & (widths <= w) & (heights > 0) & (heights <= h)
    first = torch.argmax(fits.to(torch.uint8), dim=1, keepdim=True)
    if w / h < ratio[0]:
        fallback_w, fallback_h = w, round(w / ratio[0])
    elif w / h > ratio[1]:
        fallback_w, fallback_h = round(h * ratio[1]), h
    else:
        fallback_w, fallback_h = w, h
    found = fits.any(dim=1)
    width = torch.where(found, widths.gather(1, first).squeeze(1), float(fallback_w))
    height = torch.where(found, heights.gather(1, first).squeeze(1), float(fallback_h))
    top = torch.floor(torch.rand(batch, generator=generator, device=device) * (h - height + 1))
    left = torch.floor(torch.rand(batch, generator=generator, device=device) * (w - width + 1))
    # the fallback is centred, as in torchvision
    top = torch.where(found, top, float((h - fallback_h) // 2))
    left = torch.where(found, left, float((w - fallback_w) // 2))
    return top, left, height, width


def resized_crop(images: torch.Tensor, generator: torch.Generator, scale: tuple[float, float],
                 ratio: tuple[float, float], flip: float = 0.0) -> torch.Tensor:
    """Random resized crop back to the input size (bilinear), mirrored with probability ``flip``,
    in one resampling pass."""
    batch, _, h, w = images.shape
    top, left, height, width = sample_crop_boxes(batch, (h, w), scale, ratio, generator, images.device)
    flipped = None
    if flip > 0.0:
        flipped = torch.rand(batch, generator=generator, device=images.device) < flip
    return warp_affine(images, crop_theta(top, left, height, width, (h, w), flipped))
