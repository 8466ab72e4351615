"""Built-in architectures: the ConvNet family, MLP, LeNet, AlexNet, VGG-11, ResNet-18 and the
``timm:<name>`` / ``torchvision:<name>`` bridges.

Registration only: this module imports no torch; the networks live in the submodules named by
each spec's target. Every target is called as ``target(channels=C, num_classes=K,
image_size=(H, W), **params)`` (bridges also get ``argument=<model name>``) and returns a module
with ``forward(x) -> [B, K]``, ``embed(x) -> [B, D]`` and ``get_classifier()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ddr import hookimpl
from ddr.plugin.specs import ArchitectureSpec

_PACKAGE = "ddr.builtins.architectures"

CONVNET_DEFAULTS: Mapping[str, Any] = {"depth": 3, "width": 128, "norm": "instance", "activation": "relu",
                                       "pooling": "avg"}

# name -> (summary, overrides of CONVNET_DEFAULTS, aliases); names follow VICO's ConvNetD4, ConvNetBN, ...
_CONVNET_VARIANTS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "convnet": ("ConvNet-3 of dataset distillation: 3 x [conv3x3(128), instance norm, ReLU, avg-pool], linear",
                {}, ("convnet_d3", "convnet_w128", "convnet_in", "convnet_ar", "convnet_ap")),
    **{f"convnet_d{depth}": (f"ConvNet with {depth} conv block{'s' if depth > 1 else ''} (width 128, instance norm)",
                             {"depth": depth}, ()) for depth in (1, 2, 4, 5)},
    **{f"convnet_w{width}": (f"ConvNet-3 with {width} channels per conv", {"width": width}, ())
       for width in (32, 64, 256)},
    "convnet_bn": ("ConvNet-3 with batch norm (DD-Ranking's ConvNet-3-BN)", {"norm": "batch"}, ()),
    "convnet_ln": ("ConvNet-3 with layer norm over [C, H, W]", {"norm": "layer"}, ()),
    "convnet_gn": ("ConvNet-3 with group norm (4 groups)", {"norm": "group"}, ()),
    "convnet_nn": ("ConvNet-3 without normalisation", {"norm": "none"}, ()),
    "convnet_mp": ("ConvNet-3 with max-pooling", {"pooling": "max"}, ()),
    "convnet_np": ("ConvNet-3 without pooling (full-resolution maps)", {"pooling": "none"}, ()),
    "convnet_as": ("ConvNet-3 with sigmoid activations", {"activation": "sigmoid"}, ()),
    "convnet_al": ("ConvNet-3 with leaky-ReLU activations", {"activation": "leakyrelu"}, ()),
    "convnet_aswish": ("ConvNet-3 with swish (SiLU) activations", {"activation": "swish"}, ()),
}


def _convnet_specs() -> list[ArchitectureSpec]:
    # without batch norm a ConvNet stacks, as grouped convolutions (ddr/execute/grouped_convnet.py)
    return [
        ArchitectureSpec(name=name, family="convnet", target=f"{_PACKAGE}.convnet:build_convnet", summary=summary,
                         aliases=aliases, defaults={**CONVNET_DEFAULTS, **overrides},
                         stackable=overrides.get("norm") != "batch", grouped=overrides.get("norm") != "batch")
        for name, (summary, overrides, aliases) in _CONVNET_VARIANTS.items()
    ]


def _classic_specs() -> list[ArchitectureSpec]:
    classic = f"{_PACKAGE}.classic"
    return [
        ArchitectureSpec(name="mlp", family="mlp", target=f"{classic}:build_mlp", defaults={"hidden": 128},
                         stackable=True,
                         summary="3-layer MLP on flattened pixels (hidden 128)"),
        ArchitectureSpec(name="lenet", family="lenet", target=f"{classic}:build_lenet", stackable=True,
                         summary="LeNet-5 (conv 6-16, fc 120-84)"),
        ArchitectureSpec(name="alexnet", family="alexnet", target=f"{classic}:build_alexnet", defaults={"norm": "none"},
                         stackable=True,
                         summary="DC AlexNet (conv 128-192-256-192-192, one linear layer)"),
        ArchitectureSpec(name="alexnet_bn", family="alexnet", target=f"{classic}:build_alexnet",
                         defaults={"norm": "batch"}, summary="DC AlexNet with batch norm after every conv"),
        ArchitectureSpec(name="vgg11", family="vgg", target=f"{classic}:build_vgg11", defaults={"norm": "instance"},
                         stackable=True,
                         summary="DC VGG-11 with instance norm, linear(512)"),
        ArchitectureSpec(name="vgg11_bn", family="vgg", target=f"{classic}:build_vgg11", defaults={"norm": "batch"},
                         summary="DC VGG-11 with batch norm, linear(512)"),
    ]


def _resnet_specs() -> list[ArchitectureSpec]:
    target = f"{_PACKAGE}.resnet:build_resnet18"
    return [
        ArchitectureSpec(name="resnet18", family="resnet", target=target,
                         defaults={"norm": "instance", "stem": "auto", "width": 64}, stackable=True,
                         summary="ResNet-18 (DC/DD-Ranking layout) with instance norm; CIFAR stem below 64 px"),
        ArchitectureSpec(name="resnet18_bn", family="resnet", target=target,
                         defaults={"norm": "batch", "stem": "auto", "width": 64},
                         summary="ResNet-18 (DC/DD-Ranking ResNet-18-BN layout) with batch norm"),
    ]


def _bridge_specs() -> list[ArchitectureSpec]:
    bridges = f"{_PACKAGE}.bridges"
    return [
        ArchitectureSpec(name="timm", family="timm", target=f"{bridges}:build_timm", accepts_argument=True,
                         summary="any timm model, randomly initialised: timm:<model name>, e.g. timm:resnet18"),
        ArchitectureSpec(name="torchvision", family="torchvision", target=f"{bridges}:build_torchvision",
                         accepts_argument=True, defaults={"cifar_stem": None},
                         summary="any torchvision classifier, randomly initialised: torchvision:<name>, "
                                 "e.g. torchvision:resnet18"),
    ]


@hookimpl
def ddr_architectures() -> list[ArchitectureSpec]:
    """The built-in architectures."""
    return [*_convnet_specs(), *_classic_specs(), *_resnet_specs(), *_bridge_specs()]
