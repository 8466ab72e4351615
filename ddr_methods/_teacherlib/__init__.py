"""What the teacher-based soft-label methods (``rded``, ``sre2l``, ``d4m``) share.

A library, not a plugin (it registers nothing): getting the protocol's teacher with a clear error,
batched teacher logits, BatchNorm statistics read through forward hooks, the valid pixel range
of a dataset, and packaging a teacher-labelled :class:`~ddr.method.distilled.DistilledSet` with
its storage cost in ``meta["storage_bytes"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ddr import ConfigError, DdrError
from ddr.method.distilled import DistilledSet
from ddr.method.helpers import class_major_labels

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext

LABEL_MODES = ("teacher", "stored_soft")
"""``teacher``: the evaluation relabels every augmented batch with the teacher (online);
``stored_soft``: one teacher logit vector per distilled image is stored with the set."""

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def get_teacher(ctx: DistillContext, method: str) -> nn.Module:
    """The protocol's teacher (eval mode, frozen); a DdrError when the context has none."""
    if ctx.teacher is None:
        raise DdrError(f"method '{method}' needs the protocol's teacher but the context has none; "
                       "declare needs_teacher=True in its MethodSpec")
    teacher = ctx.teacher()
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_logits(teacher: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """float32 ``[N, K]`` logits of ``images`` (on the teacher's device), in batches."""
    device = next(teacher.parameters()).device
    out = [teacher(images[i:i + batch_size].to(device)).float() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 0)


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers with running statistics, in forward-registration order."""
    return [m for m in model.modules() if isinstance(m, _BN_TYPES) and m.running_mean is not None
            and m.running_var is not None]


class BNStatistics:
    """Forward hooks on a model's BatchNorm layers that record, per call, the distance between the
    batch statistics of the layer's *input* and the layer's running statistics (SRe2L's
    ``BNFeatureHook``): ``||mu(x) - running_mean||_2 + ||var(x) - running_var||_2`` with the
    biased variance over ``(N, H, W)``.

    Use as a context manager; ``losses`` holds one scalar per layer after each forward pass.
    """

    def __init__(self, model: nn.Module):
        self.layers = batchnorm_layers(model)
        self.losses: list[torch.Tensor | None] = [None] * len(self.layers)
        self._handles: list[Any] = []

    def __enter__(self) -> BNStatistics:
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, i: int) -> Any:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            x = inputs[0]
            dims = [d for d in range(x.dim()) if d != 1]
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            running_mean: Any = module.running_mean
            running_var: Any = module.running_var
            self.losses[i] = (torch.linalg.vector_norm(mean - running_mean, 2)
                              + torch.linalg.vector_norm(var - running_var, 2))
        return hook

    def loss(self, first_multiplier: float = 1.0) -> torch.Tensor:
        """``first_multiplier * L_0 + sum_{l>0} L_l`` of the last forward pass."""
        if any(v is None for v in self.losses):
            raise DdrError("BatchNorm hooks recorded nothing: run a forward pass first")
        total: Any = self.losses[0] * first_multiplier  # type: ignore[operator]
        for v in self.losses[1:]:
            total = total + v
        return total


def _mean_std(ctx: DistillContext, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's per-channel mean and std as ``[1, C, 1, 1]`` float32 tensors on ``device``."""
    mean = torch.tensor(ctx.dataset.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(ctx.dataset.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return mean, std


def pixel_bounds(ctx: DistillContext) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel ``(low, high)`` ``[1, C, 1, 1]`` of valid pixels in the dataset's pixel space
    (0..1 pixels normalised with the dataset's mean/std); ``None`` for ZCA space (no box)."""
    space = ctx.dataset.pixel_space
    if space == "zca":
        return None
    mean, std = _mean_std(ctx, ctx.device)
    if space == "pixel01":
        return torch.zeros_like(mean), torch.ones_like(mean)
    return (0.0 - mean) / std, (1.0 - mean) / std


def to_pixel_space(ctx: DistillContext, images01: torch.Tensor) -> torch.Tensor:
    """0..1 pixels ``[N, C, H, W]`` in the dataset's pixel space (normalised with mean/std)."""
    space = ctx.dataset.pixel_space
    if space == "pixel01":
        return images01
    if space != "normalized":
        raise ConfigError(f"cannot produce images in pixel space {space!r}; run without --zca")
    mean, std = _mean_std(ctx, images01.device)
    return (images01 - mean) / std


def from_pixel_space(ctx: DistillContext, images: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_pixel_space`: 0..1 pixels."""
    space = ctx.dataset.pixel_space
    if space == "pixel01":
        return images
    if space != "normalized":
        raise ConfigError(f"cannot read images in pixel space {space!r}; run without --zca")
    mean, std = _mean_std(ctx, images.device)
    return images * std + mean


def storage_bytes(images: torch.Tensor, soft_labels: torch.Tensor | None) -> dict[str, int]:
    """Bytes the set stores: its images and its soft labels (0 when the teacher relabels online)."""
    return {
        "images": int(images.numel() * images.element_size()),
        "soft_labels": 0 if soft_labels is None else int(soft_labels.numel() * soft_labels.element_size()),
    }


def check_label_mode(method: str, mode: str) -> str:
    if mode not in LABEL_MODES:
        raise ConfigError(f"method '{method}': labels={mode!r} is invalid; expected one of {', '.join(LABEL_MODES)}")
    return mode


def teacher_labelled_set(ctx: DistillContext, images: torch.Tensor, meta: dict[str, Any], *,
                         labels: str = "teacher", teacher: nn.Module | None = None) -> DistilledSet:
    """Package class-major images as a teacher-labelled set.

    ``labels="teacher"``: no soft labels are stored; the evaluation relabels every augmented batch
    (label strategy ``teacher``). ``labels="stored_soft"``: the teacher's logits of the (unaugmented)
    images are stored (label strategy ``stored_soft``). ``meta["storage_bytes"]`` records both costs.
    """
    images = images.detach().to("cpu", torch.float32).contiguous()
    soft = None
    if labels == "stored_soft":
        if teacher is None:
            raise DdrError("labels=stored_soft needs the teacher")
        soft = teacher_logits(teacher, images.to(ctx.device)).to("cpu", torch.float32).contiguous()
    meta = {**meta, "labels": labels, "storage_bytes": storage_bytes(images, soft)}
    return DistilledSet(
        images=images,
        labels=class_major_labels(ctx.num_classes, ctx.ipc, "cpu"),
        soft_labels=soft,
        pixel_space=ctx.dataset.pixel_space,
        label_strategy=labels,
        meta=meta,
    )


def child_generator(ctx: DistillContext, device: torch.device | str | None = None) -> torch.Generator:
    """A fresh ``torch.Generator`` (on ``device``, default the context's) seeded from ctx.generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator, device=ctx.generator.device).item())
    gen = torch.Generator(device=device if device is not None else ctx.generator.device)
    gen.manual_seed(seed)
    return gen
