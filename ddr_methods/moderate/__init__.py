"""The ``moderate`` method: Moderate-DS, per class the real images of median distance to the class centre.

Registered through the ``ddr`` entry point ``moderate = "ddr_methods.moderate"``. Importing this module
does not import torch; the algorithm lives in :mod:`ddr_methods.moderate.method`.

Xia, Liu, Yu, Shen, Han & Liu, "Moderate Coreset: A Universal Method of Data Selection for Real-world
Data-efficient Deep Learning" (ICLR 2023; tmllab/Moderate-DS @ b6f4de2, ``selection.py``): in the
penultimate feature space of a trained network, each sample's score is its Euclidean distance to
its class's median feature vector; the kept samples are those whose distance ranks around the
median. The feature network is, by default, the protocol's cached real-data reference (Moderate-DS:
a ResNet-50 fully trained on the training set).
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl
from ddr_methods._coreset import FRACTION_PARAM
from ddr_methods._selection import FEATURE_NET_PARAMS


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="moderate",
            aliases=("moderate-ds",),
            paper="Moderate Coreset: A Universal Method of Data Selection for Real-world Data-efficient Deep Learning",
            venue="ICLR 2023",
            year=2023,
            code="https://github.com/tmllab/Moderate-DS",
            label_type="hard",
            family="selection",
            target="ddr_methods.moderate.method:Moderate",
            summary="Moderate-DS (Xia et al. ICLR'23): per class the real images whose feature distance to the "
                    "class's median feature ranks in the middle",
            params=(*FEATURE_NET_PARAMS, FRACTION_PARAM),
            presets={"paper": {"feature_epochs": None},
                     "reduced": {"feature_epochs": None},
                     "smoke": {"feature_epochs": 1}},
            needs_teacher=True,
            label_strategy="hard",
            protocol="hard",
        )
    ]
