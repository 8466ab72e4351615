"""``sample_kl``: temperature-scaled KL divergence between student logits and soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ddr.errors import ConfigError
from ddr.engine.labels import Targets


class SampleKL:
    """``loss(logits[B,K], targets) = T^2 * mean_b KL(softmax(soft_b / T) || softmax(logits_b / T))``.

    ``targets.soft`` holds target logits ``[B, K]`` (already for the mixed images when the batch
    was mixed). The ``T^2`` factor keeps gradient magnitudes comparable across temperatures.
    """

    def __init__(self, temperature: float = 4.0) -> None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
            raise ConfigError(f"sample_kl: temperature must be a positive number, got {temperature!r}")
        self.temperature = float(temperature)

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        if targets.soft is None:
            raise ConfigError("sample_kl compares against soft targets, but the label strategy gave hard labels only;"
                              " use it with a soft label strategy (stored_soft or teacher)")
        if targets.soft.shape != logits.shape:
            raise ConfigError(f"sample_kl: soft targets have shape {tuple(targets.soft.shape)}, "
                              f"logits {tuple(logits.shape)}; expected equal [B, K]")
        t = self.temperature
        log_student = F.log_softmax(logits / t, dim=1)
        teacher = F.softmax(targets.soft / t, dim=1)
        return F.kl_div(log_student, teacher, reduction="batchmean") * (t * t)
