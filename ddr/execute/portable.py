"""What a job needs to run the same in another process (a Ray worker): the plugin-system and
torch settings of this one, and models' weights as CPU tensors.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.plugin.manager import PluginSystem


def plugin_settings(system: "PluginSystem") -> dict[str, Any]:
    """``PluginSystem(**plugin_settings(system))`` loads the same plugins in another process."""
    return {"autoload": system.autoload, "block": sorted(system.blocked), "load": list(system.requested),
            "strict": system.strict}


def torch_settings() -> dict[str, Any]:
    """This process's torch settings that change numbers: threads and determinism switches."""
    import torch

    return {"threads": torch.get_num_threads(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "matmul_precision": torch.get_float32_matmul_precision()}


def apply_torch_settings(settings: dict[str, Any]) -> None:
    """Make this process's torch settings those of :func:`torch_settings` (Ray starts workers
    with ``OMP_NUM_THREADS=1``, which changes CPU results in the last bits)."""
    import torch

    if torch.get_num_threads() != settings["threads"]:
        torch.set_num_threads(settings["threads"])
    torch.use_deterministic_algorithms(settings["deterministic"], warn_only=settings["warn_only"])
    torch.backends.cudnn.deterministic = settings["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = settings["cudnn_benchmark"]
    torch.set_float32_matmul_precision(settings["matmul_precision"])


def state_dict_cpu(model: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """``model``'s parameters and buffers as CPU tensors (what crosses the process boundary)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def frozen_models(states: Sequence[dict[str, "torch.Tensor"]],
                  build: Callable[[], "torch.nn.Module"]) -> list["torch.nn.Module"]:
    """One model per state dict (``build()`` makes the empty network), loaded strictly, in eval
    mode and frozen: teachers rebuilt from the weights another process shipped."""
    models = []
    for state in states:
        model = build()
        model.load_state_dict(state, strict=True)
        model.eval().requires_grad_(False)
        models.append(model)
    return models
