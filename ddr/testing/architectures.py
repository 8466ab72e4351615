"""Contract check for architectures, for ddr's own tests and for plugin authors.

    from ddr.testing.architectures import check_architecture
    def test_my_net():
        check_architecture(my_spec, channels=1, num_classes=10, image_size=(16, 16))

:func:`check_architecture` builds the network as ddr does and asserts, with a message saying what
was wrong, that it honours the contract of :class:`ddr.plugin.specs.ArchitectureSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from ddr.plugin.registry import import_target
from ddr.plugin.specs import ArchitectureSpec

INIT_SEED = 1234
OTHER_SEED = 4321


@dataclass(frozen=True)
class ArchitectureReport:
    """What :func:`check_architecture` measured.

    Attributes:
        model: the network built under ``torch.manual_seed(INIT_SEED)``, in eval mode.
        num_parameters: number of trainable scalars.
        embed_dim: D, the width of ``embed(x)``.
    """

    model: nn.Module
    num_parameters: int
    embed_dim: int


def _factory_of(spec_or_factory: ArchitectureSpec | Callable[..., nn.Module], argument: str | None,
                params: Mapping[str, Any] | None) -> tuple[str, Callable[[], nn.Module]]:
    if isinstance(spec_or_factory, ArchitectureSpec):
        spec = spec_or_factory
        target = import_target(spec)
        kwargs = {**spec.defaults, **(params or {})}
        if spec.accepts_argument:
            assert argument is not None, f"architecture '{spec.name}' takes ':ARGUMENT'; pass argument=..."
            kwargs["argument"] = argument
        label = spec.name + (f":{argument}" if argument is not None else "")
    else:
        target, kwargs = spec_or_factory, dict(params or {})
        if argument is not None:
            kwargs["argument"] = argument
        label = getattr(spec_or_factory, "__name__", repr(spec_or_factory))
    return label, lambda **geometry: target(**geometry, **kwargs)


def _build(factory: Callable[..., nn.Module], seed: int, geometry: dict[str, Any]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(**geometry)


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def check_architecture(spec_or_factory: ArchitectureSpec | Callable[..., nn.Module], *, channels: int = 3,
                       num_classes: int = 10, image_size: tuple[int, int] = (32, 32), batch_size: int = 2,
                       argument: str | None = None, params: Mapping[str, Any] | None = None) -> ArchitectureReport:
    """Build an architecture and assert that it honours ddr's architecture contract.

    ``spec_or_factory`` is an :class:`ArchitectureSpec` (its target is called with its defaults
    updated by ``params``) or a callable ``factory(channels=, num_classes=, image_size=, **params)``.

    Asserted: the result is an ``nn.Module`` with ``embed``; the same seed gives the same weights
    and another seed different ones (initialisation draws from the caller's torch RNG); in train
    and eval mode ``forward(x[B, C, H, W])`` gives finite logits ``[B, K]`` and ``embed(x)``
    finite features ``[B, D]`` without modifying ``x``; ``get_classifier()(embed(x))`` equals
    ``forward(x)`` in eval mode (when the model has ``get_classifier``); eval mode is
    deterministic; the gradient of the summed logits reaches every trainable parameter.
    """
    label, factory = _factory_of(spec_or_factory, argument, params)
    geometry = {"channels": channels, "num_classes": num_classes, "image_size": tuple(image_size)}
    where = f"architecture {label} at {channels}x{image_size[0]}x{image_size[1]}, {num_classes} classes"

    model = _build(factory, INIT_SEED, geometry)
    assert isinstance(model, nn.Module), f"{where}: the target returned {type(model).__name__}, not a torch.nn.Module"
    assert callable(getattr(model, "embed", None)), f"{where}: the model has no embed(x) method"
    assert _same_state(model, _build(factory, INIT_SEED, geometry)), \
        f"{where}: two builds under the same torch seed differ; initialise from the global torch RNG only"
    assert not _same_state(model, _build(factory, OTHER_SEED, geometry)), \
        f"{where}: two builds under different torch seeds are identical; initialisation must use the torch RNG"
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert trainable, f"{where}: the model has no trainable parameters"

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, channels, *image_size, generator=generator)
    x_before = x.clone()

    model.train()
    logits = model(x)
    _check_output(where, "train-mode forward(x)", logits, (batch_size, num_classes))
    logits.sum().backward()
    missing = [name for name, p in trainable if p.grad is None]
    assert not missing, f"{where}: no gradient reaches {len(missing)} trainable parameter(s): {missing[:5]}"
    grads = [(name, p.grad) for name, p in trainable if p.grad is not None]
    bad = [name for name, g in grads if not torch.isfinite(g).all()]
    assert not bad, f"{where}: non-finite gradients in {bad[:5]}"
    assert any(g.abs().sum() > 0 for _, g in grads), f"{where}: every gradient is zero"
    model.zero_grad(set_to_none=True)
    features = cast(Any, model).embed(x)
    _check_output(where, "train-mode embed(x)", features, (batch_size, None))

    model.eval()
    with torch.no_grad():
        logits = model(x)
        _check_output(where, "eval-mode forward(x)", logits, (batch_size, num_classes))
        assert torch.equal(logits, model(x)), f"{where}: two eval-mode forward passes of the same input differ"
        features = cast(Any, model).embed(x)
        embed_dim = _check_output(where, "eval-mode embed(x)", features, (batch_size, None))[1]
        get_classifier = getattr(model, "get_classifier", None)
        if callable(get_classifier):
            head_logits = get_classifier()(features)
            assert torch.allclose(head_logits, logits, rtol=1e-4, atol=1e-5), (
                f"{where}: forward(x) differs from get_classifier()(embed(x)) by up to "
                f"{(head_logits - logits).abs().max().item():.3g}; embed must return the classifier's input"
            )
    assert torch.equal(x, x_before), f"{where}: the model modified its input tensor in place"
    return ArchitectureReport(model=model, num_parameters=sum(p.numel() for _, p in trainable), embed_dim=embed_dim)


def _check_output(where: str, what: str, value: Any, shape: tuple[int, int | None]) -> tuple[int, ...]:
    assert isinstance(value, torch.Tensor), f"{where}: {what} returned {type(value).__name__}, not a tensor"
    assert value.dim() == 2 and value.shape[0] == shape[0] and shape[1] in (None, value.shape[1]), (
        f"{where}: {what} has shape {tuple(value.shape)}, expected "
        f"[{shape[0]}, {shape[1] if shape[1] is not None else 'D'}]"
    )
    assert torch.isfinite(value).all(), f"{where}: {what} has non-finite values"
    return tuple(value.shape)
