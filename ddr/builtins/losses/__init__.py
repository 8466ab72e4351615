"""Registration of the built-in losses (cheap: no torch import here)."""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import LossSpec

_LOSSES = "ddr.builtins.losses.functions"


@hookimpl
def ddr_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="ce", target=f"{_LOSSES}:CrossEntropy", stackable=True,
            summary="hard-label cross-entropy with label smoothing (fraction) and mixed labels",
            defaults={"label_smoothing": 0.0},
        ),
        LossSpec(
            name="sce", target=f"{_LOSSES}:SoftCrossEntropy", soft=True, stackable=True,
            summary="soft cross-entropy -sum softmax(t/T) log_softmax(s/T), batch mean (DATM)",
            defaults={"temperature": 1.0, "scale_by_t2": False},
        ),
        LossSpec(
            name="kl", target=f"{_LOSSES}:KLDivergence", soft=True, stackable=True,
            summary="KL(softmax(t/T) || softmax(s/T)), batchmean, optional T^2 scaling (SRe2L/RDED)",
            defaults={"temperature": 4.0, "scale_by_t2": False},
            presets={"sre2l": {"temperature": 20.0}},
        ),
        LossSpec(
            name="mse_gt", target=f"{_LOSSES}:MSEWithHardLabels", soft=True, stackable=True,
            summary="mse_weight*MSE(logits, target logits) + ce_weight*CE(hard labels) (EDC; G-VBSM ce_weight 0.15)",
            defaults={"mse_weight": 1.0, "ce_weight": 0.025},
            presets={"edc": {"ce_weight": 0.025}, "gvbsm": {"ce_weight": 0.15}},
        ),
    ]
