"""Label budgets: ``teacher_views:K`` stores K teacher-labelled views per image and replays them
(FKD-style), so soft-label methods can be compared at equal label storage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddr.builtins.labels.strategies import TeacherViews, teacher_views
from ddr.engine.augment import Pipeline
from ddr.engine.data import Split
from ddr.engine.training import Recipe, TrainData, train
from ddr.errors import ConfigError


def noise(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, None]:
    """An augmentation drawing from the loop's generator (a new view every epoch)."""
    return images + torch.randn(images.shape, generator=generator), None


class RecordingTeacher(nn.Module):
    """A fixed linear teacher that remembers every batch it labels."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 5)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.linear(x.flatten(1))


def _student(views: int | None, epochs: int = 5) -> tuple[RecordingTeacher, object, list[torch.Tensor]]:
    torch.manual_seed(0)
    teacher = RecordingTeacher().eval()
    images, labels = torch.randn(12, 3, 4, 4), torch.arange(12) % 5
    strategy: object
    if views is None:
        from ddr.builtins.labels.strategies import TeacherLabels

        strategy = TeacherLabels("kl")
    else:
        strategy = teacher_views(argument=str(views), loss="kl")
    strategy.prepare(hard_labels=labels, soft_labels=None, teachers=[teacher], num_classes=5)  # type: ignore[attr-defined]
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 5))
    trained_on: list[torch.Tensor] = []
    original = model.forward

    def spy(x: torch.Tensor) -> torch.Tensor:
        trained_on.append(x.detach().clone())
        return original(x)

    model.forward = spy  # type: ignore[method-assign]
    generator = torch.Generator().manual_seed(7)
    recipe = Recipe(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0, epochs=epochs, batch_size=5,
                    schedule="constant")
    train(model, TrainData(Split(labels=labels, images=images)), recipe, generator=generator,
          strategy=strategy, augmentation=Pipeline([noise]))
    return teacher, strategy, trained_on


def test_views_are_replayed_and_the_teacher_asked_only_for_them() -> None:
    teacher, strategy, trained_on = _student(views=2, epochs=5)
    assert isinstance(strategy, TeacherViews) and strategy.queries == 2 * 12  # N·K
    assert len(teacher.seen) == 2 * 3  # 3 batches of (5, 5, 2) per epoch, labelled in epochs 0 and 1 only
    per_epoch = [trained_on[k:k + 3] for k in range(0, 15, 3)]
    for epoch in range(2, 5):  # epoch e trains on the very views of epoch e mod 2
        for got, want in zip(per_epoch[epoch], per_epoch[epoch % 2]):
            assert torch.equal(got, want)
    assert not all(torch.equal(a, b) for a, b in zip(per_epoch[0], per_epoch[1]))  # two different views


def test_enough_views_equal_the_teacher_strategy() -> None:
    """K ≥ epochs replays nothing: the student is bit for bit the ``teacher`` strategy's."""
    _, _, with_views = _student(views=5, epochs=5)
    _, _, plain = _student(views=None, epochs=5)
    assert len(with_views) == len(plain) == 15
    assert all(torch.equal(a, b) for a, b in zip(with_views, plain))


@pytest.mark.parametrize("argument", ["0", "x", "-1", "2.5"])
def test_bad_view_counts(argument: str) -> None:
    with pytest.raises(ConfigError, match="teacher_views:K needs K"):
        teacher_views(argument=argument, loss="kl")


def test_an_evaluation_under_a_view_budget_records_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ddr
    from ddr.store.results import load_record

    options = dict(dataset="digits", ipc=1, num_eval=1, epochs=4, overrides={"real.epochs": 1}, device="cpu",
                   protocol="soft")
    distilled = tmp_path / "set"
    first = ddr.evaluate(_random_set(distilled), label_strategy="teacher_views:2", out=tmp_path / "runs", **options)
    record = load_record(first.record_dir)
    assert record["run_spec"]["label_strategy"] == "teacher_views:2"
    storage = record["metrics"]["cost"]["storage_bytes"]
    assert storage["soft_labels"] == 10 * 2 * 10 * 4 and storage["teacher"] == 0  # N=10 images, K=2, 10 classes
    assert "2 stored teacher labels per image" in record["metrics"]["cost"]["storage_note"]
    assert 0.0 <= record["metrics"]["acc_syn_any"]["mean"] <= 1.0


def _random_set(folder):  # type: ignore[no-untyped-def]
    """One real digits image per class saved as a ddr distilled set (a stand-in distillation)."""
    from ddr.engine.build import load_dataset
    from ddr.method.distilled import DistilledSet
    from ddr.store.formats import save_distilled

    dataset = load_dataset("digits")
    picks = torch.stack([torch.nonzero(dataset.train.labels == c)[0, 0] for c in range(10)])
    images = dataset.train.images
    assert images is not None
    save_distilled(DistilledSet(images=images[picks].clone(), labels=torch.arange(10)), folder)
    return folder
