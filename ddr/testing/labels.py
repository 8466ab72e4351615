"""Contract checks for label strategies and losses, for plugin authors' tests.

    from ddr.testing.labels import check_label_strategy, check_loss

    def test_my_loss():
        check_loss(MyLoss(temperature=2.0))

Both accept a built object or its :class:`ddr.plugin.specs.LabelStrategySpec` (built from the spec's
target and defaults). They run on CPU on a few tiny tensors and raise ``AssertionError`` with a
message saying which part of the contract failed.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from ddr.engine.augment import Mix
from ddr.engine.labels import Targets
from ddr.errors import DdrError
from ddr.plugin.registry import import_target
from ddr.plugin.specs import LabelStrategySpec, LossSpec

__all__ = ["check_label_strategy", "check_loss", "tiny_teacher"]

_SEED = 1234
_IMAGE_SHAPE = (3, 4, 4)  # C, H, W of the check's images


def _build(obj: Any, role: str) -> Any:
    """``obj`` itself, or the object its spec's target builds with the spec's defaults (a
    strategy with its default loss)."""
    expected = LossSpec if role == "loss" else LabelStrategySpec
    other = LabelStrategySpec if role == "loss" else LossSpec
    if isinstance(obj, other):
        raise AssertionError(f"spec '{obj.name}' is a {other.kind} spec, expected a {expected.kind} spec")
    if not isinstance(obj, expected):
        return obj
    if isinstance(obj, LabelStrategySpec):
        from ddr.builtins.losses.functions import build_loss

        return import_target(obj)(loss=build_loss(obj.default_loss), **dict(obj.defaults))
    return import_target(obj)(**dict(obj.defaults))


def _name(obj: Any) -> str:
    return str(getattr(obj, "name", None) or type(obj).__name__)


def _scalar(value: Any, what: str) -> torch.Tensor:
    assert isinstance(value, torch.Tensor), f"{what} returned {type(value).__name__}, expected a tensor"
    assert value.ndim == 0, f"{what} returned shape {tuple(value.shape)}, expected a scalar"
    assert value.dtype.is_floating_point, f"{what} returned dtype {value.dtype}, expected floating point"
    assert bool(torch.isfinite(value)), f"{what} returned {float(value)}, expected a finite value"
    return value


def _assert_grad_flows(loss_value: torch.Tensor, logits: torch.Tensor, what: str) -> None:
    loss_value.backward()
    grad = logits.grad
    assert grad is not None, f"{what}: no gradient reached the student logits"
    assert bool(torch.isfinite(grad).all()), f"{what}: the gradient on the student logits is not finite"
    assert float(grad.abs().sum()) > 0, f"{what}: the gradient on the student logits is zero"


def tiny_teacher(num_classes: int, generator: torch.Generator) -> nn.Module:
    """A deterministic linear teacher ``[B, 3, 4, 4] -> [B, K]`` with a BatchNorm (whose running
    statistics reveal a forward pass in train mode), in eval mode."""
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(_IMAGE_SHAPE), num_classes),
                            nn.BatchNorm1d(num_classes))
    with torch.no_grad():
        for p in teacher.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
        norm = cast(nn.BatchNorm1d, teacher[2])
        cast(torch.Tensor, norm.running_mean).copy_(torch.randn(num_classes, generator=generator) * 0.1)
        cast(torch.Tensor, norm.running_var).copy_(torch.rand(num_classes, generator=generator) + 0.5)
    return teacher.eval()


def check_loss(loss_or_spec: Any, num_classes: int = 5, batch: int = 8, *, nonnegative: bool = True,
               zero_at_target: bool = False) -> None:
    """Check a loss ``loss(logits[B, K], targets) -> scalar`` against the contract.

    Checked: a finite float scalar, >= 0 (when ``nonnegative``), gradient reaching the student
    logits, no gradient on the soft targets, determinism, student logits equal to the soft
    target logits scoring lower than halfway to wrong logits, which score lower still than the
    wrong logits (``== 0`` there when ``zero_at_target``), a mix with lam = 1 or with the
    identity permutation changing nothing, a mix with lam = 0 scoring like the partners' hard
    labels unmixed (so a hard loss that ignores ``targets.mix`` fails), and missing soft targets
    either ignored or reported with a :class:`ddr.errors.DdrError`.
    """
    loss = _build(loss_or_spec, "loss")
    what = f"loss {_name(loss)!r}"
    assert callable(loss), f"{what} is not callable"
    gen = torch.Generator().manual_seed(_SEED)
    hard = torch.randint(num_classes, (batch,), generator=gen)
    noise = 0.3 * torch.randn(batch, num_classes, generator=gen)
    # Soft targets agree with the hard labels, so "student == target" is ideal for hard and soft
    # losses alike; "wrong" logits favour another class.
    soft = 3.0 * nn.functional.one_hot(hard, num_classes).float() + noise
    wrong = 3.0 * nn.functional.one_hot((hard + 1) % num_classes, num_classes).float() + noise

    def value(student: torch.Tensor, targets: Targets, label: str) -> float:
        return float(_scalar(loss(student, targets), f"{what} on {label}").detach())

    soft_leaf = soft.clone().requires_grad_(True)
    logits = torch.randn(batch, num_classes, generator=gen).requires_grad_(True)
    first = _scalar(loss(logits, Targets(hard=hard, soft=soft_leaf)), what)
    if nonnegative:
        assert float(first.detach()) >= 0, f"{what} returned {float(first.detach())} < 0"
    _assert_grad_flows(first, logits, what)
    assert soft_leaf.grad is None or float(soft_leaf.grad.abs().sum()) == 0, (
        f"{what} sent a gradient into the soft targets; detach the target side"
    )
    again = value(logits.detach(), Targets(hard=hard, soft=soft), "a repeated call")
    assert again == float(first.detach()), f"{what} is not deterministic: {float(first)} then {again}"

    plain = Targets(hard=hard, soft=soft)
    at_target = value(soft.clone(), plain, "logits equal to the targets")
    halfway = value(0.5 * (soft + wrong), plain, "logits halfway to wrong ones")
    at_wrong = value(wrong, plain, "wrong logits")
    assert at_target <= halfway <= at_wrong and at_target < at_wrong, (
        f"{what} does not fall as the logits approach the targets: wrong {at_wrong:.6g}, "
        f"halfway {halfway:.6g}, at the targets {at_target:.6g}"
    )
    if zero_at_target:
        assert abs(at_target) < 1e-5, f"{what} is {at_target:.6g} for logits equal to the targets, expected 0"

    student = torch.randn(batch, num_classes, generator=gen)
    reference = value(student, plain, "unmixed targets")
    perm = torch.randperm(batch, generator=gen)
    lam = torch.rand(batch, generator=gen)
    for mix, label in ((Mix(perm, torch.ones(batch)), "lam = 1"),
                       (Mix(torch.arange(batch), lam), "the identity permutation")):
        mixed = value(student, Targets(hard=hard, soft=soft, mix=mix), f"a mix with {label}")
        assert math.isclose(mixed, reference, rel_tol=1e-5, abs_tol=1e-6), (
            f"{what} changes under a mix with {label} ({reference:.6g} -> {mixed:.6g}); such a mix "
            "is no mix"
        )
    # A non-trivial mix: with lam = 0 every sample is trained towards its partner's label, so a loss
    # reading the hard labels must score it like the partners' labels unmixed. A loss that ignores
    # targets.mix scores the samples' own labels instead and fails here; a soft-only loss ignores
    # the hard labels either way (its soft targets are already those of the mixed images).
    swap = torch.roll(torch.arange(batch), 1)
    assert bool((hard[swap] != hard).any()), "check_loss needs a batch whose labels differ"  # fixed seed: they do
    partners = value(student, Targets(hard=hard[swap], soft=soft), "the partners' labels unmixed")
    swapped = value(student, Targets(hard=hard, soft=soft, mix=Mix(swap, torch.zeros(batch))), "a mix with lam = 0")
    assert math.isclose(swapped, partners, rel_tol=1e-5, abs_tol=1e-6), (
        f"{what} ignores targets.mix: under a mix with lam = 0 (every sample takes its partner's label) it "
        f"scores {swapped:.6g}, but {partners:.6g} with the partners' labels unmixed; when targets.mix is set, "
        "mix the hard-label term per sample as lam * loss(y) + (1 - lam) * loss(y[mix.perm]) "
        "(ddr.builtins.losses.functions.mixed_cross_entropy does it)"
    )
    mixed_logits = student.clone().requires_grad_(True)
    _assert_grad_flows(_scalar(loss(mixed_logits, Targets(hard=hard, soft=soft, mix=Mix(perm, lam))),
                               f"{what} on a mixed batch"), mixed_logits, f"{what} on a mixed batch")

    try:
        result = loss(student, Targets(hard=hard, soft=None))
    except DdrError:
        pass
    except Exception as exc:  # noqa: BLE001 - the point is to name the wrong exception type
        raise AssertionError(
            f"{what} without soft targets raised {type(exc).__name__}: {exc}; raise a ddr.errors.DdrError "
            "saying that soft targets are needed"
        ) from exc
    else:
        _scalar(result, f"{what} without soft targets")


def check_label_strategy(strategy_or_spec: Any, num_classes: int = 5, n: int = 12) -> None:
    """Check a label strategy against the contract.

    It is prepared with random hard labels ``[n]``, random soft logits ``[n, K]`` and one tiny
    eval-mode teacher; then checked: ``soft``/``needs_teacher`` flags; ``targets`` giving hard
    ``[B]`` equal to the labels at ``index`` and, for soft strategies, finite soft logits
    ``[B, K]``; the batch's mix passed on; mixed soft targets being finite distributions; a mix
    with lam = 1 giving the unmixed targets and loss; the loss a finite scalar whose gradient
    reaches the student logits; determinism; and the teacher left in eval mode, unchanged
    (parameters and BatchNorm statistics) and without gradients.
    """
    strategy = _build(strategy_or_spec, "strategy")
    what = f"label strategy {_name(strategy)!r}"
    for attr in ("soft", "needs_teacher"):
        assert isinstance(getattr(strategy, attr, False), bool), f"{what}: attribute {attr} must be a bool"
    for method in ("prepare", "targets", "loss"):
        assert callable(getattr(strategy, method, None)), f"{what} has no method {method}()"
    gen = torch.Generator().manual_seed(_SEED)
    hard_labels = torch.randint(num_classes, (n,), generator=gen)
    soft_labels = torch.randn(n, num_classes, generator=gen)
    teacher = tiny_teacher(num_classes, gen)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    images_all = torch.randn(n, *_IMAGE_SHAPE, generator=gen)

    strategy.prepare(hard_labels=hard_labels, soft_labels=soft_labels, teachers=[teacher],
                     num_classes=num_classes)
    batch = max(2, n // 2)
    index = torch.randperm(n, generator=gen)[:batch]
    images = images_all[index]

    targets = strategy.targets(images, index, None)
    assert isinstance(targets, Targets), f"{what}.targets returned {type(targets).__name__}, expected Targets"
    assert targets.hard.shape == (batch,) and targets.hard.dtype == torch.long, (
        f"{what}: hard targets must be int64 [B] = [{batch}], got {targets.hard.dtype} {tuple(targets.hard.shape)}"
    )
    assert torch.equal(targets.hard.cpu(), hard_labels[index]), f"{what}: hard targets are not labels[index]"
    assert targets.mix is None, f"{what}: an unmixed batch got a mix"
    if strategy.soft:
        assert targets.soft is not None, f"{what} is soft but gave no soft targets"
    if targets.soft is not None:
        assert targets.soft.shape == (batch, num_classes), (
            f"{what}: soft targets must be [B, K] = [{batch}, {num_classes}], got {tuple(targets.soft.shape)}"
        )
        assert bool(torch.isfinite(targets.soft).all()), f"{what}: soft targets are not finite"
    repeat = strategy.targets(images, index, None)
    assert torch.equal(repeat.hard, targets.hard) and (
        (repeat.soft is None and targets.soft is None)
        or (repeat.soft is not None and targets.soft is not None and torch.equal(repeat.soft, targets.soft))
    ), f"{what}: targets() is not deterministic"

    logits = torch.randn(batch, num_classes, generator=gen).requires_grad_(True)
    unmixed_loss = _scalar(strategy.loss(logits, targets), f"{what}.loss")
    _assert_grad_flows(unmixed_loss, logits, f"{what}.loss")
    again = _scalar(strategy.loss(logits.detach(), repeat), f"{what}.loss")
    assert float(again) == float(unmixed_loss.detach()), f"{what}.loss is not deterministic"

    perm = torch.randperm(batch, generator=gen)
    mix = Mix(perm, torch.rand(batch, generator=gen))
    mixed = strategy.targets(images, index, mix)
    assert mixed.mix is mix, f"{what}: the batch's mix must be passed on in Targets.mix"
    assert torch.equal(mixed.hard.cpu(), hard_labels[index]), f"{what}: mixed hard targets must stay labels[index]"
    if mixed.soft is not None:
        assert mixed.soft.shape == (batch, num_classes), f"{what}: mixed soft targets have the wrong shape"
        probs = torch.softmax(mixed.soft.float(), dim=1)
        assert bool(torch.isfinite(probs).all()), f"{what}: mixed soft targets are not finite distributions"
        assert torch.allclose(probs.sum(dim=1), torch.ones(batch), atol=1e-5), (
            f"{what}: mixed soft targets lose label mass"
        )
    mixed_logits = logits.detach().clone().requires_grad_(True)
    _assert_grad_flows(_scalar(strategy.loss(mixed_logits, mixed), f"{what}.loss on a mixed batch"),
                       mixed_logits, f"{what}.loss on a mixed batch")

    no_mix = strategy.targets(images, index, Mix(perm, torch.ones(batch)))
    if targets.soft is not None:
        assert no_mix.soft is not None and torch.allclose(
            torch.softmax(no_mix.soft.float(), 1), torch.softmax(targets.soft.float(), 1), atol=1e-6
        ), f"{what}: a mix with lam = 1 changed the soft targets"
    no_mix_loss = float(_scalar(strategy.loss(logits.detach(), no_mix), f"{what}.loss"))
    assert math.isclose(no_mix_loss, float(unmixed_loss.detach()), rel_tol=1e-5, abs_tol=1e-6), (
        f"{what}: a mix with lam = 1 changed the loss ({float(unmixed_loss):.6g} -> {no_mix_loss:.6g})"
    )

    assert not any(m.training for m in teacher.modules()), f"{what} left the teacher in train mode"
    assert all(p.grad is None for p in teacher.parameters()), f"{what} computed gradients for the teacher"
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"{what} changed the teacher's {key}"
