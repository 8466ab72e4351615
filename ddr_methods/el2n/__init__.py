"""The ``el2n`` method: per class the real images with the largest error norm early in training.

Registered through the ``ddr`` entry point ``el2n = "ddr_methods.el2n"``. Importing this module does
not import torch; the algorithm lives in :mod:`ddr_methods.el2n.method`.

Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training" (NeurIPS 2021): ``repeat`` scoring networks, each a fresh initialisation trained
``selection_epochs`` epochs on the pool here (the paper: epoch 20 on CIFAR-10, 10 initialisations);
per sample ``||softmax(f(x)) − onehot(y)||₂`` in eval mode, averaged over the networks; per class
the ``ipc`` largest are kept (the data_diet code's ``run_keep_max_scores.py``). Trained as
:mod:`ddr_methods.grand` (DeepCore's ``EarlyTrain``); DeepCore itself has no EL2N.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl
from ddr_methods._coreset import DATA_DIET, DATA_DIET_EPOCHS_DOC, FRACTION_PARAM, REPEAT_PARAM, scoring_params


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="el2n",
            paper="Deep Learning on a Data Diet: Finding Important Examples Early in Training",
            venue="NeurIPS 2021",
            year=2021,
            code="https://github.com/mansheej/data_diet",
            label_type="hard",
            family="selection",
            target="ddr_methods.el2n.method:EL2N",
            summary="EL2N (Paul et al. NeurIPS'21): per class the real images with the largest ||softmax - onehot||, "
                    "averaged over networks trained briefly from 10 initialisations",
            params=(*scoring_params(epochs=20, batch_size=128, epochs_doc=DATA_DIET_EPOCHS_DOC), REPEAT_PARAM, FRACTION_PARAM),
            presets={"paper": DATA_DIET,
                     "reduced": {"selection_epochs": 10, "repeat": 2},
                     "smoke": {"selection_epochs": 1, "repeat": 1}},
            label_strategy="hard",
            protocol="hard",
        )
    ]
