"""Built-in architectures: contract, VICO/DD-Ranking layouts, parameter counts, bridges, errors."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddr.builtins.architectures import ddr_architectures
from ddr.builtins.architectures.bridges import build_timm, build_torchvision
from ddr.builtins.architectures.classic import build_alexnet, build_lenet, build_vgg11
from ddr.builtins.architectures.convnet import build_convnet
from ddr.builtins.architectures.resnet import build_resnet18
from ddr.errors import ConfigError, UnknownComponentError
from ddr.plugin.specs import ArchitectureSpec
from ddr.testing.architectures import check_architecture

torch.set_num_threads(1)

SPECS = {spec.name: spec for spec in ddr_architectures()}
OWN_NETWORKS = sorted(name for name, spec in SPECS.items() if not spec.accepts_argument)


def test_registration_lists_the_required_names_without_importing_torch():
    required = {"convnet", "convnet_d1", "convnet_d2", "convnet_d4", "convnet_d5", "convnet_bn", "convnet_ln",
                "convnet_nn", "convnet_w32", "convnet_w64", "convnet_w256", "mlp", "lenet", "alexnet", "vgg11",
                "vgg11_bn", "resnet18", "resnet18_bn", "timm", "torchvision"}
    assert required <= set(SPECS)
    assert "convnet_d3" in SPECS["convnet"].aliases
    assert all(isinstance(spec, ArchitectureSpec) and spec.family and spec.summary for spec in SPECS.values())
    assert dict(SPECS["convnet"].defaults) == {"depth": 3, "width": 128, "norm": "instance",
                                               "activation": "relu", "pooling": "avg"}
    assert SPECS["timm"].accepts_argument and SPECS["torchvision"].accepts_argument
    code = "import sys, ddr.builtins.architectures as a; a.ddr_architectures(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", [n for n in OWN_NETWORKS if n != "convnet_d5"])
def test_every_builtin_network_honours_the_contract_on_16px_grey_digits(name):
    report = check_architecture(SPECS[name], channels=1, num_classes=10, image_size=(16, 16))
    assert report.embed_dim > 0


@pytest.mark.parametrize("name, params, embed_dim", [
    ("convnet", {}, 128 * 4 * 4),
    ("convnet_bn", {"width": 16}, 16 * 4 * 4),
    ("convnet_d5", {"width": 8}, 8 * 1 * 1),
    ("resnet18_bn", {"width": 8}, 64),
    ("alexnet", {}, 192 * 4 * 4),
    ("lenet", {}, 84),
    ("mlp", {}, 128),
])
def test_networks_on_32px_rgb(name, params, embed_dim):
    report = check_architecture(SPECS[name], channels=3, num_classes=10, image_size=(32, 32), params=params)
    assert report.embed_dim == embed_dim


@pytest.mark.parametrize("name, channels, size, params, embed_dim", [
    ("convnet_d4", 3, (64, 64), {"width": 16}, 16 * 4 * 4),       # Tiny-ImageNet ConvNet-4
    ("convnet", 1, (28, 28), {"width": 16}, 16 * 4 * 4),          # MNIST: padded to 32 px as in VICO
    ("convnet", 3, (24, 40), {"width": 8}, 8 * 3 * 5),            # non-square
    ("convnet_np", 1, (8, 8), {"width": 4, "depth": 2}, 4 * 8 * 8),
])
def test_convnet_feature_size_follows_the_image(name, channels, size, params, embed_dim):
    report = check_architecture(SPECS[name], channels=channels, num_classes=7, image_size=size, params=params)
    assert report.embed_dim == embed_dim


def test_convnet3_parameter_count_matches_the_dc_definition():
    model = build_convnet(channels=3, num_classes=10, image_size=(32, 32))
    conv1, conv23 = 3 * 128 * 9 + 128, 128 * 128 * 9 + 128
    norms = 3 * 2 * 128
    classifier = 128 * 4 * 4 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == conv1 + 2 * conv23 + norms + classifier == 320_010


def test_resnet18_parameter_count_is_the_cifar_resnet18_one():
    for norm in ("instance", "batch"):
        model = build_resnet18(channels=3, num_classes=10, image_size=(32, 32), norm=norm)
        assert sum(p.numel() for p in model.parameters()) == 11_173_962


def vico_convnet3_state(norm: str, channels: int = 3, num_classes: int = 10,
                        width: int = 128) -> dict[str, torch.Tensor]:
    """A ConvNet-3 state dict written from VICO's ``ConvNet._make_layers``: per block
    [conv, norm, act, pool] -> conv at 4*d, norm at 4*d+1; 32 px -> 4x4 maps."""
    generator = torch.Generator().manual_seed(7)
    state: dict[str, torch.Tensor] = {}
    in_channels = channels
    for block in range(3):
        state[f"features.{4 * block}.weight"] = torch.randn(width, in_channels, 3, 3, generator=generator) * 0.1
        state[f"features.{4 * block}.bias"] = torch.randn(width, generator=generator) * 0.1
        state[f"features.{4 * block + 1}.weight"] = 1 + 0.1 * torch.randn(width, generator=generator)
        state[f"features.{4 * block + 1}.bias"] = 0.1 * torch.randn(width, generator=generator)
        if norm == "batch":
            state[f"features.{4 * block + 1}.running_mean"] = 0.1 * torch.randn(width, generator=generator)
            state[f"features.{4 * block + 1}.running_var"] = 1 + torch.rand(width, generator=generator)
            state[f"features.{4 * block + 1}.num_batches_tracked"] = torch.tensor(100)
        in_channels = width
    state["classifier.weight"] = torch.randn(num_classes, width * 4 * 4, generator=generator) * 0.01
    state["classifier.bias"] = torch.zeros(num_classes)
    return state


def test_convnet3_loads_a_vico_state_dict_and_computes_vicos_function():
    state = vico_convnet3_state("instance", width=16)
    model = build_convnet(channels=3, num_classes=10, image_size=(32, 32), width=16)
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = x
    for block in range(3):  # VICO: conv -> GroupNorm(C, C) -> ReLU -> AvgPool2d(2)
        out = F.conv2d(out, state[f"features.{4 * block}.weight"], state[f"features.{4 * block}.bias"], padding=1)
        out = F.group_norm(out, 16, state[f"features.{4 * block + 1}.weight"], state[f"features.{4 * block + 1}.bias"])
        out = F.avg_pool2d(F.relu(out), 2)
    expected = F.linear(out.flatten(1), state["classifier.weight"], state["classifier.bias"])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.embed(x), out.flatten(1), rtol=1e-4, atol=1e-5)
    bn_model = build_convnet(channels=3, num_classes=10, image_size=(32, 32), norm="batch")
    bn_model.load_state_dict(vico_convnet3_state("batch"), strict=True)


def vico_resnet18_bn_shapes(channels: int = 3, num_classes: int = 10) -> dict[str, tuple[int, ...]]:
    """Key -> shape of VICO's ``ResNet18BN`` (BasicBlock, [2, 2, 2, 2], CIFAR stem)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def batch_norm(prefix: str, planes: int) -> None:
        for key in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{key}"] = (planes,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, channels, 3, 3)
    batch_norm("bn1", 64)
    in_planes = 64
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix = f"layer{stage}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, in_planes, 3, 3)
            batch_norm(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            batch_norm(f"{prefix}.bn2", planes)
            if in_planes != planes:
                shapes[f"{prefix}.shortcut.0.weight"] = (planes, in_planes, 1, 1)
                batch_norm(f"{prefix}.shortcut.1", planes)
            in_planes = planes
    shapes["classifier.weight"] = (num_classes, 512)
    shapes["classifier.bias"] = (num_classes,)
    return shapes


def test_resnet18_bn_has_the_vico_ddranking_state_dict_layout():
    shapes = vico_resnet18_bn_shapes()
    model = build_resnet18(channels=3, num_classes=10, image_size=(32, 32), norm="batch")
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    assert "layer2.0.shortcut.0.weight" in shapes and "layer1.0.shortcut.0.weight" not in shapes
    state = {k: (torch.full(s, 3) if k.endswith("num_batches_tracked") else torch.rand(s)) for k, s in shapes.items()}
    model.load_state_dict(state, strict=True)
    instance_model = build_resnet18(channels=3, num_classes=10, image_size=(32, 32))
    instance_shapes = {k: s for k, s in shapes.items() if not k.endswith(("running_mean", "running_var", "tracked"))}
    assert {k: tuple(v.shape) for k, v in instance_model.state_dict().items()} == instance_shapes


@pytest.mark.parametrize("size, kernel, stride, pooled", [
    ((32, 32), 3, 1, False), ((64, 64), 3, 2, False), ((128, 128), 7, 2, True)])
def test_resnet18_stem_follows_image_size(size, kernel, stride, pooled):
    model = build_resnet18(channels=3, num_classes=5, image_size=size, width=4)
    assert model.conv1.kernel_size == (kernel, kernel) and model.conv1.stride == (stride, stride)
    assert isinstance(model.maxpool, nn.MaxPool2d) == pooled
    assert model(torch.randn(2, 3, *size)).shape == (2, 5)


def test_vgg_alexnet_lenet_keep_vico_names():
    assert "classifier.weight" in build_vgg11(channels=3, num_classes=10, image_size=(32, 32)).state_dict()
    alexnet = build_alexnet(channels=3, num_classes=10, image_size=(32, 32))
    assert alexnet.state_dict()["fc.weight"].shape == (10, 192 * 4 * 4)
    assert build_lenet(channels=1, num_classes=10, image_size=(28, 28)).state_dict()["fc_1.weight"].shape == (120, 400)


# -- bridges -----------------------------------------------------------------------------------

def test_torchvision_bridge_adapts_resnet18_and_keeps_torchvision_keys():
    import torchvision

    model = build_torchvision(argument="resnet18", channels=1, num_classes=10, image_size=(16, 16))
    assert model.conv1.in_channels == 1 and model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    with torch.device("meta"):
        reference = torchvision.models.resnet18(num_classes=10)
    assert list(model.state_dict()) == list(reference.state_dict())
    model.eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        features = model.embed(x)
        assert features.shape == (2, 512)
        torch.testing.assert_close(model.fc(features), model(x))
    clone = copy.deepcopy(model)
    assert clone.embed.args[0] is clone and clone.get_classifier() is clone.fc


def test_torchvision_bridge_with_a_sequential_head():
    report = check_architecture(SPECS["torchvision"], argument="mobilenet_v3_small", channels=3, num_classes=4,
                                image_size=(32, 32))
    assert report.embed_dim == 1024


def test_timm_bridge():
    pytest.importorskip("timm")
    report = check_architecture(SPECS["timm"], argument="resnet10t", channels=1, num_classes=10, image_size=(16, 16))
    assert report.embed_dim == 512
    assert report.model.get_classifier().out_features == 10


def test_bridge_errors():
    geometry = {"channels": 3, "num_classes": 10, "image_size": (32, 32)}
    with pytest.raises(UnknownComponentError, match="did you mean 'resnet18'"):
        build_torchvision(argument="resnet19", **geometry)
    with pytest.raises(ConfigError, match="torchvision:<name>"):
        build_torchvision(**geometry)
    with pytest.raises(ConfigError, match="never downloads"):
        build_torchvision(argument="resnet18", weights="DEFAULT", **geometry)
    with pytest.raises(ConfigError, match="ResNets only"):
        build_torchvision(argument="mobilenet_v3_small", cifar_stem=True, **geometry)
    pytest.importorskip("timm")
    with pytest.raises(UnknownComponentError, match="did you mean 'resnet10t'"):
        build_timm(argument="resnet10tt", **geometry)


# -- bad input ---------------------------------------------------------------------------------

def test_depth_too_deep_for_the_image_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"depth 5 .* 16x16 .* 0x0 .* depth <= 4"):
        build_convnet(channels=1, num_classes=10, image_size=(16, 16), depth=5)
    with pytest.raises(ConfigError, match="at least 14x14"):
        build_lenet(channels=1, num_classes=10, image_size=(8, 8))


def test_bad_choices_and_parameters_list_what_is_accepted():
    geometry = {"channels": 3, "num_classes": 10, "image_size": (32, 32)}
    with pytest.raises(ConfigError, match="unknown norm 'weird'; choose one of: instance, batch, layer, group, none"):
        build_convnet(norm="weird", **geometry)
    with pytest.raises(ConfigError, match="unknown activation"):
        build_convnet(activation="tanhh", **geometry)
    with pytest.raises(ConfigError, match="choose one of: instance, batch, group, none"):
        build_resnet18(norm="layer", **geometry)
    with pytest.raises(ConfigError, match=r"no parameter\(s\) 'dept'; it accepts: depth, width"):
        build_convnet(dept=3, **geometry)
    with pytest.raises(ConfigError, match="divide evenly"):
        build_convnet(norm="group", width=6, **geometry)
    with pytest.raises(ConfigError, match="image_size must be"):
        build_convnet(channels=3, num_classes=10, image_size=(32, 0))
    with pytest.raises(ConfigError, match="channels must be"):
        build_convnet(channels=0, num_classes=10, image_size=(32, 32))
    assert build_convnet(norm="instancenorm", pooling="avgpooling", width=8, **geometry).features[1].num_groups == 8


# -- the checker itself ------------------------------------------------------------------------

class _Tiny(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.body = nn.Linear(channels * image_size[0] * image_size[1], 6)
        self.head = nn.Linear(6, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


def test_check_architecture_accepts_a_correct_factory():
    report = check_architecture(lambda **g: _Tiny(**g), channels=1, num_classes=3, image_size=(4, 4))
    assert (report.num_parameters, report.embed_dim) == (16 * 6 + 6 + 6 * 3 + 3, 6)


class _NoEmbed(nn.Linear):
    pass


class _WrongEmbed(_Tiny):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(super().embed(x))  # not what forward feeds the head


class _UnusedParameter(_Tiny):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.unused = nn.Parameter(torch.zeros(3))


class _FixedSeed(_Tiny):
    def __init__(self, *args: object) -> None:
        torch.manual_seed(0)
        super().__init__(*args)


class _WrongShape(_Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :1]


@pytest.mark.parametrize("cls, message", [
    (_NoEmbed, "no embed"),
    (_WrongEmbed, "differs from get_classifier"),
    (_UnusedParameter, "no gradient reaches 1 trainable parameter"),
    (_FixedSeed, "different torch seeds are identical"),
    (_WrongShape, r"shape \(2, 1\), expected \[2, 3\]"),
])
def test_check_architecture_rejects_broken_models(cls, message):
    def factory(*, channels, num_classes, image_size):
        if cls is _NoEmbed:
            return _NoEmbed(channels * image_size[0] * image_size[1], num_classes)
        return cls(channels, num_classes, image_size)

    with pytest.raises(AssertionError, match=message):
        check_architecture(lambda **g: factory(**g), channels=1, num_classes=3, image_size=(4, 4))
