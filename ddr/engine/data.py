"""Runtime dataset types every dataset plugin returns and the protocol consumes.

Images are float32 ``[N, C, H, W]`` already in the dataset's *pixel space* (normally
``normalized``: ``(x - mean) / std`` of 0..1 pixels; ``zca`` after ZCA whitening). Labels are
int64 ``[N]`` and are always held in memory, so the per-class index never decodes an image.

Small datasets keep every image in one tensor (:class:`Split` with ``images``). Large ones stream
through a ``torch.utils.data.Dataset`` (``source``) whose items are ``(image_tensor, label)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ddr.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class Split:
    """One split (train or test) of a dataset.

    Attributes:
        labels: int64 ``[N]`` class indices in ``[0, K)``.
        images: float32 ``[N, C, H, W]`` in the dataset's pixel space, or ``None`` when streaming.
        source: a map-style dataset yielding ``(image[C,H,W], label)`` when ``images`` is None.
    """

    labels: "torch.Tensor"
    images: "torch.Tensor | None" = None
    source: Any = None

    def __post_init__(self) -> None:
        if self.images is None and self.source is None:
            raise DataError("a Split needs either in-memory images or a streaming source")
        if self.images is not None and len(self.images) != len(self.labels):
            raise DataError(f"split has {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def in_memory(self) -> bool:
        return self.images is not None

    def class_indices(self, num_classes: int) -> list["torch.Tensor"]:
        """Indices of each class's samples, ``[idx_c for c in range(K)]`` (int64, ascending)."""
        import torch

        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=num_classes).tolist()
        return list(torch.split(order, counts))

    def take(self, index: "torch.Tensor") -> "torch.Tensor":
        """Images at ``index`` as one float32 tensor ``[len(index), C, H, W]``."""
        import torch

        if self.images is not None:
            return self.images[index.to(self.images.device)]
        return torch.stack([self.source[int(i)][0] for i in index.tolist()])

    def subset(self, index: "torch.Tensor") -> "Split":
        """A new split holding only ``index`` (materialised in memory)."""
        return Split(labels=self.labels[index.to(self.labels.device)], images=self.take(index))

    def to(self, device: Any) -> "Split":
        """Move in-memory tensors to ``device`` (streaming splits are left as they are)."""
        if self.images is None:
            return self
        return Split(labels=self.labels.to(device), images=self.images.to(device), source=self.source)


@dataclass
class ImageDataset:
    """A loaded dataset: metadata plus train and test splits.

    Attributes:
        name: registry name (``"cifar10"``, ``"folder:/data/x"``).
        num_classes: K.
        channels: C.
        image_size: ``(H, W)``.
        mean, std: per-channel normalisation constants of 0..1 pixels.
        class_names: index-aligned names.
        pixel_space: ``"normalized"`` or ``"zca"``.
        preprocess: extra record of preprocessing (e.g. ZCA fit key), stored in run records.
    """

    name: str
    num_classes: int
    channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: Split
    test: Split
    class_names: tuple[str, ...] = ()
    pixel_space: str = "normalized"
    preprocess: dict[str, Any] = field(default_factory=dict)
    zca: Any = None

    def with_splits(self, train: Split, test: Split, **changes: Any) -> "ImageDataset":
        return replace(self, train=train, test=test, **changes)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "image_size": list(self.image_size),
            "train_size": len(self.train),
            "test_size": len(self.test),
            "pixel_space": self.pixel_space,
            "preprocess": self.preprocess,
        }
