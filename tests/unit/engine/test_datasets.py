"""Built-in datasets: digits, the official on-disk formats (generated tiny files), class-folder
trees, ZCA, and the dataset contract check."""

from __future__ import annotations

import gzip
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.dataset_files import cifar_pixels as _cifar_pixels
from helpers.dataset_files import jpeg as _jpeg
from helpers.dataset_files import pickle_file as _pickle
from helpers.dataset_files import write_cifar10
from helpers.dataset_files import write_imagenet as _write_imagenet  # landscape 40x30: resize shorter side, centre crop
from PIL import Image

from ddr.builtins.datasets import catalog, ddr_datasets
from ddr.builtins.datasets import zca as zca_module
from ddr.engine.data import ImageDataset, Split
from ddr.errors import ConfigError, DataError
from ddr.testing.datasets import check_dataset, load_spec, resolve_target

SPECS = {spec.name: spec for spec in ddr_datasets()}


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DDR_DATA_DIR", str(tmp_path / "data"))


def load(name: str, root: Path, **kwargs):
    return load_spec(SPECS[name], root=root, **kwargs)


def expected_normalized(pixels_uint8: np.ndarray, mean, std) -> torch.Tensor:
    x = torch.from_numpy(pixels_uint8.astype(np.float32) / 255.0)
    return (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)


# -- registration ------------------------------------------------------------------------------

def test_hook_registers_every_builtin_dataset_without_heavy_imports():
    assert sorted(SPECS) == sorted([
        "digits", "mnist5k", "mnist", "fashion-mnist", "svhn", "cifar10", "cifar100", "tinyimagenet",
        "imagenet", "imagenette", "imagewoof", "imagenet-subset", "folder"])
    code = ("import sys, ddr.builtins.datasets as d; d.ddr_datasets(); "
            "print(sorted({'torch', 'numpy', 'torchvision', 'sklearn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for spec in SPECS.values():
        assert callable(resolve_target(spec))
        assert spec.mean is None or len(spec.mean) == spec.channels == len(spec.std)
        assert not spec.class_names or len(spec.class_names) == spec.num_classes
    assert SPECS["cifar100"].mean == (0.5071, 0.4866, 0.4409) and SPECS["cifar100"].std == (0.2673, 0.2564, 0.2762)
    assert SPECS["cifar10"].mean == (0.4914, 0.4822, 0.4465) and SPECS["cifar10"].std == (0.2023, 0.1994, 0.2010)
    assert SPECS["folder"].accepts_argument and SPECS["imagenet-subset"].accepts_argument


# -- digits ------------------------------------------------------------------------------------

def test_digits_shapes_split_balance_and_normalisation():
    ds = load("digits", Path("unused"))
    assert (len(ds.train), len(ds.test)) == (1198, 599)
    assert ds.train.images.shape == (1198, 1, 16, 16) and ds.test.images.shape == (599, 1, 16, 16)
    assert ds.train.images.dtype == torch.float32 and ds.train.labels.dtype == torch.int64
    assert torch.bincount(ds.train.labels).tolist() == [119, 121, 118, 122, 121, 121, 121, 119, 116, 120]
    assert torch.bincount(ds.test.labels).tolist() == [59, 61, 59, 61, 60, 61, 60, 60, 58, 60]
    assert abs(ds.train.images.mean().item()) < 1e-3
    assert abs(ds.train.images.std().item() - 1.0) < 1e-3
    assert ds.class_names == tuple("0123456789")


def test_digits_constants_match_train_split_statistics():
    from sklearn.datasets import load_digits

    from ddr.builtins.datasets.digits import pixels01, split_indices
    from ddr.builtins.datasets.tensors import channel_stats

    bunch = load_digits()
    train, test = split_indices(bunch.target)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 1797
    mean, std = channel_stats(pixels01(bunch.images[train]))
    assert mean == catalog.DIGITS_MEAN == SPECS["digits"].mean
    assert std == catalog.DIGITS_STD == SPECS["digits"].std


def test_digits_passes_contract_check_and_is_deterministic():
    ds = check_dataset(SPECS["digits"])
    again = load("digits", Path("unused"))
    assert torch.equal(ds.train.images, again.train.images) and torch.equal(ds.test.labels, again.test.labels)


def test_digits_rejects_argument_and_unknown_params():
    with pytest.raises(ConfigError, match="takes no"):
        load("digits", Path("x"), argument="foo")
    with pytest.raises(ConfigError, match="unknown parameter"):
        load("digits", Path("x"), image_size=32)


# -- check_dataset -----------------------------------------------------------------------------

def _tiny_dataset(**changes) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    fields = dict(
        name="tiny", num_classes=2, channels=1, image_size=(4, 4), mean=(0.5,), std=(0.25,),
        train=Split(labels=torch.tensor([0, 1] * 10), images=torch.randn(20, 1, 4, 4, generator=g)),
        test=Split(labels=torch.tensor([0, 1]), images=torch.randn(2, 1, 4, 4, generator=g)),
    )
    fields.update(changes)
    return ImageDataset(**fields)


def test_check_dataset_accepts_a_good_dataset_and_reports_each_violation():
    check_dataset(_tiny_dataset())
    g = torch.Generator().manual_seed(1)
    with pytest.raises(AssertionError, match=r"labels must lie in \[0, 2\)"):
        check_dataset(_tiny_dataset(test=Split(labels=torch.tensor([0, 2]), images=torch.zeros(2, 1, 4, 4))))
    with pytest.raises(AssertionError, match="classes \\[1\\] have no samples"):
        check_dataset(_tiny_dataset(train=Split(labels=torch.zeros(20, dtype=torch.long),
                                                images=torch.randn(20, 1, 4, 4, generator=g))))
    with pytest.raises(AssertionError, match="mean .* and std"):
        check_dataset(_tiny_dataset(train=Split(labels=torch.tensor([0, 1] * 10),
                                                images=torch.rand(20, 1, 4, 4, generator=g) * 255)))
    with pytest.raises(AssertionError, match="NaN"):
        bad = torch.randn(2, 1, 4, 4, generator=g)
        bad[0, 0, 0, 0] = float("nan")
        check_dataset(_tiny_dataset(test=Split(labels=torch.tensor([0, 1]), images=bad)))
    with pytest.raises(AssertionError, match="float32"):
        check_dataset(_tiny_dataset(test=Split(labels=torch.tensor([0, 1]), images=torch.zeros(2, 1, 5, 4))))


# -- CIFAR -------------------------------------------------------------------------------------

def test_cifar10_reads_official_python_batches(tmp_path):
    batches = [(_cifar_pixels(4, seed=i), [(2 * i + j) % 10 for j in range(4)]) for i in range(1, 6)]
    write_cifar10(tmp_path, batches, (_cifar_pixels(10, seed=9), list(range(10))))

    ds = load("cifar10", tmp_path)
    check_dataset(SPECS["cifar10"], root=tmp_path, check_normalization=False)
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (10, 3, 32, 32)
    assert ds.train.labels.tolist() == [lab for _, labels in batches for lab in labels]
    assert ds.class_names == catalog.CIFAR10_NAMES
    # row 5 = first image of data_batch_2; 3072 bytes are R, G, B planes of 32x32
    want = expected_normalized(batches[1][0][0].reshape(3, 32, 32), catalog.CIFAR10_MEAN, catalog.CIFAR10_STD)
    assert torch.allclose(ds.train.images[4], want, atol=1e-6)


def test_cifar100_reads_fine_labels_and_its_own_constants(tmp_path):
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    train = _cifar_pixels(200, seed=1)
    fine = [i % 100 for i in range(200)]
    _pickle(directory / "train", {"fine_labels": fine, "coarse_labels": [f // 5 for f in fine], "data": train})
    _pickle(directory / "test", {"fine_labels": [99, 0], "coarse_labels": [19, 0], "data": _cifar_pixels(2, seed=2)})
    _pickle(directory / "meta", {"fine_label_names": list(catalog.CIFAR100_NAMES),
                                 "coarse_label_names": [f"c{i}" for i in range(20)]})

    ds = load("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.mean == catalog.CIFAR100_MEAN and ds.std == catalog.CIFAR100_STD
    assert ds.train.labels.tolist() == fine and ds.test.labels.tolist() == [99, 0]
    want = expected_normalized(train[7].reshape(3, 32, 32), catalog.CIFAR100_MEAN, catalog.CIFAR100_STD)
    assert torch.allclose(ds.train.images[7], want, atol=1e-6)
    assert ds.class_names[99] == "worm"


def test_cifar_refuses_pickles_that_build_arbitrary_objects(tmp_path):
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    for name in ("train", "test", "meta"):
        _pickle(directory / name, {"data": _cifar_pixels(1, 0), "fine_labels": [0], "x": Path("/")})
    with pytest.raises(DataError, match="refusing to load pathlib"):
        load("cifar100", tmp_path)


def test_download_is_attempted_only_when_allowed_and_failures_are_data_errors(tmp_path):
    from ddr.builtins.datasets.torchvision_sets import OnDisk

    calls = []

    def fetch(root: Path) -> None:
        calls.append(root)
        (root / "thing").mkdir()
        (root / "thing" / "a.bin").write_bytes(b"x")

    spec = OnDisk("thing", "thing", ("a.bin",), fetch)
    with pytest.raises(DataError, match="--download"):
        spec.ensure(tmp_path, download=False)
    assert spec.ensure(tmp_path, download=True) == tmp_path / "thing" and calls == [tmp_path]
    assert spec.ensure(tmp_path, download=True) == tmp_path / "thing" and len(calls) == 1

    def offline(root: Path) -> None:
        raise OSError("network unreachable")

    with pytest.raises(DataError, match="network unreachable"):
        OnDisk("other", "other", ("b.bin",), offline).ensure(tmp_path, download=True)


def test_missing_cifar_names_the_expected_path_and_download_flag(tmp_path):
    with pytest.raises(DataError) as info:
        load("cifar10", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "data_batch_1" in message
    assert "--download" in message


# -- MNIST / Fashion-MNIST ---------------------------------------------------------------------

def _idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x0803, len(images), 28, 28) + images.tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes()


def _write_idx_set(raw: Path, compress: bool) -> dict[str, np.ndarray]:
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", 30), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        arrays[prefix] = (images, labels)
        for name, blob in ((f"{prefix}-images-idx3-ubyte", _idx_images(images)),
                           (f"{prefix}-labels-idx1-ubyte", _idx_labels(labels))):
            if compress:
                (raw / f"{name}.gz").write_bytes(gzip.compress(blob))
            else:
                (raw / name).write_bytes(blob)
    return arrays


def test_mnist_reads_raw_idx_files(tmp_path):
    arrays = _write_idx_set(tmp_path / "MNIST" / "raw", compress=False)
    ds = load("mnist", tmp_path)
    assert ds.train.images.shape == (30, 1, 28, 28) and ds.test.images.shape == (10, 1, 28, 28)
    assert ds.train.labels.tolist() == (np.arange(30) % 10).tolist()
    want = expected_normalized(arrays["t10k"][0][3][None], catalog.MNIST_MEAN, catalog.MNIST_STD)
    assert torch.allclose(ds.test.images[3], want, atol=1e-6)


def test_fashion_mnist_decompresses_gzipped_idx_files(tmp_path):
    arrays = _write_idx_set(tmp_path / "FashionMNIST" / "raw", compress=True)
    ds = load("fashion-mnist", tmp_path)
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    want = expected_normalized(arrays["train"][0][29][None], catalog.FASHION_MNIST_MEAN, catalog.FASHION_MNIST_STD)
    assert torch.allclose(ds.train.images[29], want, atol=1e-6)
    assert ds.class_names[0] == "T-shirt/top"


def test_missing_mnist_names_the_raw_folder(tmp_path):
    with pytest.raises(DataError, match=r"MNIST/raw"):
        load("mnist", tmp_path)


# -- SVHN --------------------------------------------------------------------------------------

def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    from scipy.io import savemat

    directory = tmp_path / "svhn"
    directory.mkdir()
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(32, 32, 3, 12), dtype=np.uint8)
    y_train = np.array([[10], [1], [2], [3], [4], [5], [6], [7], [8], [9], [10], [1]], dtype=np.uint8)
    savemat(directory / "train_32x32.mat", {"X": x_train, "y": y_train})
    savemat(directory / "test_32x32.mat", {"X": x_train[..., :3], "y": y_train[:3]})

    ds = load("svhn", tmp_path)
    assert ds.train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert ds.train.images.shape == (12, 3, 32, 32) and len(ds.test) == 3
    # X is [H, W, C, N]: image 5's green channel, row 2, column 7
    want = (x_train[2, 7, 1, 5] / 255.0 - catalog.SVHN_MEAN[1]) / catalog.SVHN_STD[1]
    assert ds.train.images[5, 1, 2, 7].item() == pytest.approx(want, abs=1e-5)


# -- Tiny-ImageNet -----------------------------------------------------------------------------

def _write_tiny_imagenet(root: Path) -> list[str]:
    base = root / "tiny-imagenet-200"
    wnids = ["n03000684", "n01443537", "n02099601"]  # deliberately unsorted in the file
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn02099601\tgolden retriever\n")
    for k, wnid in enumerate(wnids):
        for i in range(2):
            _jpeg(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (64, 64), 40 * k + 10 * i,
                  mode="L" if (k, i) == (0, 1) else "RGB")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("ignored\n")
    lines = []
    for i, wnid in enumerate(["n02099601", "n01443537", "n03000684", "n02099601"]):
        _jpeg(base / "val" / "images" / f"val_{i}.JPEG", (64, 64), 30 * i)
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return sorted(wnids)


def test_tinyimagenet_official_layout_sorted_wnids_and_decode_cache(tmp_path, monkeypatch):
    sorted_wnids = _write_tiny_imagenet(tmp_path)
    ds = load("tinyimagenet", tmp_path, workers=2)
    assert ds.num_classes == 3 and ds.image_size == (64, 64) and ds.channels == 3
    assert ds.class_names == ("goldfish", "golden retriever", "n03000684")
    assert ds.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.test.labels.tolist() == [1, 0, 2, 1]  # val_0..val_3 -> sorted-wnid indices
    assert ds.train.images.shape == (6, 3, 64, 64) and ds.test.images.shape == (4, 3, 64, 64)
    # the grey JPEG (class n03000684 = index 2, second image) becomes 3 equal channels
    std, mean = torch.tensor(catalog.IMAGENET_STD).view(3, 1, 1), torch.tensor(catalog.IMAGENET_MEAN).view(3, 1, 1)
    grey = ds.train.images[5] * std + mean
    assert torch.allclose(grey[0], grey[1], atol=1e-5) and torch.allclose(grey[1], grey[2], atol=1e-5)
    assert sorted_wnids[2] == "n03000684"
    assert len(list((tmp_path / "cache" / "decoded").glob("tinyimagenet-*.safetensors"))) == 2

    import ddr.builtins.datasets.images as images_module

    monkeypatch.setattr(images_module, "decode", lambda *a, **k: pytest.fail("decoded despite cache"))
    cached = load("tinyimagenet", tmp_path)
    assert torch.equal(cached.train.images, ds.train.images) and torch.equal(cached.test.images, ds.test.images)


def test_tinyimagenet_streams_when_asked(tmp_path):
    _write_tiny_imagenet(tmp_path)
    ds = load("tinyimagenet", tmp_path, in_memory=False)
    assert not ds.train.in_memory and len(ds.train) == 6
    image, label = ds.test.source[2]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and label == 2
    copy = pickle.loads(pickle.dumps(ds.test.source))  # DataLoader workers receive it pickled
    assert torch.equal(copy[2][0], image)
    assert [len(i) for i in ds.train.class_indices(3)] == [2, 2, 2]


def test_missing_tinyimagenet_explains_layout(tmp_path):
    with pytest.raises(DataError) as info:
        load("tinyimagenet", tmp_path)
    assert str(tmp_path / "tiny-imagenet-200") in str(info.value) and "val_annotations.txt" in str(info.value)


# -- ImageNet and subsets ----------------------------------------------------------------------

def test_imagenette_streams_in_mtt_class_order(tmp_path):
    wnids = [w for w, _ in catalog.IMAGENETTE]
    _write_imagenet(tmp_path, wnids + ["n09999999"])
    ds = load("imagenette", tmp_path, image_size=16)
    assert ds.num_classes == 10 and not ds.train.in_memory and ds.image_size == (16, 16)
    assert ds.class_names[-1] == "parachute" and ds.train.labels.tolist() == list(range(10))
    image, label = ds.train.source[9]
    assert image.shape == (3, 16, 16) and label == 9
    check_dataset(SPECS["imagenette"], root=tmp_path, image_size=16, check_normalization=False)
    pixels = image * torch.tensor(catalog.IMAGENET_STD).view(3, 1, 1) + torch.tensor(catalog.IMAGENET_MEAN).view(3, 1, 1)
    assert pixels[0].mul(255).round().unique().tolist() == [9 * 20.0]


def test_imagewoof_missing_classes_are_named(tmp_path):
    _write_imagenet(tmp_path, [w for w, _ in catalog.IMAGEWOOF][:9])
    with pytest.raises(DataError, match="n02105641"):
        load("imagewoof", tmp_path)


def test_imagenet_subset_argument_keeps_given_order_and_in_memory_option(tmp_path):
    _write_imagenet(tmp_path, ["n01440764", "n02102040", "n02979186"], per_class=2)
    ds = load("imagenet-subset", tmp_path, argument="n02979186,n01440764", image_size=8, in_memory=True)
    assert ds.name == "imagenet-subset:n02979186,n01440764"
    assert ds.class_names == ("n02979186", "n01440764") and ds.train.in_memory
    assert ds.train.images.shape == (4, 3, 8, 8) and ds.train.labels.tolist() == [0, 0, 1, 1]
    full = load("imagenet", tmp_path, image_size=8)
    assert full.class_names == ("n01440764", "n02102040", "n02979186") and len(full.test) == 6
    with pytest.raises(ConfigError, match="listed twice"):
        load("imagenet-subset", tmp_path, argument="n01440764,n01440764")


def test_missing_imagenet_says_it_cannot_be_downloaded(tmp_path):
    with pytest.raises(DataError) as info:
        load("imagenette", tmp_path, download=True)
    assert str(tmp_path / "imagenet") in str(info.value) and "image-net.org" in str(info.value)


# -- folder:<path> -----------------------------------------------------------------------------

def _write_tree(base: Path, classes: dict[str, int], size=(10, 12), mode="L") -> None:
    for k, (name, count) in enumerate(classes.items()):
        for i in range(count):
            path = base / name / f"img{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(100 * k + i)
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode=mode).save(path)


def test_folder_splits_a_flat_tree_deterministically(tmp_path):
    tree = tmp_path / "tree"
    _write_tree(tree, {"cat": 5, "ant": 10, "bee": 6})
    (tree / "ant" / ".hidden.png").write_bytes(b"not an image")
    (tree / "notes.txt").write_text("ignored")
    ds = check_dataset(SPECS["folder"], root=tmp_path, argument=str(tree))
    assert ds.class_names == ("ant", "bee", "cat") and ds.channels == 1 and ds.image_size == (10, 12)
    assert torch.bincount(ds.test.labels).tolist() == [2, 1, 1]  # round(0.2 * n) per class
    assert torch.bincount(ds.train.labels).tolist() == [8, 5, 4]
    assert ds.train.images.shape == (17, 1, 10, 12)
    other_seed = load("folder", tmp_path, argument=str(tree), seed=1)
    assert not torch.equal(other_seed.test.images, ds.test.images)


def test_folder_uses_train_and_val_folders_and_params(tmp_path):
    tree = tmp_path / "tree"
    _write_tree(tree / "train", {"a": 3, "b": 3}, mode="RGB")
    _write_tree(tree / "val", {"b": 2}, mode="RGB")
    ds = load("folder", tmp_path, argument="tree", image_size=8, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    assert ds.name == "folder:tree" and ds.channels == 3 and ds.image_size == (8, 8)
    assert ds.mean == (0.5, 0.5, 0.5) and len(ds.train) == 6 and ds.test.labels.tolist() == [1, 1]
    _write_tree(tree / "val", {"zebra": 1}, mode="RGB")
    with pytest.raises(DataError, match="zebra"):
        load("folder", tmp_path, argument="tree")


def test_folder_errors_are_data_or_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs a path"):
        load("folder", tmp_path)
    with pytest.raises(DataError, match=str(tmp_path / "nowhere")):
        load("folder", tmp_path, argument=str(tmp_path / "nowhere"))
    tree = tmp_path / "broken"
    _write_tree(tree, {"a": 2, "b": 2})
    (tree / "b" / "img01.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="img01.png"):
        load("folder", tmp_path, argument=str(tree), cache=False)
    with pytest.raises(ConfigError, match="unknown parameter"):
        load("folder", tmp_path, argument=str(tree), colour=True)


# -- ZCA ---------------------------------------------------------------------------------------

def _correlated_images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(18, 18, generator=g)
    return (torch.randn(n, 18, generator=g) @ mixing + 3.0).reshape(n, 2, 3, 3)


def _whitened_cov(z: torch.Tensor) -> torch.Tensor:
    flat = z.reshape(z.shape[0], -1).double()
    flat = flat - flat.mean(0)
    return flat.T @ flat / (flat.shape[0] - 1)


def test_zca_whitens_and_inverts_like_kornia():
    x = _correlated_images(500, seed=0)
    nearly_exact = zca_module.fit_zca(x, eps=1e-8)
    assert torch.allclose(_whitened_cov(nearly_exact.apply(x)), torch.eye(18, dtype=torch.float64), atol=1e-3)

    fit = zca_module.fit_zca(x, eps=0.1)
    # with eps the whitened covariance has eigenvalues S / (S + eps)
    flat = x.reshape(500, -1).double().numpy()
    s = np.linalg.svd(np.cov(flat, rowvar=False), compute_uv=False)
    got = np.sort(np.linalg.eigvalsh(_whitened_cov(fit.apply(x)).numpy()))
    assert np.allclose(got, np.sort(s / (s + 0.1)), atol=1e-4)
    # kornia's formula: (x - mu) U diag(1/sqrt(S+eps)) U^T with the unbiased covariance
    u, s_full, _ = np.linalg.svd(np.cov(flat, rowvar=False))
    reference = (flat - flat.mean(0)) @ (u @ np.diag(1 / np.sqrt(s_full + 0.1)) @ u.T)
    assert np.allclose(fit.apply(x).reshape(500, -1).numpy(), reference, atol=1e-3)
    assert torch.allclose(fit.inverse(fit.apply(x)), x, atol=1e-3)


def test_apply_zca_caches_the_fit_and_marks_the_pixel_space(tmp_path, monkeypatch):
    x = _correlated_images(60, seed=1)
    ds = ImageDataset(name="synthetic", num_classes=2, channels=2, image_size=(3, 3), mean=(0.0, 0.0),
                      std=(1.0, 1.0), train=Split(labels=torch.arange(60) % 2, images=x),
                      test=Split(labels=torch.tensor([0, 1]), images=x[:2].clone()))
    first = zca_module.apply_zca(ds, cache_dir=tmp_path)
    assert first.pixel_space == "zca" and first.preprocess["zca"]["eps"] == 0.1
    assert len(list((tmp_path / "zca").glob("synthetic-*.safetensors"))) == 1
    assert torch.allclose(first.zca.inverse(first.test.images), x[:2], atol=1e-3)

    monkeypatch.setattr(zca_module, "fit_zca", lambda *a, **k: pytest.fail("refit despite cache"))
    second = zca_module.apply_zca(ds, cache_dir=tmp_path)
    assert torch.equal(second.train.images, first.train.images)
    assert second.preprocess["zca"]["key"] == first.preprocess["zca"]["key"]
    with pytest.raises(DataError, match="normalised"):
        zca_module.apply_zca(second)
