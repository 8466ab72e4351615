"""Contract check for dataset plugins: ``check_dataset(MY_SPEC)`` in one line of a test.

It loads the dataset (twice, when given a spec, to check determinism) and asserts what the rest
of ddr relies on: dtypes, shapes that agree with the spec, labels in range with every class in
train, finite values, roughly zero-mean/unit-std normalised train images, and identical tensors
on every load. All problems found are reported together in one :class:`AssertionError`.

Example::

    from ddr.testing.datasets import check_dataset
    from my_plugin import ddr_datasets

    def test_my_dataset(tmp_path):
        make_tiny_files(tmp_path)
        check_dataset(ddr_datasets()[0], root=tmp_path)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ddr.engine.data import ImageDataset, Split
from ddr.plugin.registry import import_target
from ddr.plugin.specs import DatasetSpec

PIXEL_SPACES = ("normalized", "zca")


def resolve_target(spec: DatasetSpec) -> Callable[..., Any]:
    """Import a spec's ``"module:attr"`` target (or return it if it is already callable)."""
    return import_target(spec)


def load_spec(spec: DatasetSpec, *, root: Path | None = None, argument: str | None = None,
              download: bool = False, **params: Any) -> ImageDataset:
    """Call a spec's target as the core does: ``root`` defaults to :func:`ddr.store.paths.data_dir`,
    parameters are the spec's ``defaults`` updated with ``params``."""
    if root is None:
        from ddr.store.paths import data_dir

        root = data_dir()
    return resolve_target(spec)(root=Path(root), argument=argument, download=download,
                                **{**dict(spec.defaults), **params})


def _sample_index(n: int, limit: int) -> torch.Tensor:
    if n <= limit:
        return torch.arange(n)
    return torch.linspace(0, n - 1, steps=limit).round().long().unique()


def _sample_images(split: Split, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, images)`` of up to ``limit`` evenly spaced items."""
    index = _sample_index(len(split), limit)
    if split.images is not None:
        return index, split.images[index]
    items = [split.source[int(i)] for i in index]
    return index, torch.stack([torch.as_tensor(img) for img, _ in items])


def _check_split(ds: ImageDataset, which: str, split: Split, limit: int, problems: list[str]) -> None:
    where = f"{ds.name} {which}"
    labels = split.labels
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.ndim != 1:
        problems.append(f"{where}: labels must be an int64 [N] tensor, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}")
        return
    if labels.device.type != "cpu":
        problems.append(f"{where}: labels must be on the CPU, found {labels.device}")
    if len(labels) == 0:
        problems.append(f"{where}: the split is empty")
        return
    if int(labels.min()) < 0 or int(labels.max()) >= ds.num_classes:
        problems.append(f"{where}: labels must lie in [0, {ds.num_classes}), found "
                        f"[{int(labels.min())}, {int(labels.max())}]")
        return
    expected = (ds.channels, *ds.image_size)
    if split.images is not None:
        images = split.images
        if images.dtype != torch.float32 or tuple(images.shape) != (len(labels), *expected):
            problems.append(f"{where}: images must be float32 {[len(labels), *expected]}, got "
                            f"{images.dtype} {list(images.shape)}")
            return
        if images.device.type != "cpu":
            problems.append(f"{where}: images must be on the CPU, found {images.device}")
        if not bool(torch.isfinite(images).all()):
            problems.append(f"{where}: images contain NaN or infinite values")
    else:
        if len(split.source) != len(labels):
            problems.append(f"{where}: source has {len(split.source)} items but there are {len(labels)} labels")
            return
        for i in _sample_index(len(labels), min(limit, 64)).tolist():
            image, label = split.source[i]
            if (not isinstance(image, torch.Tensor) or image.dtype != torch.float32
                    or tuple(image.shape) != expected):
                problems.append(f"{where}: source[{i}] image must be float32 {list(expected)}, got "
                                f"{getattr(image, 'dtype', type(image).__name__)} {list(getattr(image, 'shape', []))}")
                return
            if int(label) != int(labels[i]):
                problems.append(f"{where}: source[{i}] yields label {int(label)} but labels[{i}] is {int(labels[i])}")
                return
            if not bool(torch.isfinite(image).all()):
                problems.append(f"{where}: source[{i}] contains NaN or infinite values")
                return


def _check_metadata(ds: ImageDataset, problems: list[str]) -> bool:
    ok = True
    if not isinstance(ds.num_classes, int) or ds.num_classes < 1:
        problems.append(f"{ds.name}: num_classes must be a positive int, got {ds.num_classes!r}")
        ok = False
    if not isinstance(ds.channels, int) or ds.channels < 1:
        problems.append(f"{ds.name}: channels must be a positive int, got {ds.channels!r}")
        ok = False
    size = tuple(ds.image_size) if isinstance(ds.image_size, (tuple, list)) else ()
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        problems.append(f"{ds.name}: image_size must be (H, W) of positive ints, got {ds.image_size!r}")
        ok = False
    if ok and (len(ds.mean) != ds.channels or len(ds.std) != ds.channels):
        problems.append(f"{ds.name}: mean and std need {ds.channels} value(s) each, got {ds.mean} / {ds.std}")
    if any(s <= 0 for s in ds.std):
        problems.append(f"{ds.name}: std values must be positive, got {ds.std}")
    if ds.class_names and len(ds.class_names) != ds.num_classes:
        problems.append(f"{ds.name}: {len(ds.class_names)} class_names for {ds.num_classes} classes")
    if ds.pixel_space not in PIXEL_SPACES:
        problems.append(f"{ds.name}: pixel_space must be one of {PIXEL_SPACES}, got {ds.pixel_space!r}")
    return ok


def _check_against_spec(ds: ImageDataset, spec: DatasetSpec, params: dict[str, Any], problems: list[str]) -> None:
    where = f"{ds.name} vs spec '{spec.name}'"
    if spec.num_classes is not None and ds.num_classes != spec.num_classes:
        problems.append(f"{where}: num_classes {ds.num_classes} != {spec.num_classes}")
    if spec.channels is not None and "channels" not in params and ds.channels != spec.channels:
        problems.append(f"{where}: channels {ds.channels} != {spec.channels}")
    if (spec.image_size is not None and "image_size" not in params
            and tuple(ds.image_size) != tuple(spec.image_size)):
        problems.append(f"{where}: image_size {tuple(ds.image_size)} != {tuple(spec.image_size)}")
    for what in ("mean", "std"):
        expected = getattr(spec, what)
        found = getattr(ds, what)
        if expected is not None and what not in params and (
                len(found) != len(expected) or any(abs(a - b) > 1e-6 for a, b in zip(found, expected))):
            problems.append(f"{where}: {what} {tuple(found)} != {tuple(expected)}")


def _check_normalization(ds: ImageDataset, limit: int, mean_tolerance: float,
                         std_range: tuple[float, float], problems: list[str]) -> None:
    _, images = _sample_images(ds.train, limit)
    per_channel = images.to(torch.float64).transpose(0, 1).reshape(images.shape[1], -1)
    means, stds = per_channel.mean(dim=1), per_channel.std(dim=1)
    for c, (m, s) in enumerate(zip(means.tolist(), stds.tolist())):
        if abs(m) > mean_tolerance or not std_range[0] <= s <= std_range[1]:
            problems.append(
                f"{ds.name} train channel {c}: normalised images have mean {m:.3f} and std {s:.3f}; "
                f"expected |mean| <= {mean_tolerance} and std in {list(std_range)} "
                "(are the mean/std constants those of this dataset, and applied as (x - mean) / std "
                "to 0..1 pixels?)"
            )


def _same_split(a: Split, b: Split, limit: int) -> bool:
    if not torch.equal(a.labels, b.labels):
        return False
    if (a.images is None) != (b.images is None):
        return False
    if a.images is not None and b.images is not None:
        return torch.equal(a.images, b.images)
    _, images_a = _sample_images(a, min(limit, 32))
    _, images_b = _sample_images(b, min(limit, 32))
    return torch.equal(images_a, images_b)


def check_dataset(dataset: ImageDataset | DatasetSpec, *, check_normalization: bool = True,
                  mean_tolerance: float = 0.25, std_range: tuple[float, float] = (0.5, 2.0),
                  max_samples: int = 2048, **load_kwargs: Any) -> ImageDataset:
    """Assert that a dataset (or a spec's loader) meets ddr's dataset contract.

    Args:
        dataset: a loaded :class:`ImageDataset`, or a :class:`DatasetSpec` whose target is called
            (twice, to check that loading is deterministic) as
            ``target(root=..., argument=..., download=False, **defaults_and_params)``.
        check_normalization: assert that train images are roughly zero-mean, unit-std per channel
            (turn off for tiny synthetic data normalised with the real dataset's constants).
        mean_tolerance: largest accepted ``|mean|`` per channel of normalised train images.
        std_range: accepted ``[low, high]`` std per channel (loose: the literature's CIFAR
            constants give std ~1.2).
        max_samples: train images inspected for normalisation (evenly spaced).
        **load_kwargs: ``root``, ``argument``, ``download`` and dataset parameters for the spec.

    Returns:
        The (first) loaded dataset.

    Raises:
        AssertionError: listing every problem found.
    """
    problems: list[str] = []
    spec = dataset if isinstance(dataset, DatasetSpec) else None
    params = {k: v for k, v in load_kwargs.items() if k not in ("root", "argument", "download")}
    if spec is not None:
        loaded: Any = load_spec(spec, **load_kwargs)
    else:
        if load_kwargs:
            raise TypeError(f"load arguments {sorted(load_kwargs)} only apply when checking a DatasetSpec")
        loaded = dataset
    if not isinstance(loaded, ImageDataset):
        raise AssertionError(f"expected a ddr.engine.data.ImageDataset, got {type(loaded).__name__}")
    if _check_metadata(loaded, problems):
        if spec is not None:
            _check_against_spec(loaded, spec, params, problems)
        for which in ("train", "test"):
            split = getattr(loaded, which)
            if not isinstance(split, Split):
                problems.append(f"{loaded.name}: {which} must be a ddr.engine.data.Split, got {type(split).__name__}")
                continue
            _check_split(loaded, which, split, max_samples, problems)
        if not problems:
            counts = torch.bincount(loaded.train.labels, minlength=loaded.num_classes)
            absent = torch.nonzero(counts == 0).flatten().tolist()
            if absent:
                problems.append(f"{loaded.name} train: classes {absent[:20]} have no samples")
        if not problems and check_normalization and loaded.pixel_space == "normalized":
            _check_normalization(loaded, max_samples, mean_tolerance, std_range, problems)
    if spec is not None and not problems:
        again = load_spec(spec, **load_kwargs)
        for which in ("train", "test"):
            if not _same_split(getattr(loaded, which), getattr(again, which), max_samples):
                problems.append(f"{loaded.name} {which}: loading twice gave different labels or images "
                                "(use fixed seeds and a sorted file order)")
        if (again.mean, again.std, tuple(again.class_names)) != (loaded.mean, loaded.std, tuple(loaded.class_names)):
            problems.append(f"{loaded.name}: loading twice gave different mean/std or class names")
    if problems:
        raise AssertionError("dataset contract violated:\n  - " + "\n  - ".join(problems))
    return loaded
