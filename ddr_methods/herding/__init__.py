"""The ``herding`` method: real images chosen by herding in a trained network's feature space.

Registered through the ``ddr`` entry point ``herding = "ddr_methods.herding"``. Importing this module
does not import torch; the algorithm lives in :mod:`ddr_methods.herding.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported
from ddr_methods._selection import FEATURE_NET_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="herding",
            venue="ICML 2009",
            year=2009,
            label_type="hard",
            family="selection",
            target="ddr_methods.herding.method:Herding",
            summary="Herding (Welling'09): real images whose running feature mean tracks the class mean",
            params=FEATURE_NET_PARAMS,
            presets={"fast": {"feature_epochs": 2}, "smoke": {"feature_epochs": 1}},
            needs_teacher=True,
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/herding/reported.yaml
            reported=load_reported(__name__),
        )
    ]
