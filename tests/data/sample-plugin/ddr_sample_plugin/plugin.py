"""Registration of the sample plugin's components (entry point ``sample``); never imports torch."""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import LabelStrategySpec, MethodSpec


@hookimpl
def ddr_label_strategies() -> list[LabelStrategySpec]:
    return [
        LabelStrategySpec(
            name="sample_kl",
            role="loss",
            soft=True,
            target="ddr_sample_plugin.loss:SampleKL",
            summary="KL divergence to soft targets at temperature T, scaled by T^2",
            defaults={"temperature": 4.0},
        )
    ]


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="sample-mean",
            target="ddr_sample_plugin.method:ClassMean",
            summary="Per class, the means of ipc random groups of real training images",
            label_strategy="hard",
            protocol="hard",
        )
    ]
