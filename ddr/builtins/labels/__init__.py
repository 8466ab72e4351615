"""Registration of the built-in label strategies and losses (cheap: no torch import here).

Strategies take ``loss`` (a loss name or a built loss) and pass every other parameter to that
loss, so their defaults name only the loss; the loss's own defaults apply otherwise.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import LabelStrategySpec

_STRATEGIES = "ddr.builtins.labels.strategies"
_LOSSES = "ddr.builtins.labels.losses"


@hookimpl
def ddr_label_strategies() -> list[LabelStrategySpec]:
    return [
        LabelStrategySpec(
            name="hard", role="strategy", target=f"{_STRATEGIES}:HardLabels",
            summary="class labels, cross-entropy (loss 'ce', optional label_smoothing); mixup/cutmix mix the labels",
            defaults={"loss": "ce"},
        ),
        LabelStrategySpec(
            name="stored_soft", role="strategy", target=f"{_STRATEGIES}:StoredSoftLabels",
            soft=True, needs_soft_labels=True,
            summary="one stored logit vector per image (DATM); loss 'sce' at temperature 1",
            defaults={"loss": "sce"},
        ),
        LabelStrategySpec(
            name="teacher", role="strategy", target=f"{_STRATEGIES}:TeacherLabels",
            soft=True, needs_teacher=True,
            summary="teacher(s) in eval mode relabel every augmented batch, logits averaged; loss 'kl' at T=4",
            defaults={"loss": "kl"},
        ),
        LabelStrategySpec(
            name="ce", role="loss", target=f"{_LOSSES}:CrossEntropy",
            summary="hard-label cross-entropy with label smoothing (fraction) and mixed labels",
            defaults={"label_smoothing": 0.0},
        ),
        LabelStrategySpec(
            name="sce", role="loss", target=f"{_LOSSES}:SoftCrossEntropy", soft=True,
            summary="soft cross-entropy -sum softmax(t/T) log_softmax(s/T), batch mean (DATM)",
            defaults={"temperature": 1.0, "scale_by_t2": False},
        ),
        LabelStrategySpec(
            name="kl", role="loss", target=f"{_LOSSES}:KLDivergence", soft=True,
            summary="KL(softmax(t/T) || softmax(s/T)), batchmean, optional T^2 scaling (SRe2L/RDED)",
            defaults={"temperature": 4.0, "scale_by_t2": False},
            presets={"sre2l": {"temperature": 20.0}},
        ),
        LabelStrategySpec(
            name="mse_gt", role="loss", target=f"{_LOSSES}:MSEWithHardLabels", soft=True,
            summary="mse_weight*MSE(logits, target logits) + ce_weight*CE(hard labels) (EDC; G-VBSM ce_weight 0.15)",
            defaults={"mse_weight": 1.0, "ce_weight": 0.025},
            presets={"edc": {"ce_weight": 0.025}, "gvbsm": {"ce_weight": 0.15}},
        ),
    ]
