"""The trajectory-matching loop shared by MTT and DATM.

Per iteration (MTT, ``distill.py``): pick a random expert and a start epoch ``t``; the student
starts at ``theta = tau_t`` and takes ``syn_steps`` SGD steps on minibatches of the (augmented)
synthetic set with the learnable LR; the loss is
``||theta_N - tau_{t+M}||^2 / ||tau_t - tau_{t+M}||^2`` (``M = expert_epochs``); SGD updates
the images (``lr_img``, momentum 0.5) and the LR (``lr_lr``, momentum 0.5).

DATM (Guo et al., ICLR 2024) adds: start epochs from ``[min_start_epoch, upper)`` where ``upper``
grows linearly from ``current_max_start_epoch`` to ``max_start_epoch`` over the first
``expansion_end_epoch`` iterations; images initialised from real images the first expert (at its
last epoch, DATM's ``Label_Model_Timestamp = -1``) classifies correctly, drawn in random order in
chunks of 256 as DATM does; soft labels (logits) initialised from the experts' logits on those
images, averaged over the experts that classify each image correctly, learned jointly (``lr_y``,
momentum 0.9) through a soft cross-entropy in the unroll; an iteration whose loss exceeds
``threshold`` updates nothing (DATM's ``grand_loss <= threshold``).

Real images are used only to initialise (``ipc`` per class, drawn by index), so datasets whose
images stream from disk work: only the drawn images are decoded.

Randomness: expert and start-epoch draws and the unroll's minibatch/augmentation seeds all come
from ``ctx.generator``; the same seed gives the same synthetic set.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from ddr import ConfigError, DataError, DdrError
from ddr.method.distilled import DistilledSet
from ddr.method.helpers import LossCurve, RealSampler, class_major_labels, init_synthetic
from ddr_methods._trajectory.defaults import DATM_TABLE_KEYS, TABLE_KEYS, table_value
from ddr_methods._trajectory.experts import Trajectory, experts_for, experts_from_path
from ddr_methods._trajectory.functional import (
    FunctionalStudent,
    hard_criterion,
    soft_criterion,
    trajectory_loss,
    unroll,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext


def _none_name(value: Any) -> str | None:
    return None if value in (None, "", "none") else str(value)


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=generator, device=generator.device).item())


class TrajectoryMatching:
    """MTT (``soft_labels=False``) or DATM (``soft_labels=True``)."""

    name = "mtt"
    datm = False

    def default_params(self) -> dict[str, Any]:
        """Schema defaults (the core passes resolved params; this covers direct use)."""
        from ddr_methods._trajectory.defaults import common_params

        specs = common_params()
        if self.datm:
            from ddr_methods.datm import datm_params

            specs = datm_params()
        return {s.name: s.default for s in specs}

    def distill(self, ctx: "DistillContext") -> DistilledSet:
        p = {**self.default_params(), **dict(ctx.params)}
        table_keys = DATM_TABLE_KEYS if self.datm else TABLE_KEYS
        for key in table_keys:
            if p.get(key) is None:
                p[key] = table_value(ctx.dataset.name, ctx.ipc, key, self.name)
        iterations, syn_steps = int(p["iterations"]), int(p["syn_steps"])
        expert_epochs, max_start = int(p["expert_epochs"]), int(p["max_start_epoch"])
        min_start = int(p.get("min_start_epoch", 0) or 0) if self.datm else 0
        if max_start <= min_start:
            raise ConfigError(f"method '{self.name}': max_start_epoch={max_start} must exceed "
                              f"min_start_epoch={min_start}")
        n_syn = ctx.ipc * ctx.num_classes
        batch_syn = int(p["batch_syn"] or n_syn)

        start_time = time.perf_counter()
        if p.get("experts"):
            experts = experts_from_path(p["experts"], ctx)
            source = "imported"
        else:
            experts = experts_for(ctx, num_experts=int(p["num_experts"]), epochs=int(p["expert_train_epochs"]),
                                  lr=float(p["expert_lr"]), batch_size=int(p["expert_batch_size"]),
                                  augmentation=_none_name(p["expert_augmentation"]),
                                  seed=int(p["expert_seed"]), optimizer=str(p["expert_optimizer"]),
                                  rho_max=float(p["expert_rho_max"]), rho_min=float(p["expert_rho_min"]),
                                  alpha=float(p["expert_alpha"]))
            source = "trained"
        expert_seconds = time.perf_counter() - start_time
        needed = max_start - 1 + expert_epochs
        short = [i for i, e in enumerate(experts) if e.epochs < needed]
        if short:
            raise ConfigError(
                f"method '{self.name}': start epochs up to {max_start - 1} plus expert_epochs={expert_epochs} need "
                f"experts of >= {needed} epochs, but {len(short)} expert(s) have only {experts[short[0]].epochs}; "
                "lower max_start_epoch/expert_epochs or raise expert_train_epochs"
            )

        student = FunctionalStudent(ctx.make_model(), ctx.arch)
        if student.layout.shapes != experts[0].layout.shapes:
            raise DdrError(f"method '{self.name}': the experts' parameters ({experts[0].layout.size} values) do not "
                           f"fit the student '{ctx.arch}' ({student.layout.size}); use experts of that architecture")
        sampler = RealSampler(ctx)
        gen = ctx.generator
        labels = class_major_labels(ctx.num_classes, ctx.ipc, ctx.device)

        soft = None
        threshold = math.inf
        if self.datm:
            label_epoch = p.get("label_expert_epoch")
            images, soft = self._init_datm(ctx, sampler, student, experts, None if label_epoch is None else
                                           int(label_epoch), str(p["init"]))
            threshold = float(p["threshold"])
        else:
            images = init_synthetic(ctx, sampler, str(p["init"]))

        lr_init = float(p["lr_teacher"])
        if lr_init <= 0:
            raise ConfigError(f"method '{self.name}': lr_teacher must be > 0")
        log_lr = p["lr_param"] == "log"
        lr_param = torch.tensor(math.log(lr_init) if log_lr else lr_init, device=ctx.device,
                                dtype=torch.float32, requires_grad=True)
        opt_img = torch.optim.SGD([images], lr=float(p["lr_img"]), momentum=float(p["momentum_img"]))
        opt_lr = torch.optim.SGD([lr_param], lr=float(p["lr_lr"]), momentum=float(p["momentum_lr"]))
        opt_y = None
        if soft is not None:
            opt_y = torch.optim.SGD([soft], lr=float(p["lr_y"]), momentum=float(p["momentum_y"]))

        aug_name = _none_name(p["augmentation"])
        augment = ctx.augmentation(aug_name, **dict(p["augmentation_params"] or {})) if aug_name else None
        criterion = soft_criterion if soft is not None else hard_criterion
        targets = soft if soft is not None else labels
        curve = LossCurve(iterations)
        lr_curve: list[float] = []
        skipped = 0

        for it in ctx.progress(range(iterations), total=iterations, desc=self.name):
            upper = max_start
            if self.datm:
                upper = self._upper_bound(it, p, max_start, min_start)
            expert = experts[_randint(gen, 0, len(experts))]
            t = _randint(gen, min_start, upper)
            start = expert.params(t, ctx.device)
            target = expert.params(t + expert_epochs, ctx.device)
            lr = lr_param.exp() if log_lr else lr_param
            final = unroll(student, start, images, targets, lr, steps=syn_steps, batch_size=batch_syn,
                           generator=gen, augment=augment, criterion=criterion,
                           checkpoint_segments=int(p["checkpoint_segments"]))
            loss = trajectory_loss(final, start, target)
            curve.add(loss.detach())
            if threshold < math.inf and float(loss.detach()) > threshold:
                skipped += 1  # DATM updates nothing on an iteration whose loss exceeds the threshold
            else:
                opt_img.zero_grad(set_to_none=True)
                opt_lr.zero_grad(set_to_none=True)
                if opt_y is not None:
                    opt_y.zero_grad(set_to_none=True)
                loss.backward()
                opt_img.step()
                opt_lr.step()
                if opt_y is not None:
                    opt_y.step()
                if not log_lr:
                    with torch.no_grad():
                        lr_param.clamp_(min=1e-6)  # keep the learnable LR positive (MTT does not; it can diverge)
            if it % max(1, iterations // 20) == 0:
                lr_curve.append(float(lr_param.detach().exp() if log_lr else lr_param.detach()))

        images_out = images.detach()
        if not bool(torch.isfinite(images_out).all()):
            raise DdrError(f"method '{self.name}' diverged (non-finite images); lower lr_img (now {p['lr_img']})")
        final_lr = float(lr_param.detach().exp() if log_lr else lr_param.detach())
        meta = {
            **curve.meta(), "experts": len(experts), "experts_source": source,
            "expert_optimizer": str(p["expert_optimizer"]) if source == "trained" else None,
            "expert_epochs_available": min(e.epochs for e in experts), "expert_seconds": expert_seconds,
            "resolved": {k: p[k] for k in table_keys}, "learned_lr": final_lr, "lr_curve": lr_curve,
        }
        if self.datm:
            meta["skipped_iterations"] = skipped
        return DistilledSet(
            images=images_out.to("cpu", torch.float32).contiguous(),
            labels=class_major_labels(ctx.num_classes, ctx.ipc, "cpu"),
            soft_labels=None if soft is None else soft.detach().to("cpu", torch.float32).contiguous(),
            lr=final_lr,
            pixel_space=ctx.dataset.pixel_space,
            label_strategy="stored_soft" if soft is not None else "hard",
            meta=meta,
        )

    # -- DATM --------------------------------------------------------------------------------------
    @staticmethod
    def _upper_bound(it: int, p: dict[str, Any], max_start: int, min_start: int) -> int:
        current = min(int(p.get("current_max_start_epoch") or max_start), max_start)
        end = int(p.get("expansion_end_epoch") or 1)
        upper = current + (max_start - current) * min(1.0, it / max(1, end))
        return max(min_start + 1, min(max_start, int(upper)))

    @staticmethod
    def _init_datm(ctx: "DistillContext", sampler: RealSampler, student: FunctionalStudent,
                   experts: list[Trajectory], label_epoch: int | None, init: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial images and soft labels (logits), as DATM's ``pix_init`` and label initialisation.

        ``correct``: per class, real images in a random order, ``CHUNK`` at a time (only those are
        decoded when the dataset streams), keeping the first ``ipc`` that the first expert at
        ``label_epoch`` (None: its last) classifies correctly; a class with fewer such images is
        completed with misclassified ones. The logits are averaged over the experts that classify
        each image correctly (the first expert's where none does). ``real``/``noise``: random real
        images or noise, labelled with the first expert's logits (DATM's ``pix_init: real``).
        """
        def epoch_of(expert: Trajectory) -> int:
            return expert.epochs if label_epoch is None else min(label_epoch, expert.epochs)

        theta = experts[0].params(epoch_of(experts[0]), ctx.device)
        if init in ("noise", "real"):
            images = init_synthetic(ctx, sampler, init).detach()
            logits = _logits(student, theta, images)
        elif init == "correct":
            images = torch.cat([_correct_images(ctx, sampler, student, theta, c) for c in range(ctx.num_classes)])
            labels = class_major_labels(ctx.num_classes, ctx.ipc, ctx.device)
            first = _logits(student, theta, images)
            total = torch.zeros_like(first)
            count = torch.zeros(len(images), device=first.device)
            for i, expert in enumerate(experts):
                out = first if i == 0 else _logits(student, expert.params(epoch_of(expert), ctx.device), images)
                right = (out.argmax(dim=1) == labels).to(out.dtype)
                total += out * right[:, None]
                count += right
            logits = torch.where(count[:, None] > 0, total / count.clamp_min(1)[:, None], first)
        else:
            raise ConfigError(f"method 'datm': unknown init {init!r}; expected correct, real or noise")
        return (images.to(ctx.device, torch.float32).clone().requires_grad_(True),
                logits.to(torch.float32).clone().requires_grad_(True))


CHUNK = 256
"""Real images classified per batch while choosing DATM's initial images (DATM's ``batch_size``)."""


@torch.no_grad()
def _logits(student: FunctionalStudent, theta: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([student(theta, images[i:i + CHUNK]) for i in range(0, len(images), CHUNK)])


@torch.no_grad()
def _correct_images(ctx: "DistillContext", sampler: RealSampler, student: FunctionalStudent, theta: torch.Tensor,
                    c: int) -> torch.Tensor:
    """``ipc`` real images of class ``c``, those ``theta`` classifies as ``c`` first (see ``_init_datm``)."""
    index = sampler.indices[c]
    if len(index) < ctx.ipc:
        raise DataError(f"class {c} has only {len(index)} real training images; DATM needs ipc={ctx.ipc} "
                        "(use a smaller ipc or init=noise)")
    gen = ctx.generator
    order = index[torch.randperm(len(index), generator=gen, device=gen.device).to(index.device)]
    right: list[torch.Tensor] = []
    wrong: list[torch.Tensor] = []
    found = kept_wrong = 0
    for start in range(0, len(order), CHUNK):
        batch = ctx.train.take(order[start:start + CHUNK]).to(ctx.device, torch.float32)
        hit = student(theta, batch).argmax(dim=1) == c
        right.append(batch[hit])
        found += int(hit.sum())
        if found >= ctx.ipc:
            break
        if kept_wrong < ctx.ipc:
            wrong.append(batch[~hit][:ctx.ipc - kept_wrong])
            kept_wrong += len(wrong[-1])
    return torch.cat(right + wrong)[:ctx.ipc]


class MTT(TrajectoryMatching):
    name = "mtt"
    datm = False


class DATM(TrajectoryMatching):
    name = "datm"
    datm = True
