"""ResNet-18 in the layout of VICO-UoE DatasetCondensation and DD-Ranking (``ResNet18[BN]``).

State-dict keys equal theirs: ``conv1``, ``bn1`` (the stem norm, whatever its kind),
``layer{1..4}.{0,1}.conv{1,2}`` / ``.bn{1,2}``, ``layer{2,3,4}.0.shortcut.{0,1}`` (1x1 conv and
norm of the down-sampling blocks) and ``classifier``. ``resnet18`` uses instance norm
(``GroupNorm(C, C)``) and ``resnet18_bn`` batch norm, as VICO's ``ResNet18`` / ``ResNet18BN``.

Stems (``stem`` parameter; ``auto`` picks by the shorter image side):

* ``cifar`` (side < 64): 3x3 conv, stride 1, as VICO/DD-Ranking at 32 px (and 28 px);
* ``strided`` (64 <= side < 128): 3x3 conv, stride 2, as DD-Ranking's ``ResNet18*_Tiny`` at 64 px;
* ``imagenet`` (side >= 128): 7x7 conv, stride 2, then 3x3 max-pool, stride 2 (DD-Ranking's
  ``ResNetImageNet``, torchvision's stem).

The last feature maps are average-pooled to 1x1 (VICO's ``avg_pool2d(out, 4)`` on its 4x4 maps at
32 px, generalised), so ``embed`` gives ``8 * width`` features (512 by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ddr.builtins.architectures.base import EmbeddingClassifier, architecture_builder
from ddr.builtins.architectures.blocks import NORMS, choose, make_norm
from ddr.errors import ConfigError

STEMS = ("auto", "cifar", "strided", "imagenet")
RESNET_NORMS = ("instance", "batch", "group", "none")
RESNET18_BLOCKS = (2, 2, 2, 2)


def _norm(kind: str, channels: int) -> nn.Module:
    return make_norm(kind, channels) or nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection; a 1x1 conv + norm shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                _norm(norm, planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(EmbeddingClassifier):
    """A ResNet of :class:`BasicBlock` stages with widths ``width * (1, 2, 4, 8)``."""

    def __init__(self, *, channels: int, num_classes: int, blocks: tuple[int, ...], width: int,
                 norm: str, stem: str) -> None:
        super().__init__()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            stride = 2 if stem == "strided" else 1
            self.conv1 = nn.Conv2d(channels, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, width)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        in_planes = width
        for index, count in enumerate(blocks):
            planes = width * 2**index
            stage = []
            for block in range(count):
                stage.append(BasicBlock(in_planes, planes, stride=2 if index > 0 and block == 0 else 1, norm=norm))
                in_planes = planes
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.num_stages = len(blocks)
        self.classifier = nn.Linear(in_planes, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for index in range(self.num_stages):
            out = getattr(self, f"layer{index + 1}")(out)
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def get_classifier(self) -> nn.Module:
        return self.classifier


def auto_stem(image_size: tuple[int, int]) -> str:
    """The stem ``auto`` picks for ``image_size`` (see the module docstring)."""
    side = min(image_size)
    if side < 64:
        return "cifar"
    return "strided" if side < 128 else "imagenet"


@architecture_builder("resnet18")
def build_resnet18(*, channels: int, num_classes: int, image_size: tuple[int, int], norm: str = "instance",
                   stem: str = "auto", width: int = 64) -> ResNet:
    """Build ResNet-18 for ``channels x H x W`` images and ``num_classes`` classes.

    Args:
        norm: ``instance`` (``GroupNorm(C, C)``), ``batch``, ``group`` (``GroupNorm(4, C)``) or
            ``none``; the layer keeps its VICO name ``bn*`` whatever its kind.
        stem: ``auto``, ``cifar``, ``strided`` or ``imagenet`` (see the module docstring).
        width: channels of the first stage (64 in ResNet-18; smaller values make quick tests).
    """
    norm = choose("resnet18", "norm", norm, NORMS, allowed=RESNET_NORMS)
    if stem not in STEMS:
        raise ConfigError(f"architecture 'resnet18': unknown stem {stem!r}; choose one of: {', '.join(STEMS)}")
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ConfigError(f"architecture 'resnet18': width must be a positive integer, got {width!r}")
    if stem == "auto":
        stem = auto_stem(image_size)
    return ResNet(channels=channels, num_classes=num_classes, blocks=RESNET18_BLOCKS, width=width,
                  norm=norm, stem=stem)
