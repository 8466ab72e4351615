"""The batched model: M students of one architecture held as stacked parameters ``[M, ...]``.

:class:`StackedModel` stacks the parameters of M same-shaped networks
(``torch.func.stack_module_state``), so member ``m``'s weights are ``params[name][m]`` and start
exactly as the modules they came from. Two programs compute all members' logits at once:

* ``grouped`` (architectures that declare ddr's ConvNet layout, ``ArchitectureSpec.grouped``:
  the ConvNet family): the feature maps of all members live side by side in the channel
  dimension, ``[B, M*C, H, W]``; every conv is one grouped convolution (``groups=M``),
  norms/activations/pools act per channel, the classifier is one batched matmul.
  (:mod:`ddr.execute.grouped_convnet`.)
* ``vmap`` (any other network without buffers or dropout): ``torch.func.functional_call`` under
  ``torch.vmap``.

Which architectures may be stacked at all is declared by their spec (``ArchitectureSpec.stackable``,
asked by the batched executor); :func:`unsupported_reason` checks the built modules.

Measured on 2 shared CPU cores (ConvNet-3 forward+backward, 8 and 32 members), ``grouped`` took 0.25-0.65x
the time of ``vmap``, whose batching rules add layout copies around each convolution; so
``auto`` picks ``grouped`` where it applies.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

BACKENDS = ("auto", "grouped", "vmap")


class Unbatchable(Exception):
    """The networks cannot be trained as one stacked model (the jobs then run one by one)."""


def unsupported_reason(model: "nn.Module") -> str | None:
    """Why ``model`` cannot be stacked, or ``None`` when it can.

    Refused: BatchNorm (running statistics and batch statistics per student), dropout (draws from
    the global RNG, not the student's generator), any buffer (state the stacked update would not
    carry), frozen parameters (``torch.optim`` would skip them).
    """
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return f"BatchNorm layer {name or type(module).__name__} (running statistics per student)"
        if isinstance(module, (nn.modules.dropout._DropoutNd, nn.AlphaDropout, nn.FeatureAlphaDropout)) and module.p > 0:
            return f"dropout layer {name} (it draws from the global RNG, not the student's generator)"
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return f"module buffers {buffers[:3]} (state a stacked update does not carry)"
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    if frozen:
        return f"frozen parameters {frozen[:3]}"
    return None


class StackedModel:
    """M same-shaped students as stacked leaf tensors with one batched forward.

    Attributes:
        params: parameter name -> leaf tensor ``[M, *shape]`` (float32, requires grad), member
            ``m`` at index ``m``; names are the modules' ``named_parameters`` names.
        backend: ``grouped`` or ``vmap`` (the program actually used).
        members: M.

    ``grouped`` is the architecture's declared capability (``ArchitectureSpec.grouped``, the
    ConvNet layout): ``True`` allows the grouped program (when the layers have a grouped form),
    ``False`` rules it out; ``None`` (a caller without the spec) lets the modules' layers decide,
    and such a caller should :meth:`verify` the forward.
    """

    def __init__(self, models: "Sequence[nn.Module]", *, backend: str = "auto", channels_last: bool = False,
                 grouped: bool | None = None) -> None:
        import torch

        if backend not in BACKENDS:
            raise ConfigError(f"executor 'batched': backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if not models:
            raise ConfigError("a stacked model needs at least one network")
        for model in models:
            reason = unsupported_reason(model)
            if reason is not None:
                raise Unbatchable(reason)
        params, _ = torch.func.stack_module_state(list(models))
        self.params: dict[str, torch.Tensor] = {name: p.detach().clone().requires_grad_(True)
                                                for name, p in params.items()}
        self.members = len(models)
        self.channels_last = channels_last
        template = copy.deepcopy(models[0]).to("meta")
        from ddr.execute.grouped_convnet import GroupedConvNet, grouped_reason

        reason = (grouped_reason(models[0]) if grouped is not False
                  else "the architecture does not declare the ConvNet layout (ArchitectureSpec.grouped)")
        if backend == "grouped" and reason is not None:
            raise Unbatchable(f"the grouped backend does not apply: {reason}")
        self.backend = "grouped" if backend in ("auto", "grouped") and reason is None else "vmap"
        self._program: Any = (GroupedConvNet(models[0], channels_last=channels_last) if self.backend == "grouped"
                              else _VmapProgram(template))

    @property
    def param_list(self) -> "list[torch.Tensor]":
        """The stacked parameters in ``named_parameters`` order."""
        return list(self.params.values())

    def __call__(self, images: "torch.Tensor") -> "torch.Tensor":
        """Logits ``[M, B, K]`` of member-specific images ``[B, M, C, H, W]`` (member m sees ``[:, m]``)."""
        return self._program(self.params, images, shared=False)

    def shared(self, images: "torch.Tensor", members: "torch.Tensor | None" = None) -> "torch.Tensor":
        """Logits ``[M', B, K]`` of the same images ``[B, C, H, W]`` for every member (or the
        members at the int64 index ``members``, ``M' = len(members)``)."""
        params = self.params
        if members is not None:
            params = {name: p.index_select(0, members) for name, p in params.items()}
        return self._program(params, images, shared=True)

    def member_state(self, member: int) -> "dict[str, torch.Tensor]":
        """Member ``member``'s parameters as a state dict of detached copies (its own shapes)."""
        return {name: p[member].detach().clone() for name, p in self.params.items()}

    def load_member(self, member: int, module: "nn.Module") -> "nn.Module":
        """Copy member ``member``'s weights into ``module`` (a network of the same architecture)."""
        module.load_state_dict(self.member_state(member), strict=True)
        return module

    def verify(self, models: "Sequence[nn.Module]", probe: "torch.Tensor", members: Sequence[int]) -> None:
        """Check that the batched forward equals each listed member's own module on ``probe``
        ``[B, C, H, W]`` (float32, to 1e-4 of the logits' scale); raise :class:`Unbatchable` if not.

        Guards against a network whose ``forward`` is not what the program assumes.
        """
        import torch

        with torch.no_grad():
            try:
                stacked = self.shared(probe)
                per_member = self(probe.unsqueeze(1).expand(-1, self.members, *probe.shape[1:]).contiguous())
            except Exception as exc:  # an op vmap cannot batch, a shape the program does not expect
                raise Unbatchable(f"the batched forward failed: {type(exc).__name__}: {exc}") from exc
            for m in members:
                own = models[m](probe)
                scale = max(1.0, float(own.abs().max()))
                for got in (stacked[m], per_member[m]):
                    if got.shape != own.shape or not torch.allclose(got, own, atol=1e-4 * scale, rtol=1e-4):
                        raise Unbatchable(f"the batched forward of member {m} differs from its module "
                                          f"(max |diff| {float((got - own).abs().max()):.3g})")


class _VmapProgram:
    """``functional_call`` of a meta-device copy of the network under ``torch.vmap``."""

    def __init__(self, template: "nn.Module") -> None:
        self.template = template

    def __call__(self, params: "dict[str, torch.Tensor]", images: "torch.Tensor", *, shared: bool) -> "torch.Tensor":
        import torch

        def one(p: "dict[str, torch.Tensor]", x: "torch.Tensor") -> "torch.Tensor":
            return torch.func.functional_call(self.template, p, (x,))

        return torch.vmap(one, in_dims=(0, None if shared else 1))(params, images)
