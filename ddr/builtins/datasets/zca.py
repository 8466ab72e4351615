"""ZCA whitening as MTT, DATM and DD-Ranking do it: ``kornia.enhance.ZCAWhitening(eps=0.1,
compute_inv=True)`` fitted on the whole training split as **0..1 pixels** (``ToTensor()`` only, no
mean/std normalisation) and applied to the train and test images.

The official code this follows: MTT (GeorgeCazenavette/mtt-distillation ``utils.py``,
``get_dataset``: ``transforms.ToTensor()`` alone when ``args.zca``, then
``K.enhance.ZCAWhitening(eps=0.1, compute_inv=True)`` fitted on the stacked train images), DATM
(``utils/utils_baseline.py``, the same) and DD-Ranking 0.2.0 (``ddranking/utils/data.py``,
``get_dataset`` with ``use_zca``). ddr's datasets hold mean/std-normalised images, so they are
unnormalised (``x * std + mean``) batch by batch before fitting and whitening; the whitened
images (``pixel_space="zca"``) are whitened 0..1 pixels with no normalisation before or after.

kornia's formula (``kornia/enhance/zca.py``, ``zca_mean`` and ``linear_transform``, with
``dim=0`` and ``unbiased=True``): with ``X`` the images flattened to ``[N, D]`` (``D = C*H*W``) and
``mu`` their mean, the unbiased covariance ``Sigma = (X - mu)^T (X - mu) / (N - 1) = U diag(S) U^T``
gives

    W     = U diag(1 / sqrt(S + eps)) U^T        whiten:    z = (x - mu) W
    W_inv = U diag(sqrt(S + eps)) U^T            inverse:   x = z W_inv + mu

The fit is computed in float64 (eigendecomposition of the symmetric covariance, which equals
kornia's SVD of it) and stored in float32. Application runs in batches on the device of the input.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ddr.engine.data import ImageDataset, Split
from ddr.errors import DataError

FIT_VERSION = "zca-v2-pixel01"
"""Identifies how fits are made; part of every fit key (so of every job keyed by a ZCA dataset)
and of every saved fit. v1 fitted normalised images; v2 fits 0..1 pixels, as kornia/MTT do."""
EPS = 0.1
"""The eigenvalue regulariser of MTT, DATM and DD-Ranking (``ZCAWhitening(eps=0.1)``)."""
BATCH = 4096
"""Rows processed at once when fitting or applying."""
MAX_DIM = 16384
"""Largest flattened image size D fitted (the D x D float64 covariance is 2 GiB at this size)."""

Normalization = tuple[Sequence[float], Sequence[float]]
"""Per-channel ``(mean, std)`` the images were normalised with: ``(x01 - mean) / std``."""


def _rows(images: torch.Tensor, normalization: Normalization | None) -> Iterator[torch.Tensor]:
    """float32 ``[b, D]`` batches of ``images`` ``[N, C, H, W]``, unnormalised to 0..1 pixels
    (``x * std + mean``) when ``normalization`` is given."""
    scale = shift = None
    if normalization is not None:
        mean, std = normalization
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise DataError(f"normalisation has {len(mean)} mean(s) and {len(std)} std(s) for images with "
                            f"{images.shape[1]} channel(s)")
        shift = torch.tensor([float(m) for m in mean], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
        scale = torch.tensor([float(s) for s in std], dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    for start in range(0, images.shape[0], BATCH):
        chunk = images[start:start + BATCH].to(torch.float32)
        if scale is not None and shift is not None:
            chunk = chunk * scale + shift
        yield chunk.reshape(chunk.shape[0], -1)


@dataclass(frozen=True)
class ZCA:
    """A fitted ZCA transform (kornia's ``ZCAWhitening`` with ``compute_inv=True``, fitted).

    Attributes:
        mean: float32 ``[1, D]`` mean of the flattened fit images (0..1 pixels for ddr's fits).
        transform: float32 ``[D, D]`` whitening matrix ``W`` (symmetric).
        inverse_transform: float32 ``[D, D]`` its inverse ``W_inv``.
        eps: the regulariser added to the eigenvalues.
        shape: ``(C, H, W)`` of the images it applies to.
    """

    mean: torch.Tensor
    transform: torch.Tensor
    inverse_transform: torch.Tensor
    eps: float
    shape: tuple[int, int, int]

    def _linear(self, x: torch.Tensor, matrix: torch.Tensor, before: torch.Tensor | None,
                after: torch.Tensor | None, normalization: Normalization | None = None) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise DataError(f"ZCA was fit on images {list(self.shape)}, got a batch {list(x.shape)}")
        device = x.device
        matrix = matrix.to(device)
        out = torch.empty(x.shape[0], matrix.shape[1], dtype=torch.float32, device=device)
        start = 0
        for chunk in _rows(x, normalization):
            if before is not None:
                chunk = chunk - before.to(device)
            chunk = chunk @ matrix
            if after is not None:
                chunk = chunk + after.to(device)
            out[start:start + chunk.shape[0]] = chunk
            start += chunk.shape[0]
        return out.reshape(x.shape)

    def apply(self, images: torch.Tensor, normalization: Normalization | None = None) -> torch.Tensor:
        """Whiten images ``[B, C, H, W]`` -> float32 ``[B, C, H, W]`` (``(x - mu) W``, kornia's
        ``ZCAWhitening.forward``). ``images`` are in the space of the fit (0..1 pixels), or
        normalised with ``normalization`` (``(mean, std)``), which is undone first."""
        return self._linear(images, self.transform, self.mean, None, normalization)

    def inverse(self, images: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`apply`: ``[B, C, H, W]`` -> ``z W_inv + mu`` (kornia's ``inverse_transform``),
        in the space of the fit (0..1 pixels for ddr's datasets)."""
        return self._linear(images, self.inverse_transform, None, self.mean)

    def to(self, device: torch.device | str) -> "ZCA":
        """A copy whose matrices live on ``device`` (avoids a transfer per call)."""
        return replace(self, mean=self.mean.to(device), transform=self.transform.to(device),
                       inverse_transform=self.inverse_transform.to(device))

    def save(self, path: Path) -> None:
        """Write the fit to ``path`` (safetensors), atomically."""
        from ddr.store.writable import save_tensors

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tensors = {"mean": self.mean, "transform": self.transform, "inverse_transform": self.inverse_transform}
        try:
            save_tensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, partial,
                         metadata={"eps": repr(self.eps), "shape": json.dumps(list(self.shape)), "version": FIT_VERSION})
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> "ZCA":
        """Read a fit written by :meth:`save`; :class:`DataError` if it is not one (or was written
        by another :data:`FIT_VERSION`)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in ("mean", "transform", "inverse_transform")}
            shape = tuple(int(v) for v in json.loads(meta["shape"]))
            eps = float(meta["eps"])
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as error:
            raise DataError(f"{path} is not a ZCA fit written by ddr: {error}") from error
        dim = int(np.prod(shape))
        if (meta.get("version") != FIT_VERSION or tuple(tensors["mean"].shape) != (1, dim)
                or tuple(tensors["transform"].shape) != (dim, dim)
                or tuple(tensors["inverse_transform"].shape) != (dim, dim)):
            raise DataError(f"{path}: ZCA fit has unexpected version or shapes")
        return cls(eps=eps, shape=shape, **tensors)  # type: ignore[arg-type]


def fit_zca(images: torch.Tensor, eps: float = EPS, normalization: Normalization | None = None) -> ZCA:
    """Fit ZCA whitening on ``images`` ``[N, C, H, W]`` (N >= 2), in float64 on their device.

    Equivalent to ``kornia.enhance.ZCAWhitening(eps=eps, compute_inv=True).fit(images)``. With
    ``normalization`` (``(mean, std)``), ``images`` are normalised ones and the fit is on the 0..1
    pixels ``images * std + mean`` (unnormalised batch by batch, without a full copy).
    """
    if images.ndim != 4 or images.shape[0] < 2:
        raise DataError(f"ZCA needs images [N, C, H, W] with N >= 2, got {list(images.shape)}")
    n = images.shape[0]
    dim = int(np.prod(images.shape[1:]))
    if dim > MAX_DIM:
        raise DataError(f"ZCA over {dim} pixel values per image is too large (limit {MAX_DIM}); "
                        "use it on 32x32 or 64x64 datasets")
    if eps < 0:
        raise DataError(f"ZCA eps must be >= 0, got {eps}")
    mean = torch.zeros(dim, dtype=torch.float64, device=images.device)
    for rows in _rows(images, normalization):
        mean += rows.to(torch.float64).sum(dim=0)
    mean /= n
    cov = torch.zeros(dim, dim, dtype=torch.float64, device=images.device)
    for rows in _rows(images, normalization):
        centered = rows.to(torch.float64) - mean
        cov.addmm_(centered.T, centered)
    cov /= n - 1
    eigenvalues, vectors = torch.linalg.eigh(cov)
    eigenvalues = eigenvalues.clamp_min(0.0) + eps
    whiten = (vectors * eigenvalues.rsqrt()) @ vectors.T
    unwhiten = (vectors * eigenvalues.sqrt()) @ vectors.T
    return ZCA(mean=mean.to(torch.float32).unsqueeze(0).cpu(), transform=whiten.to(torch.float32).cpu(),
               inverse_transform=unwhiten.to(torch.float32).cpu(), eps=float(eps),
               shape=tuple(int(s) for s in images.shape[1:]))  # type: ignore[arg-type]


def fit_key(name: str, train_images: torch.Tensor, eps: float, normalization: Normalization | None = None) -> str:
    """sha256 identifying a fit: :data:`FIT_VERSION`, dataset name, eps, image shape, the
    normalisation the train images carry (undone before fitting) and the train pixel bytes."""
    norm = None if normalization is None else [[repr(float(v)) for v in part] for part in normalization]
    digest = hashlib.sha256(json.dumps([FIT_VERSION, name, repr(float(eps)), list(train_images.shape), norm]).encode())
    flat = train_images.detach().to("cpu", torch.float32).contiguous().reshape(train_images.shape[0], -1)
    for start in range(0, flat.shape[0], BATCH):
        digest.update(flat[start:start + BATCH].numpy().tobytes())
    return digest.hexdigest()


def apply_zca(dataset: ImageDataset, cache_dir: Path | None = None, eps: float = EPS) -> ImageDataset:
    """Whiten both splits of an in-memory, normalised dataset with a ZCA fit on its train split,
    as MTT/DATM/DD-Ranking do: fitted on, and applied to, 0..1 pixels (the dataset's mean/std
    normalisation is undone first), ``eps=0.1``.

    The fit is cached in ``cache_dir/zca/<name>-<key>.safetensors`` (keyed by :func:`fit_key`)
    when ``cache_dir`` is given. Returns a new dataset with ``pixel_space="zca"``, ``zca`` set to
    the fit (``dataset.zca.inverse`` gives 0..1 pixels back) and
    ``preprocess["zca"] = {"eps", "key", "fit_on"}``.
    """
    if dataset.pixel_space != "normalized":
        raise DataError(f"ZCA applies to normalised images; dataset '{dataset.name}' is in pixel space "
                        f"'{dataset.pixel_space}'")
    if not (dataset.train.in_memory and dataset.test.in_memory):
        raise DataError(f"ZCA needs dataset '{dataset.name}' in memory (it streams from disk); "
                        "ZCA is meant for 32x32/64x64 datasets")
    train_images, test_images = dataset.train.images, dataset.test.images
    assert train_images is not None and test_images is not None  # in_memory, checked above
    normalization = (tuple(dataset.mean), tuple(dataset.std))
    key = fit_key(dataset.name, train_images, eps, normalization)
    zca = None
    cache_file = None
    if cache_dir is not None:
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in dataset.name)[:48]
        cache_file = Path(cache_dir) / "zca" / f"{stem}-{key[:24]}.safetensors"
        if cache_file.is_file():
            try:
                zca = ZCA.load(cache_file)
            except DataError:
                zca = None  # a damaged entry is refit and overwritten
    if zca is None:
        zca = fit_zca(train_images, eps, normalization)
        if cache_file is not None:
            try:
                zca.save(cache_file)
            except OSError:  # a full or read-only cache: the fit is used now and refit next time
                pass
    train = Split(labels=dataset.train.labels, images=zca.apply(train_images, normalization))
    test = Split(labels=dataset.test.labels, images=zca.apply(test_images, normalization))
    preprocess = {**dataset.preprocess, "zca": {"eps": float(eps), "key": key, "fit_on": "pixel01"}}
    return dataset.with_splits(train, test, pixel_space="zca", preprocess=preprocess, zca=zca)
