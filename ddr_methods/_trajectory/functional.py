"""Functional unrolled training of a student network over a flat parameter vector.

Trajectory matching (MTT, DATM) trains a student for ``syn_steps`` SGD steps on the synthetic
images, starting from an expert's parameters, and back-propagates from the final parameters into
the images, the (soft) labels and the learnable learning rate. The student here is an
``nn.Module`` used as a pure function of one flat parameter vector through
:func:`torch.func.functional_call`; every step is ``theta <- theta - lr * grad`` with
``create_graph=True``.

With ``checkpoint_segments`` the unroll is cut into that many segments, each run under
:func:`torch.utils.checkpoint.checkpoint` (non-reentrant): only segment boundaries are kept and
each segment is recomputed during the backward pass, trading compute for memory. Every random
draw (minibatch order, one augmentation seed per step) is made from the caller's generator before
the unroll, so the recomputation replays exactly and the result does not depend on checkpointing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddr import ConfigError, DdrError


def check_functional(model: nn.Module, arch: str = "") -> None:
    """Raise :class:`DdrError` when ``model`` cannot be unrolled functionally.

    BatchNorm running statistics are state updated outside the parameter vector (MTT uses
    networks without BatchNorm for this reason): choose an architecture with instance/group/layer
    norm or none.
    """
    name = f"architecture '{arch}'" if arch else "the student architecture"
    for module_name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (
            module.track_running_stats or module.running_mean is not None
        ):
            raise DdrError(
                f"{name} has BatchNorm with running statistics ({module_name or 'root'}: "
                f"{type(module).__name__}); trajectory matching unrolls the student as a pure function "
                "of its parameters and cannot carry running statistics. Use a network without BatchNorm "
                "(e.g. --set student.arch_params.norm=instance, the ConvNet default)"
            )
    if not any(True for _ in model.parameters()):
        raise DdrError(f"{name} has no parameters to unroll")


@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of a model's parameters, in ``named_parameters()`` order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: nn.Module) -> "ParamLayout":
        named = list(model.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def numels(self) -> list[int]:
        out = []
        for shape in self.shapes:
            n = 1
            for s in shape:
                n *= s
            out.append(n)
        return out

    @property
    def size(self) -> int:
        return sum(self.numels)

    def flatten(self, tensors: list[torch.Tensor] | dict[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(tensors, dict):
            tensors = [tensors[n] for n in self.names]
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(flat, self.numels)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes]}


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """The model's parameters as one detached float32 vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).to(torch.float32)


class FunctionalStudent:
    """``student(flat, x) -> logits`` for a fixed module (its own parameters are never used)."""

    def __init__(self, model: nn.Module, arch: str = ""):
        check_functional(model, arch)
        self.model = model
        self.layout = ParamLayout.of(model)
        self.buffers = dict(model.named_buffers())
        model.train()

    def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = self.layout.unflatten(flat)
        return torch.func.functional_call(self.model, {**params, **self.buffers}, (x,))


Augment = Callable[..., Any]
Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def hard_criterion(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


def soft_criterion(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the softmax of target logits."""
    return -(F.softmax(targets, dim=1) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _segment_lengths(steps: int, segments: int) -> list[int]:
    segments = max(1, min(segments, steps))
    base, extra = divmod(steps, segments)
    return [base + (1 if i < extra else 0) for i in range(segments)]


def unroll(
    student: FunctionalStudent,
    start: torch.Tensor,
    images: torch.Tensor,
    targets: torch.Tensor,
    lr: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
    augment: Augment | None = None,
    criterion: Criterion = hard_criterion,
    checkpoint_segments: int = 0,
) -> torch.Tensor:
    """Run ``steps`` differentiable SGD steps from ``start`` and return the final flat parameters.

    Args:
        start: flat parameters ``[P]`` to start from (detached; a copy requiring grad is used).
        images: synthetic images ``[N, C, H, W]`` (gradients flow into them).
        targets: hard labels ``[N]`` or soft-label logits ``[N, K]`` (gradients flow into them when
            they require grad).
        lr: scalar student learning rate (gradients flow into it).
        batch_size: minibatch size; minibatches walk through a fresh random permutation of the
            ``N`` images (a new one when it runs out), as in MTT.
        augment: ``augment(x, generator) -> (x, mix)``, applied to every minibatch.
        criterion: ``criterion(logits, targets_batch) -> loss``.
        checkpoint_segments: 0 keeps the whole graph; ``S > 0`` checkpoints ``S`` segments.
    """
    if steps < 1:
        raise ConfigError(f"the unroll needs at least one step, got syn_steps={steps}")
    n = images.shape[0]
    batch_size = max(1, min(batch_size, n))
    device = images.device
    lengths = _segment_lengths(steps, checkpoint_segments or 1)
    # every random draw is made here, per step, so segmenting (checkpointing) changes nothing
    gen_device = generator.device
    batches: list[torch.Tensor] = []
    order = torch.randperm(n, generator=generator, device=gen_device)
    cursor = 0
    for _ in range(steps):
        if cursor + batch_size > n:
            order = torch.randperm(n, generator=generator, device=gen_device)
            cursor = 0
        batches.append(order[cursor:cursor + batch_size].to(device))
        cursor += batch_size
    step_seeds = torch.randint(0, 2**62, (steps,), generator=generator, device=gen_device).tolist()
    theta = start.detach().clone().requires_grad_(True)

    def segment(theta: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor,
                first: int, length: int) -> torch.Tensor:
        for step in range(first, first + length):
            idx = batches[step]
            x = images[idx]
            if augment is not None:
                gen = torch.Generator(device=device)
                gen.manual_seed(int(step_seeds[step]))
                x, _ = augment(x, gen)
            loss = criterion(student(theta, x), targets[idx])
            grad = torch.autograd.grad(loss, theta, create_graph=True)[0]
            theta = theta - lr * grad
        return theta

    use_checkpoint = checkpoint_segments > 0 and torch.is_grad_enabled()
    first = 0
    for length in lengths:
        if use_checkpoint:
            from torch.utils.checkpoint import checkpoint

            theta = checkpoint(segment, theta, images, targets, lr, first, length, use_reentrant=False)
        else:
            theta = segment(theta, images, targets, lr, first, length)
        first += length
    return theta


def trajectory_loss(final: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MTT's normalised parameter distance ``||final - target||^2 / ||start - target||^2``."""
    denom = ((start - target) ** 2).sum()
    return ((final - target) ** 2).sum() / denom.clamp_min(1e-12)
