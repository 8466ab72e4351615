"""The ``herding`` method: real images chosen by herding in a trained network's feature space.

Registered through the ``ddr`` entry point ``herding = "ddr_methods.herding"``. Importing this module
does not import torch; the algorithm lives in :mod:`ddr_methods.herding.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl
from ddr_methods._selection import FEATURE_NET_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="herding",
            venue="ICML 2009",
            year=2009,
            label_type="hard",
            target="ddr_methods.herding.method:Herding",
            summary="Herding (Welling'09): real images whose running feature mean tracks the class mean",
            params=FEATURE_NET_PARAMS,
            presets={"fast": {"feature_epochs": 2}, "smoke": {"feature_epochs": 1}},
            needs_teacher=True,
            label_strategy="hard",
            protocol="hard",
            # DC paper (Zhao et al. ICLR'21), ConvNet-3, no evaluation augmentation.
            reported={
                "cifar10/ipc1": 0.215, "cifar10/ipc10": 0.316, "cifar10/ipc50": 0.404,
                "cifar100/ipc1": 0.084, "cifar100/ipc10": 0.173, "cifar100/ipc50": 0.337,
            },
        )
    ]
