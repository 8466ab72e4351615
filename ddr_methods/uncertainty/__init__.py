"""The ``uncertainty`` method: the real images a trained network is least sure about, per class.

Registered through the ``ddr`` entry point ``uncertainty = "ddr_methods.uncertainty"``. Importing this
module does not import torch; the algorithm lives in :mod:`ddr_methods.uncertainty.method`.

DeepCore's ``Uncertainty`` selector (github.com/PatrickZH/DeepCore @ 74ec709,
``deepcore/methods/uncertainty.py``; the scores of Coleman et al., "Selection via Proxy: Efficient
Data Selection for Deep Learning", ICLR 2020) with ``main.py``'s defaults (``--uncertainty Entropy``,
``--balance True``): a scoring network trained ``selection_epochs`` epochs on the pool here
(``selection_epochs: null``: the protocol's cached real-data reference instead), then per class the
``ipc`` images with the lowest score.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset import FRACTION_PARAM, scoring_params

SCORE = ParamSpec(
    "score", "entropy",
    "least_confidence: the largest logit (DeepCore: raw model output, not a probability); entropy: "
    "sum p·log(p + 1e-6), minus the entropy; margin: top-1 minus top-2 probability. Each keeps the "
    "smallest per class (DeepCore --uncertainty; main.py's default Entropy)",
    choices=("least_confidence", "entropy", "margin"),
)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="uncertainty",
            paper="Selection via Proxy: Efficient Data Selection for Deep Learning",
            venue="ICLR 2020",
            year=2020,
            code="https://github.com/PatrickZH/DeepCore",
            label_type="hard",
            family="selection",
            target="ddr_methods.uncertainty.method:Uncertainty",
            summary="Uncertainty sampling (Coleman et al. ICLR'20, as DeepCore): per class the real images a "
                    "network trained on the pool is least confident about (least confidence, entropy, margin)",
            params=(*scoring_params(epochs=200, nullable_epochs=True, epochs_doc=(
                "epochs the scoring network trains on the whole pool before scoring (DeepCore EarlyTrain's "
                "epochs=200; main.py's --selection_epochs defaults to 40); 0: its seeded initialisation; "
                "null: score with the protocol's cached real-data reference (ctx.teacher())")),
                SCORE, FRACTION_PARAM),
            presets={"paper": {"selection_epochs": 200, "score": "entropy"},
                     # DeepCore's README runs the pre-trained selectors with -se 10; digits: seconds
                     "reduced": {"selection_epochs": 10},
                     "reference": {"selection_epochs": None},
                     "smoke": {"selection_epochs": 1}},
            needs_teacher=True,  # only with selection_epochs null; the cache key then names the reference
            label_strategy="hard",
            protocol="hard",
        )
    ]
