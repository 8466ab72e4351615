"""Validation shared by the built-in augmentations: parameter names, ranges and the input batch.

Every failure is a :class:`ddr.errors.ConfigError` saying what was given, what is accepted and
how to fix it, so a typo in a YAML file never ends in a torch traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def reject_unknown(owner: str, unknown: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise if ``unknown`` (the leftover keyword arguments of a constructor) is not empty."""
    if not unknown:
        return
    valid = sorted(valid)
    hints = []
    for key in sorted(unknown):
        close = difflib.get_close_matches(key, valid, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"augmentation '{owner}' got unknown parameter(s) {', '.join(hints)}; "
        f"valid parameters are: {', '.join(valid)}"
    )


def resolve_aliases(
    owner: str,
    params: dict[str, Any],
    extra: dict[str, Any],
    aliases: Mapping[str, str],
    defaults: Mapping[str, Any],
) -> None:
    """Move alias values from ``extra`` into ``params`` (in place) under their canonical names.

    ``params`` holds the canonical parameters as received (defaults included, because the
    registry merges a spec's defaults before calling); ``extra`` the leftover keyword arguments.
    An alias overrides its canonical name unless that one was also set to a different,
    non-default value, which is reported as a conflict.
    """
    for alias in [key for key in extra if key in aliases]:
        canonical = aliases[alias]
        value = extra.pop(alias)
        current = params[canonical]
        if current != defaults[canonical] and current != value:
            raise ConfigError(
                f"augmentation '{owner}': {canonical}={current!r} and its alias {alias}={value!r} "
                f"are both given; keep one of them"
            )
        params[canonical] = value


def number(owner: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False) -> float:
    """``value`` as a float, checked against ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"augmentation '{owner}': {name} must be a number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high or value != value:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        bracket = "(" if low_open else "["
        raise ConfigError(f"augmentation '{owner}': {name} must lie in {bracket}{lo}, {hi}], got {value!r}")
    return value


def integer(owner: str, name: str, value: Any, *, low: int | None = None) -> int:
    """``value`` as an int (a whole-number float from YAML is fine), checked against ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigError(f"augmentation '{owner}': {name} must be a whole number, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"augmentation '{owner}': {name} must be >= {low}, got {value!r}")
    return int(value)


def number_pair(owner: str, name: str, value: Any, *, low: float = 0.0, low_open: bool = True) -> tuple[float, float]:
    """A ``(min, max)`` pair of numbers with ``low < min <= max`` (``low <= min`` without ``low_open``)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"augmentation '{owner}': {name} must be a pair [min, max], got {value!r}")
    first = number(owner, name, value[0], low=low, low_open=low_open)
    second = number(owner, name, value[1], low=low, low_open=low_open)
    if first > second:
        raise ConfigError(f"augmentation '{owner}': {name} must be [min, max] with min <= max, got {value!r}")
    return first, second


def check_batch(owner: str, images: "torch.Tensor", generator: "torch.Generator") -> None:
    """Check that ``images`` is a float ``[B, C, H, W]`` batch on the generator's device."""
    import torch

    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        got = f"{tuple(images.shape)} {images.dtype}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"augmentation '{owner}' needs a float batch [B, C, H, W], got {got}")
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"augmentation '{owner}' needs a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != images.device.type:
        raise ConfigError(
            f"augmentation '{owner}': the generator is on {generator.device} but the images are on "
            f"{images.device}; create the generator with torch.Generator(device=images.device)"
        )


def signature_defaults(cls: type[object]) -> dict[str, Any]:
    """``{parameter: default}`` of ``cls.__init__`` (the single source of its defaults)."""
    import inspect

    return {name: param.default for name, param in inspect.signature(cls.__init__).parameters.items()
            if param.default is not inspect.Parameter.empty}
