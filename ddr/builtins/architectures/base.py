"""What every built-in architecture shares: the embed/classifier split and the builder wrapper.

A ddr architecture maps images ``x[B, C, H, W]`` to logits ``[B, K]`` and exposes its penultimate
features through ``embed(x) -> [B, D]``; ``get_classifier()`` returns the module that turns those
features into logits, so ``forward(x) == get_classifier()(embed(x))`` (the name follows timm).

Builders are called by the registry as ``build(channels=C, num_classes=K, image_size=(H, W),
**params)``. :func:`architecture_builder` checks those three values and rejects parameters the
builder does not know with a :class:`ddr.errors.ConfigError` instead of a ``TypeError``.

Weights use PyTorch's default initialisation, drawn from the global torch RNG: the caller seeds
it (``torch.manual_seed`` or ``torch.random.fork_rng``) to get the same network twice.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from ddr.errors import ConfigError

F = TypeVar("F", bound=Callable[..., nn.Module])

GEOMETRY = ("channels", "num_classes", "image_size")


class EmbeddingClassifier(nn.Module):
    """Base of the built-in networks: ``forward(x) = get_classifier()(embed(x))``."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[B, D]`` of images ``x[B, C, H, W]``."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The module mapping ``embed(x)`` (``[B, D]``) to logits ``[B, K]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` of images ``x[B, C, H, W]``."""
        return self.get_classifier()(self.embed(x))


def check_geometry(arch: str, channels: Any, num_classes: Any, image_size: Any) -> tuple[int, int, tuple[int, int]]:
    """Validate the input/output shape an architecture is built for.

    Returns ``(channels, num_classes, (H, W))`` as plain ints; raises :class:`ConfigError`.
    """
    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    if not positive_int(channels):
        raise ConfigError(
            f"architecture '{arch}': channels must be a positive integer (1 grey, 3 RGB), got {channels!r}")
    if not positive_int(num_classes):
        raise ConfigError(f"architecture '{arch}': num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(positive_int(side) for side in image_size)):
        raise ConfigError(
            f"architecture '{arch}': image_size must be (height, width) in pixels, got {image_size!r}"
        )
    return channels, num_classes, (int(image_size[0]), int(image_size[1]))


def architecture_builder(arch: str) -> Callable[[F], F]:
    """Decorate a keyword-only builder ``build(*, channels, num_classes, image_size, ...)``.

    The wrapper validates the geometry (see :func:`check_geometry`) and turns unknown parameters
    into a :class:`ConfigError` that lists the accepted ones. Builders with ``**params`` (the
    timm/torchvision bridges) receive unknown parameters unchanged.
    """

    def decorate(build: F) -> F:
        parameters = inspect.signature(build).parameters
        accepted = [name for name, p in parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in GEOMETRY]
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

        @functools.wraps(build)
        def wrapper(*args: Any, **kwargs: Any) -> nn.Module:
            if args:
                raise ConfigError(f"architecture '{arch}': parameters must be passed by keyword")
            missing = [name for name in GEOMETRY if name not in kwargs]
            if missing:
                raise ConfigError(f"architecture '{arch}': missing {', '.join(missing)} (the dataset's shape)")
            unknown = sorted(set(kwargs) - set(accepted) - set(GEOMETRY))
            if unknown and not open_ended:
                raise ConfigError(
                    f"architecture '{arch}' has no parameter(s) {', '.join(map(repr, unknown))}; "
                    f"it accepts: {', '.join(accepted) or 'none'}"
                )
            channels, num_classes, image_size = check_geometry(
                arch, kwargs.pop("channels"), kwargs.pop("num_classes"), kwargs.pop("image_size"))
            return build(channels=channels, num_classes=num_classes, image_size=image_size, **kwargs)

        wrapper.accepted_params = tuple(accepted)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
