"""The students' optimisers: torch.optim's own update functions behind a minimal optimizer object.

THE training loop needs three things of an optimizer: ``param_groups[i]["lr"]`` (set every
epoch from the schedule), ``zero_grad()`` and ``step()``. :class:`StudentOptimizer` provides
them and computes every update with torch.optim's functional forms (``torch.optim.sgd.sgd``,
``torch.optim.adam.adam``), called exactly as ``torch.optim.SGD/Adam/AdamW.step`` call them, so
a student's weights equal, bit for bit, what those classes give (``tests/unit/engine/test_optimizers.py``
checks it after many steps).

Why not the classes themselves: every ``torch.optim.Optimizer`` method is wrapped in
``torch._disable_dynamo``, which imports ``torch._dynamo`` (with sympy, triton and the
distributed packages) on the first call. That import took 1.6 s of wall time per process on a
2-core machine: a third of a small ``ddr eval`` that trains nothing but students.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.training import Recipe

ADAM_EPS = 1e-8
"""torch.optim.Adam's default eps (and the batched executor's)."""
ADAM_BETA2 = 0.999
"""The second Adam beta of every recipe (the first is the recipe's ``momentum``)."""


class StudentOptimizer:
    """SGD (momentum, dampening 0, L2 weight decay), Adam (L2) or AdamW (decoupled) over one
    parameter group, as :func:`ddr.engine.training.make_optimizer` configures them.

    ``param_groups`` is a one-element list whose ``"lr"`` the caller may change between steps,
    as with a ``torch.optim`` optimizer.
    """

    def __init__(self, params: "Iterable[torch.Tensor]", recipe: "Recipe") -> None:
        self.kind = recipe.optimizer
        self.params = list(params)
        self.momentum = float(recipe.momentum)
        self.weight_decay = float(recipe.weight_decay)
        self.param_groups: list[dict[str, Any]] = [{"params": self.params, "lr": float(recipe.lr)}]
        self.state: dict[int, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    def step(self) -> None:
        import torch

        with torch.no_grad():
            if self.kind == "sgd":
                self._sgd()
            else:
                self._adam(decoupled=self.kind == "adamw")

    def _with_grad(self) -> list[tuple[int, "torch.Tensor"]]:
        return [(i, p) for i, p in enumerate(self.params) if p.grad is not None]

    def _sgd(self) -> None:
        from torch.optim.sgd import sgd

        live = self._with_grad()
        buffers = [self.state.get(i, {}).get("momentum_buffer") for i, _ in live]
        sgd([p for _, p in live], [p.grad for _, p in live], buffers,  # type: ignore[misc, unused-ignore]
            weight_decay=self.weight_decay, momentum=self.momentum, lr=self.param_groups[0]["lr"],
            dampening=0.0, nesterov=False, maximize=False, has_sparse_grad=False, foreach=None, fused=None)
        if self.momentum != 0:
            for (i, _), buffer in zip(live, buffers):
                self.state.setdefault(i, {})["momentum_buffer"] = buffer

    def _adam(self, *, decoupled: bool) -> None:
        import torch
        from torch.optim.adam import adam

        live = self._with_grad()
        # torch.optim.Adam keeps its step count as a CPU scalar of float64 under a float64 default, else float32
        step_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        for i, p in live:
            if i not in self.state:
                self.state[i] = {"step": torch.tensor(0.0, dtype=step_dtype, device="cpu"),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        states = [self.state[i] for i, _ in live]
        adam([p for _, p in live], [p.grad for _, p in live], [s["exp_avg"] for s in states],  # type: ignore[misc, unused-ignore]
             [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
             amsgrad=False, has_complex=any(torch.is_complex(p) for _, p in live), beta1=self.momentum,
             beta2=ADAM_BETA2, lr=self.param_groups[0]["lr"], weight_decay=self.weight_decay, eps=ADAM_EPS,
             maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
             grad_scale=None, found_inf=None, decoupled_weight_decay=decoupled)
