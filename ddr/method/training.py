"""Training a network with ddr's one training loop, through the plugin author's door.

    from ddr.method.training import Recipe, derive_seed, torch_generator, train_hard

A method that trains networks of its own (experts, observers, an inner loop) runs them through
:func:`train_hard`, the loop every student of the protocol trains with, so it shares its
optimizers, schedules, augmentation and determinism. Inside ``distill(ctx)``,
``ctx.train_model`` is the shortest way (in-memory images, the run's seeds); ``train_hard``
also takes a streamed training pool (``ctx.train`` of ImageNet) and a per-epoch callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ddr.engine.seeds import derive_seed, torch_generator
from ddr.engine.training import Recipe, TrainData, TrainResult

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import Split
    from ddr.plugin.manager import PluginSystem

__all__ = ["Recipe", "TrainData", "TrainResult", "derive_seed", "torch_generator", "train_hard"]


def train_hard(model: "torch.nn.Module", data: "Split", recipe: Recipe, *, generator: "torch.Generator",
               num_classes: int, augmentation: Any = None, device: "torch.device | str" = "cpu",
               system: "PluginSystem | None" = None, on_epoch: "Callable[[torch.nn.Module], None] | None" = None,
               progress: Callable[..., Any] | None = None) -> TrainResult:
    """Train ``model`` in place on ``data``'s hard labels (cross-entropy) with ``recipe``.

    Args:
        data: the images and labels (a :class:`ddr.engine.data.Split`, in memory or streamed).
        generator: the randomness of the data order and the augmentation.
        num_classes: K (the labels are in ``[0, K)``).
        augmentation: ``None``; a registered augmentation's name, or a list of names or
            ``{name: ..., **params}`` entries; or an augmentation built with ``ctx.augmentation``.
        system: the plugin system names are resolved in (``None``: the installed plugins).
        on_epoch: called with the model after every epoch (snapshots, early checks).
        progress: wraps the epoch loop in a progress bar.
    """
    from ddr.engine.augment import Pipeline
    from ddr.engine.build import build_augmentations, build_label_strategy
    from ddr.engine.training import TrainData, train

    recipe.check()
    strategy = build_label_strategy("hard", system=system)
    strategy.prepare(hard_labels=data.labels, soft_labels=None, teachers=[], num_classes=num_classes)
    if augmentation is None or isinstance(augmentation, Pipeline):
        pipeline = augmentation
    elif isinstance(augmentation, (str, list, tuple)):
        pipeline = build_augmentations([augmentation] if isinstance(augmentation, str) else list(augmentation),
                                       system=system)
    else:  # one augmentation object
        pipeline = Pipeline([augmentation])
    evaluate = None
    if on_epoch is not None:
        def evaluate(net: "torch.nn.Module") -> float:
            on_epoch(net)
            return 0.0
    return train(model, TrainData(data), recipe, generator=generator, strategy=strategy, augmentation=pipeline,
                 device=device, evaluate_every=1 if on_epoch is not None else None, evaluate=evaluate,
                 progress=progress)
