"""ZCA whitening matches MTT, DATM and DD-Ranking: ``kornia.enhance.ZCAWhitening(eps=0.1,
compute_inv=True)`` fitted on the training split as 0..1 pixels (``ToTensor()`` only).

The sources: MTT (GeorgeCazenavette/mtt-distillation ``utils.py``, ``get_dataset``), DATM
(``utils/utils_baseline.py``) and DD-Ranking 0.2.0 (``ddranking/utils/data.py``, ``get_dataset``
with ``use_zca``). kornia is not a dependency of ddr: the comparisons with it skip when it is not
installed, and the same checks always run against kornia's formula transcribed in float64 NumPy
(:func:`kornia_formula`).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ddr.builtins.datasets import zca as zca_module
from ddr.engine.data import ImageDataset, Split
from ddr.errors import DataError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)


class KorniaFormula:
    """kornia's ``zca_mean`` / ``linear_transform`` (``kornia/enhance/zca.py``) with ``dim=0`` and
    ``unbiased=True``, transcribed in float64 NumPy: X flattened to ``[N, D]``; ``mean = X.mean(0)``;
    ``cov = (X - mean)^T (X - mean) / (N - 1)``; ``U, S, _ = svd(cov)``;
    ``T = U diag(1 / sqrt(S + eps)) U^T``, ``T_inv = U diag(sqrt(S + eps)) U^T``;
    ``forward(x) = (x - mean) T`` and ``inverse_transform(z) = z T_inv + mean``."""

    def __init__(self, images: torch.Tensor, eps: float = 0.1, *, thin: bool = False) -> None:
        x = images.detach().cpu().double().numpy().reshape(images.shape[0], -1)
        self.mean = x.mean(axis=0, keepdims=True)
        centered = x - self.mean
        if not thin:
            cov = centered.T @ centered / (x.shape[0] - 1)
            u, s, _ = np.linalg.svd(cov)
            s = s.reshape(-1, 1)
            self.transform = u @ (1.0 / np.sqrt(s + eps) * u.T)
            self.transform_inv = u @ (np.sqrt(s + eps) * u.T)
            return
        # the same matrices when N - 1 < D, from the thin SVD of the centred data (seconds instead of
        # a minute for D = 3072): cov = V diag(sigma^2 / (N - 1)) V^T on the rows' span, and the
        # eigenvalues are 0 on its orthogonal complement (I - V V^T), where kornia scales by eps^-1/2
        _, sigma, vt = np.linalg.svd(centered, full_matrices=False)
        v, s = vt.T, (sigma**2 / (x.shape[0] - 1)).reshape(-1, 1)
        rest = np.eye(x.shape[1]) - v @ v.T
        self.transform = v @ (1.0 / np.sqrt(s + eps) * v.T) + rest / np.sqrt(eps)
        self.transform_inv = v @ (np.sqrt(s + eps) * v.T) + rest * np.sqrt(eps)

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        x = images.detach().cpu().double().numpy().reshape(images.shape[0], -1)
        return ((x - self.mean) @ self.transform).reshape(tuple(images.shape))

    def inverse(self, images: torch.Tensor) -> np.ndarray:
        z = images.detach().cpu().double().numpy().reshape(images.shape[0], -1)
        return (z @ self.transform_inv + self.mean).reshape(tuple(images.shape))


def kornia_formula(images: torch.Tensor, eps: float = 0.1, *, thin: bool = False) -> KorniaFormula:
    return KorniaFormula(images, eps, thin=thin)


def _pixels01(n: int, seed: int, shape: tuple[int, int, int] = (3, 4, 4)) -> torch.Tensor:
    """``n`` 0..1 images with correlated pixels (a smooth random field per image plus noise),
    quantised to k/255 as ``ToTensor()`` gives them."""
    g = torch.Generator().manual_seed(seed)
    dim = int(np.prod(shape))
    mixing = torch.rand(dim, dim, generator=g) / dim
    field = torch.rand(n, dim, generator=g) @ mixing * dim * 0.8 + 0.2 * torch.rand(n, dim, generator=g)
    field = (field - field.min()) / (field.max() - field.min())
    return (torch.round(field * 255) / 255).reshape(n, *shape).float()


def _normalise(images01: torch.Tensor, mean=CIFAR10_MEAN, std=CIFAR10_STD) -> torch.Tensor:
    return (images01 - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


# -- the fit itself ------------------------------------------------------------------------------

def test_fit_equals_the_transcribed_kornia_formula_in_float64() -> None:
    x = _pixels01(400, seed=0)
    fit = zca_module.fit_zca(x)  # eps defaults to 0.1, as MTT/DATM/DD-Ranking
    assert fit.eps == 0.1 == zca_module.EPS
    reference = kornia_formula(x, eps=0.1)
    assert np.abs(fit.mean.double().numpy() - reference.mean).max() < 1e-6
    assert np.abs(fit.transform.double().numpy() - reference.transform).max() < 1e-4
    assert np.abs(fit.inverse_transform.double().numpy() - reference.transform_inv).max() < 1e-4
    fresh = _pixels01(50, seed=1)  # applied to images it was not fitted on, as the test split is
    whitened = fit.apply(fresh)
    assert whitened.dtype == torch.float32 and whitened.shape == fresh.shape
    assert np.abs(whitened.double().numpy() - reference(fresh)).max() < 2e-5
    assert np.abs(fit.inverse(whitened).double().numpy() - reference.inverse(whitened)).max() < 2e-5
    assert torch.allclose(fit.inverse(whitened), fresh, atol=1e-4)


def test_the_thin_formula_is_the_transcribed_one_for_few_images() -> None:
    x = _pixels01(30, seed=8)  # N - 1 = 29 < D = 48: a rank-deficient covariance, as the test below has
    literal, thin = kornia_formula(x), kornia_formula(x, thin=True)
    assert np.abs(literal.transform - thin.transform).max() < 1e-9
    assert np.abs(literal.transform_inv - thin.transform_inv).max() < 1e-9


def test_fit_equals_kornia_zca_whitening() -> None:
    kornia = pytest.importorskip("kornia")
    x = _pixels01(400, seed=2)
    official = kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True).fit(x)
    fit = zca_module.fit_zca(x)
    assert torch.allclose(fit.mean, official.mean_vector, atol=1e-6)
    assert torch.allclose(fit.transform, official.transform_matrix, atol=1e-4)
    fresh = _pixels01(50, seed=3)
    expected = official(fresh)
    assert (fit.apply(fresh) - expected).abs().max().item() < 1e-4
    assert (fit.inverse(expected) - official.inverse_transform(expected)).abs().max().item() < 1e-4


def test_fit_on_normalised_images_is_the_fit_on_their_pixels() -> None:
    x = _pixels01(300, seed=4)
    normalised = _normalise(x)
    norm = (CIFAR10_MEAN, CIFAR10_STD)
    from_pixels, from_normalised = zca_module.fit_zca(x), zca_module.fit_zca(normalised, normalization=norm)
    assert torch.allclose(from_pixels.transform, from_normalised.transform, atol=1e-4)
    assert torch.allclose(from_pixels.apply(x), from_normalised.apply(normalised, norm), atol=1e-4)
    # not the fit on the normalised values themselves (what ddr did before zca-v2): eps 0.1 on
    # values ~5x larger whitens much harder
    assert not torch.allclose(zca_module.fit_zca(normalised).apply(normalised), from_pixels.apply(x), atol=1e-2)
    with pytest.raises(DataError, match="channel"):
        zca_module.fit_zca(normalised, normalization=((0.5,), (0.5,)))


def test_apply_zca_whitens_the_dataset_as_0_1_pixels(tmp_path: Path) -> None:
    train01, test01 = _pixels01(200, seed=5), _pixels01(20, seed=6)
    ds = ImageDataset(name="synthetic", num_classes=2, channels=3, image_size=(4, 4), mean=CIFAR10_MEAN,
                      std=CIFAR10_STD, train=Split(labels=torch.arange(200) % 2, images=_normalise(train01)),
                      test=Split(labels=torch.arange(20) % 2, images=_normalise(test01)))
    white = zca_module.apply_zca(ds, cache_dir=tmp_path)
    reference = kornia_formula(train01, eps=0.1)
    assert white.pixel_space == "zca"
    assert white.preprocess["zca"]["eps"] == 0.1 and white.preprocess["zca"]["fit_on"] == "pixel01"
    assert white.train.images is not None and white.test.images is not None
    assert np.abs(white.train.images.double().numpy() - reference(train01)).max() < 1e-4
    assert np.abs(white.test.images.double().numpy() - reference(test01)).max() < 1e-4
    assert torch.allclose(white.zca.inverse(white.test.images), test01, atol=1e-4)  # inverse: 0..1 pixels


def test_fits_of_an_older_fit_version_are_neither_reused_nor_keyed_alike(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    x = _normalise(_pixels01(40, seed=7))
    norm = (CIFAR10_MEAN, CIFAR10_STD)
    current = zca_module.fit_key("synthetic", x, 0.1, norm)
    monkeypatch.setattr(zca_module, "FIT_VERSION", "zca-v1")
    old_key = zca_module.fit_key("synthetic", x, 0.1, norm)
    zca_module.fit_zca(x).save(tmp_path / "old.safetensors")
    monkeypatch.undo()
    assert old_key != current
    with pytest.raises(DataError, match="version"):
        zca_module.ZCA.load(tmp_path / "old.safetensors")
    # the normalisation the images carry is part of the key: it changes the 0..1 pixels fitted
    assert zca_module.fit_key("synthetic", x, 0.1, ((0.5,) * 3, (0.25,) * 3)) != current


# -- a set distilled in the official ZCA space, evaluated by ddr -----------------------------------

def _official_cifar10_pixels(directory: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What torchvision's CIFAR10 with ``ToTensor()`` gives for the generated batches: 0..1 float32
    ``[N, 3, 32, 32]`` (train batches 1..5 in order, then the test batch) and the labels."""
    def read(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        data, labels = [], []
        for name in names:
            with open(directory / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels += list(batch["labels"])
        return torch.from_numpy(np.concatenate(data)).float() / 255, torch.tensor(labels, dtype=torch.int64)

    train, train_labels = read([f"data_batch_{i}" for i in range(1, 6)])
    test, test_labels = read(["test_batch"])
    return train, train_labels, test, test_labels


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_official_zca_space_set_is_evaluated_against_the_officially_whitened_test_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.dataset_files import class_cifar10

    import ddr
    from ddr.execute import workspace as workspace_module
    from ddr.resources.session import Session

    data = tmp_path / "data"
    directory = class_cifar10(data, train_per_class=12, test_per_class=2)  # 120 train / 20 test images
    monkeypatch.setenv("DDR_DATA_DIR", str(data))
    train01, train_labels, test01, test_labels = _official_cifar10_pixels(directory)

    # the official transform, fitted on the 0..1 training images: kornia's when it is installed, else
    # the transcribed formula (float64, thin; the tests above check that they agree)
    try:
        import kornia
    except ImportError:
        formula = kornia_formula(train01, eps=0.1, thin=True)

        def official(images: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(formula(images)).float()
    else:
        official = kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True).fit(train01)
    distilled = official(train01)
    first = torch.stack([torch.nonzero(train_labels == c)[0, 0] for c in range(10)])  # IPC 1, class-major
    saved = tmp_path / "official-zca"
    saved.mkdir()
    torch.save(distilled[first].clone(), saved / "images.pt")  # DD-Ranking / MTT layout
    torch.save(torch.arange(10), saved / "labels.pt")

    seen: dict[str, Split] = {}
    original_init = workspace_module.Workspace.__init__

    def spy(self, *args, **kwargs):  # the splits every student is trained and tested on
        seen["test"] = kwargs["test"]
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(workspace_module.Workspace, "__init__", spy)
    torch.set_num_threads(1)
    overrides = {"student.arch_params": {"width": 8, "depth": 2}, "train.epochs": 1, "num_eval": 1, "real.epochs": 1}
    session = Session(progress_bars=False)
    result = ddr.evaluate(saved, dataset="cifar10", ipc=1, protocol="hard", zca=True, overrides=overrides,
                          device="cpu", session=session)
    assert result.run_spec["zca"] is True

    test_split = seen["test"]
    assert test_split.images is not None and torch.equal(test_split.labels.cpu(), test_labels)
    difference = (test_split.images.cpu() - official(test01)).abs().max().item()
    assert difference < 1e-4, difference
    # and the official set lies in ddr's ZCA space: its images are ddr's whitened training images
    white = next(ds for ds in session.datasets.values() if ds.pixel_space == "zca")
    assert white.train.images is not None
    assert (white.train.images[first] - distilled[first]).abs().max().item() < 1e-4
    assert torch.allclose(white.zca.inverse(white.test.images), test01, atol=1e-4)
