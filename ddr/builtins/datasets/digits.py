"""``digits``: scikit-learn's 1797 handwritten 8x8 digits, the embedded offline default.

Pixels (0..16 integers) are divided by 16, upsampled to 16x16 with bilinear interpolation
(``align_corners=False``) and normalised with :data:`~ddr.builtins.datasets.catalog.DIGITS_MEAN`
/ ``DIGITS_STD``. The split is fixed: ``train_test_split(test_size=1/3, stratify=labels,
random_state=0)`` -> 1198 train and 599 test images, each split kept in original file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ddr.builtins.datasets.catalog import DIGIT_NAMES, DIGITS_MEAN, DIGITS_STD
from ddr.builtins.datasets.loading import reject_argument, reject_unknown_params
from ddr.builtins.datasets.tensors import label_tensor, normalize
from ddr.engine.data import ImageDataset, Split

NAME = "digits"
IMAGE_SIZE = (16, 16)
TEST_FRACTION = 1 / 3
SPLIT_SEED = 0


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified train/test index split, each sorted ascending."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return np.sort(train), np.sort(test)


def pixels01(images8: np.ndarray) -> torch.Tensor:
    """0..16 digit images ``[N, 8, 8]`` -> float32 ``[N, 1, 16, 16]`` in 0..1."""
    x = torch.from_numpy(images8.astype(np.float32) / 16.0).unsqueeze(1)
    return F.interpolate(x, size=IMAGE_SIZE, mode="bilinear", align_corners=False)


def load(*, root: Path | None = None, argument: str | None = None, download: bool = False,
         **params: Any) -> ImageDataset:
    """Load ``digits`` (``root`` and ``download`` are ignored: the data ships with scikit-learn)."""
    reject_argument(NAME, argument)
    reject_unknown_params(NAME, params, ())
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, test = split_indices(labels)
    images = normalize(pixels01(bunch.images), DIGITS_MEAN, DIGITS_STD)
    index = torch.from_numpy
    return ImageDataset(
        name=NAME,
        num_classes=10,
        channels=1,
        image_size=IMAGE_SIZE,
        mean=DIGITS_MEAN,
        std=DIGITS_STD,
        train=Split(labels=label_tensor(labels[train]), images=images[index(train)].contiguous()),
        test=Split(labels=label_tensor(labels[test]), images=images[index(test)].contiguous()),
        class_names=DIGIT_NAMES,
    )
