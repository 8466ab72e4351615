"""Teachers: load a user's checkpoint (or a cached real-data model) into an architecture.

Checkpoints are read without unpickling anything: ``.safetensors`` files, or ``.pt``/``.pth``
files through ``torch.load(weights_only=True)`` holding a state dict (optionally under a
``state_dict``/``model``/``net`` key, with an optional ``module.`` prefix from DataParallel).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def read_state_dict(path: Path) -> dict[str, "torch.Tensor"]:
    """The tensors of a checkpoint file, keys stripped of a ``module.`` prefix."""
    import torch

    if not path.is_file():
        raise ArtifactError(f"teacher checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ArtifactError(f"cannot read teacher checkpoint {path}: not a valid safetensors file ({reason}); "
                                "re-export it with safetensors.torch.save_file(model.state_dict(), PATH)") from exc
    else:
        from ddr.store.formats import safe_torch_load

        state = safe_torch_load(path, what="teacher checkpoint")
    for key in ("state_dict", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_teacher(model: "torch.nn.Module", path: Path) -> "torch.nn.Module":
    """Load ``path`` into ``model`` (strict), put it in eval mode and freeze it."""
    state = read_state_dict(Path(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(
            f"teacher checkpoint {path} does not fit the teacher architecture: {str(exc).splitlines()[0]}; "
            "choose the matching --arch / teacher.arch"
        ) from exc
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
