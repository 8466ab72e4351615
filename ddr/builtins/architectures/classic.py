"""The small classic networks of the DC/VICO benchmark: MLP, LeNet, AlexNet and VGG-11.

Layer names and order follow VICO-UoE DatasetCondensation ``networks.py`` (``fc_1..fc_3``;
``features.*`` + ``fc``; ``features.*`` + ``classifier``), so VICO/DD-Ranking state dicts load.
VICO hard-codes 32 px (or 28 px grey) inputs; here each network derives its linear layer's input
size from ``image_size``, which gives VICO's exact shapes at those sizes:

* LeNet and AlexNet use a stride-2 first conv for images of 64 px and more (DD-Ranking's rule);
* 28x28 images get the extra first-conv padding VICO gives MNIST (:func:`blocks.mnist_padding`);
* VGG-11's max-pools round up (``ceil_mode``), identical at even sizes, so small or odd images
  never shrink to 0 pixels, and its last maps are average-pooled to 1x1 (512 features). At
  64 px this averages the 2x2 maps where DD-Ranking's ``VGG11_Tiny`` keeps only the top-left
  pixel (``AvgPool2d(1, stride=2)``); the parameters are the same, the outputs are not.

Checked numerically against the reference code: with the same weights every network here gives
VICO's (or DD-Ranking's 64 px) outputs, except VGG-11 at 64 px as noted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddr.builtins.architectures.base import EmbeddingClassifier, architecture_builder
from ddr.builtins.architectures.blocks import NORMS, choose, conv_out, make_norm, mnist_padding
from ddr.errors import ConfigError

LARGE_IMAGE = 64
"""Images whose shorter side has at least this many pixels get a stride-2 first conv (LeNet, AlexNet)."""

VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def _positive(arch: str, what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"architecture '{arch}': {what} must be a positive integer, got {value!r}")
    return value


def _too_small(arch: str, image_size: tuple[int, int], size: tuple[int, int], minimum: str) -> ConfigError:
    return ConfigError(
        f"architecture '{arch}': a {image_size[0]}x{image_size[1]} image shrinks to "
        f"{size[0]}x{size[1]} pixels before the classifier; use images of at least {minimum} "
        "or another architecture (convnet, resnet18)"
    )


class MLP(EmbeddingClassifier):
    """Flatten -> Linear(hidden) -> ReLU -> Linear(hidden) -> ReLU -> Linear(K)."""

    def __init__(self, *, in_features: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.fc_1 = nn.Linear(in_features, hidden)
        self.fc_2 = nn.Linear(hidden, hidden)
        self.fc_3 = nn.Linear(hidden, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc_2(F.relu(self.fc_1(x.flatten(1)))))

    def get_classifier(self) -> nn.Module:
        return self.fc_3


@architecture_builder("mlp")
def build_mlp(*, channels: int, num_classes: int, image_size: tuple[int, int], hidden: int = 128) -> MLP:
    """Build VICO's 3-layer MLP on flattened ``channels * H * W`` pixels (``hidden`` units per layer)."""
    hidden = _positive("mlp", "hidden", hidden)
    return MLP(in_features=channels * image_size[0] * image_size[1], num_classes=num_classes, hidden=hidden)


class LeNet(EmbeddingClassifier):
    """Conv5x5(6) -> ReLU -> MaxPool -> Conv5x5(16) -> ReLU -> MaxPool -> FC 120 -> FC 84 -> FC K."""

    def __init__(self, *, channels: int, num_classes: int, padding: int, stride: int, feature_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=padding, stride=stride),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.fc_1 = nn.Linear(feature_size, 120)
        self.fc_2 = nn.Linear(120, 84)
        self.fc_3 = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x).flatten(1)
        return F.relu(self.fc_2(F.relu(self.fc_1(out))))

    def get_classifier(self) -> nn.Module:
        return self.fc_3


@architecture_builder("lenet")
def build_lenet(*, channels: int, num_classes: int, image_size: tuple[int, int]) -> LeNet:
    """Build LeNet-5 (VICO's): 400 conv features at 32 px, 28 px (padded) and 64 px (stride 2)."""
    padding = mnist_padding(image_size, default=0, extra=2)
    stride = 2 if min(image_size) >= LARGE_IMAGE else 1

    def side(pixels: int) -> int:
        return conv_out(conv_out(pixels, 5, stride, padding) // 2, 5) // 2

    size = (side(image_size[0]), side(image_size[1]))
    if min(size) < 1:
        raise _too_small("lenet", image_size, size, "14x14 pixels")
    return LeNet(channels=channels, num_classes=num_classes, padding=padding, stride=stride,
                 feature_size=16 * size[0] * size[1])


class AlexNet(EmbeddingClassifier):
    """VICO's 5-conv AlexNet (128-192-256-192-192 channels) with one linear layer ``fc``."""

    def __init__(self, *, channels: int, num_classes: int, padding: int, stride: int, norm: str,
                 feature_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        convs = [  # (out channels, kernel, padding, stride, max-pool after)
            (128, 5, padding, stride, True), (192, 5, 2, 1, True), (256, 3, 1, 1, False),
            (192, 3, 1, 1, False), (192, 3, 1, 1, True),
        ]
        in_channels = channels
        for out_channels, kernel, pad, step, pool in convs:
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=kernel, stride=step, padding=pad))
            norm_layer = make_norm(norm, out_channels)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(nn.ReLU())
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(feature_size, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def get_classifier(self) -> nn.Module:
        return self.fc


@architecture_builder("alexnet")
def build_alexnet(*, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "none") -> AlexNet:
    """Build VICO's AlexNet (``norm='batch'`` gives its ``AlexNetBN`` layout).

    Args:
        norm: ``none`` (VICO's AlexNet), ``batch``, ``instance`` or ``group``, inserted after every conv.
    """
    norm = choose("alexnet", "norm", norm, NORMS, allowed=("none", "batch", "instance", "group"))
    padding = mnist_padding(image_size, default=2, extra=2)
    stride = 2 if min(image_size) >= LARGE_IMAGE else 1

    def side(pixels: int) -> int:
        return (conv_out(pixels, 5, stride, padding) // 2 // 2) // 2

    size = (side(image_size[0]), side(image_size[1]))
    if min(size) < 1:
        raise _too_small("alexnet", image_size, size, "8x8 pixels")
    return AlexNet(channels=channels, num_classes=num_classes, padding=padding, stride=stride, norm=norm,
                   feature_size=192 * size[0] * size[1])


class VGG(EmbeddingClassifier):
    """VICO's VGG: ``[conv3x3 -> norm -> ReLU]`` stages with max-pools, then ``classifier``."""

    def __init__(self, *, channels: int, num_classes: int, layers: tuple[int | str, ...], norm: str,
                 first_padding: int) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        in_channels = channels
        for index, layer in enumerate(layers):
            if layer == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                continue
            assert isinstance(layer, int)
            padding = first_padding if index == 0 else 1
            modules += [nn.Conv2d(in_channels, layer, kernel_size=3, padding=padding),
                        make_norm(norm, layer) or nn.Identity(), nn.ReLU()]
            in_channels = layer
        modules.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Linear(in_channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def get_classifier(self) -> nn.Module:
        return self.classifier


@architecture_builder("vgg11")
def build_vgg11(*, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instance") -> VGG:
    """Build VICO's VGG-11: ``norm='instance'`` is its ``VGG11``, ``norm='batch'`` its ``VGG11BN``.

    Args:
        norm: ``instance`` (``GroupNorm(C, C)``), ``batch``, ``group`` or ``none`` (an identity
            layer keeps the ``features.*`` indices).
    """
    norm = choose("vgg11", "norm", norm, NORMS, allowed=("instance", "batch", "group", "none"))
    return VGG(channels=channels, num_classes=num_classes, layers=VGG11_LAYERS, norm=norm,
               first_padding=mnist_padding(image_size, default=1, extra=2))
