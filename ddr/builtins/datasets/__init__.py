"""Built-in datasets, registered through the ``ddr_datasets`` hook.

Importing this package is cheap (no torch, numpy or torchvision): the specs point at loaders in
submodules through ``"module:attr"`` targets. Every loader is called as
``target(*, root=<data dir>, argument=None | str, download=False, **params)`` and returns a
:class:`ddr.engine.data.ImageDataset` of CPU tensors normalised with the dataset's own mean/std.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.builtins.datasets import catalog, mnist5k
from ddr.plugin.specs import DatasetSpec

_PKG = "ddr.builtins.datasets"


def _imagenet_subset(name: str, classes: tuple[tuple[str, str], ...], summary: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, target=f"{_PKG}.imagenet:load_{name}", summary=summary,
        num_classes=len(classes), image_size=(128, 128), channels=3,
        mean=catalog.IMAGENET_MEAN, std=catalog.IMAGENET_STD,
        class_names=tuple(n for _, n in classes), real_epochs=200,
        defaults={"image_size": 128},
    )


@hookimpl
def ddr_datasets() -> list[DatasetSpec]:
    """The datasets that ship with ddr."""
    return [
        DatasetSpec(
            name="digits", target=f"{_PKG}.digits:load",
            summary="scikit-learn 8x8 digits upsampled to 16x16, fixed 1198/599 split (offline default)",
            num_classes=10, image_size=(16, 16), channels=1,
            mean=catalog.DIGITS_MEAN, std=catalog.DIGITS_STD, class_names=catalog.DIGIT_NAMES,
            real_epochs=50, budget="reduced",
        ),
        DatasetSpec(
            name="mnist5k", target=f"{_PKG}.mnist5k:load", aliases=("mnist-5k",), version="1",
            summary=mnist5k.SUMMARY,
            num_classes=mnist5k.NUM_CLASSES, image_size=mnist5k.IMAGE_SIZE, channels=1,
            mean=mnist5k.MEAN, std=mnist5k.STD, class_names=catalog.DIGIT_NAMES,
            real_epochs=mnist5k.REAL_EPOCHS, budget="reduced",
        ),
        DatasetSpec(
            name="mnist", target=f"{_PKG}.torchvision_sets:load_mnist",
            summary="MNIST handwritten digits, 28x28 grey, 60000/10000",
            num_classes=10, image_size=(28, 28), channels=1,
            mean=catalog.MNIST_MEAN, std=catalog.MNIST_STD, class_names=catalog.DIGIT_NAMES,
            real_epochs=50,
        ),
        DatasetSpec(
            name="fashion-mnist", target=f"{_PKG}.torchvision_sets:load_fashion_mnist",
            aliases=("fashion_mnist", "fmnist"),
            summary="Fashion-MNIST clothing, 28x28 grey, 60000/10000",
            num_classes=10, image_size=(28, 28), channels=1,
            mean=catalog.FASHION_MNIST_MEAN, std=catalog.FASHION_MNIST_STD,
            class_names=catalog.FASHION_MNIST_NAMES, real_epochs=50,
        ),
        DatasetSpec(
            name="svhn", target=f"{_PKG}.torchvision_sets:load_svhn",
            summary="SVHN cropped house-number digits, 32x32 RGB, 73257/26032",
            num_classes=10, image_size=(32, 32), channels=3,
            mean=catalog.SVHN_MEAN, std=catalog.SVHN_STD, class_names=catalog.DIGIT_NAMES,
            real_epochs=100,
        ),
        DatasetSpec(
            name="cifar10", target=f"{_PKG}.torchvision_sets:load_cifar10", aliases=("cifar-10",),
            summary="CIFAR-10, 32x32 RGB, 10 classes, 50000/10000",
            num_classes=10, image_size=(32, 32), channels=3,
            mean=catalog.CIFAR10_MEAN, std=catalog.CIFAR10_STD, class_names=catalog.CIFAR10_NAMES,
            real_epochs=200,
        ),
        DatasetSpec(
            name="cifar100", target=f"{_PKG}.torchvision_sets:load_cifar100", aliases=("cifar-100",),
            summary="CIFAR-100, 32x32 RGB, 100 classes, 50000/10000",
            num_classes=100, image_size=(32, 32), channels=3,
            mean=catalog.CIFAR100_MEAN, std=catalog.CIFAR100_STD, class_names=catalog.CIFAR100_NAMES,
            real_epochs=200,
        ),
        DatasetSpec(
            name="tinyimagenet", target=f"{_PKG}.tinyimagenet:load",
            aliases=("tiny-imagenet", "tiny_imagenet"),
            summary="Tiny-ImageNet-200, 64x64 RGB, 200 classes, 100000/10000 (val as test)",
            num_classes=200, image_size=(64, 64), channels=3,
            mean=catalog.IMAGENET_MEAN, std=catalog.IMAGENET_STD, real_epochs=200,
            defaults={"in_memory": True, "cache": True},
        ),
        DatasetSpec(
            name="imagenet", target=f"{_PKG}.imagenet:load_imagenet", aliases=("imagenet-1k", "imagenet1k"),
            summary="ImageNet-1K from an ImageFolder tree (imagenet/{train,val}/<wnid>), streamed, 224 px",
            num_classes=1000, image_size=(224, 224), channels=3,
            mean=catalog.IMAGENET_MEAN, std=catalog.IMAGENET_STD, real_epochs=90,
            defaults={"image_size": 224, "crop_fraction": 0.875},
        ),
        _imagenet_subset("imagenette", catalog.IMAGENETTE,
                         "ImageNette: 10 easy ImageNet classes at 128 px, streamed from the ImageNet tree"),
        _imagenet_subset("imagewoof", catalog.IMAGEWOOF,
                         "ImageWoof: 10 ImageNet dog breeds at 128 px, streamed from the ImageNet tree"),
        DatasetSpec(
            name="imagenet-subset", target=f"{_PKG}.imagenet:load_subset", accepts_argument=True,
            summary="any ImageNet classes: imagenet-subset:<wnid>,<wnid>,... at 128 px",
            image_size=(128, 128), channels=3, mean=catalog.IMAGENET_MEAN, std=catalog.IMAGENET_STD,
            real_epochs=200, defaults={"image_size": 128},
        ),
        DatasetSpec(
            name="folder", target=f"{_PKG}.folder:load", accepts_argument=True,
            summary="any class-folder image tree: folder:<path> ({train,test}/<class>/ or <class>/)",
            real_epochs=100,
        ),
    ]
