"""What the batched executor stacks is what the components' specs declare, built-in or third-party;
and both training loops train through the one step (ddr/engine/step.py).

A tiny plugin registered at runtime declares a label strategy, a loss, an augmentation and two
architectures with and without ``stackable``: the declared ones train as members of one stacked
model (a stackable loss in one vmapped call per step), the others run job by job (a loss without
the flag: one call per member) with exactly the local numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.executors import digits_workspace, make_job, run, within_noise

from ddr import hookimpl
from ddr.engine.labels import Targets
from ddr.errors import InvalidSpecError
from ddr.execute.batched import BatchedExecutor
from ddr.execute.local import LocalExecutor
from ddr.plugin.manager import PluginSystem
from ddr.plugin.specs import ArchitectureSpec, AugmentationSpec, LabelStrategySpec, LossSpec

CONVNET = "ddr.builtins.architectures.convnet:build_convnet"
CONVNET_PARAMS = {"depth": 3, "width": 64, "norm": "instance", "activation": "relu", "pooling": "avg"}
EPOCHS = 10  # enough for the students to learn (helpers.executors.within_noise checks it)


# -- a third-party plugin -------------------------------------------------------------------------------

class LookupLabels:
    """A label strategy that looks each image's class up (what ``hard`` does, written elsewhere)."""

    soft = False

    def __init__(self, loss: Any) -> None:
        self.loss_fn = loss
        self.labels: torch.Tensor | None = None

    def prepare(self, *, hard_labels: torch.Tensor, soft_labels: Any, teachers: Any, num_classes: int) -> None:
        self.labels = hard_labels.long()

    def targets(self, images: torch.Tensor, index: torch.Tensor, mix: Any) -> Targets:
        assert self.labels is not None
        return Targets(hard=self.labels[index], mix=mix)

    def loss(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        return self.loss_fn(logits, targets)


class PlainCE:
    """Cross-entropy on the hard labels; counts its calls."""

    calls = 0

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        PlainCE.calls += 1
        return torch.nn.functional.cross_entropy(logits, targets.hard)


class CoinFlip:
    """Flip each image left-right with probability 1/2, drawn from the given generator."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
        return torch.where(flip[:, None, None, None], images.flip(-1), images), None


class TinyPlugin:
    @hookimpl
    def ddr_label_strategies(self) -> list[LabelStrategySpec]:
        return [LabelStrategySpec(name="lookup", target=LookupLabels, stackable=True),
                LabelStrategySpec(name="lookup_solo", target=LookupLabels)]

    @hookimpl
    def ddr_losses(self) -> list[LossSpec]:
        return [LossSpec(name="plain_ce", target=PlainCE, stackable=True),
                LossSpec(name="plain_ce_solo", target=PlainCE)]

    @hookimpl
    def ddr_augmentations(self) -> list[AugmentationSpec]:
        return [AugmentationSpec(name="coin_flip", target=CoinFlip, stackable=True),
                AugmentationSpec(name="coin_flip_solo", target=CoinFlip)]

    @hookimpl
    def ddr_architectures(self) -> list[ArchitectureSpec]:
        return [ArchitectureSpec(name="my_convnet", target=CONVNET, defaults=CONVNET_PARAMS, stackable=True),
                ArchitectureSpec(name="my_convnet_grouped", target=CONVNET, defaults=CONVNET_PARAMS, stackable=True,
                                 grouped=True),
                ArchitectureSpec(name="my_convnet_solo", target=CONVNET, defaults=CONVNET_PARAMS)]


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stacking-cache")


@pytest.fixture(autouse=True)
def _cache(module_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(module_cache))


@pytest.fixture(scope="module")
def ws(module_cache: Path) -> Iterator[Any]:
    """The digits workspace, its names resolved in a plugin system with the tiny plugin."""
    system = PluginSystem(autoload=False)
    system.pm.register(TinyPlugin(), name="tiny-stacking")
    assert system.label_strategies().get("lookup").provider == "tiny-stacking"
    with digits_workspace(module_cache) as workspace:
        yield dataclasses.replace(workspace, system=system)


def plan(jobs: list[Any], ws: Any) -> list[list[int] | int]:
    """The batched executor's work units as job indices: a list (a group) or an int (alone)."""
    units = BatchedExecutor()._plan(jobs, ws)
    return [[jobs.index(p.job) for p in unit] if isinstance(unit, list) else jobs.index(unit) for unit in units]


# -- the specs ------------------------------------------------------------------------------------------

def test_the_capability_is_off_unless_declared_and_built_ins_declare_it() -> None:
    assert not LossSpec(name="x", target="a:b").stackable
    assert not LabelStrategySpec(name="x", target="a:b").stackable
    assert not AugmentationSpec(name="x", target="a:b").stackable
    spec = ArchitectureSpec(name="x", target="a:b")
    assert not spec.stackable and not spec.grouped
    system = PluginSystem(autoload=False)
    assert all(s.stackable for s in system.losses().specs)
    assert {s.name for s in system.label_strategies().specs if s.stackable} == {"hard", "stored_soft"}
    augmentations = system.augmentations()
    assert {s.name for s in augmentations.specs if not s.stackable} == {"mixup", "cutmix"}
    architectures = {s.name: s for s in system.architectures().specs}
    assert architectures["convnet"].grouped and architectures["convnet_ln"].grouped
    assert architectures["mlp"].stackable and not architectures["mlp"].grouped
    assert not architectures["convnet_bn"].stackable and not architectures["timm"].stackable


def test_the_capability_is_described_and_checked() -> None:
    assert LossSpec(name="x", target="a:b", stackable=True).describe()["stackable"] is True
    assert AugmentationSpec(name="x", target="a:b").describe()["stackable"] is False
    described = ArchitectureSpec(name="x", target="a:b", stackable=True, grouped=True).describe()
    assert described["stackable"] is True and described["grouped"] is True
    assert LabelStrategySpec(name="x", target="a:b", stackable=True).describe()["stackable"] is True
    with pytest.raises(InvalidSpecError, match="grouped=True needs stackable=True"):
        ArchitectureSpec(name="x", target="a:b", grouped=True)
    with pytest.raises(InvalidSpecError, match="stackable=True and mixes=True"):
        AugmentationSpec(name="x", target="a:b", stackable=True, mixes=True)
    with pytest.raises(InvalidSpecError, match="stackable=True and needs_teacher=True"):
        LabelStrategySpec(name="x", target="a:b", stackable=True, needs_teacher=True)
    with pytest.raises(InvalidSpecError, match="stackable must be True or False"):
        LossSpec(name="x", target="a:b", stackable="yes")  # type: ignore[arg-type]


# -- a third-party component stacks when it declares it ---------------------------------------------------

def test_a_declared_third_party_label_strategy_stacks_like_hard(ws: Any, caplog: pytest.LogCaptureFixture) -> None:
    jobs = [make_job(i, epochs=EPOCHS, strategy="lookup") for i in range(2)]
    jobs += [make_job(i, epochs=EPOCHS, strategy="lookup_solo") for i in range(2)]
    assert plan(jobs, ws) == [[0, 1], 2, 3]
    local, _ = run(LocalExecutor(), jobs, ws)
    with caplog.at_level("DEBUG", logger="ddr.execute.batched"):
        batched, _ = run(BatchedExecutor(), jobs, ws)
    assert "'lookup_solo' does not declare stackable=True in its LabelStrategySpec" in caplog.text
    assert "training 2 jobs as 2 members" in caplog.text
    assert [r.accuracy for r in batched[2:]] == [r.accuracy for r in local[2:]]  # run job by job
    within_noise(local[:2], batched[:2])
    hard, _ = run(BatchedExecutor(), [make_job(i, epochs=EPOCHS) for i in range(2)], ws)
    assert [r.accuracy for r in batched[:2]] == [r.accuracy for r in hard]  # the same stacked training


def test_a_declared_third_party_loss_is_one_vmapped_call_per_step(ws: Any) -> None:
    for loss, calls in (("plain_ce", EPOCHS), ("plain_ce_solo", 2 * EPOCHS)):  # epochs of one step, 2 members
        jobs = [make_job(i, epochs=EPOCHS, loss=loss) for i in range(2)]
        assert plan(jobs, ws) == [[0, 1]]  # the students train together either way
        PlainCE.calls = 0
        batched, _ = run(BatchedExecutor(), jobs, ws)
        assert PlainCE.calls == calls, loss
        local, _ = run(LocalExecutor(), jobs, ws)
        within_noise(local, batched)


def test_augmentations_and_architectures_stack_when_declared(ws: Any, caplog: pytest.LogCaptureFixture) -> None:
    jobs = [make_job(i, epochs=EPOCHS, augmentation=("coin_flip",)) for i in range(2)]
    jobs += [make_job(i, epochs=EPOCHS, augmentation=("coin_flip_solo",)) for i in range(2)]
    jobs += [make_job(i, epochs=EPOCHS, arch=arch, arch_params={})
             for arch in ("my_convnet", "my_convnet_grouped", "my_convnet_solo") for i in range(2)]
    with caplog.at_level("DEBUG", logger="ddr.execute.batched"):
        assert plan(jobs, ws) == [[0, 1], 2, 3, [4, 5], [6, 7], 8, 9]
    assert "'coin_flip_solo' does not declare stackable=True in its AugmentationSpec" in caplog.text
    assert "'my_convnet_solo': its ArchitectureSpec does not declare stackable=True" in caplog.text
    caplog.clear()
    with caplog.at_level("DEBUG", logger="ddr.execute.batched"):
        local, _ = run(LocalExecutor(), jobs[4:8], ws)
        batched, _ = run(BatchedExecutor(), jobs[4:8], ws)
    assert "2 members (vmap backend)" in caplog.text and "2 members (grouped backend)" in caplog.text
    within_noise(local, batched)


def test_the_grouped_program_needs_the_declared_layout(ws: Any) -> None:
    from ddr.execute.stacked import StackedModel, Unbatchable

    models = [ws.make_model("convnet", {"width": 16}, seed) for seed in (1, 2)]
    assert StackedModel(models, grouped=True).backend == "grouped"
    assert StackedModel(models, grouped=False).backend == "vmap"
    with pytest.raises(Unbatchable, match="does not declare the ConvNet layout"):
        StackedModel(models, backend="grouped", grouped=False)
    mlp = [ws.make_model("mlp", {}, seed) for seed in (1, 2)]
    assert StackedModel(mlp, grouped=True).backend == "vmap"  # its layers have no grouped form


# -- one step ---------------------------------------------------------------------------------------------

def test_both_loops_train_through_the_one_step(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.engine.step import Step

    calls: list[tuple[int, ...]] = []
    original = Step.__call__

    def counted(self: Step, images: torch.Tensor, targets: Any) -> torch.Tensor:
        losses = original(self, images, targets)
        calls.append(tuple(losses.shape))
        return losses

    monkeypatch.setattr(Step, "__call__", counted)
    jobs = [make_job(i, epochs=2, batch_size=64) for i in range(2)]  # 2 steps per epoch
    run(LocalExecutor(), jobs, ws)
    assert calls == [()] * 8
    calls.clear()
    run(BatchedExecutor(), jobs, ws)
    assert calls == [(2,)] * 4
