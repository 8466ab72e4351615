"""The ``kcenter`` method: real images chosen by greedy K-center in a trained network's feature space.

Registered through the ``ddr`` entry point ``kcenter = "ddr_methods.kcenter"``. Importing this module
does not import torch; the algorithm lives in :mod:`ddr_methods.kcenter.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported
from ddr_methods._selection import FEATURE_NET_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="kcenter",
            venue="ICLR 2018",
            year=2018,
            label_type="hard",
            family="selection",
            target="ddr_methods.kcenter.method:KCenter",
            summary="Greedy K-center (Sener & Savarese'18): real images that cover the class in feature space",
            aliases=("k-center",),
            params=FEATURE_NET_PARAMS,
            presets={"fast": {"feature_epochs": 2}, "smoke": {"feature_epochs": 1}},
            needs_teacher=True,
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/kcenter/reported.yaml
            reported=load_reported(__name__),
        )
    ]
