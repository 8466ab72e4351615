"""RDED: realistic, diverse and efficient dataset distillation (Sun et al., CVPR 2024).

Follows LINs-lab/RDED ``synthesize/`` (``MultiRandomCrop``, ``selector``, ``mix_images``), per
class ``c``:

1. take up to ``mipc`` random real images of ``c``;
2. cut ``num_crop`` square random resized crops of each (area ``U(scale_min, scale_max)`` of the
   image, resized to ``(H // factor, W // factor)``);
3. score every crop by the teacher's cross-entropy on ``c`` with the crop zero-padded (centred)
   to the full image size (lower = more realistic), keep each image's best crop;
4. keep the ``ipc * factor**2`` best crops overall and stitch them ``factor x factor`` into
   ``ipc`` images: crop ``k * ipc + i`` goes to grid slot ``k`` (row-major) of image ``i``.

Everything happens in the dataset's pixel space (zero padding there is RDED's padding of
normalised tensors). Nothing is optimised; the teacher only scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ddr import ConfigError, DataError
from ddr.method.augment import sample_crop_boxes
from ddr_methods._teacherlib import check_label_mode, get_teacher, teacher_labelled_set

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext


def multi_random_crop(images: torch.Tensor, num_crop: int, out_size: tuple[int, int],
                      scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """``[num_crop, N, C, h, w]``: ``num_crop`` square random resized crops of each image, crop
    ``j`` of image ``n`` at ``[j, n]``.

    Resampled as RDED's ``MultiRandomCrop`` does (``synthesize/utils.py``: torchvision's
    ``RandomResizedCrop(size // factor, ratio=(1, 1), antialias=True)``): the box is cut out first
    and resized on its own, bilinear and antialiased when it shrinks, so no pixel outside the box
    contributes (one ``grid_sample`` over the whole image differed by up to 0.31 in normalised
    units; docs/fidelity.md). Boxes of one size are resized together."""
    n, c, height, width = images.shape
    count = num_crop * n  # crop-major, as RDED's permute: crop j of image i at j * N + i
    top, left, box_h, box_w = sample_crop_boxes(count, (height, width), scale, (1.0, 1.0), generator, images.device)
    boxes = torch.stack([top, left, box_h, box_w], dim=1).round().long().tolist()
    crops = images.new_empty((count, c, *out_size))
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, (_, _, bh, bw) in enumerate(boxes):
        by_size.setdefault((bh, bw), []).append(k)
    for (bh, bw), members in by_size.items():
        cut = torch.stack([images[k % n, :, boxes[k][0]:boxes[k][0] + bh, boxes[k][1]:boxes[k][1] + bw]
                           for k in members])
        if (bh, bw) != tuple(out_size):
            cut = F.interpolate(cut, size=out_size, mode="bilinear", align_corners=False, antialias=True)
        crops[members] = cut
    return crops.reshape(num_crop, n, c, *out_size)


def pad_to(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad ``[B, C, h, w]`` (centred, extra pixel bottom/right) to ``size``."""
    dh, dw = size[0] - images.shape[-2], size[1] - images.shape[-1]
    return F.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def stitch(patches: torch.Tensor, n: int, factor: int, size: tuple[int, int]) -> torch.Tensor:
    """RDED's ``mix_images``: ``[n * factor**2, C, h, w]`` patches -> ``[n, C, H, W]`` images,
    patch ``k * n + i`` in grid slot ``k`` of image ``i``. Slots are ``H // factor`` high, the first
    ``H % factor`` rows (columns) of slots one pixel more; patches are resized (nearest) to fit."""
    channels = patches.shape[1]
    out = patches.new_zeros((n, channels, *size))
    rows = [size[0] // factor + (1 if i < size[0] % factor else 0) for i in range(factor)]
    cols = [size[1] // factor + (1 if j < size[1] % factor else 0) for j in range(factor)]
    k, top = 0, 0
    for h_r in rows:
        left = 0
        for w_r in cols:
            part = patches[k * n:(k + 1) * n]
            if tuple(part.shape[-2:]) != (h_r, w_r):
                part = F.interpolate(part, size=(h_r, w_r), mode="nearest")
            out[:, :, top:top + h_r, left:left + w_r] = part
            left += w_r
            k += 1
        top += h_r
    return out


class RDED:
    """RDED. Parameters (``ctx.params``): ``factor``, ``num_crop``, ``mipc``, ``scale_min``,
    ``scale_max``, ``labels`` (teacher|stored_soft), ``batch_size``."""

    name = "rded"

    def distill(self, ctx: DistillContext):  # -> DistilledSet
        p = ctx.params
        factor, num_crop, mipc = int(p["factor"]), int(p["num_crop"]), int(p["mipc"])
        scale = (float(p["scale_min"]), float(p["scale_max"]))
        labels = check_label_mode(self.name, str(p["labels"]))
        batch_size = int(p["batch_size"])
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ConfigError(f"method 'rded': need 0 < scale_min <= scale_max <= 1, got {scale}; "
                              "set method.scale_min / method.scale_max")
        height, width = ctx.dataset.image_size
        if factor > min(height, width):
            raise ConfigError(f"method 'rded': factor {factor} is larger than the image side "
                              f"{min(height, width)}; use --set method.factor=1 or 2")
        patch = (height // factor, width // factor)
        n_keep = ctx.ipc * factor * factor
        teacher = get_teacher(ctx, self.name)
        indices = ctx.class_indices()
        empty = [c for c, idx in enumerate(indices) if len(idx) == 0]
        if empty:
            raise DataError(f"method 'rded': classes {empty} have no training images")
        gen = ctx.generator

        out, scores, candidates = [], [], []
        for c in ctx.progress(range(ctx.num_classes), total=ctx.num_classes, desc=self.name):
            idx = indices[c]
            perm = torch.randperm(len(idx), generator=gen, device=gen.device)[:mipc]
            real = ctx.train.take(idx[perm.to(idx.device)]).to(ctx.device, torch.float32)
            if len(real) < n_keep:
                raise DataError(f"method 'rded': class {c} has {len(real)} real images but ipc * factor^2 = "
                                f"{n_keep} patches are needed (one per image); lower --ipc or method.factor, "
                                f"or raise method.mipc")
            crops = multi_random_crop(real, num_crop, patch, scale, gen)  # [m, N, C, h, w]
            m, n = crops.shape[:2]
            flat = crops.reshape(m * n, *crops.shape[2:])
            target = torch.full((batch_size,), c, dtype=torch.long, device=ctx.device)
            losses = []
            with torch.no_grad():
                for i in range(0, len(flat), batch_size):
                    batch = pad_to(flat[i:i + batch_size], (height, width))
                    logits = teacher(batch).float()
                    losses.append(F.cross_entropy(logits, target[:len(batch)], reduction="none"))
            dist = torch.cat(losses).reshape(m, n)
            best = torch.argmin(dist, dim=0)  # best crop of each image
            best_dist = dist[best, torch.arange(n, device=dist.device)]
            chosen = crops[best, torch.arange(n, device=crops.device)]  # [N, C, h, w]
            order = torch.argsort(best_dist, stable=True)[:n_keep]
            out.append(stitch(chosen[order], ctx.ipc, factor, (height, width)))
            scores.append(float(best_dist[order].mean()))
            candidates.append(float(dist.mean()))

        images = torch.cat(out)
        meta = {"factor": factor, "num_crop": num_crop, "mipc": mipc, "scale": list(scale),
                "mean_selected_teacher_ce": sum(scores) / len(scores),
                "mean_candidate_teacher_ce": sum(candidates) / len(candidates)}
        return teacher_labelled_set(ctx, images, meta, labels=labels, teacher=teacher)
