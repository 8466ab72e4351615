"""Every registered component passes its contract check, through the real plugin system.

The registry is the one users get (built-ins by import, methods through entry points), so a
component added tomorrow is checked without touching this file.
"""

from __future__ import annotations

import pytest

from ddr.plugin.manager import PluginSystem
from ddr.testing import check_architecture, check_augmentation, check_dataset, check_label_strategy, check_loss

SYSTEM = PluginSystem()


def _names(kind: str, *, argument: bool = False) -> list[str]:
    return [s.name for s in SYSTEM.registry(kind).list() if s.accepts_argument == argument]


@pytest.mark.parametrize("name", _names("architectures"))
def test_every_architecture_meets_the_contract(name: str) -> None:
    spec = SYSTEM.architectures().get(name)
    size = (32, 32) if name in ("alexnet", "alexnet_bn") or name.startswith("vgg") else (16, 16)
    if name in ("convnet_d5",):
        size = (32, 32)
    report = check_architecture(spec, channels=1, num_classes=10, image_size=size)
    assert report.num_parameters > 0


@pytest.mark.parametrize("name", _names("augmentations"))
def test_every_augmentation_meets_the_contract(name: str) -> None:
    spec = SYSTEM.augmentations().get(name)
    params = {"ops": [{"name": "RandomHorizontalFlip", "args": {"p": 0.5}}]} if name == "transforms" else None
    check_augmentation(spec, channels=3, size=16, batch=6, params=params)


@pytest.mark.parametrize("name", _names("label-strategies"))
def test_every_label_strategy_meets_the_contract(name: str) -> None:
    check_label_strategy(SYSTEM.label_strategies().get(name))


@pytest.mark.parametrize("name", _names("losses"))
def test_every_loss_meets_the_contract(name: str) -> None:
    check_loss(SYSTEM.losses().get(name))


def test_the_embedded_dataset_meets_the_contract() -> None:
    check_dataset(SYSTEM.datasets().get("digits"))


def test_every_protocol_loads() -> None:
    from ddr.protocol.config import resolve_protocol

    for spec in SYSTEM.protocols().list():
        protocol = resolve_protocol(spec.name, system=SYSTEM)
        assert protocol.name == spec.name and protocol.version == spec.version


@pytest.mark.parametrize("name", _names("methods"))
def test_every_method_declares_a_smoke_preset_and_meets_the_contract(name: str) -> None:
    """The check runs each method's own ``smoke`` preset: this file knows nothing of any method."""
    from ddr.testing import check_method

    spec = SYSTEM.methods().get(name)
    assert "smoke" in spec.presets, f"method '{name}' declares no smoke preset for ddr.testing.check_method"
    distilled = check_method(spec)
    assert distilled.images.shape == (10, 1, 16, 16)


def test_check_method_catches_a_method_that_is_not_class_major() -> None:
    import torch

    from ddr.method.distilled import DistilledSet
    from ddr.testing import check_method

    class Reversed:
        def distill(self, ctx):
            picks = torch.cat([index[:ctx.ipc] for index in ctx.class_indices()]).flip(0)
            return DistilledSet(images=ctx.train.images[picks], labels=ctx.train.labels[picks])

    with pytest.raises(AssertionError, match="class-major"):
        check_method(Reversed)
