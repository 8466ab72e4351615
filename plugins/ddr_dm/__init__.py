"""The ``dm`` method: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023).

Registered through the ``ddr`` entry point ``dm = "ddr_dm"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_dm.method`.

Defaults are the authors' (VICO ``main_DM.py``) except ``iterations`` and ``batch_real``, cut so
that ``ddr run --method dm`` on digits IPC 1 distils in ~10-20 s on 2 CPU cores (about 0.92 test
accuracy there, vs about 0.78 for random real images); ``dm.paper`` restores the paper's 20000
iterations with real batches of 256.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import MethodSpec


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dm",
            target="ddr_dm.method:DM",
            summary="Distribution matching (Zhao & Bilen WACV'23): match mean embeddings under random networks",
            defaults={
                "iterations": 50,        # networks sampled (paper: 20000)
                "batch_real": 64,        # real images per class per iteration (paper: 256)
                "lr_img": 1.0,           # SGD on the images (paper: 10 for CIFAR-10 at ipc >= 100)
                "momentum_img": 0.5,
                "init": "real",          # noise | real
                "augmentation": "dsa",   # applied Siamese to real and synthetic batches; none disables
                "augmentation_params": {},
            },
            presets={"paper": {"iterations": 20000, "batch_real": 256}},
            label_strategy="hard",
            protocol="hard",
            # DATM/PAD Table 1 (ConvNet-3; TinyImageNet ConvNet-4).
            reported={
                "cifar10/ipc1": 0.260, "cifar10/ipc10": 0.489, "cifar10/ipc50": 0.630,
                "cifar100/ipc1": 0.114, "cifar100/ipc10": 0.297, "cifar100/ipc50": 0.436,
                "tinyimagenet/ipc1": 0.039, "tinyimagenet/ipc10": 0.129, "tinyimagenet/ipc50": 0.241,
            },
        )
    ]
