"""Built-in augmentations, registered through ``ddr_augmentations``.

Cheap to import: the specs point at the torch code in the submodules through lazy targets.
Every augmentation is ``aug(images[B,C,H,W], generator) -> (images, Mix | None)``, batched on
the images' device and driven only by the given generator (see :mod:`ddr.engine.augment`). The spec
defaults repeat the targets' signature defaults (a test keeps them equal).
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import AugmentationSpec

_PACKAGE = "ddr.builtins.augmentations"


@hookimpl
def ddr_augmentations() -> list[AugmentationSpec]:
    return [
        AugmentationSpec(
            name="dsa",
            target=f"{_PACKAGE}.dsa:DSA",
            stackable=True,
            summary="Differentiable Siamese Augmentation (VICO DatasetCondensation): one op family per batch, "
                    "per-sample parameters",
            defaults={"strategy": "color_crop_cutout_flip_scale_rotate", "mode": "S", "flip": 0.5,
                      "scale": 1.2, "rotate": 15.0, "crop": 0.125, "cutout": 0.5, "brightness": 1.0,
                      "saturation": 2.0, "contrast": 0.5},
            presets={
                # VICO's readme: no flip for the digit datasets (MNIST, SVHN)
                "noflip": {"strategy": "color_crop_cutout_scale_rotate"},
                "all": {"mode": "M"},  # every op family in sequence on each batch
            },
        ),
        AugmentationSpec(
            name="mixup",
            target=f"{_PACKAGE}.mixing:Mixup",
            summary="mixup: x = lam*x + (1-lam)*x[perm], lam ~ Beta(alpha, alpha) per batch; mixes the labels",
            defaults={"alpha": 1.0, "prob": 1.0},
            presets={"sre2l": {"alpha": 0.8}},
            mixes=True,
        ),
        AugmentationSpec(
            name="cutmix",
            target=f"{_PACKAGE}.mixing:CutMix",
            summary="CutMix: paste a box of x[perm] (area 1-lam, lam ~ Beta(beta, beta)) per batch; mixes the labels",
            defaults={"beta": 1.0, "prob": 1.0},
            mixes=True,
        ),
        AugmentationSpec(
            name="rded",
            target=f"{_PACKAGE}.rded:RDEDAugmentation",
            stackable=True,
            summary="RDED: ShufflePatches(factor) + RandomResizedCrop(scale=(1/factor, 1)) + flip",
            defaults={"factor": 2, "scale": None, "ratio": (3 / 4, 4 / 3), "flip": 0.5},
            presets={"noshuffle": {"factor": 1}},  # RDED's CIFAR scripts
        ),
        AugmentationSpec(
            name="flip",
            target=f"{_PACKAGE}.crops:Flip",
            stackable=True,
            summary="left-right flip with probability p, per sample",
            defaults={"p": 0.5},
        ),
        AugmentationSpec(
            name="random_resized_crop",
            target=f"{_PACKAGE}.crops:RandomResizedCrop",
            stackable=True,
            summary="RandomResizedCrop back to the input size (torchvision's sampling), per sample",
            defaults={"scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3)},
        ),
        AugmentationSpec(
            name="crop_flip",
            target=f"{_PACKAGE}.crops:CropFlip",
            stackable=True,
            summary="zero-padded random crop (4 px at 32 px, scaled down for smaller images) + flip, per sample",
            defaults={"padding": 4, "reference_size": 32, "flip": 0.5},
        ),
        AugmentationSpec(
            name="transforms",
            target=f"{_PACKAGE}.transforms:TorchvisionTransforms",
            stackable=True,
            summary="a torchvision transform list from YAML (ops: [{name, args}]); random parameters per batch",
        ),
    ]
