"""The ``kcenter`` method: real images chosen by greedy K-center in a trained network's feature space.

Registered through the ``ddr`` entry point ``kcenter = "ddr_methods.kcenter"``. Importing this module
does not import torch; the algorithm lives in :mod:`ddr_methods.kcenter.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl
from ddr_methods._selection import FEATURE_NET_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="kcenter",
            venue="ICLR 2018",
            year=2018,
            label_type="hard",
            target="ddr_methods.kcenter.method:KCenter",
            summary="Greedy K-center (Sener & Savarese'18): real images that cover the class in feature space",
            aliases=("k-center",),
            params=FEATURE_NET_PARAMS,
            presets={"fast": {"feature_epochs": 2}, "smoke": {"feature_epochs": 1}},
            needs_teacher=True,
            label_strategy="hard",
            protocol="hard",
            # DC paper (Zhao et al. ICLR'21), ConvNet-3, no evaluation augmentation; worse than
            # random at IPC 10/50. Other papers' re-runs differ widely (see methods-and-protocols §1.9).
            reported={
                "cifar10/ipc1": 0.215, "cifar10/ipc10": 0.147, "cifar10/ipc50": 0.270,
                "cifar100/ipc1": 0.083, "cifar100/ipc10": 0.071, "cifar100/ipc50": 0.305,
            },
        )
    ]
