"""The coreset selectors' scoring model and the class-balanced choice of what it scores.

* :func:`train_scoring_model`: DeepCore's ``EarlyTrain`` loop (github.com/PatrickZH/DeepCore @ 74ec709,
  ``deepcore/methods/earlytrain.py``: ``run`` and ``train``) with its hooks: per batch
  ``on_batch(epoch, index, logits, labels)`` sees the logits of the batch *as trained* (the forward
  before the update; DeepCore's ``after_loss``), per epoch ``on_epoch(epoch, model)``. Forgetting
  events and CCS's training dynamics are read there.
* :func:`logits_over`: the trained model's logits over (part of) the pool, in eval mode.
* :func:`el2n_scores`, :func:`grand_scores`, :class:`ForgettingTracker`, :class:`TrainingDynamics`:
  the score functions several selectors share.
* :func:`top_k` and :func:`class_balanced_picks`: per class, the ``k`` best scores with
  deterministic tie-breaking (the lowest position in the pool wins a tie);
* :func:`coreset_subset`: the picks as a class-major distilled set (``ipc`` per class through
  :func:`ddr_methods._selection.selected_subset`; the per-class budgets of ``fraction`` otherwise).

Why a loop of its own and not ``ctx.train_model`` (ddr's one training loop): the selectors read the
logits of every training batch with the indices of its samples, which the core loop does not
expose, and the differential checks (``benchmarks/fidelity_coresets.py``) need DeepCore's update
rule exactly (``torch.optim.SGD`` with Nesterov momentum, constant LR). The batches come from the
core loop's :meth:`ddr.method.training.TrainData.batches` (the same ``randperm`` data order), as
ddr's GSAM experts do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ddr import ConfigError, DataError, DdrError
from ddr.method.training import TrainData, derive_seed, torch_generator
from ddr_methods._coreset import ScoringRecipe, budgets, check_fraction

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ddr.method import DistillContext, DistilledSet, Split

__all__ = ["ForgettingTracker", "TrainingDynamics", "class_balanced_picks", "class_pools_and_budgets", "coreset_subset",
           "el2n_scores", "grand_scores", "logits_over", "scores_over_inits", "scoring_augmentation",
           "scoring_generator", "top_k", "train_scoring_model"]

BatchHook = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""``on_batch(epoch, index [B] int64 pool positions, logits [B, K] detached float32, labels [B] int64)``."""

EpochHook = Callable[[int, "nn.Module"], None]
"""``on_epoch(epoch, model)`` after each epoch (0-based)."""

Order = Callable[[int], Iterable[torch.Tensor]]
"""``order(epoch)`` -> the epoch's batches as int64 pool positions (replaces the seeded shuffle)."""


def train_scoring_model(
    model: "nn.Module",
    data: "Split",
    recipe: ScoringRecipe,
    *,
    generator: torch.Generator,
    augmentation: Any = None,
    on_batch: BatchHook | None = None,
    on_epoch: EpochHook | None = None,
    order: Order | None = None,
    progress: Callable[..., Any] | None = None,
) -> "nn.Module":
    """Train ``model`` in place on ``data``'s hard labels with cross-entropy, as DeepCore's ``EarlyTrain``.

    Per epoch, the pool is shuffled with ``generator`` (``TrainData.batches``: one ``randperm``,
    batches of ``recipe.batch_size``, the last one shorter), or taken from ``order``. Per batch:
    the augmentation (drawn from ``generator``), ``zero_grad``, forward, ``on_batch`` with the
    detached logits, mean cross-entropy, backward, the optimizer's step and, under the cosine
    schedule, the scheduler's step (``torch.optim.lr_scheduler.CosineAnnealingLR`` with
    ``T_max`` = every iteration of the run, ``eta_min`` = ``recipe.min_lr``: CCS ``train.py``).
    The optimizer is ``torch.optim.SGD(lr, momentum, weight_decay, nesterov)`` or
    ``torch.optim.Adam(lr, weight_decay)`` (DeepCore ``EarlyTrain.run``).

    Args:
        model: the network (its parameters are updated; it is left in eval mode).
        data: the training pool (in memory or streamed) with int64 labels ``[N]``.
        recipe: epochs, optimizer, schedule, batch size.
        generator: the data order's and the augmentation's randomness (on the images' device).
        augmentation: ``None`` or a built, non-mixing augmentation ``aug(images, generator) -> (images, mix)``.
        on_batch, on_epoch: the hooks (see :data:`BatchHook`, :data:`EpochHook`).
        order: the batches of each epoch, replacing the shuffle (the differential checks replay
            the reference's order with it).
        progress: wraps the epoch loop (``progress(range, total=..., desc=...)``).

    Raises:
        ConfigError: a mixing augmentation.
        DdrError: the loss became non-finite (the message names the epoch and the learning rate).
    """
    recipe.check()
    device = next(model.parameters()).device
    model.train()
    if recipe.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
            nesterov=recipe.nesterov)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    batch_size = min(recipe.batch_size, len(data))
    scheduler = None
    if recipe.schedule == "cosine" and recipe.epochs > 0:
        steps = recipe.epochs * -(-len(data) // batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=recipe.min_lr)
    source = TrainData(data)
    epochs: Iterable[int] = range(recipe.epochs)
    if progress is not None:
        epochs = progress(epochs, total=recipe.epochs, desc="scoring network")
    for epoch in epochs:
        model.train()
        loss = torch.zeros((), device=device)
        for index, images in _batches(source, data, batch_size, generator, device, order, epoch):
            labels = data.labels[index.to(data.labels.device)].to(device=device, dtype=torch.int64)
            images = images.to(device)
            if augmentation is not None:
                images, mix = augmentation(images, generator)
                if mix is not None:
                    raise ConfigError("selection_augmentation must not mix images (mixup/cutmix): the scoring "
                                      "network's per-sample statistics need one label per image")
            optimizer.zero_grad()
            logits = model(images)
            if on_batch is not None:
                on_batch(epoch, index.to(device), logits.detach().float(), labels)
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        if not bool(torch.isfinite(loss)):
            raise DdrError(f"the scoring network diverged (loss {float(loss.detach())} in epoch {epoch + 1}) with "
                           f"selection_lr {recipe.lr}; lower selection_lr")
        if on_epoch is not None:
            on_epoch(epoch, model)
    model.eval()
    return model


def _batches(source: TrainData, data: "Split", batch_size: int, generator: torch.Generator, device: torch.device,
             order: Order | None, epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if order is None:
        yield from source.batches(batch_size, generator, device)
        return
    for index in order(epoch):
        index = torch.as_tensor(index, dtype=torch.int64)
        yield index, data.take(index.to(data.labels.device))


def logits_over(model: "nn.Module", data: "Split", index: torch.Tensor | None = None, *,
                batch_size: int = 512) -> torch.Tensor:
    """Logits ``[n, K]`` (float32, on the model's device) of ``data``'s images at ``index`` (all: ``None``).

    Eval mode, no gradients, ``batch_size`` images per forward; the model's mode is restored.
    """
    _check_batch(batch_size, "score_batch_size")
    device = next(model.parameters()).device
    positions = torch.arange(len(data)) if index is None else index.reshape(-1).to(torch.int64)
    if len(positions) == 0:
        raise DataError("cannot score an empty set of images")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = [model(data.take(positions[i:i + batch_size].to(data.labels.device)).to(device)).float()
                      for i in range(0, len(positions), batch_size)]
    finally:
        model.train(was_training)
    logits = torch.cat(chunks)
    if not bool(torch.isfinite(logits).all()):
        raise DataError("the scoring network produced non-finite logits (NaN/inf); lower selection_lr or "
                        "selection_epochs")
    return logits


def el2n_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """EL2N (Paul, Ganguli & Dziugaite, NeurIPS 2021, eq. 2): ``||softmax(logits) − onehot(label)||₂``.

    Args:
        logits: ``[n, K]``.
        labels: int ``[n]`` in ``0..K-1``.

    Returns:
        float32 ``[n]`` in ``[0, √2]``; larger = harder (the data_diet code's ``l2_error``,
        ``data_diet/scores.py: get_lord_error_fn(ord=2)``).
    """
    return _el2n_from_probs(torch.softmax(logits.float(), dim=1), labels)


def grand_scores(model: "nn.Module", data: "Split", index: torch.Tensor | None = None, *,
                 batch_size: int = 512) -> torch.Tensor:
    """GraNd as DeepCore computes it (``deepcore/methods/grand.py``): the L2 norm of each sample's
    cross-entropy gradient w.r.t. the last linear layer (bias and weight), ``[n]`` float32.

    That gradient is :func:`ddr_methods._coreset.gradients.last_layer_gradients` (``[p − y, (p − y) ⊗ h]``),
    so the norm is ``||p − y||₂ · sqrt(1 + ||h||²)`` with ``h`` the penultimate embedding. Paul et al.
    (``data_diet/scores.py: get_grad_norm_fn``) take the norm over *every* parameter; DeepCore, and
    ddr, over the last layer. DeepCore's values are also divided by the size of the scoring batch
    (a mean-reduced loss summed); ddr's are the per-sample norms.
    """
    from ddr_methods._coreset.gradients import last_layer_gradients

    positions = torch.arange(len(data)) if index is None else index.reshape(-1).to(torch.int64)
    norms = []
    for i in range(0, len(positions), batch_size):
        chunk = positions[i:i + batch_size].to(data.labels.device)
        gradients = last_layer_gradients(model, data.take(chunk), data.labels[chunk], batch_size=batch_size)
        norms.append(torch.linalg.vector_norm(gradients, dim=1))
    return torch.cat(norms)


class ForgettingTracker:
    """Forgetting events (Toneva et al., ICLR 2019) counted on the training batches as trained.

    DeepCore's ``Forgetting.after_loss`` (``deepcore/methods/forgetting.py``) and the data_diet code
    (``data_diet/forgetting.py: update_forget_stats``): each sample's previous accuracy starts at
    0; when a batch holds it, an event is counted if it was classified correctly the last time and
    is not now (1 -> 0), then the accuracy is stored. A sample that is never classified correctly
    has no event: DeepCore and CCS leave it at 0 (as unforgettable as a sample learned once and
    kept); Toneva et al. and data_diet (``save_forget_scores``: ``np.inf``) count it as forgotten
    infinitely often, the most forgettable: :meth:`scores` gives either.
    """

    def __init__(self, n: int, device: "torch.device | str" = "cpu") -> None:
        self.events = torch.zeros(n, dtype=torch.float64, device=device)
        self.last_correct = torch.zeros(n, dtype=torch.bool, device=device)
        self.ever_correct = torch.zeros(n, dtype=torch.bool, device=device)

    def __call__(self, epoch: int, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """A :data:`BatchHook`: update with one training batch (``argmax`` ties: the first class)."""
        index = index.to(self.events.device)
        correct = (logits.argmax(dim=1) == labels).to(self.events.device)
        self.events[index[self.last_correct[index] & ~correct]] += 1
        self.last_correct[index] = correct
        self.ever_correct[index] |= correct

    def scores(self, never_learned: str = "most") -> torch.Tensor:
        """Events per sample ``[n]`` float64; ``never_learned``: ``"most"`` (+inf, Toneva) or ``"zero"`` (DeepCore)."""
        if never_learned not in ("most", "zero"):
            raise ConfigError(f"never_learned must be 'most' or 'zero', got {never_learned!r}")
        out = self.events.clone()
        if never_learned == "most":
            out[~self.ever_correct] = float("inf")
        return out


class TrainingDynamics:
    """CCS's importance scores from the training batches as trained (haizhongzheng/Coverage-centric-coreset-selection
    @ b37f166, ``generate_importance_score.py``: ``training_dynamics_metrics`` and ``EL2N``).

    Per batch, with ``p = softmax(logits)`` (CCS logs ``log_softmax`` in float16 and exponentiates;
    ddr keeps float32):

    * ``accumulated_margin`` (AUM on probabilities): sum over every time the sample was trained of
      ``p[label] − max_{k != label} p[k]``; low = hard;
    * ``forgetting``: 1 -> 0 flips of correctness (previous correctness starts at 0; never learned: 0);
    * ``el2n``: sum of ``||p − onehot||₂`` over the batches of epochs ``< el2n_epochs`` (CCS:
      ``max_epoch=10``).
    """

    def __init__(self, n: int, *, el2n_epochs: int = 10, device: "torch.device | str" = "cpu") -> None:
        self.accumulated_margin = torch.zeros(n, dtype=torch.float32, device=device)
        self.el2n = torch.zeros(n, dtype=torch.float32, device=device)
        self.forgetting = ForgettingTracker(n, device)
        self.el2n_epochs = el2n_epochs

    def __call__(self, epoch: int, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """A :data:`BatchHook`."""
        device = self.accumulated_margin.device
        index, labels = index.to(device), labels.to(device)
        probs = torch.softmax(logits.float(), dim=1).to(device)
        rows = torch.arange(len(index), device=device)
        target = probs[rows, labels]
        others = probs.clone()
        others[rows, labels] = 0  # CCS: output[batch_idx, label] = 0; then the max
        self.accumulated_margin[index] += target - others.max(dim=1).values
        self.forgetting(epoch, index, logits.to(device), labels)
        if epoch < self.el2n_epochs:
            self.el2n[index] += _el2n_from_probs(probs, labels)

    def scores(self, key: str) -> torch.Tensor:
        """``accumulated_margin``, ``forgetting`` (never learned: 0, as CCS) or ``el2n``, ``[n]``."""
        if key == "accumulated_margin":
            return self.accumulated_margin.clone()
        if key == "forgetting":
            return self.forgetting.scores("zero").to(torch.float32)
        if key == "el2n":
            return self.el2n.clone()
        raise ConfigError(f"unknown CCS importance score {key!r}; expected accumulated_margin, forgetting or el2n")


def _el2n_from_probs(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    onehot = F.one_hot(labels.to(torch.int64), num_classes=probs.shape[1]).to(probs.dtype)
    return torch.linalg.vector_norm(probs - onehot, dim=1)


def top_k(scores: torch.Tensor, k: int, *, largest: bool) -> torch.Tensor:
    """Positions of the ``k`` largest (``largest``) or smallest ``scores`` ``[n]``, best first.

    Ties keep the lower position first (a stable sort), so the choice depends only on the scores;
    ``+inf``/``-inf`` sort as the extremes they are.

    Returns:
        int64 ``[k]`` positions ``0..n-1``.

    Raises:
        DataError: ``scores`` is not 1-D, holds NaN, or has fewer than ``k`` entries.
    """
    if scores.ndim != 1:
        raise DataError(f"scores must be 1-D [n], got shape {tuple(scores.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(scores):
        raise DataError(f"cannot keep k={k!r} of {len(scores)} samples; k must be 1..{len(scores)}")
    if bool(torch.isnan(scores).any()):
        raise DataError("the scores hold NaN; the scoring network diverged (lower selection_lr)")
    order = torch.sort(scores, descending=largest, stable=True).indices
    return order[:k].to(torch.int64)


def class_balanced_picks(scores: torch.Tensor, pools: Sequence[torch.Tensor], class_budgets: Sequence[int], *,
                         largest: bool) -> list[torch.Tensor]:
    """Per class ``c``, the ``class_budgets[c]`` best of ``scores[pools[c]]`` as indices into the pool.

    Args:
        scores: ``[N]`` one score per pool position (``ctx.train``'s order).
        pools: per class, int64 positions into the pool (``ctx.class_indices()``).
        class_budgets: per class, how many to keep.
        largest: keep the largest scores (else the smallest).

    Returns:
        per class, int64 ``[budget]`` pool positions, best first.
    """
    picks = []
    for pool, k in zip(pools, class_budgets):
        pool = pool.to(scores.device)
        picks.append(pool[top_k(scores[pool], int(k), largest=largest)].cpu())
    return picks


def class_pools_and_budgets(ctx: "DistillContext", fraction: Any) -> tuple[list[torch.Tensor], list[int]]:
    """Per-class pool positions and how many of each to keep (:func:`ddr_methods._coreset.class_budget`).

    ``fraction`` null: :func:`ddr_methods._selection.class_pools` (every class holds ``ipc``) and
    ``ipc`` each; else every class keeps ``max(1, round(fraction * size))`` and ``ipc`` is unused.
    """
    from ddr_methods._selection import class_pools

    fraction = check_fraction(fraction)
    if fraction is None:
        pools = class_pools(ctx)
        return pools, [ctx.ipc] * len(pools)
    pools = ctx.class_indices()
    if len(pools) != ctx.num_classes:
        raise DataError(f"the training pool has labels for {len(pools)} classes but the dataset declares "
                        f"{ctx.num_classes}; check the dataset's labels (expected 0..{ctx.num_classes - 1})")
    return pools, budgets([len(p) for p in pools], ctx.ipc, fraction)


def coreset_subset(ctx: "DistillContext", picks: Sequence[torch.Tensor], *, method: str,
                   meta: Mapping[str, Any] | None = None) -> "DistilledSet":
    """The picked real images as a class-major distilled set (meta: ``selected_indices`` per class).

    With ``ipc`` picks per class this is :func:`ddr_methods._selection.selected_subset`. With the
    per-class budgets of ``fraction`` (``meta["fraction"]`` and ``meta["per_class"]`` record them),
    classes differ in size: a set for use beyond ddr's fixed-IPC evaluation.
    """
    from ddr.method.distilled import DistilledSet
    from ddr_methods._selection import selected_subset

    counts = [int(p.numel()) for p in picks]
    fraction = ctx.params.get("fraction")
    if fraction is None:
        return selected_subset(ctx, picks, method=method, meta=meta)
    index = torch.cat([p.reshape(-1) for p in picks]).to(torch.int64)
    labels = ctx.train.labels[index.to(ctx.train.labels.device)].to(torch.int64).cpu()
    expected = torch.arange(len(picks)).repeat_interleave(torch.tensor(counts))
    if not torch.equal(labels, expected):
        raise DdrError(f"{method} picked images that are not class-major; this is a bug in the method")
    return DistilledSet(
        images=ctx.train.take(index).detach().to(device="cpu", dtype=torch.float32),
        labels=labels,
        pixel_space=ctx.dataset.pixel_space,
        label_strategy="hard",
        meta={"method": method, "params": dict(ctx.params), "ipc": ctx.ipc, "seed": ctx.seed,
              "fraction": fraction, "per_class": counts,
              "selected_indices": [p.reshape(-1).tolist() for p in picks], **dict(meta or {})},
    )


def scoring_generator(ctx: "DistillContext", method: str, index: int = 0) -> torch.Generator:
    """The data order's generator of the ``index``-th scoring network of ``method``, from the run's seed."""
    return torch_generator(derive_seed(ctx.seed, f"coreset/{method}", index), ctx.device)


def scoring_augmentation(ctx: "DistillContext", recipe: ScoringRecipe) -> Any:
    """The recipe's augmentation, built (``None`` when it names none)."""
    return ctx.augmentation(recipe.augmentation) if recipe.augmentation else None


def scores_over_inits(ctx: "DistillContext", recipe: ScoringRecipe, *, repeat: int, arch: str | None,
                      score: Callable[["nn.Module"], torch.Tensor], method: str) -> torch.Tensor:
    """The mean of ``score(model)`` ``[N]`` over ``repeat`` scoring networks, each a fresh seeded
    initialisation (``ctx.make_model(arch)``) trained with ``recipe`` on the whole pool (DeepCore
    ``GraNd.select``: ``repeat`` runs, ``norm_matrix.mean(dim=1)``; Paul et al.: 10 initialisations).

    Returns:
        float32 ``[N]``, one score per pool position.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"repeat must be a positive integer (networks averaged over), got {repeat!r}")
    if len(ctx.train) == 0:
        raise DataError("the training pool is empty")
    augmentation = scoring_augmentation(ctx, recipe)
    total: torch.Tensor | None = None
    for r in ctx.progress(range(repeat), total=repeat, desc=f"{method}: scoring networks"):
        model = ctx.make_model(arch=arch)
        train_scoring_model(model, ctx.train, recipe, generator=scoring_generator(ctx, method, r),
                            augmentation=augmentation)
        value = score(model).to(torch.float32)
        total = value if total is None else total + value
    assert total is not None
    return total / repeat


def mean_score_over_inits(ctx: "DistillContext", score: Callable[["nn.Module", int], torch.Tensor], *,
                          method: str) -> torch.Tensor:
    """:func:`scores_over_inits` with the method's own parameters (the scoring recipe, ``repeat``,
    ``arch``, ``score_batch_size``): ``score(model, batch_size)`` ``[N]`` averaged over the networks,
    float32 on the CPU (GraNd, EL2N)."""
    batch = ctx.params.get("score_batch_size", 512)
    return scores_over_inits(ctx, ScoringRecipe.from_params(ctx.params), repeat=ctx.params.get("repeat", 10),
                             arch=ctx.params.get("arch"), score=lambda model: score(model, batch),
                             method=method).cpu()


def picks_per_class(ctx: "DistillContext", scores: Callable[[], torch.Tensor], *, largest: bool
                    ) -> list[torch.Tensor]:
    """Per class, the pool indices (int64) of the ``ipc`` (or ``fraction``) best of ``scores()``
    ``[N]`` (``largest``: highest first, else lowest first). The class budgets are checked before
    ``scores`` runs, so an impossible ``ipc`` fails before any scoring network trains."""
    pools, class_budgets = class_pools_and_budgets(ctx, ctx.params.get("fraction"))
    return class_balanced_picks(scores(), pools, class_budgets, largest=largest)


def averaged_subset(ctx: "DistillContext", picks: Sequence[torch.Tensor], *, method: str) -> "DistilledSet":
    """:func:`coreset_subset` of a selector scored by :func:`mean_score_over_inits`, its meta naming
    the networks it averaged."""
    return coreset_subset(ctx, picks, method=method, meta={
        "scoring_arch": ctx.params.get("arch") or ctx.arch,
        "scoring_net": f"{ctx.params.get('repeat', 10)} networks trained here, "
                       f"{ctx.params.get('selection_epochs', 20)} epochs each"})


def _check_batch(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
