"""Shared machinery of the coreset selectors (uncertainty, forgetting, GraNd, EL2N, CCS, Moderate-DS).

A coreset selector, like the selection baselines of :mod:`ddr_methods._selection`, synthesises
nothing: it scores the real images of the training pool (``ctx.train``) with a *scoring model* and
keeps, per class, the images its rule prefers. What the selectors share lives here:

* the parameters of the scoring model's training (:data:`SCORING_PARAMS`, DeepCore's
  ``EarlyTrain`` settings: ``deepcore/methods/earlytrain.py`` with ``main.py``'s ``--selection_*``
  defaults) and :data:`FRACTION_PARAM`;
* :class:`ScoringRecipe`, those parameters read and checked;
* :func:`class_budget` and :func:`budgets`: how many images each class keeps: ``ipc`` (ddr's
  evaluation is per IPC) unless ``fraction`` is set, then ``round(fraction * class size)`` (at least
  one), as DeepCore's class-balanced selectors do (``round(len(class_index) * fraction)``);
* :mod:`ddr_methods._coreset.scoring` (imports torch): the scoring model's training loop with
  per-batch and per-epoch hooks, logits over the pool, the score functions and the class-balanced
  top-k with deterministic tie-breaking;
* :mod:`ddr_methods._coreset.gradients`, :mod:`~ddr_methods._coreset.gradient_selection`,
  :mod:`~ddr_methods._coreset.submodular` and :mod:`~ddr_methods._coreset.gradmatch`: DeepCore's
  last-layer gradient embeddings and the gradient-based selectors (facility location, graph cut,
  CRAIG, GradMatch); GraNd reads its scores from :func:`~ddr_methods._coreset.gradients.last_layer_gradients`.

Importing this module does not import torch (registration modules read :data:`SCORING_PARAMS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ddr import ConfigError, DataError, ParamSpec

__all__ = ["DATA_DIET", "DATA_DIET_EPOCHS_DOC", "FRACTION_PARAM", "REPEAT_PARAM", "SCORING_PARAMS", "ScoringRecipe",
           "budgets", "check_fraction", "class_budget", "scoring_params"]

FRACTION_PARAM = ParamSpec(
    "fraction", None,
    "null: keep ipc images per class (ddr's evaluation); a number in (0, 1]: keep round(fraction * class size) "
    "(at least 1) per class instead and ignore ipc, for use beyond DD (ddr's evaluation refuses such a set "
    "unless every class comes out at ipc)", type="float", minimum=0.0,
)
"""``fraction`` (DeepCore's ``--fraction``): the per-class budget as a fraction of the class."""

SCORING_PARAMS = (
    ParamSpec("arch", None, "architecture of the scoring network trained here (null: the protocol's student)",
              type="str"),
    ParamSpec("selection_epochs", 200, "epochs the scoring network is trained on the whole pool before scoring "
              "(DeepCore --selection_epochs; its EarlyTrain default 200)", type="int", minimum=0),
    ParamSpec("selection_lr", 0.1, "learning rate of the scoring network (DeepCore --selection_lr 0.1)", minimum=0.0),
    ParamSpec("selection_momentum", 0.9, "SGD momentum (DeepCore --selection_momentum 0.9)", minimum=0.0),
    ParamSpec("selection_weight_decay", 5e-4, "weight decay (DeepCore --selection_weight_decay 5e-4)", minimum=0.0),
    ParamSpec("selection_nesterov", True, "Nesterov momentum (DeepCore --selection_nesterov True)"),
    ParamSpec("selection_optimizer", "sgd", "optimizer of the scoring network (DeepCore --selection_optimizer SGD)",
              choices=("sgd", "adam")),
    ParamSpec("selection_schedule", "constant", "learning-rate schedule: constant (DeepCore's EarlyTrain has none) "
              "or cosine (per iteration down to selection_min_lr, CCS's train.py)", choices=("constant", "cosine")),
    ParamSpec("selection_min_lr", 1e-4, "final learning rate of the cosine schedule (CCS: eta_min 1e-4)", minimum=0.0),
    ParamSpec("selection_batch_size", 256, "batch size of the scoring network's training (DeepCore --batch 256)",
              minimum=1),
    ParamSpec("selection_augmentation", None, "augmentation while training it (a registered, non-mixing name; "
              "null: none, as DeepCore's selection)", type="str"),
    ParamSpec("score_batch_size", 512, "images per forward pass when scoring the pool", minimum=1),
)
"""The scoring network's training (DeepCore's ``EarlyTrain``) and the scoring pass."""


REPEAT_PARAM = ParamSpec("repeat", 10, "scoring networks (independent initialisations) the score is averaged over "
                         "(Paul et al.: 10; DeepCore GraNd repeat=10)", minimum=1)
"""GraNd's and EL2N's number of scoring networks."""

DATA_DIET_EPOCHS_DOC = ("epochs each scoring network trains before scoring (Paul et al.: early in training, epoch 20 "
                        "on CIFAR-10, or 0: GraNd at initialisation; DeepCore: --selection_epochs)")

DATA_DIET: Mapping[str, Any] = {"selection_epochs": 20, "repeat": 10, "selection_batch_size": 128,
                                "selection_augmentation": "crop_flip"}
"""GraNd's and EL2N's ``paper`` preset: scores at epoch 20 over 10 initialisations (Paul et al., NeurIPS 2021),
trained as the data_diet code's ``scripts/run_full_data.py`` (mansheej/data_diet @ 1910b07): batch 128, SGD
0.1 with Nesterov momentum 0.9 and weight decay 5e-4, random crop + flip (``augment=True``); its step
schedule first decays at epoch 60, so the first 20 epochs run at a constant LR."""


def scoring_params(*, epochs: int | None = 200, nullable_epochs: bool = False, batch_size: int = 256,
                   epochs_doc: str | None = None) -> tuple[ParamSpec, ...]:
    """:data:`SCORING_PARAMS` with another default (and doc) for ``selection_epochs`` / ``selection_batch_size``.

    ``nullable_epochs``: ``selection_epochs`` null means "score with the protocol's cached real-data
    reference" (``ctx.teacher()``) instead of a network trained here.
    """
    out = []
    for p in SCORING_PARAMS:
        if p.name == "selection_epochs":
            doc = epochs_doc or p.doc
            p = ParamSpec(p.name, epochs, doc, type="int", minimum=0, nullable=nullable_epochs or epochs is None)
        elif p.name == "selection_batch_size":
            p = ParamSpec(p.name, batch_size, p.doc, minimum=1)
        out.append(p)
    return tuple(out)


@dataclass(frozen=True)
class ScoringRecipe:
    """How the scoring network trains (DeepCore ``EarlyTrain.run``/``train``; CCS ``train.py``).

    Attributes:
        epochs: passes over the pool (0: score the seeded initialisation).
        lr: learning rate (units of the optimizer's update).
        momentum, weight_decay, nesterov: SGD's (``torch.optim.SGD``); Adam uses ``weight_decay`` only.
        optimizer: ``"sgd"`` or ``"adam"``.
        schedule: ``"constant"`` (DeepCore) or ``"cosine"`` (``CosineAnnealingLR`` over every
            iteration to ``min_lr``, stepped after each batch, as CCS's ``train.py``).
        min_lr: the cosine schedule's floor.
        batch_size: images per step (the last batch of an epoch may be smaller).
        augmentation: a registered augmentation's name, or ``None``.
    """

    epochs: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    optimizer: str = "sgd"
    schedule: str = "constant"
    min_lr: float = 1e-4
    batch_size: int = 256
    augmentation: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ScoringRecipe":
        """Read the ``selection_*`` keys of a selector's resolved params (absent keys: the defaults)."""
        defaults = {p.name: p.default for p in SCORING_PARAMS}
        merged = {**defaults, **params}
        recipe = cls(epochs=merged["selection_epochs"], lr=merged["selection_lr"],
                     momentum=merged["selection_momentum"], weight_decay=merged["selection_weight_decay"],
                     nesterov=merged["selection_nesterov"], optimizer=merged["selection_optimizer"],
                     schedule=merged["selection_schedule"], min_lr=merged["selection_min_lr"],
                     batch_size=merged["selection_batch_size"], augmentation=merged["selection_augmentation"])
        recipe.check()
        return recipe

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first parameter that cannot train a network."""
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ConfigError(f"selection_epochs must be an integer >= 0, got {self.epochs!r}")
        for name, value in (("selection_lr", self.lr), ("selection_momentum", self.momentum),
                            ("selection_weight_decay", self.weight_decay), ("selection_min_lr", self.min_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr <= 0:
            raise ConfigError(f"selection_lr must be > 0, got {self.lr!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ConfigError(f"selection_optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"selection_schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.optimizer == "sgd" and self.nesterov and self.momentum <= 0:
            raise ConfigError("selection_nesterov needs selection_momentum > 0 (Nesterov momentum without momentum "
                              "is undefined); set selection_nesterov=false or a positive momentum")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"selection_batch_size must be a positive integer, got {self.batch_size!r}")
        if self.augmentation is not None and (not isinstance(self.augmentation, str) or not self.augmentation):
            raise ConfigError(f"selection_augmentation must be a registered augmentation's name or null, "
                              f"got {self.augmentation!r}")


def check_fraction(fraction: Any) -> float | None:
    """``fraction`` if it is null or a number in (0, 1], else :class:`ConfigError`."""
    if fraction is None:
        return None
    if (isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction)
            or not 0 < fraction <= 1):
        raise ConfigError(f"fraction must be a number in (0, 1] (the share of each class to keep) or null "
                          f"(keep ipc per class), got {fraction!r}")
    return float(fraction)


def class_budget(class_size: int, ipc: int, fraction: float | None) -> int:
    """How many images a class of ``class_size`` keeps.

    ``fraction`` null: ``ipc`` (ddr's evaluation is per IPC; "ipc wins"). Otherwise
    ``max(1, round(fraction * class_size))`` and ``ipc`` is ignored: DeepCore's class-balanced
    budget (``round(len(class_index) * self.fraction)``, Python's round: half to even, so 2.5 -> 2),
    raised to one image so that every class stays represented.

    Raises:
        ConfigError: a bad ``fraction``.
        DataError: the class is empty, or holds fewer than ``ipc`` images.
    """
    fraction = check_fraction(fraction)
    if class_size < 1:
        raise DataError("a class of the training pool has no images; a class-balanced coreset needs every class")
    if fraction is None:
        if class_size < ipc:
            raise DataError(f"a class has only {class_size} training images but ipc={ipc} distinct real images "
                            f"per class were requested; a selector picks without replacement, so use ipc <= "
                            f"{class_size}")
        return ipc
    return max(1, round(fraction * class_size))


def budgets(class_sizes: list[int], ipc: int, fraction: float | None) -> list[int]:
    """:func:`class_budget` of every class, in class order."""
    return [class_budget(n, ipc, fraction) for n in class_sizes]
