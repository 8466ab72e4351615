"""The ``gradmatch`` method: GradMatch coreset selection (Killamsetty et al., ICML 2021), as DeepCore runs it.

Registered through the ``ddr`` entry point ``gradmatch = "ddr_methods.gradmatch"``. Importing this
module does not import torch; the algorithm lives in :mod:`ddr_methods.gradmatch.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset.gradient_selection import GRADIENT_PARAMS, GRADIENT_PRESETS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="gradmatch",
            aliases=("grad-match",),
            paper="GRAD-MATCH: Gradient Matching based Data Subset Selection for Efficient Deep Model Training",
            venue="ICML 2021",
            year=2021,
            code="https://github.com/krishnatejakk/GradMatch",
            label_type="hard",
            family="selection",
            target="ddr_methods.gradmatch.method:GradMatch",
            summary="GradMatch (Killamsetty et al. ICML'21, as DeepCore DEXA'22): per class, OMP picks images "
                    "whose weighted gradients match the class's mean gradient; weights recorded, not trained with",
            params=(*GRADIENT_PARAMS,
                    ParamSpec("lam", 1.0, "ridge coefficient of OMP's least squares (DeepCore/GradMatch lam=1.)",
                              minimum=0.0)),
            presets=GRADIENT_PRESETS,
            label_strategy="hard",
            protocol="hard",
        )
    ]
