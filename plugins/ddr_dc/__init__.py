"""The ``dc`` method: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

Registered through the ``ddr`` entry point ``dc = "ddr_dc"``. Importing this module does not
import torch; the algorithm is :class:`ddr_matching.GradientMatching` (via :mod:`ddr_dc.method`).

Defaults are the authors' (VICO-UoE/DatasetCondensation ``main.py``) except ``iterations`` and
``batch_real``, cut so that ``ddr run --method dc`` on digits IPC 1 distils in ~10-20 s on 2 CPU
cores (about 0.88 test accuracy there, vs about 0.78 for random real images); ``dc.paper``
restores the paper's 1000 iterations with real batches of 256.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import MethodSpec


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dc",
            target="ddr_dc.method:DC",
            summary="Gradient matching (Zhao et al. ICLR'21): synthetic images whose training gradients match real ones",
            defaults={
                "iterations": 50,        # networks sampled (paper: 1000)
                "batch_real": 32,        # real images per class per match (paper: 256)
                "lr_img": 0.1,           # SGD on the images
                "momentum_img": 0.5,
                "lr_net": 0.01,          # SGD (no momentum) of the sampled network in the inner loop
                "batch_train": 256,      # inner-loop batch size
                "init": "noise",         # noise | real
                "metric": "ours",        # ours (layer-wise 1-cos) | mse | cos
                "outer_loop": None,      # null: VICO get_loops(ipc)
                "inner_loop": None,
            },
            presets={"paper": {"iterations": 1000, "batch_real": 256}},
            label_strategy="hard",
            protocol="hard",
            # VICO README Table 1 (ConvNet-3, DC paper protocol: no eval augmentation except MNIST).
            reported={
                "mnist/ipc1": 0.917, "mnist/ipc10": 0.974, "mnist/ipc50": 0.988,
                "fashion-mnist/ipc1": 0.705, "fashion-mnist/ipc10": 0.823, "fashion-mnist/ipc50": 0.836,
                "svhn/ipc1": 0.312, "svhn/ipc10": 0.761, "svhn/ipc50": 0.823,
                "cifar10/ipc1": 0.283, "cifar10/ipc10": 0.449, "cifar10/ipc50": 0.539,
                "cifar100/ipc1": 0.128, "cifar100/ipc10": 0.252,
            },
        )
    ]
