"""Registration of the sample plugin's components (entry point ``sample``); never imports torch."""

from __future__ import annotations

from ddr import hookimpl
from ddr.method import ParamSpec
from ddr.plugin.specs import LossSpec, MethodSpec


@hookimpl
def ddr_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="sample_kl",
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
            params=(ParamSpec("groups_per_image", 1, "random groups averaged into each image", minimum=1),),
            presets={"smoke": {}},
            label_strategy="hard",
            protocol="hard",
        )
    ]
