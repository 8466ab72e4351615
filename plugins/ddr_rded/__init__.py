"""The ``rded`` method: realistic, diverse and efficient dataset distillation (Sun et al., CVPR 2024;
LINs-lab/RDED ``synthesize/``).

Registered through the ``ddr`` entry point ``rded = "ddr_rded"`` (or ``DDR_PLUGINS=ddr_rded``).
Importing this module does not import torch; the algorithm lives in :mod:`ddr_rded.method`.

Defaults are the authors' ImageNet setting (factor 2, 5 crops of each of up to 300 real images
per class, crop scale 0.08..1 with square crops); RDED's CIFAR scripts use ``factor=1``
(``rded.cifar``). The distilled images are evaluated with the teacher relabelling every augmented
batch (label strategy ``teacher``) under the ``soft`` protocol; RDED's own recipe (KL T=20,
ShufflePatches + RandomResizedCrop, 300 epochs) is the ``rded-paper`` protocol file shipped
beside the built-in protocols.
"""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.params import ParamSpec
from ddr.plugin.specs import MethodSpec

PARAMS = (
    ParamSpec("factor", 2, "patches per side of each stitched image (RDED: 2 for ImageNet, 1 for CIFAR)",
              minimum=1),
    ParamSpec("num_crop", 5, "random resized crops scored per real image (RDED --num-crop)", minimum=1),
    ParamSpec("mipc", 300, "real images loaded per class (RDED --mipc); capped at the class size", minimum=1),
    ParamSpec("scale_min", 0.08, "smallest crop area, as a fraction of the image (torchvision default)",
              minimum=0.0),
    ParamSpec("scale_max", 1.0, "largest crop area, as a fraction of the image", minimum=0.0),
    ParamSpec("labels", "teacher", "teacher: the evaluation relabels every augmented batch; "
              "stored_soft: store one teacher logit vector per image", choices=("teacher", "stored_soft")),
    ParamSpec("batch_size", 256, "patches per teacher forward pass when scoring", minimum=1),
)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="rded",
            target="ddr_rded.method:RDED",
            summary="RDED (Sun et al. CVPR'24): stitch the real patches the teacher finds most realistic; teacher relabels",
            params=PARAMS,
            presets={
                "paper": {"factor": 2, "num_crop": 5, "mipc": 300},
                "cifar": {"factor": 1, "num_crop": 5, "mipc": 300},
                "smoke": {"factor": 2, "num_crop": 2, "mipc": 8},
                # digits (16 px, ~110 images per class): factor 1 keeps the digits legible
                "reduced": {"factor": 1, "num_crop": 5, "mipc": 300},
            },
            label_strategy="teacher",
            protocol="soft",
            needs_teacher=True,
        )
    ]
