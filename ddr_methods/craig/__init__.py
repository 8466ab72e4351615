"""The ``craig`` method: CRAIG coreset selection (Mirzasoleiman, Bilmes & Leskovec, ICML 2020), as DeepCore runs it.

Registered through the ``ddr`` entry point ``craig = "ddr_methods.craig"``. Importing this module does
not import torch; the algorithm lives in :mod:`ddr_methods.craig.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset.gradient_selection import GRADIENT_PARAMS, GRADIENT_PRESETS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="craig",
            paper="Coresets for Data-efficient Training of Machine Learning Models",
            venue="ICML 2020",
            year=2020,
            code="https://github.com/baharanm/craig",
            label_type="hard",
            family="selection",
            target="ddr_methods.craig.method:Craig",
            summary="CRAIG (Mirzasoleiman et al. ICML'20, as DeepCore DEXA'22): facility location on negative "
                    "gradient distances per class; CRAIG's per-sample weights are recorded, not trained with",
            params=(*GRADIENT_PARAMS,
                    ParamSpec("greedy", "lazy", "greedy maximiser: DeepCore's LazyGreedy (craig.py's default) "
                              "or NaiveGreedy", choices=("lazy", "naive"))),
            presets=GRADIENT_PRESETS,
            label_strategy="hard",
            protocol="hard",
        )
    ]
