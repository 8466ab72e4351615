"""SRe2L recover (Yin, Xing & Shen, NeurIPS 2023; VILA-Lab/SRe2L ``recover/``).

For each batch of classes (one synthetic image per class, ``ipc`` rounds), images start as
standard normal noise in the dataset's pixel space and are optimised with Adam (``lr``, betas
``(beta1, beta2)``, per-step cosine decay to 0) on

    CE(teacher(jitter(x)), y) + r_bn * sum_l m_l (||mu_l(x) - running_mean_l||_2 + ||var_l(x) - running_var_l||_2)

where ``l`` runs over the teacher's BatchNorm layers (statistics of each layer's input, read with
forward hooks), ``m_0 = first_bn_multiplier`` and ``m_l = 1`` otherwise, and ``jitter`` is SRe2L's
``RandomResizedCrop(scale=(crop_scale_min, 1))`` + random flip (per image), then a random circular
shift of ``0..jitter`` pixels along each axis (one draw per step for the whole batch, as in SRe2L).
After every step the pixels are clipped to the valid range.
The teacher stays in eval mode (running statistics are the targets, never updated).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ddr import ConfigError, DdrError
from ddr.method.augment import resized_crop
from ddr.method.helpers import LossCurve
from ddr_methods._teacherlib import (
    BNStatistics,
    batchnorm_layers,
    check_label_mode,
    get_teacher,
    pixel_bounds,
    teacher_labelled_set,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext


def require_batchnorm(teacher: torch.nn.Module, method: str) -> None:
    """A DdrError telling the user what to do when ``teacher`` has no BatchNorm layer."""
    if not batchnorm_layers(teacher):
        raise DdrError(
            f"method '{method}' recovers images from the teacher's BatchNorm statistics, but the protocol's "
            f"teacher ({type(teacher).__name__}) has no BatchNorm layer; use a BatchNorm teacher, e.g. "
            "--set teacher.arch=convnet_bn (or resnet18_bn, see `ddr list architectures`), or pass "
            "--teacher FILE with a BatchNorm network's checkpoint"
        )


class SRe2L:
    """SRe2L. Parameters (``ctx.params``): ``iterations``, ``lr``, ``beta1``, ``beta2``, ``r_bn``,
    ``first_bn_multiplier``, ``crop_scale_min``, ``jitter`` (null: side * 32/224), ``flip``, ``batch_size``,
    ``labels`` (teacher|stored_soft)."""

    name = "sre2l"

    def distill(self, ctx: DistillContext):  # -> DistilledSet
        p = ctx.params
        iterations, lr = int(p["iterations"]), float(p["lr"])
        betas = (float(p["beta1"]), float(p["beta2"]))
        r_bn, first_mult = float(p["r_bn"]), float(p["first_bn_multiplier"])
        flip, batch_classes = bool(p["flip"]), int(p["batch_size"])
        crop_min = float(p["crop_scale_min"])
        if not 0.0 < crop_min <= 1.0:
            raise ConfigError(f"method 'sre2l': crop_scale_min must lie in (0, 1], got {crop_min}")
        labels = check_label_mode(self.name, str(p["labels"]))
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"method 'sre2l': beta1 and beta2 must lie in [0, 1), got {betas}")
        height, width = ctx.dataset.image_size
        jitter = p["jitter"]
        jitter = max(1, round(min(height, width) * 32 / 224)) if jitter is None else int(jitter)

        teacher = get_teacher(ctx, self.name)
        require_batchnorm(teacher, self.name)
        bounds = pixel_bounds(ctx)
        gen = ctx.generator
        ipc, num_classes, channels = ctx.ipc, ctx.num_classes, ctx.dataset.channels

        images = torch.empty(num_classes * ipc, channels, height, width, device=ctx.device)
        rounds = [(i, list(range(s, min(s + batch_classes, num_classes))))
                  for i in range(ipc) for s in range(0, num_classes, batch_classes)]
        curve = LossCurve(iterations * len(rounds))
        ce_last = []
        with BNStatistics(teacher) as bn:
            for ipc_id, classes in ctx.progress(rounds, total=len(rounds), desc=self.name):
                targets = torch.tensor(classes, dtype=torch.long, device=ctx.device)
                x = torch.randn(len(classes), channels, height, width, generator=gen, device=gen.device)
                x = x.to(ctx.device).requires_grad_(True)
                optimizer = torch.optim.Adam([x], lr=lr, betas=betas, eps=1e-8)
                ce = torch.zeros(())
                for step in range(iterations):
                    for group in optimizer.param_groups:
                        group["lr"] = 0.5 * (1 + math.cos(math.pi * step / iterations)) * lr
                    xj = x
                    if crop_min < 1.0:
                        xj = resized_crop(xj, gen, (crop_min, 1.0), (3 / 4, 4 / 3), 0.5 if flip else 0.0)
                    elif flip:
                        mirror = torch.rand(len(xj), generator=gen, device=gen.device) < 0.5
                        xj = torch.where(mirror.to(xj.device)[:, None, None, None], xj.flip(3), xj)
                    shifts = torch.randint(0, jitter + 1, (2,), generator=gen, device=gen.device).tolist()
                    xj = torch.roll(xj, shifts=(shifts[0], shifts[1]), dims=(2, 3))
                    logits = teacher(xj)
                    ce = F.cross_entropy(logits, targets)
                    loss = ce + r_bn * bn.loss(first_mult)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if bounds is not None:
                        with torch.no_grad():
                            x.data = torch.maximum(torch.minimum(x.data, bounds[1]), bounds[0])
                    curve.add(loss.detach())
                ce_last.append(float(ce.detach()))
                rows = torch.tensor([c * ipc + ipc_id for c in classes], device=ctx.device)
                images[rows] = x.detach()

        meta = {**curve.meta(), "jitter": jitter, "final_ce": sum(ce_last) / max(1, len(ce_last)),
                "teacher_bn_layers": len(batchnorm_layers(teacher))}
        return teacher_labelled_set(ctx, images, meta, labels=labels, teacher=teacher)
