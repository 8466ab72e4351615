"""The ``grand`` method: per class the real images with the largest loss-gradient norm early in training.

Registered through the ``ddr`` entry point ``grand = "ddr_methods.grand"``. Importing this module does
not import torch; the algorithm lives in :mod:`ddr_methods.grand.method`.

Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training" (NeurIPS 2021), as DeepCore's ``GraNd`` selector computes it (github.com/PatrickZH/DeepCore
@ 74ec709, ``deepcore/methods/grand.py``, ``balance=True``): ``repeat`` scoring networks, each a
fresh initialisation trained ``selection_epochs`` epochs on the pool here; per sample the norm of its
cross-entropy gradient w.r.t. the last linear layer, averaged over the networks; per class the
``ipc`` largest are kept.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl
from ddr_methods._coreset import DATA_DIET, DATA_DIET_EPOCHS_DOC, FRACTION_PARAM, REPEAT_PARAM, scoring_params


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="grand",
            paper="Deep Learning on a Data Diet: Finding Important Examples Early in Training",
            venue="NeurIPS 2021",
            year=2021,
            code="https://github.com/mansheej/data_diet",
            label_type="hard",
            family="selection",
            target="ddr_methods.grand.method:GraNd",
            summary="GraNd (Paul et al. NeurIPS'21, as DeepCore): per class the real images with the largest "
                    "last-layer loss-gradient norm, averaged over networks trained briefly from 10 initialisations",
            params=(*scoring_params(epochs=20, batch_size=128, epochs_doc=DATA_DIET_EPOCHS_DOC), REPEAT_PARAM, FRACTION_PARAM),
            presets={"paper": DATA_DIET,
                     "init": {"selection_epochs": 0},
                     "reduced": {"selection_epochs": 10, "repeat": 2},
                     "smoke": {"selection_epochs": 1, "repeat": 1}},
            label_strategy="hard",
            protocol="hard",
        )
    ]
