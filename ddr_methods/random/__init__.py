"""The ``random`` method: a class-balanced, uniformly drawn subset of the real training pool.

Registered through the ``ddr`` entry point ``random = "ddr_methods.random"``. Importing this module does
not import torch; the algorithm lives in :mod:`ddr_methods.random.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="random",
            label_type="hard",
            target="ddr_methods.random.method:RandomSelection",
            summary="Random real images: ipc per class, drawn uniformly without replacement",
            presets={"smoke": {}},
            label_strategy="hard",
            protocol="hard",
            # With evaluation augmentation (DATM Table 1, equal to DC-Bench's best over
            # augmentations); the DC paper's no-augmentation numbers are lower (C10 14.4/26.0/43.4).
            reported={
                "cifar10/ipc1": 0.154, "cifar10/ipc10": 0.310, "cifar10/ipc50": 0.506,
                "cifar100/ipc1": 0.042, "cifar100/ipc10": 0.146, "cifar100/ipc50": 0.334,
            },
        )
    ]
