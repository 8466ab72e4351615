"""The ``forgetting`` method: per class the real images forgotten most often while a network trains.

Registered through the ``ddr`` entry point ``forgetting = "ddr_methods.forgetting"``. Importing this
module does not import torch; the algorithm lives in :mod:`ddr_methods.forgetting.method`.

Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural Network Learning"
(ICLR 2019), as DeepCore's ``Forgetting`` selector runs it (github.com/PatrickZH/DeepCore @ 74ec709,
``deepcore/methods/forgetting.py``, ``balance=True``): a scoring network trains ``selection_epochs``
epochs on the pool here; every training batch, as trained, counts each sample's 1 -> 0 flips of
correctness; per class the ``ipc`` samples with the most events are kept.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset import FRACTION_PARAM, scoring_params

NEVER_LEARNED = ParamSpec(
    "never_learned", "most",
    "samples never classified correctly during training: most (infinitely many events, first kept: Toneva et "
    "al. and the data_diet code) or zero (no event, as DeepCore and CCS count them)",
    choices=("most", "zero"),
)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="forgetting",
            paper="An Empirical Study of Example Forgetting during Deep Neural Network Learning",
            venue="ICLR 2019",
            year=2019,
            code="https://github.com/mtoneva/example_forgetting",
            label_type="hard",
            family="selection",
            target="ddr_methods.forgetting.method:Forgetting",
            summary="Forgetting events (Toneva et al. ICLR'19, as DeepCore): per class the real images a network "
                    "trained on the pool forgets most often (1 -> 0 flips of correctness on its training batches)",
            params=(*scoring_params(epochs=200), NEVER_LEARNED, FRACTION_PARAM),
            presets={"paper": {"selection_epochs": 200, "never_learned": "most"},
                     "deepcore": {"never_learned": "zero"},
                     "reduced": {"selection_epochs": 10},
                     "smoke": {"selection_epochs": 1}},
            label_strategy="hard",
            protocol="hard",
        )
    ]
