"""THE training loop (ddr.engine.training): LR schedules by hand, recipe checks, train() and test_accuracy()."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ddr.engine.build import build_label_strategy
from ddr.engine.data import Split
from ddr.engine.training import Recipe, TrainData, test_accuracy, train
from ddr.errors import ConfigError, DdrError

# -- LR schedules ----------------------------------------------------------------------------------

def test_step_schedule_decays_once_at_the_milestone() -> None:
    recipe = Recipe(epochs=1000, schedule="step", milestones=(0.5,), gamma=0.1)
    assert recipe.lr_factor(0) == 1.0
    assert recipe.lr_factor(499) == 1.0
    assert recipe.lr_factor(500) == pytest.approx(0.1)
    assert recipe.lr_factor(999) == pytest.approx(0.1)


def test_multistep_schedule_multiplies_gamma_at_every_milestone() -> None:
    recipe = Recipe(epochs=100, schedule="multistep", milestones=(0.3, 0.6, 0.9), gamma=0.5)
    expected = {0: 1.0, 29: 1.0, 30: 0.5, 59: 0.5, 60: 0.25, 89: 0.25, 90: 0.125, 99: 0.125}
    for epoch, factor in expected.items():
        assert recipe.lr_factor(epoch) == pytest.approx(factor), epoch


def test_cosine_schedule_is_the_full_half_wave_to_zero() -> None:
    recipe = Recipe(epochs=10, schedule="cosine")
    for epoch in range(10):
        assert recipe.lr_factor(epoch) == pytest.approx(0.5 * (1 + math.cos(math.pi * epoch / 10)))
    assert recipe.lr_factor(0) == 1.0
    assert recipe.lr_factor(5) == pytest.approx(0.5)
    assert recipe.lr_factor(10) == pytest.approx(0.0, abs=1e-12)  # the end of the wave
    assert recipe.lr_factor(9) < 0.03


def test_half_cosine_schedule_ends_near_one_half() -> None:
    recipe = Recipe(epochs=300, schedule="half-cosine")
    for epoch in (0, 1, 100, 150, 299):
        assert recipe.lr_factor(epoch) == pytest.approx(0.5 * (1 + math.cos(math.pi * epoch / 600)))
    assert recipe.lr_factor(0) == 1.0
    assert recipe.lr_factor(300) == pytest.approx(0.5)
    assert 0.5 < recipe.lr_factor(299) < 0.51


def test_constant_schedule_never_changes_the_lr() -> None:
    recipe = Recipe(epochs=50, schedule="constant", milestones=(0.5,), gamma=0.1)
    assert {recipe.lr_factor(e) for e in range(50)} == {1.0}


@pytest.mark.parametrize("changes, fragment", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"schedule": "linear"}, "schedule"),
    ({"lr": 0.0}, "learning rate"),
    ({"lr": -0.1}, "learning rate"),
    ({"lr": float("nan")}, "learning rate"),
    ({"lr": float("inf")}, "learning rate"),
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
])
def test_recipe_check_rejects_bad_settings(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Recipe(**changes).check()
    with pytest.raises(ConfigError):
        Recipe.from_mapping(changes)


def test_recipe_from_mapping_ignores_unknown_and_null_keys_and_round_trips() -> None:
    recipe = Recipe.from_mapping({"lr": 0.05, "epochs": None, "augmentation": ["dsa"], "milestones": [0.25, 0.75]},
                                 epochs=7)
    assert (recipe.lr, recipe.epochs, recipe.milestones) == (0.05, 7, (0.25, 0.75))
    assert recipe.to_dict()["milestones"] == [0.25, 0.75]
    assert recipe.with_lr(None) is recipe
    assert recipe.with_lr(0.2).lr == 0.2 and recipe.with_lr(0.2).epochs == 7


# -- train() ----------------------------------------------------------------------------------------

def _blobs(seed: int, per_class: int = 40) -> Split:
    """Two linearly separable classes of 1x2x2 'images': class c is centred at (4c - 2)·[1, 1, -1, -1]."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(per_class)
    direction = torch.tensor([1.0, 1.0, -1.0, -1.0]).reshape(1, 1, 2, 2)
    images = (labels.float() * 4 - 2).reshape(-1, 1, 1, 1) * direction
    images = images + 0.5 * torch.randn(2 * per_class, 1, 2, 2, generator=generator)
    return Split(labels=labels, images=images)


def _linear_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


def _hard_strategy(split: Split):
    strategy = build_label_strategy("hard")
    strategy.prepare(hard_labels=split.labels, soft_labels=None, teachers=[], num_classes=2)
    return strategy


def _train(split: Split, recipe: Recipe, model_seed: int = 0, data_seed: int = 0, **kwargs):
    model = _linear_model(model_seed)
    result = train(model, TrainData(split), recipe, generator=torch.Generator().manual_seed(data_seed),
                   strategy=_hard_strategy(split), device="cpu", **kwargs)
    return model, result


RECIPE = Recipe(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0, epochs=15, batch_size=16,
                schedule="cosine")


def test_train_learns_a_separable_problem() -> None:
    train_split, test_split = _blobs(0), _blobs(1)
    untrained = test_accuracy(_linear_model(0), test_split)
    model, result = _train(train_split, RECIPE)
    assert untrained <= 0.5  # the initial weights get this problem wrong ...
    assert test_accuracy(model, test_split) >= 0.95  # ... training gets it right
    assert result.epochs_trained == 15 and result.lr == 0.1
    assert math.isfinite(result.final_loss) and result.final_loss < 0.2
    assert result.seconds >= 0.0 and result.evaluations == []


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_train_with_adam_family(optimizer: str) -> None:
    model, _ = _train(_blobs(0), Recipe(optimizer=optimizer, lr=0.05, weight_decay=0.01, epochs=15,
                                        batch_size=16, schedule="constant"))
    assert test_accuracy(model, _blobs(1)) >= 0.95


def test_train_is_deterministic_for_one_seed_and_differs_for_another() -> None:
    split = _blobs(0)
    a, result_a = _train(split, RECIPE, data_seed=3)
    b, result_b = _train(split, RECIPE, data_seed=3)
    c, _ = _train(split, RECIPE, data_seed=4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert result_a.final_loss == result_b.final_loss
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))


def test_train_sets_the_scheduled_lr_in_the_optimizer(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    from ddr.engine.optimizers import StudentOptimizer

    real_step = StudentOptimizer.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(StudentOptimizer, "step", spy)
    split = _blobs(0, per_class=8)  # 16 images, batch 16: one step per epoch
    _train(split, Recipe(lr=0.1, epochs=4, batch_size=16, schedule="step", milestones=(0.5,), gamma=0.1))
    assert seen == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_batch_size_is_capped_at_the_training_set_size() -> None:
    split = _blobs(0, per_class=3)  # 6 images, batch 256
    model, result = _train(split, Recipe(lr=0.1, epochs=3, batch_size=256, schedule="constant"))
    assert result.epochs_trained == 3 and math.isfinite(result.final_loss)


def test_periodic_evaluation_includes_the_last_epoch() -> None:
    def evaluate(model: nn.Module) -> float:
        model.eval()
        return 0.5

    _, result = _train(_blobs(0), Recipe(lr=0.1, epochs=7, batch_size=16, schedule="constant"),
                       evaluate_every=3, evaluate=evaluate)
    assert result.evaluations == [(3, 0.5), (6, 0.5), (7, 0.5)]
    # an interval longer than training still yields the accuracy after the last epoch (never a silent 0)
    _, result = _train(_blobs(0), Recipe(lr=0.1, epochs=2, batch_size=16, schedule="constant"),
                       evaluate_every=10, evaluate=evaluate)
    assert result.evaluations == [(2, 0.5)]


def test_divergence_raises_a_ddr_error_asking_for_a_lower_lr() -> None:
    split = _blobs(0)
    split.labels[::3] = 1 - split.labels[::3]  # not separable: the loss cannot reach 0 and stop the blow-up
    with pytest.raises(DdrError, match="lower the learning rate") as info:
        _train(split, Recipe(lr=1e6, momentum=0.9, weight_decay=5e-4, epochs=20, batch_size=16,
                             schedule="constant"))
    assert "diverged" in str(info.value)


# -- test_accuracy() ------------------------------------------------------------------------------

class _ThresholdModel(nn.Module):
    """Predicts class 1 when the image's first pixel is positive (logits [B, 2])."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        first = images.flatten(1)[:, 0]
        return torch.stack([-first, first], dim=1)


def test_test_accuracy_of_a_hand_made_model() -> None:
    images = torch.tensor([1.0, 2.0, -1.0, -3.0, 0.5]).reshape(5, 1, 1, 1)
    labels = torch.tensor([1, 1, 0, 1, 0])  # correct, correct, correct, wrong, wrong
    model = _ThresholdModel().train()
    assert test_accuracy(model, Split(labels=labels, images=images)) == pytest.approx(3 / 5)
    assert not model.training  # evaluated in eval mode
    assert test_accuracy(model, Split(labels=labels, images=images), batch_size=2) == pytest.approx(3 / 5)


def test_test_accuracy_on_a_streaming_split() -> None:
    images = torch.tensor([1.0, -2.0, 3.0, -1.0]).reshape(4, 1, 1, 1)
    labels = torch.tensor([1, 0, 0, 0])
    source = list(zip(images, labels))
    split = Split(labels=labels, source=source)
    assert test_accuracy(_ThresholdModel(), split) == pytest.approx(3 / 4)


def test_bf16_autocast_trains_to_nearly_the_same_weights() -> None:
    """``bf16``: the forward in bfloat16, the weights float32; close to, not equal to, float32."""
    train_split, test_split = _blobs(0), _blobs(1)
    plain, _ = _train(train_split, RECIPE)
    low, _ = _train(train_split, RECIPE, bf16=True)
    assert all(p.dtype == torch.float32 for p in low.parameters())
    assert test_accuracy(low, test_split) == test_accuracy(plain, test_split) > 0.9
    difference = max((a - b).abs().max().item() for a, b in zip(plain.parameters(), low.parameters()))
    assert 0 < difference < 0.05
