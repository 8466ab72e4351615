"""The ``datm`` method: difficulty-aligned trajectory matching (Guo et al., ICLR 2024).

Registered through the ``ddr`` entry point ``datm = "ddr_datm"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_trajectory.matching` (shared with ``mtt``).

MTT plus: start epochs drawn from ``[min_start_epoch, upper)`` with ``upper`` growing linearly
from ``current_max_start_epoch`` to ``max_start_epoch`` over ``expansion_end_epoch`` iterations;
soft labels (logits) initialised from an expert's logits on real images it classifies correctly,
learned jointly (``lr_y``, momentum 0.9). The artifact stores the soft labels and the learned LR
and is evaluated with the ``stored_soft`` label strategy.
"""

from __future__ import annotations

from ddr_trajectory.defaults import REDUCED_COMMON, SMOKE_COMMON, common_params

from ddr import hookimpl
from ddr.plugin.params import ParamSpec
from ddr.plugin.specs import MethodSpec

DATM_PARAMS = (
    ParamSpec("min_start_epoch", 0, "lowest start epoch drawn", minimum=0),
    ParamSpec("current_max_start_epoch", None, "initial upper bound of the start-epoch window "
              "(null: max_start_epoch, no growth)", type="int", minimum=1),
    ParamSpec("expansion_end_epoch", 1, "iteration at which the window's upper bound reaches max_start_epoch",
              minimum=1),
    ParamSpec("lr_y", 2.0, "SGD learning rate of the soft labels (logits)", minimum=0.0),
    ParamSpec("momentum_y", 0.9, "SGD momentum of the soft labels", minimum=0.0),
    ParamSpec("label_expert_epoch", None, "epoch of expert 0 whose logits initialise the soft labels "
              "(null: max_start_epoch)", type="int", minimum=0),
)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    reduced = {**REDUCED_COMMON, "min_start_epoch": 0, "current_max_start_epoch": 2, "expansion_end_epoch": 20}
    smoke = {**SMOKE_COMMON, "current_max_start_epoch": 1, "expansion_end_epoch": 2}
    return [
        MethodSpec(
            name="datm",
            target="ddr_datm.method:DATM",
            summary="Difficulty-aligned trajectory matching (Guo et al. ICLR'24): MTT with a growing start-epoch "
                    "window and learned soft labels",
            params=common_params() + DATM_PARAMS,
            presets={"reduced": reduced, "smoke": smoke},
            label_strategy="stored_soft",
            protocol="hard",
            # DATM paper Table 1 (ConvNet-3; TinyImageNet ConvNet-4).
            reported={
                "cifar10/ipc1": 0.461, "cifar10/ipc10": 0.661, "cifar10/ipc50": 0.761,
                "cifar100/ipc1": 0.279, "cifar100/ipc10": 0.472, "cifar100/ipc50": 0.551,
                "tinyimagenet/ipc1": 0.176, "tinyimagenet/ipc10": 0.311, "tinyimagenet/ipc50": 0.394,
            },
        )
    ]
