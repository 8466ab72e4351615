"""The ConvNet of dataset distillation (DC/DSA/DM/MTT/...; VICO-UoE DatasetCondensation).

``depth`` blocks of ``Conv3x3(width) -> norm -> activation -> pool2x2`` followed by one linear
layer on the flattened maps. The layer order, indices and shapes equal VICO's ``ConvNet`` (and
DD-Ranking's copy of it): ``features.0`` conv, ``features.1`` norm, ``features.2`` activation,
``features.3`` pool, ``features.4`` the next conv, ...; ``classifier`` the linear layer. A norm or
pooling set to ``none`` is left out of the sequence, as in VICO. The feature dimension is
``width * h * w`` after the last pooling (2048 for depth 3 at 32 px).
"""

from __future__ import annotations

import torch
from torch import nn

from ddr.builtins.architectures.base import EmbeddingClassifier, architecture_builder
from ddr.builtins.architectures.blocks import (
    ACTIVATIONS,
    NORMS,
    POOLINGS,
    choose,
    conv_out,
    make_activation,
    make_norm,
    make_pool,
    mnist_padding,
)
from ddr.errors import ConfigError


class ConvNet(EmbeddingClassifier):
    """VICO's ConvNet with canonical choice names (see :func:`build_convnet`)."""

    def __init__(self, *, channels: int, num_classes: int, image_size: tuple[int, int], depth: int,
                 width: int, norm: str, activation: str, pooling: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        height, wide = image_size
        in_channels = channels
        for block in range(depth):
            padding = mnist_padding(image_size, default=1, extra=2) if block == 0 else 1
            layers.append(nn.Conv2d(in_channels, width, kernel_size=3, padding=padding))
            height, wide = conv_out(height, 3, 1, padding), conv_out(wide, 3, 1, padding)
            norm_layer = make_norm(norm, width, (height, wide))
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(make_activation(activation))
            pool_layer = make_pool(pooling)
            if pool_layer is not None:
                layers.append(pool_layer)
                height, wide = height // 2, wide // 2
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.feature_shape = (width, height, wide)
        self.classifier = nn.Linear(width * height * wide, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def get_classifier(self) -> nn.Module:
        return self.classifier


def first_map_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size ``(h, w)`` of the first conv's output (28 px inputs are padded to 32 px)."""
    padding = mnist_padding(image_size, default=1, extra=2)
    return conv_out(image_size[0], 3, 1, padding), conv_out(image_size[1], 3, 1, padding)


@architecture_builder("convnet")
def build_convnet(*, channels: int, num_classes: int, image_size: tuple[int, int], depth: int = 3,
                  width: int = 128, norm: str = "instance", activation: str = "relu",
                  pooling: str = "avg") -> ConvNet:
    """Build a ConvNet for ``channels x H x W`` images and ``num_classes`` classes.

    Args:
        depth: number of conv blocks (>= 1); each pooling halves H and W (rounding down).
        width: channels of every conv layer.
        norm: ``instance`` (``GroupNorm(C, C)``, the DC default), ``batch``, ``layer``
            (``LayerNorm([C, H, W])``), ``group`` (``GroupNorm(4, C)``) or ``none``.
        activation: ``relu``, ``leakyrelu`` (slope 0.01), ``sigmoid``, ``swish`` (= SiLU) or ``gelu``.
        pooling: ``avg``, ``max`` (2x2, stride 2) or ``none``.

    28x28 images get padding 3 in the first conv, so they are processed as 32x32 (as in VICO).
    Raises :class:`ConfigError` when the pooling would shrink the image below 1 pixel.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError(f"architecture 'convnet': depth must be an integer >= 1, got {depth!r}")
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ConfigError(f"architecture 'convnet': width must be a positive integer, got {width!r}")
    norm = choose("convnet", "norm", norm, NORMS)
    activation = choose("convnet", "activation", activation, ACTIVATIONS)
    pooling = choose("convnet", "pooling", pooling, POOLINGS)
    first = first_map_size(image_size)
    height, wide = (first[0] >> depth, first[1] >> depth) if pooling != "none" else first
    if height < 1 or wide < 1:
        deepest = min(side.bit_length() - 1 for side in first)
        raise ConfigError(
            f"architecture 'convnet': depth {depth} halves a {image_size[0]}x{image_size[1]} image "
            f"{depth} times, leaving {height}x{wide} pixels; use depth <= {deepest} for this image "
            "size, pooling 'none', or larger images"
        )
    return ConvNet(channels=channels, num_classes=num_classes, image_size=image_size, depth=depth,
                   width=width, norm=norm, activation=activation, pooling=pooling)
