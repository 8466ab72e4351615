"""The ``random`` method: a class-balanced, uniformly drawn subset of the real training pool.

Registered through the ``ddr`` entry point ``random = "ddr_methods.random"``. Importing this module does
not import torch; the algorithm lives in :mod:`ddr_methods.random.method`.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="random",
            label_type="hard",
            family="selection",
            target="ddr_methods.random.method:RandomSelection",
            summary="Random real images: ipc per class, drawn uniformly without replacement",
            presets={"smoke": {}},
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/random/reported.yaml
            reported=load_reported(__name__),
        )
    ]
