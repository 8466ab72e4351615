"""Registration of the built-in label strategies (cheap: no torch import here).

A strategy is built as ``Strategy(loss=LOSS)`` with an already built loss (a registered
:class:`~ddr.plugin.specs.LossSpec` target): the protocol's ``loss``, a ``--loss`` option, or the
strategy's ``default_loss``.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import LabelStrategySpec

_STRATEGIES = "ddr.builtins.labels.strategies"


@hookimpl
def ddr_label_strategies() -> list[LabelStrategySpec]:
    return [
        LabelStrategySpec(
            name="hard", target=f"{_STRATEGIES}:HardLabels", default_loss="ce", stackable=True,
            summary="class labels, cross-entropy (loss 'ce', optional label_smoothing); mixup/cutmix mix the labels",
        ),
        LabelStrategySpec(
            name="stored_soft", target=f"{_STRATEGIES}:StoredSoftLabels", default_loss="sce",
            soft=True, needs_soft_labels=True, stackable=True,
            summary="one stored logit vector per image (DATM); loss 'sce' at temperature 1",
        ),
        LabelStrategySpec(
            name="teacher", target=f"{_STRATEGIES}:TeacherLabels", default_loss="kl",
            soft=True, needs_teacher=True,
            summary="teacher(s) in eval mode relabel every augmented batch, logits averaged; loss 'kl' at T=4",
        ),
        LabelStrategySpec(
            name="teacher_views", target=f"{_STRATEGIES}:teacher_views", default_loss="kl",
            soft=True, needs_teacher=True, accepts_argument=True,
            summary="label budget teacher_views:K: K teacher-labelled views per image stored (the first K epochs) "
                    "and replayed after, FKD-style; N*K labels instead of one per image and epoch",
        ),
    ]
