"""The ``dsa`` method: gradient matching with Differentiable Siamese Augmentation (Zhao & Bilen,
ICML 2021).

Registered through the ``ddr`` entry point ``dsa = "ddr_dsa"``. Importing this module does not
import torch; the algorithm is DC's loop (:class:`ddr_matching.GradientMatching`) with the ``dsa``
augmentation (:mod:`ddr_dsa.method`).

Defaults are the authors' (VICO ``main.py --method DSA --init real``) except ``iterations`` and
``batch_real``, cut so that ``ddr run --method dsa`` on digits IPC 1 distils in ~10-20 s on 2 CPU
cores (about 0.92 test accuracy there, vs about 0.78 for random real images); ``dsa.paper``
restores the paper's 1000 iterations with real batches of 256. VICO uses the strategy without
flips for digit datasets: ``--set augmentation_params='{strategy: color_crop_cutout_scale_rotate}'``.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import MethodSpec


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dsa",
            target="ddr_dsa.method:DSA",
            summary="Gradient matching with Siamese DSA augmentation (Zhao & Bilen ICML'21)",
            defaults={
                "iterations": 50,        # networks sampled (paper: 1000)
                "batch_real": 32,        # real images per class per match (paper: 256)
                "lr_img": 0.1,
                "momentum_img": 0.5,
                "lr_net": 0.01,
                "batch_train": 256,
                "init": "real",          # the README's --init real
                "metric": "ours",
                "outer_loop": None,      # null: VICO get_loops(ipc)
                "inner_loop": None,
                "augmentation_params": {},  # passed to the 'dsa' augmentation (its defaults: VICO ParamDiffAug)
            },
            presets={"paper": {"iterations": 1000, "batch_real": 256}},
            label_strategy="hard",
            protocol="hard",
            # VICO README Table 2; CIFAR-100 IPC 50 from the DM/DATM tables.
            reported={
                "mnist/ipc1": 0.887, "mnist/ipc10": 0.978, "mnist/ipc50": 0.992,
                "fashion-mnist/ipc1": 0.706, "fashion-mnist/ipc10": 0.846, "fashion-mnist/ipc50": 0.887,
                "svhn/ipc1": 0.275, "svhn/ipc10": 0.792, "svhn/ipc50": 0.844,
                "cifar10/ipc1": 0.288, "cifar10/ipc10": 0.521, "cifar10/ipc50": 0.606,
                "cifar100/ipc1": 0.139, "cifar100/ipc10": 0.323, "cifar100/ipc50": 0.428,
            },
        )
    ]
