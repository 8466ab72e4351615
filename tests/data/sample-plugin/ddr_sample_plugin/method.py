"""``sample-mean``: each distilled image is the mean of a random group of real images of its class.

Per class c (in class order) the class's training images are shuffled with ``ctx.generator`` and
split into ``ipc`` groups of near-equal size; the mean of each group is one distilled image.
"""

from __future__ import annotations

import torch

from ddr.errors import DataError
from ddr.method import DistillContext, DistilledSet


class ClassMean:
    """The ``sample-mean`` method (``groups_per_image`` is accepted for the schema demo; 1 is the
    only value it implements)."""

    def distill(self, ctx: DistillContext) -> DistilledSet:
        if ctx.params["groups_per_image"] != 1:
            raise DataError("sample-mean implements groups_per_image=1 only")
        images, labels = [], []
        for c, pool in enumerate(ctx.class_indices()):
            if len(pool) < ctx.ipc:
                raise DataError(f"sample-mean: class {c} has {len(pool)} training images, fewer than ipc={ctx.ipc}")
            order = torch.randperm(len(pool), generator=ctx.generator, device=ctx.generator.device)
            shuffled = pool.to(order.device)[order]
            for group in torch.tensor_split(shuffled, ctx.ipc):
                images.append(ctx.train.take(group).mean(dim=0))
                labels.append(c)
        return DistilledSet(
            images=torch.stack(images),
            labels=torch.tensor(labels, dtype=torch.int64),
            meta={"method": "sample-mean"},
        )
