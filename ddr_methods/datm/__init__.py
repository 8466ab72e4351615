"""The ``datm`` method: difficulty-aligned trajectory matching (Guo et al., ICLR 2024).

Registered through the ``ddr`` entry point ``datm = "ddr_methods.datm"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_methods._trajectory.matching` (shared with ``mtt``).

MTT plus: start epochs drawn from ``[min_start_epoch, upper)`` with ``upper`` growing linearly
from ``current_max_start_epoch`` to ``max_start_epoch`` over ``expansion_end_epoch`` iterations;
images initialised from real images the first expert classifies correctly and soft labels
(logits) from the experts' logits on them (averaged over the experts that classify each
correctly), learned jointly (``lr_y``, momentum 0.9); an iteration whose matching loss exceeds
``threshold`` updates nothing. The artifact stores the soft labels and the learned LR and is
evaluated with the ``stored_soft`` label strategy.

Parameters left null come from DATM's official configs for the run's (dataset, ipc)
(:data:`ddr_methods._trajectory.defaults.DATM_TABLE`), else from MTT's generic values.

Experts are trained as DATM trains them (README step 2, FTD's ``buffer_FTD.py --train_epochs=100
--rho_max=0.01 --rho_min=0.01 --alpha=0.3 --lr_teacher=0.01 --mom=0. --batch_train=256``): 100
epochs of adaptive GSAM (:mod:`ddr_methods._trajectory.gsam`; ``expert_optimizer: gsam``,
``expert_rho_max``/``expert_rho_min`` 0.01, ``expert_alpha`` 0.3), lr 0.01, batch 256, DSA. GSAM
takes two gradient passes a step; ``expert_optimizer: sgd`` uses MTT's plain-SGD experts instead
(cached apart: the optimizer is part of the expert cache key). The ``reduced`` and ``smoke``
presets keep GSAM.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl, load_reported
from ddr_methods._trajectory.defaults import (
    EXPERT_OPTIMIZERS,
    REDUCED_COMMON,
    SMOKE_COMMON,
    common_params,
    datm_recipes,
)

DATM_PARAMS = (
    ParamSpec("min_start_epoch", None, "lowest start epoch drawn (null: the DATM table)", type="int", minimum=0),
    ParamSpec("current_max_start_epoch", None, "initial upper bound of the start-epoch window, growing to "
              "max_start_epoch (null: the DATM table; equal to max_start_epoch: no growth)", type="int", minimum=1),
    ParamSpec("expansion_end_epoch", None, "iteration at which the window's upper bound reaches max_start_epoch "
              "(null: the DATM table)", type="int", minimum=1),
    ParamSpec("lr_y", None, "SGD learning rate of the soft labels (logits) (null: the DATM table)", type="float",
              minimum=0.0),
    ParamSpec("momentum_y", 0.9, "SGD momentum of the soft labels", minimum=0.0),
    ParamSpec("threshold", None, "skip the update of an iteration whose matching loss exceeds this (null: the "
              "DATM table, 1.0)", type="float", minimum=0.0),
    ParamSpec("label_expert_epoch", None, "expert epoch whose logits initialise the soft labels (null: the "
              "experts' last, DATM's Label_Model_Timestamp -1)", type="int", minimum=0),
)

# DATM's own defaults of parameters it shares with MTT (NUS-HPC-AI-Lab/DATM: every config runs
# Iteration 10000 on 100-epoch experts trained with GSAM, README line 31: buffer_FTD.py --train_epochs=100
# --rho_max=0.01 --rho_min=0.01 --alpha=0.3)
_OVERRIDES = {
    "iterations": ParamSpec("iterations", None, "distillation iterations (null: the DATM table, 10000)", type="int",
                            minimum=0),
    "expert_train_epochs": ParamSpec("expert_train_epochs", 100, "epochs each expert is trained for (snapshots "
                                     "0..E; DATM's configs start as late as epoch 70)", minimum=1),
    "expert_optimizer": ParamSpec("expert_optimizer", "gsam", "how experts are trained: gsam (DATM's, FTD's "
                                  "buffer_FTD.py: adaptive GSAM, rho 0.01, alpha 0.3, two gradient passes a step) "
                                  "or sgd (MTT's plain buffer.py); part of the expert cache key",
                                  choices=EXPERT_OPTIMIZERS),
    "init": ParamSpec("init", None, "initial images: real images the label expert classifies correctly (correct, "
                      "DATM's samples_predicted_correctly), random real images (real) or noise (null: the DATM "
                      "table)", type="str", choices=("correct", "real", "noise")),
}


def datm_params() -> tuple[ParamSpec, ...]:
    """MTT's parameters with DATM's own defaults, plus DATM's."""
    return tuple(_OVERRIDES.get(spec.name, spec) for spec in common_params()) + DATM_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    reduced = {**REDUCED_COMMON, "min_start_epoch": 0, "current_max_start_epoch": 2, "expansion_end_epoch": 20}
    smoke = {**SMOKE_COMMON, "min_start_epoch": 0, "current_max_start_epoch": 1, "expansion_end_epoch": 2}
    return [
        MethodSpec(
            name="datm",
            paper="Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching",
            venue="ICLR 2024",
            year=2024,
            code="https://github.com/NUS-HPC-AI-Lab/DATM",
            label_type="soft",
            target="ddr_methods.datm.method:DATM",
            summary="Difficulty-aligned trajectory matching (Guo et al. ICLR'24): MTT with a growing start-epoch "
                    "window and learned soft labels",
            params=datm_params(),
            presets={"reduced": reduced, "smoke": smoke},
            label_strategy="stored_soft",
            protocol="hard",
            recipes=datm_recipes(),
            # published accuracies with their sources: ddr_methods/datm/reported.yaml
            reported=load_reported(__name__),
        )
    ]
