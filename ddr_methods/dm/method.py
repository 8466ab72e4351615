"""DM: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023).

Follows VICO-UoE/DatasetCondensation ``main_DM.py``: every iteration samples a freshly
initialised network, freezes it, and moves the synthetic images so that, class by class, the
mean embedding (``net.embed``) of the synthetic images matches the mean embedding of a real
batch, both augmented with the same (Siamese) DSA parameters. Nothing is trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ddr.method.distilled import DistilledSet
from ddr.method.helpers import INITS, LossCurve, RealSampler, distilled_set, init_synthetic
from ddr_methods._matching.gradient import ParamReader, SiameseAugmentation, build_augmentation, uses_batch_statistics

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext


class DM:
    """Distribution matching.

    Parameters (``ctx.params``): ``iterations``, ``lr_img``, ``momentum_img``, ``batch_real``,
    ``init`` (noise|real), ``augmentation`` (a registered augmentation name, default ``dsa``;
    ``none`` disables it) and ``augmentation_params``.

    Loss per iteration: ``sum_c || mean embed(A(real_c)) - mean embed(A(syn_c)) ||^2``. For
    networks with BatchNorm all classes' real images go through the network as one batch and all
    synthetic images as another (VICO's ConvNetBN path), so batch statistics are not those of a
    single class; otherwise each class is embedded separately.
    """

    name = "dm"

    def distill(self, ctx: "DistillContext") -> DistilledSet:
        reader = ParamReader(self.name, ctx.params)
        iterations = reader.integer("iterations", 0)
        lr_img, momentum_img = reader.number("lr_img"), reader.number("momentum_img")
        batch_real = reader.integer("batch_real", 1)
        init = reader.choice("init", INITS)
        aug_name = reader.optional_name("augmentation")
        aug_params = reader.mapping("augmentation_params")
        reader.check_all_read()

        sampler = RealSampler(ctx)
        syn = init_synthetic(ctx, sampler, init)
        optimizer = torch.optim.SGD([syn], lr=lr_img, momentum=momentum_img)
        augment = build_augmentation(ctx, aug_name, aug_params)
        siamese = SiameseAugmentation(augment) if augment is not None else None
        curve = LossCurve(iterations)

        for _ in ctx.progress(range(iterations), total=iterations, desc=self.name):
            net = ctx.make_model()
            net.train()
            net.requires_grad_(False)
            loss = self._distribution_loss(ctx, net, syn, sampler, siamese, batch_real)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            curve.add(loss.detach() / ctx.num_classes)

        meta = {**curve.meta(), "init": init, "augmentation": aug_name}
        return distilled_set(ctx, syn, meta)

    @staticmethod
    def _distribution_loss(ctx: "DistillContext", net: nn.Module, syn: torch.Tensor, sampler: RealSampler,
                           siamese: SiameseAugmentation | None, batch_real: int) -> torch.Tensor:
        """Sum over classes of the squared distance between mean real and mean synthetic embeddings."""
        ipc = ctx.ipc
        reals, fakes = [], []
        for c in range(ctx.num_classes):
            real = sampler.sample(c, batch_real)
            fake = syn[c * ipc:(c + 1) * ipc]
            if siamese is not None:
                real, fake = siamese(real, fake, ctx.generator)
            reals.append(real)
            fakes.append(fake)

        embed: Any = net.embed  # every registered architecture has embed()
        real_emb: Any
        fake_emb: Any
        if uses_batch_statistics(net):
            with torch.no_grad():
                real_emb = embed(torch.cat(reals)).split([len(r) for r in reals])
            fake_emb = embed(torch.cat(fakes)).split(ipc)
        else:
            with torch.no_grad():
                real_emb = [embed(r) for r in reals]
            fake_emb = [embed(f) for f in fakes]

        loss = torch.zeros((), device=syn.device)
        for r, f in zip(real_emb, fake_emb):
            loss = loss + ((r.mean(dim=0) - f.mean(dim=0)) ** 2).sum()
        return loss
