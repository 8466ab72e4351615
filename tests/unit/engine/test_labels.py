"""Built-in label strategies and losses: values checked against hand computations."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from ddr.builtins.labels import ddr_label_strategies
from ddr.builtins.labels.strategies import (
    HardLabels,
    StoredSoftLabels,
    TeacherLabels,
    TeacherViews,
    mix_soft_targets,
)
from ddr.builtins.losses import ddr_losses
from ddr.builtins.losses.functions import (
    BUILTIN_LOSSES,
    CrossEntropy,
    KLDivergence,
    MSEWithHardLabels,
    SoftCrossEntropy,
    build_loss,
)
from ddr.engine.augment import Mix
from ddr.engine.labels import Targets
from ddr.errors import ConfigError, DistilledSetError, UnknownComponentError
from ddr.testing.labels import check_label_strategy, check_loss

# A 2 x 3 example used by several tests: student logits S, target logits T, labels Y.
S = [[2.0, 1.0, 0.0], [0.5, -1.0, 1.5]]
T = [[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]]
Y = [0, 2]


def softmax(row: list[float], temp: float = 1.0) -> list[float]:
    exps = [math.exp(v / temp) for v in row]
    return [e / sum(exps) for e in exps]


def ce(row: list[float], label: int) -> float:
    return -math.log(softmax(row)[label])


def tensors() -> tuple[torch.Tensor, Targets]:
    return torch.tensor(S), Targets(hard=torch.tensor(Y), soft=torch.tensor(T))


# -- losses ---------------------------------------------------------------------------------------

def test_ce_of_known_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    value = CrossEntropy()(logits, Targets(hard=torch.tensor([0])))
    assert float(value) == pytest.approx(math.log(1 + math.exp(-1) + math.exp(-2)), abs=1e-6)  # 0.407606


def test_ce_label_smoothing_value():
    # eps = 0.3 over K = 3: target (0.8, 0.1, 0.1); loss = logsumexp - (0.8*2 + 0.1*1 + 0.1*0).
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    value = CrossEntropy(label_smoothing=0.3)(logits, Targets(hard=torch.tensor([0])))
    expected = math.log(math.exp(2) + math.exp(1) + 1) - 1.7
    assert float(value) == pytest.approx(expected, abs=1e-6)  # 0.707606


def test_ce_mixed_labels_by_hand():
    logits, targets = tensors()
    mix = Mix(perm=torch.tensor([1, 0]), lam=torch.tensor([0.7, 0.25]))
    value = CrossEntropy()(logits, Targets(hard=targets.hard, mix=mix))
    # sample 0: 0.7*CE(y=0) + 0.3*CE(y=2); sample 1: 0.25*CE(y=2) + 0.75*CE(y=0)
    expected = (0.7 * ce(S[0], 0) + 0.3 * ce(S[0], 2) + 0.25 * ce(S[1], 2) + 0.75 * ce(S[1], 0)) / 2
    assert float(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("temp, scale", [(1.0, False), (2.0, False), (2.0, True)])
def test_sce_against_formula(temp, scale):
    logits, targets = tensors()
    value = SoftCrossEntropy(temperature=temp, scale_by_t2=scale)(logits, targets)
    expected = 0.0
    for s_row, t_row in zip(S, T):
        p_t, p_s = softmax(t_row, temp), softmax(s_row, temp)
        expected += -sum(pt * math.log(ps) for pt, ps in zip(p_t, p_s))
    expected /= 2
    expected *= temp**2 if scale else 1.0
    assert float(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("temp, scale", [(1.0, False), (4.0, False), (4.0, True)])
def test_kl_against_formula(temp, scale):
    logits, targets = tensors()
    value = KLDivergence(temperature=temp, scale_by_t2=scale)(logits, targets)
    expected = 0.0
    for s_row, t_row in zip(S, T):
        p_t, p_s = softmax(t_row, temp), softmax(s_row, temp)
        expected += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
    expected /= 2
    expected *= temp**2 if scale else 1.0
    assert float(value) == pytest.approx(expected, abs=1e-6)
    assert expected > 0.01  # the example is not degenerate


def test_kl_of_identical_logits_is_zero():
    logits = torch.tensor(T)
    assert float(KLDivergence()(logits, Targets(hard=torch.tensor(Y), soft=logits.clone()))) == pytest.approx(0, abs=1e-7)


def test_kl_is_shift_invariant_and_temperature_matters():
    logits, targets = tensors()
    shifted = Targets(hard=targets.hard, soft=targets.soft + 5.0)
    assert float(KLDivergence()(logits, shifted)) == pytest.approx(float(KLDivergence()(logits, targets)), abs=1e-6)
    assert float(KLDivergence(temperature=1.0)(logits, targets)) != pytest.approx(
        float(KLDivergence(temperature=4.0)(logits, targets)), abs=1e-3)


def test_mse_gt_combination():
    logits, targets = tensors()
    value = MSEWithHardLabels(mse_weight=0.5, ce_weight=0.15)(logits, targets)
    mse = sum((s - t) ** 2 for s_row, t_row in zip(S, T) for s, t in zip(s_row, t_row)) / 6
    expected = 0.5 * mse + 0.15 * (ce(S[0], 0) + ce(S[1], 2)) / 2
    assert float(value) == pytest.approx(expected, abs=1e-6)
    # the CE term mixes the hard labels like 'ce' does
    mix = Mix(perm=torch.tensor([1, 0]), lam=torch.tensor([0.7, 0.25]))
    mixed = Targets(hard=targets.hard, soft=targets.soft, mix=mix)
    mixed_value = MSEWithHardLabels(mse_weight=0.5, ce_weight=0.15)(logits, mixed)
    expected_mixed = 0.5 * mse + 0.15 * float(CrossEntropy()(logits, Targets(hard=targets.hard, mix=mix)))
    assert float(mixed_value) == pytest.approx(expected_mixed, abs=1e-6)


def test_soft_losses_detach_target_and_compute_in_float32():
    logits = torch.tensor(S, dtype=torch.bfloat16, requires_grad=True)
    soft = torch.tensor(T, requires_grad=True)
    for loss in (SoftCrossEntropy(), KLDivergence(), MSEWithHardLabels()):
        value = loss(logits, Targets(hard=torch.tensor(Y), soft=soft))
        assert value.dtype == torch.float32
        value.backward()
        assert soft.grad is None
        assert logits.grad is not None


@pytest.mark.parametrize("loss", [SoftCrossEntropy(), KLDivergence(), MSEWithHardLabels()])
def test_soft_loss_without_soft_targets_is_a_clear_error(loss):
    logits, targets = tensors()
    with pytest.raises(ConfigError, match="needs soft targets"):
        loss(logits, Targets(hard=targets.hard))


def test_loss_shape_mismatch_is_a_clear_error():
    logits, targets = tensors()
    with pytest.raises(ConfigError, match="soft targets have shape"):
        KLDivergence()(logits, Targets(hard=targets.hard, soft=torch.zeros(2, 4)))
    with pytest.raises(ConfigError, match="hard labels must have shape"):
        CrossEntropy()(logits, Targets(hard=torch.tensor([0, 1, 2])))


def test_build_loss_names_params_and_callables():
    assert isinstance(build_loss("kl", temperature=20.0), KLDivergence)
    assert build_loss("kl", temperature=20.0).temperature == 20.0
    custom = lambda logits, targets: logits.sum()  # noqa: E731
    assert build_loss(custom) is custom
    with pytest.raises(UnknownComponentError, match="built-in losses are ce, kl, mse_gt, sce"):
        build_loss("nope")
    with pytest.raises(ConfigError, match="does not take parameter"):
        build_loss("ce", temperature=2.0)
    with pytest.raises(ConfigError, match="already-built"):
        build_loss(custom, temperature=2.0)
    for bad in ({"temperature": 0}, {"temperature": float("nan")}, {"scale_by_t2": 1}):
        with pytest.raises(ConfigError):
            build_loss("kl", **bad)
    with pytest.raises(ConfigError, match="fraction"):
        build_loss("ce", label_smoothing=1.5)
    with pytest.raises(ConfigError, match=">= 0"):
        build_loss("mse_gt", ce_weight=-1)


@pytest.mark.parametrize("name", sorted(BUILTIN_LOSSES))
def test_builtin_losses_pass_check_loss(name):
    spec = next(s for s in ddr_losses() if s.name == name)
    check_loss(spec, zero_at_target=name == "kl")
    check_loss(build_loss(name, **({"label_smoothing": 0.1} if name == "ce" else {})))


def test_check_loss_catches_broken_losses():
    def not_detached(logits, targets):
        return ((logits - targets.soft) ** 2).mean()

    with pytest.raises(AssertionError, match="gradient into the soft targets"):
        check_loss(not_detached)

    def ignores_mix_wrongly(logits, targets):  # mixes even with lam = 1
        loss = CrossEntropy()(logits, targets)
        return loss * 2 if targets.mix is not None else loss

    with pytest.raises(AssertionError, match="changes under a mix"):
        check_loss(ignores_mix_wrongly)

    with pytest.raises(AssertionError, match="expected a scalar"):
        check_loss(lambda logits, targets: (logits**2).sum(dim=1))


# -- strategies -----------------------------------------------------------------------------------

def linear_teacher(weight: list[list[float]], bias: list[float]) -> nn.Module:
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(len(weight[0]), len(weight)))
    with torch.no_grad():
        teacher[1].weight.copy_(torch.tensor(weight))
        teacher[1].bias.copy_(torch.tensor(bias))
    return teacher


def test_hard_strategy_targets_and_smoothing_param():
    strategy = HardLabels(label_smoothing=0.3)
    labels = torch.tensor([2, 0, 1, 0])
    strategy.prepare(hard_labels=labels, soft_labels=None, teachers=[], num_classes=3)
    mix = Mix(torch.tensor([1, 0]), torch.tensor([0.5, 0.5]))
    targets = strategy.targets(torch.zeros(2, 1, 2, 2), torch.tensor([3, 0]), mix)
    assert targets.hard.tolist() == [0, 2] and targets.soft is None and targets.mix is mix
    assert strategy.soft is False and strategy.needs_teacher is False
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    one = strategy.targets(torch.zeros(1, 1, 2, 2), torch.tensor([1]), None)
    assert float(strategy.loss(logits, one)) == pytest.approx(math.log(math.exp(2) + math.exp(1) + 1) - 1.7, abs=1e-6)


def test_stored_soft_indexing_and_mixing():
    stored = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    strategy = StoredSoftLabels()
    strategy.prepare(hard_labels=torch.tensor([0, 1, 2]), soft_labels=stored, teachers=[], num_classes=3)
    index = torch.tensor([2, 0])
    plain = strategy.targets(torch.zeros(2, 1, 1, 1), index, None)
    assert torch.equal(plain.soft, stored[[2, 0]]) and plain.hard.tolist() == [2, 0]

    mix = Mix(perm=torch.tensor([1, 0]), lam=torch.tensor([0.25, 1.0]))
    mixed = strategy.targets(torch.zeros(2, 1, 1, 1), index, mix)
    p2, p0 = softmax([0.0, 0.0, 3.0]), softmax([1.0, 0.0, 0.0])
    expected = [[0.25 * a + 0.75 * b for a, b in zip(p2, p0)], p0]
    assert torch.allclose(torch.softmax(mixed.soft, 1), torch.tensor(expected), atol=1e-6)
    assert mixed.mix is mix and mixed.hard.tolist() == [2, 0]
    # default loss: soft cross-entropy at T = 1 against the mixed distribution
    logits = torch.tensor([[0.3, -0.2, 1.0], [1.0, 0.0, 0.5]])
    value = strategy.loss(logits, mixed)
    manual = -sum(p * math.log(q) for row_p, row in zip(expected, logits.tolist())
                  for p, q in zip(row_p, softmax(row))) / 2
    assert float(value) == pytest.approx(manual, abs=1e-6)


def test_mix_soft_targets_with_lam_zero_takes_the_partner():
    logits = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    mixed = mix_soft_targets(logits, Mix(torch.tensor([1, 0]), torch.tensor([0.0, 0.0])))
    assert torch.isfinite(mixed).all()
    assert torch.allclose(torch.softmax(mixed, 1), torch.softmax(logits[[1, 0]], 1), atol=1e-6)


def test_teacher_averages_logits_of_two_teachers():
    a = linear_teacher([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 0.0])
    b = linear_teacher([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]], [1.0, 0.0, -1.0])
    strategy = TeacherLabels()
    strategy.prepare(hard_labels=torch.tensor([0, 1]), soft_labels=None, teachers=[a, b], num_classes=3)
    images = torch.tensor([[[[1.0, 2.0]]], [[[3.0, -1.0]]]])  # [2, 1, 1, 2]
    mix = Mix(torch.tensor([1, 0]), torch.tensor([0.5, 0.5]))
    targets = strategy.targets(images, torch.tensor([1, 0]), mix)
    # a(x) = (x1, x2, x1+x2); b(x) = (2*x2 + 1, x1, -1)
    expected = [[(1 + 5) / 2, (2 + 1) / 2, (3 - 1) / 2], [(3 - 1) / 2, (-1 + 3) / 2, (2 - 1) / 2]]
    assert torch.allclose(targets.soft, torch.tensor(expected))
    assert targets.hard.tolist() == [1, 0] and targets.mix is mix
    assert not targets.soft.requires_grad
    assert strategy.soft and strategy.needs_teacher
    assert isinstance(strategy.loss_fn, KLDivergence) and strategy.loss_fn.temperature == 4.0


def test_teacher_is_put_in_eval_mode_and_gets_no_gradient():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3))
    teacher.train()
    stats = teacher[2].running_mean.clone()
    strategy = TeacherLabels(loss="mse_gt")
    strategy.prepare(hard_labels=torch.tensor([0, 1, 2, 0]), soft_labels=None, teachers=[teacher], num_classes=3)
    assert not any(m.training for m in teacher.modules())
    logits = torch.randn(4, 3, requires_grad=True)
    targets = strategy.targets(torch.randn(4, 1, 2, 2), torch.arange(4), None)
    strategy.loss(logits, targets).backward()
    assert logits.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
    assert torch.equal(teacher[2].running_mean, stats)
    # a teacher switched back to train mode between batches is relabelled in eval mode anyway
    teacher.train()
    strategy.targets(torch.randn(4, 1, 2, 2), torch.arange(4), None)
    assert torch.equal(teacher[2].running_mean, stats)


def test_strategy_accepts_a_built_loss():
    calls = []

    def custom(logits, targets):
        calls.append(targets)
        return logits.sum() * 0

    strategy = StoredSoftLabels(loss=custom)
    strategy.prepare(hard_labels=torch.tensor([0]), soft_labels=torch.zeros(1, 2), teachers=[], num_classes=2)
    targets = strategy.targets(torch.zeros(1, 1, 1, 1), torch.tensor([0]), None)
    strategy.loss(torch.zeros(1, 2), targets)
    assert calls == [targets]
    with pytest.raises(ConfigError, match="already-built"):
        TeacherLabels(loss=custom, temperature=2.0)


def test_strategy_errors():
    with pytest.raises(DistilledSetError, match="has none.*--label-strategy hard"):
        StoredSoftLabels().prepare(hard_labels=torch.tensor([0, 1]), soft_labels=None, teachers=[], num_classes=2)
    with pytest.raises(DistilledSetError, match=r"\[N, K\] = \[2, 2\]"):
        StoredSoftLabels().prepare(hard_labels=torch.tensor([0, 1]), soft_labels=torch.zeros(2, 3),
                                   teachers=[], num_classes=2)
    with pytest.raises(DistilledSetError, match="NaN"):
        StoredSoftLabels().prepare(hard_labels=torch.tensor([0, 1]), soft_labels=torch.full((2, 2), float("nan")),
                                   teachers=[], num_classes=2)
    with pytest.raises(ConfigError, match="at least one teacher"):
        TeacherLabels().prepare(hard_labels=torch.tensor([0, 1]), soft_labels=None, teachers=[], num_classes=2)
    with pytest.raises(DistilledSetError, match="0..5.*0..1"):
        HardLabels().prepare(hard_labels=torch.tensor([0, 5]), soft_labels=None, teachers=[], num_classes=2)
    with pytest.raises(DistilledSetError, match="integer class indices"):
        HardLabels().prepare(hard_labels=torch.tensor([0.0, 1.0]), soft_labels=None, teachers=[], num_classes=2)
    with pytest.raises(ConfigError, match="needs soft targets"):
        HardLabels(loss="kl")
    with pytest.raises(ConfigError, match="before prepare"):
        HardLabels().targets(torch.zeros(1, 1, 1, 1), torch.tensor([0]), None)
    wrong_k = TeacherLabels()
    wrong_k.prepare(hard_labels=torch.tensor([0, 1]), soft_labels=None,
                    teachers=[linear_teacher([[1.0]] * 4, [0.0] * 4)], num_classes=2)
    with pytest.raises(ConfigError, match=r"expected logits \[B, K\] = \[1, 2\]"):
        wrong_k.targets(torch.zeros(1, 1, 1, 1), torch.tensor([0]), None)


@pytest.mark.parametrize("name, params", [
    ("hard", {}), ("hard", {"label_smoothing": 0.1}), ("stored_soft", {}), ("stored_soft", {"loss": "kl"}),
    ("teacher", {}), ("teacher", {"loss": "mse_gt"}), ("teacher", {"loss": "sce", "temperature": 2.0}),
])
def test_builtin_strategies_pass_check_label_strategy(name, params):
    spec = next(s for s in ddr_label_strategies() if s.name == name)
    if not params:
        check_label_strategy(spec)
    else:
        cls = {"hard": HardLabels, "stored_soft": StoredSoftLabels, "teacher": TeacherLabels}[name]
        check_label_strategy(cls(**params))


def test_check_label_strategy_catches_a_train_mode_teacher():
    class TrainModeTeacher(TeacherLabels):
        def targets(self, images, index, mix):
            for teacher in self._teachers:
                teacher.train()
            return Targets(hard=self._hard_targets(index), soft=self._teachers[0](images), mix=mix)

    with pytest.raises(AssertionError, match="train mode|changed the teacher|not deterministic"):
        check_label_strategy(TrainModeTeacher())


# -- registration ---------------------------------------------------------------------------------

def test_specs_roles_flags_and_defaults_match_the_classes():
    strategies = {s.name: s for s in ddr_label_strategies()}
    losses = {s.name: s for s in ddr_losses()}
    assert set(strategies) == {"hard", "stored_soft", "teacher", "teacher_views"}
    views = strategies["teacher_views"]
    assert views.accepts_argument and views.needs_teacher and views.soft and views.default_loss == "kl"
    assert views.target == "ddr.builtins.labels.strategies:teacher_views" and TeacherViews.needs_teacher
    assert set(losses) == set(BUILTIN_LOSSES)
    specs = {**strategies, **losses}
    assert specs["stored_soft"].needs_soft_labels and specs["teacher"].needs_teacher
    assert not specs["hard"].soft and specs["teacher"].soft and specs["stored_soft"].soft
    strategy_classes = {"hard": HardLabels, "stored_soft": StoredSoftLabels, "teacher": TeacherLabels}
    for name, cls in strategy_classes.items():
        assert specs[name].target == f"{cls.__module__}:{cls.__name__}"
        assert specs[name].default_loss == cls.default_loss
        assert cls.soft == specs[name].soft and cls.needs_teacher == specs[name].needs_teacher
    for name, cls in BUILTIN_LOSSES.items():
        assert specs[name].target == f"{cls.__module__}:{cls.__name__}"
        signature = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
        assert dict(specs[name].defaults) == signature
        assert specs[name].soft == cls.needs_soft
        for preset in specs[name].presets.values():
            cls(**{**specs[name].defaults, **preset})
    assert specs["mse_gt"].presets["gvbsm"]["ce_weight"] == 0.15


def test_registration_module_does_not_import_torch():
    code = ("import sys, ddr.builtins.labels as m, ddr.builtins.losses as l; m.ddr_label_strategies(); "
            "l.ddr_losses(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
