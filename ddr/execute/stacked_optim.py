"""Per-member optimisers on stacked parameters, with ``torch.optim``'s update rules.

Each stacked tensor ``[M, ...]`` holds one parameter of M students; every student has its own
learning rate (a ``[M]`` tensor, already multiplied by the schedule's factor). The updates are
those of ``torch.optim.SGD`` (momentum, dampening 0, no Nesterov, L2 weight decay added to the
gradient), ``torch.optim.Adam`` (L2 weight decay) and ``torch.optim.AdamW`` (decoupled weight
decay), eps 1e-8, betas ``(momentum, 0.999)`` as :func:`ddr.engine.training.make_optimizer`
builds them. The learning rate enters as a tensor instead of a Python scalar, so results equal
``torch.optim``'s to float32 rounding, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ddr.engine.optimizers import ADAM_BETA2, ADAM_EPS
from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.training import Recipe


def _member_view(values: "torch.Tensor", like: "torch.Tensor") -> "torch.Tensor":
    """``values[M]`` shaped ``[M, 1, ..., 1]`` to broadcast over ``like[M, ...]``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


class StackedOptimizer:
    """SGD / Adam / AdamW of M students over stacked parameters.

    ``step(grads, lr)``: ``grads`` are the gradients of the stacked parameters (same order and
    shapes), ``lr`` float32 ``[M]`` each member's learning rate for this step.
    """

    def __init__(self, params: "Sequence[torch.Tensor]", recipe: "Recipe") -> None:
        if recipe.optimizer not in ("sgd", "adam", "adamw"):
            raise ConfigError(f"optimizer must be sgd, adam or adamw, got {recipe.optimizer!r}")
        self.params = list(params)
        self.kind = recipe.optimizer
        self.momentum = float(recipe.momentum)
        self.weight_decay = float(recipe.weight_decay)
        self.steps = 0
        self._buffers: list[torch.Tensor] = []
        self._exp_avg: list[torch.Tensor] = []
        self._exp_avg_sq: list[torch.Tensor] = []

    def step(self, grads: "Sequence[torch.Tensor]", lr: "torch.Tensor") -> None:
        import torch

        with torch.no_grad():
            if self.kind == "sgd":
                self._sgd(list(grads), lr)
            else:
                self._adam(list(grads), lr)
        self.steps += 1

    def _sgd(self, grads: "list[torch.Tensor]", lr: "torch.Tensor") -> None:
        import torch

        if self.weight_decay != 0:
            grads = list(torch._foreach_add(grads, self.params, alpha=self.weight_decay))
        if self.momentum != 0:
            if not self._buffers:  # torch.optim.SGD: the first buffer is the gradient itself
                self._buffers = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self._buffers, self.momentum)
                torch._foreach_add_(self._buffers, grads)
            grads = self._buffers
        for param, grad in zip(self.params, grads):
            param.addcmul_(grad, _member_view(lr, param), value=-1)

    def _adam(self, grads: "list[torch.Tensor]", lr: "torch.Tensor") -> None:
        import torch

        beta1, beta2 = self.momentum, ADAM_BETA2
        if not self._exp_avg:
            self._exp_avg = [torch.zeros_like(p) for p in self.params]
            self._exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        step = self.steps + 1
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        step_size = lr / bias_correction1
        for param, grad, exp_avg, exp_avg_sq in zip(self.params, grads, self._exp_avg, self._exp_avg_sq):
            if self.weight_decay != 0:
                if self.kind == "adamw":
                    param.mul_(1 - _member_view(lr, param) * self.weight_decay)
                else:
                    grad = grad.add(param, alpha=self.weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
            param.addcmul_(exp_avg / denom, _member_view(step_size, param), value=-1)
