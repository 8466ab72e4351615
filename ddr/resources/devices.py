"""Which torch device a run uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def resolve_device(device: str | None) -> "torch.device":
    """``device`` (default: the GPU when one is present) as a usable ``torch.device``."""
    import torch

    try:
        resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid device {device!r}: use cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise ConfigError(f"device {device!r} is not available here ({count} CUDA device(s)); "
                              "use --device cpu or leave --device out")
    return resolved
