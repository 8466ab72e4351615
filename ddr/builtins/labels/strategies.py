"""The built-in label strategies: ``hard``, ``stored_soft``, ``teacher`` and ``teacher_views:K``.

Each is built as ``Strategy(loss=..., **loss_params)``: ``loss`` is a built-in loss name or an
already-built loss callable, and every other parameter goes to that loss (``temperature``,
``label_smoothing``, ...). The strategy is prepared once per student, then asked for the
:class:`ddr.engine.labels.Targets` of every augmented batch.

Every strategy passes the batch's mix on in ``Targets.mix``, so losses that use hard labels mix
them (mixup/cutmix). Soft targets are logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ddr.builtins.losses.functions import build_loss, loss_name
from ddr.engine.labels import Loss, Targets
from ddr.errors import ConfigError, DdrError, DistilledSetError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ddr.engine.augment import Mix

__all__ = ["HardLabels", "StoredSoftLabels", "TeacherLabels", "TeacherViews", "mix_soft_targets", "teacher_views"]


def mix_soft_targets(logits: torch.Tensor, mix: "Mix") -> torch.Tensor:
    """Mix target logits ``[B, K]`` the way mixup/cutmix mix labels, in probability space.

    Returns ``log(lam_i * softmax(z_i) + (1 - lam_i) * softmax(z_perm[i]))`` (float32): logits
    whose softmax is the mixed distribution. A loss temperature T is applied to these logits, so
    the target becomes that mixture raised to the power 1/T and renormalised. (Averaging the
    logits themselves would not give the mixed distribution.) The output is normalised
    (log-probabilities), which matters only to losses that are not shift-invariant (``mse_gt``).
    """
    log_probs = torch.log_softmax(logits.float(), dim=1)
    lam = mix.lam.to(log_probs).reshape(-1, 1).clamp(0.0, 1.0)
    # log(0) = -inf drops a side exactly when lam is 0 or 1; logsumexp handles it.
    own = log_probs + torch.log(lam)
    partner = log_probs[mix.perm] + torch.log1p(-lam)
    return torch.logsumexp(torch.stack((own, partner)), dim=0)


class _StrategyBase:
    """Loss resolution and hard-label bookkeeping shared by the strategies."""

    name = ""
    soft = False
    needs_teacher = False
    default_loss = ""

    def __init__(self, loss: "str | Loss | None" = None, **loss_params: Any):
        self.loss_fn: Loss = build_loss(self.default_loss if loss is None else loss, **loss_params)
        self._hard: torch.Tensor | None = None
        self.num_classes = 0

    def loss(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        """The configured loss of ``logits[B, K]`` against ``targets``: a scalar tensor."""
        return self.loss_fn(logits, targets)

    def prepare(self, *, hard_labels: torch.Tensor, soft_labels: "torch.Tensor | None",
                teachers: "list[nn.Module]", num_classes: int) -> None:
        """Check and keep the training set's hard labels ``[N]`` (int64, values in 0..K-1)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"label strategy '{self.name}': num_classes must be an int >= 1, got {num_classes!r}")
        if not isinstance(hard_labels, torch.Tensor) or hard_labels.ndim != 1 or hard_labels.numel() == 0:
            shape = tuple(hard_labels.shape) if isinstance(hard_labels, torch.Tensor) else type(hard_labels).__name__
            raise DistilledSetError(
                f"label strategy '{self.name}': hard labels must be a non-empty [N] tensor of class "
                f"indices, got {shape}"
            )
        if hard_labels.dtype.is_floating_point or hard_labels.dtype.is_complex or hard_labels.dtype == torch.bool:
            raise DistilledSetError(
                f"label strategy '{self.name}': hard labels must be integer class indices, got dtype "
                f"{hard_labels.dtype}; store soft labels (logits) separately as soft_labels"
            )
        low, high = int(hard_labels.min()), int(hard_labels.max())
        if low < 0 or high >= num_classes:
            raise DistilledSetError(
                f"label strategy '{self.name}': hard labels range over {low}..{high}, expected class "
                f"indices in 0..{num_classes - 1} for K = {num_classes}"
            )
        self._hard = hard_labels.long()
        self.num_classes = num_classes

    def _hard_targets(self, index: torch.Tensor) -> torch.Tensor:
        if self._hard is None:
            raise ConfigError(f"label strategy '{self.name}': targets() was called before prepare()")
        return self._hard[index.to(self._hard.device)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(loss={loss_name(self.loss_fn)!r})"


class HardLabels(_StrategyBase):
    """``hard``: train towards the class labels (default loss ``ce``; ``label_smoothing`` is a
    loss parameter). Mixed batches mix the labels in the loss."""

    name = "hard"
    default_loss = "ce"

    def __init__(self, loss: "str | Loss | None" = None, **loss_params: Any):
        super().__init__(loss, **loss_params)
        if getattr(self.loss_fn, "needs_soft", False):
            raise ConfigError(
                f"loss {loss_name(self.loss_fn)!r} needs soft targets but the 'hard' label strategy "
                "gives only class labels; use --label-strategy stored_soft or teacher, or the loss 'ce'"
            )

    def targets(self, images: torch.Tensor, index: torch.Tensor, mix: "Mix | None") -> Targets:
        """``Targets(hard=labels[index], soft=None, mix=mix)``; ``images`` are not looked at."""
        return Targets(hard=self._hard_targets(index), soft=None, mix=mix)


class StoredSoftLabels(_StrategyBase):
    """``stored_soft``: one stored logit vector per image (DATM's learned labels; default loss
    ``sce`` at T = 1). Mixed batches mix the stored targets as probabilities
    (:func:`mix_soft_targets`)."""

    name = "stored_soft"
    soft = True
    default_loss = "sce"

    def __init__(self, loss: "str | Loss | None" = None, **loss_params: Any):
        super().__init__(loss, **loss_params)
        self._soft: torch.Tensor | None = None

    def prepare(self, *, hard_labels: torch.Tensor, soft_labels: "torch.Tensor | None",
                teachers: "list[nn.Module]", num_classes: int) -> None:
        """Keep hard labels ``[N]`` and the stored soft labels ``[N, K]`` (logits)."""
        super().prepare(hard_labels=hard_labels, soft_labels=soft_labels, teachers=teachers,
                        num_classes=num_classes)
        if soft_labels is None:
            raise DistilledSetError(
                "label strategy 'stored_soft' needs soft labels stored with the distilled set, but "
                "this set has none; evaluate it with --label-strategy hard, or with --label-strategy "
                "teacher to have a teacher label every batch"
            )
        expected = (hard_labels.shape[0], num_classes)
        if not isinstance(soft_labels, torch.Tensor) or tuple(soft_labels.shape) != expected:
            shape = tuple(soft_labels.shape) if isinstance(soft_labels, torch.Tensor) else type(soft_labels).__name__
            raise DistilledSetError(
                f"stored soft labels must be logits of shape [N, K] = {list(expected)}, got {shape}"
            )
        if not soft_labels.dtype.is_floating_point:
            raise DistilledSetError(f"stored soft labels must be floating-point logits, got dtype {soft_labels.dtype}")
        if not bool(torch.isfinite(soft_labels).all()):
            raise DistilledSetError("stored soft labels contain NaN or infinite values; they must be finite logits")
        self._soft = soft_labels.detach()

    def targets(self, images: torch.Tensor, index: torch.Tensor, mix: "Mix | None") -> Targets:
        """``Targets(hard=labels[index], soft=stored[index] (mixed when mix), mix=mix)``."""
        hard = self._hard_targets(index)
        assert self._soft is not None  # set together with the hard labels
        soft = self._soft[index.to(self._soft.device)]
        if mix is not None:
            soft = mix_soft_targets(soft, mix)
        return Targets(hard=hard, soft=soft, mix=mix)


class TeacherLabels(_StrategyBase):
    """``teacher``: one or more teachers relabel every augmented batch (DD-Ranking's mode M,
    SRe²L/RDED); several teachers' logits are averaged. Teachers run in eval mode under
    ``torch.no_grad``. Default loss ``kl`` at T = 4 (the ``soft`` protocol)."""

    name = "teacher"
    soft = True
    needs_teacher = True
    default_loss = "kl"

    def __init__(self, loss: "str | Loss | None" = None, **loss_params: Any):
        super().__init__(loss, **loss_params)
        self._teachers: list[nn.Module] = []

    def prepare(self, *, hard_labels: torch.Tensor, soft_labels: "torch.Tensor | None",
                teachers: "list[nn.Module]", num_classes: int) -> None:
        """Keep hard labels ``[N]`` and the teachers (put in eval mode; stored soft labels are
        not used)."""
        super().prepare(hard_labels=hard_labels, soft_labels=soft_labels, teachers=teachers,
                        num_classes=num_classes)
        teachers = list(teachers or [])
        if not teachers:
            raise ConfigError(
                "label strategy 'teacher' needs at least one teacher model, but none was given; "
                "use a protocol that provides a teacher (e.g. 'soft'), or --label-strategy hard / "
                "stored_soft"
            )
        for teacher in teachers:
            if not callable(teacher):
                raise ConfigError(f"a teacher must be a model mapping images to logits, got {type(teacher).__name__}")
            # A teacher in train mode would update its BatchNorm statistics on the distilled
            # images and label with batch statistics (SRe²L's CIFAR relabel bug).
            if hasattr(teacher, "eval"):
                teacher.eval()
        self._teachers = teachers

    def targets(self, images: torch.Tensor, index: torch.Tensor, mix: "Mix | None") -> Targets:
        """``Targets(hard=labels[index], soft=mean_k teacher_k(images), mix=mix)``."""
        hard = self._hard_targets(index)
        with torch.no_grad():
            soft = None
            for teacher in self._teachers:
                if getattr(teacher, "training", False):
                    teacher.eval()
                out = teacher(images)
                if not isinstance(out, torch.Tensor) or tuple(out.shape) != (images.shape[0], self.num_classes):
                    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ConfigError(
                        f"teacher {type(teacher).__name__} returned {shape} for {images.shape[0]} "
                        f"images; expected logits [B, K] = [{images.shape[0]}, {self.num_classes}]"
                    )
                out = out.float()
                soft = out if soft is None else soft + out
            assert soft is not None  # prepare() guarantees at least one teacher
            if len(self._teachers) > 1:
                soft = soft / len(self._teachers)
        return Targets(hard=hard, soft=soft, mix=mix)


class TeacherViews(TeacherLabels):
    """``teacher_views:K``: a label budget of K stored soft labels per image, FKD-style (Shen & Xing,
    ECCV 2022: soft labels of fixed crops are stored once and replayed). The teacher labels every
    augmented batch of the first K epochs; from epoch K on THE training loop replays epoch
    ``e mod K`` exactly — it restores the random generator to that epoch's starting state, so the
    data order, the augmented views and the mixing are the same — and this strategy returns the
    soft labels it stored for those very views. The student therefore trains on K fixed views per
    image with N·K teacher queries and N·K stored label vectors, instead of a fresh view and a
    teacher query per image and epoch (``teacher``). With K ≥ the epochs nothing is replayed and it
    equals ``teacher``."""

    name = "teacher_views"

    def __init__(self, loss: "str | Loss | None" = None, *, views: int, **loss_params: Any):
        super().__init__(loss, **loss_params)
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise ConfigError(f"teacher_views needs a number of views K >= 1 (teacher_views:K), got {views!r}")
        self.replay_epochs = views
        self.queries = 0
        """Images the teacher labelled (N·K once every view is stored)."""
        self._stored: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._view = 0
        self._batch = 0

    def start_epoch(self, epoch: int) -> None:
        """THE loop tells the strategy an epoch begins (``epoch`` counted from 0)."""
        self._view, self._batch = epoch % self.replay_epochs, 0

    def targets(self, images: torch.Tensor, index: torch.Tensor, mix: "Mix | None") -> Targets:
        """The teacher's targets of a batch of the first K epochs, stored; the stored ones after."""
        key = (self._view, self._batch)
        self._batch += 1
        stored = self._stored.get(key)
        if stored is None:
            targets = super().targets(images, index, mix)
            assert targets.soft is not None
            self.queries += int(images.shape[0])
            self._stored[key] = (index.detach().clone(), targets.soft)
            return targets
        stored_index, soft = stored
        if not torch.equal(stored_index.to(index.device), index):
            raise DdrError("teacher_views: the replayed epoch drew another batch than the stored one; the training "
                           "loop must restore the generator at each epoch (a bug: please report it)")
        return Targets(hard=self._hard_targets(index), soft=soft, mix=mix)

    def __repr__(self) -> str:
        return f"TeacherViews(views={self.replay_epochs}, loss={loss_name(self.loss_fn)!r})"


def teacher_views(*, argument: str, loss: "str | Loss | None" = None, **loss_params: Any) -> TeacherViews:
    """``teacher_views:K``: :class:`TeacherViews` with ``K`` views per image."""
    text = str(argument).strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"teacher_views:K needs K, a whole number of stored views per image >= 1; got {argument!r} "
                          "(e.g. --label-strategy teacher_views:4)")
    return TeacherViews(loss, views=int(text), **loss_params)
