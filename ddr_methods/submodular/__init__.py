"""The ``facility-location`` and ``graph-cut`` methods: submodular coreset selection on loss gradients.

Registered through the ``ddr`` entry point ``submodular = "ddr_methods.submodular"``. Importing this
module does not import torch; the algorithm lives in :mod:`ddr_methods.submodular.method`.

Both follow DeepCore's ``Submodular`` selector (github.com/PatrickZH/DeepCore @ 74ec709,
``deepcore/methods/submodular.py``) with ``main.py``'s defaults (``--balance True``,
``--submodular_greedy LazyGreedy``; ``--submodular GraphCut`` is its default function): per class,
the cosine kernel ``0.5 + 0.5·cos`` of the samples' last-layer loss gradients under a scoring
network trained ``selection_epochs`` epochs here, maximised greedily for ``ipc`` picks.
"""

from __future__ import annotations

from typing import Any

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset.gradient_selection import GRADIENT_PARAMS, GRADIENT_PRESETS

DEEPCORE = "https://github.com/PatrickZH/DeepCore"
GREEDY = ParamSpec("greedy", "lazy", "greedy maximiser: DeepCore's LazyGreedy (main.py's default) or NaiveGreedy",
                   choices=("lazy", "naive"))


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    common: dict[str, Any] = {
        "paper": "Submodular Combinatorial Information Measures with Applications in Machine Learning",
        "venue": "ALT 2021", "year": 2021, "code": DEEPCORE, "label_type": "hard", "family": "selection",
        "presets": GRADIENT_PRESETS, "label_strategy": "hard", "protocol": "hard",
    }
    return [
        MethodSpec(
            name="facility-location",
            aliases=("facility_location", "fl"),
            target="ddr_methods.submodular.method:FacilityLocationSelection",
            summary="Facility location (Iyer et al. ALT'21, as DeepCore DEXA'22): real images whose "
                    "loss gradients best cover their class (cosine similarity, lazy greedy)",
            params=(*GRADIENT_PARAMS, GREEDY),
            **common,
        ),
        MethodSpec(
            name="graph-cut",
            aliases=("graph_cut", "gc"),
            target="ddr_methods.submodular.method:GraphCutSelection",
            summary="Graph cut (Iyer et al. ALT'21, as DeepCore DEXA'22): real images whose loss gradients "
                    "are similar to their class and unlike each other (cosine similarity, lazy greedy)",
            params=(*GRADIENT_PARAMS, GREEDY,
                    ParamSpec("lam", 1.0, "graph cut's lambda, weight of the coverage term "
                              "(DeepCore GraphCut(lam=1.))", minimum=0.0)),
            **common,
        ),
    ]
