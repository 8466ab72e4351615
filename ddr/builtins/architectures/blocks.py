"""Layer factories shared by the built-in networks: normalisation, activation, pooling.

Choice names are short (``instance``, ``avg``); the long names of the DC/VICO code
(``instancenorm``, ``avgpooling``, ...) are accepted too. Layer shapes follow VICO-UoE
DatasetCondensation ``networks.py``, so state dicts of its checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ddr.errors import ConfigError

NORMS: Mapping[str, str] = {
    "instance": "instance", "instancenorm": "instance", "in": "instance",
    "batch": "batch", "batchnorm": "batch", "bn": "batch",
    "layer": "layer", "layernorm": "layer", "ln": "layer",
    "group": "group", "groupnorm": "group", "gn": "group",
    "none": "none",
}
"""Accepted norm names -> canonical name."""

ACTIVATIONS: Mapping[str, str] = {
    "relu": "relu",
    "leakyrelu": "leakyrelu", "leaky_relu": "leakyrelu",
    "sigmoid": "sigmoid",
    "swish": "swish", "silu": "swish",
    "gelu": "gelu",
}
"""Accepted activation names -> canonical name."""

POOLINGS: Mapping[str, str] = {
    "avg": "avg", "avgpooling": "avg",
    "max": "max", "maxpooling": "max",
    "none": "none",
}
"""Accepted pooling names -> canonical name."""

GROUP_NORM_GROUPS = 4
"""``group`` norm is ``GroupNorm(4, C)``, as in VICO's ConvNet."""


def choose(arch: str, what: str, value: object, choices: Mapping[str, str],
           allowed: tuple[str, ...] | None = None) -> str:
    """Return the canonical name of ``value`` among ``choices`` (restricted to ``allowed``)."""
    canonical = choices.get(value.lower()) if isinstance(value, str) else None
    names = allowed if allowed is not None else tuple(dict.fromkeys(choices.values()))
    if canonical is None or canonical not in names:
        raise ConfigError(f"architecture '{arch}': unknown {what} {value!r}; choose one of: {', '.join(names)}")
    return canonical


def make_norm(kind: str, channels: int, spatial: tuple[int, int] | None = None) -> nn.Module | None:
    """The normalisation layer ``kind`` for ``channels`` feature maps, or ``None`` for ``none``.

    ``instance`` is ``GroupNorm(C, C)`` (per-sample, per-channel statistics with an affine
    transform, unlike ``nn.InstanceNorm2d``); ``layer`` is ``LayerNorm([C, H, W])`` and needs the
    ``spatial`` size ``(H, W)`` of the maps it normalises.
    """
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "group":
        if channels % GROUP_NORM_GROUPS:
            raise ConfigError(
                f"group norm splits channels into {GROUP_NORM_GROUPS} groups; {channels} channels "
                f"do not divide evenly: use a width divisible by {GROUP_NORM_GROUPS}"
            )
        return nn.GroupNorm(GROUP_NORM_GROUPS, channels, affine=True)
    if kind == "layer":
        if spatial is None:
            raise ConfigError("layer norm needs the feature-map size; this network does not support it")
        return nn.LayerNorm([channels, spatial[0], spatial[1]], elementwise_affine=True)
    if kind == "none":
        return None
    raise ConfigError(f"unknown norm {kind!r}; choose one of: {', '.join(dict.fromkeys(NORMS.values()))}")


def make_activation(kind: str) -> nn.Module:
    """The activation ``kind`` (leaky ReLU uses slope 0.01; swish is ``x * sigmoid(x)``)."""
    layers: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "swish": nn.SiLU, "gelu": nn.GELU}
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.01)
    if kind not in layers:
        choices = ", ".join(dict.fromkeys(ACTIVATIONS.values()))
        raise ConfigError(f"unknown activation {kind!r}; choose one of: {choices}")
    return layers[kind]()


def make_pool(kind: str) -> nn.Module | None:
    """A 2x2, stride-2 pooling layer (halves H and W, rounding down), or ``None`` for ``none``."""
    if kind == "avg":
        return nn.AvgPool2d(kernel_size=2, stride=2)
    if kind == "max":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    if kind == "none":
        return None
    raise ConfigError(f"unknown pooling {kind!r}; choose one of: {', '.join(dict.fromkeys(POOLINGS.values()))}")


def mnist_padding(image_size: tuple[int, int], default: int, extra: int) -> int:
    """Padding of a network's first conv: ``default + extra`` for 28x28 images, else ``default``.

    The DC/VICO networks pad MNIST-sized (28x28) inputs so the first conv outputs the 32x32 maps
    their CIFAR layout expects (ConvNet, VGG: 1 -> 3; AlexNet: 2 -> 4; LeNet: 0 -> 2). VICO keys
    the rule on ``channel == 1``, which only works for 28 px; keying it on the size keeps every
    shape VICO accepts and also serves 28 px RGB or 16 px grey images.
    """
    return default + extra if tuple(image_size) == (28, 28) else default


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling (floor rounding) over ``size`` pixels."""
    return (size + 2 * padding - kernel) // stride + 1
