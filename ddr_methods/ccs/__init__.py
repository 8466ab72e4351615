"""The ``ccs`` method: coverage-centric coreset selection, per class.

Registered through the ``ddr`` entry point ``ccs = "ddr_methods.ccs"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_methods.ccs.method`.

Zheng, Liu, Lai & Prakash, "Coverage-centric Coreset Selection for High Pruning Rates" (ICLR 2023;
haizhongzheng/Coverage-centric-coreset-selection @ b37f166): a scoring network trains on the pool
while its training dynamics give every sample an importance score (AUM by default); the hardest
``beta`` of the samples (lowest AUM) are pruned, the rest split into ``strata`` equal-width score
ranges, and the budget is spread over the strata, smallest first, each filled at random. ddr applies
it per class (class-balanced ``ipc``); the official ``train.py`` over the whole training set.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl
from ddr_methods._coreset import FRACTION_PARAM, scoring_params

CCS_PARAMS = (
    ParamSpec("importance", "accumulated_margin",
              "the score stratified over: accumulated_margin (AUM on probabilities, the README's CCS command), "
              "forgetting or el2n (CCS generate_importance_score.py's keys)",
              choices=("accumulated_margin", "forgetting", "el2n")),
    ParamSpec("beta", 0.3, "share of each class pruned first as hardest, lowest AUM (CCS --mis-ratio; the "
              "README's 90% pruning command: 0.3); in [0, 1)", minimum=0.0),
    ParamSpec("strata", 50, "number of equal-width score ranges (CCS Coreset.py: stratas = 50)", minimum=1),
    ParamSpec("el2n_epochs", 10, "importance el2n sums the first this many epochs (CCS EL2N(max_epoch=10))",
              minimum=1),
)
# CCS train.py (the run whose training dynamics score the data): 200 epochs, batch 256, SGD lr 0.1 with
# Nesterov momentum 0.9 and weight decay 5e-4, CosineAnnealingLR per iteration to 1e-4, random crop + flip.
CCS_TRAINING = {"selection_epochs": 200, "selection_schedule": "cosine", "selection_augmentation": "crop_flip"}


def _params() -> tuple[ParamSpec, ...]:
    out = []
    for p in scoring_params(epochs=200, epochs_doc=(
            "epochs the scoring network trains while its training dynamics are recorded (CCS train.py "
            "--epochs 200)")):
        if p.name in ("selection_schedule", "selection_augmentation"):
            p = ParamSpec(p.name, CCS_TRAINING[p.name], p.doc, type="str", choices=p.choices,
                          nullable=p.name == "selection_augmentation")
        out.append(p)
    return (*out, *CCS_PARAMS, FRACTION_PARAM)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="ccs",
            paper="Coverage-centric Coreset Selection for High Pruning Rates",
            venue="ICLR 2023",
            year=2023,
            code="https://github.com/haizhongzheng/Coverage-centric-coreset-selection",
            label_type="hard",
            family="selection",
            target="ddr_methods.ccs.method:CCS",
            summary="Coverage-centric coreset selection (Zheng et al. ICLR'23): per class, prune the hardest "
                    "beta by AUM, then sample evenly over 50 strata of the importance score",
            params=_params(),
            presets={"paper": {**CCS_TRAINING, "importance": "accumulated_margin", "beta": 0.3, "strata": 50},
                     "reduced": {"selection_epochs": 10},
                     "smoke": {"selection_epochs": 1}},
            label_strategy="hard",
            protocol="hard",
        )
    ]
