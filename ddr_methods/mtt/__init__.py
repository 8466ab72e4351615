"""The ``mtt`` method: matching training trajectories (Cazenavette et al., CVPR 2022).

Registered through the ``ddr`` entry point ``mtt = "ddr_methods.mtt"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_methods._trajectory.matching` (shared with ``datm``).

Parameters left null (syn_steps, expert_epochs, max_start_epoch, lr_img, lr_lr, lr_teacher,
batch_syn) come from the MTT README table for the run's (dataset, ipc)
(:data:`ddr_methods._trajectory.defaults.MTT_TABLE`). Digits runs get the ``reduced`` budget preset
automatically (2 experts x 8 epochs, 40 iterations); ``smoke`` runs in seconds.

Experts are MTT's (``buffer.py``): plain SGD, lr 0.01, momentum 0, batch 256, DSA
(``expert_optimizer: sgd``); ``expert_optimizer: gsam`` trains DATM's GSAM experts instead
(:mod:`ddr_methods._trajectory.gsam`).
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported
from ddr_methods._trajectory.defaults import REDUCED_COMMON, SMOKE_COMMON, common_params, mtt_recipes


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="mtt",
            paper="Dataset Distillation by Matching Training Trajectories",
            venue="CVPR 2022",
            year=2022,
            code="https://github.com/GeorgeCazenavette/mtt-distillation",
            label_type="hard",
            target="ddr_methods.mtt.method:MTT",
            summary="Matching training trajectories (Cazenavette et al. CVPR'22): unroll a student from expert "
                    "checkpoints and match the expert's later parameters",
            params=common_params(),
            presets={"reduced": dict(REDUCED_COMMON), "smoke": dict(SMOKE_COMMON)},
            label_strategy="hard",
            protocol="hard",
            recipes=mtt_recipes(),
            # published accuracies with their sources: ddr_methods/mtt/reported.yaml
            reported=load_reported(__name__),
        )
    ]
