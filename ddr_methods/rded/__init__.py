"""The ``rded`` method: realistic, diverse and efficient dataset distillation (Sun et al., CVPR 2024;
LINs-lab/RDED ``synthesize/``).

Registered through the ``ddr`` entry point ``rded = "ddr_methods.rded"`` (or ``DDR_PLUGINS=ddr_methods.rded``).
Importing this module does not import torch; the algorithm lives in :mod:`ddr_methods.rded.method`.

Defaults are the authors' ImageNet setting (factor 2, 5 crops of each of up to 300 real images
per class, crop scale 0.08..1 with square crops). On CIFAR-10 (IPC 1/10/50) and CIFAR-100
``ddr run`` applies RDED's CIFAR recipe (:func:`rded_recipes`): factor 1, a BatchNorm ConvNet
teacher, its evaluation batch (10/50/100; 25 with LR 0.002 on CIFAR-100); ``rded.cifar`` gives
factor 1 on any dataset. The distilled images are evaluated with the teacher relabelling every augmented
batch (label strategy ``teacher``) under the ``soft`` protocol; RDED's own recipe (KL T=20,
ShufflePatches + RandomResizedCrop, 300 epochs) is the ``rded-paper`` protocol file shipped
beside the built-in protocols.
"""

from __future__ import annotations

from ddr import MethodRecipe, MethodSpec, ParamSpec, hookimpl, load_reported

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

RDED_COMMIT = "LINs-lab/RDED@31f9117"
RDED_CIFAR10_BATCH = {1: 10, 10: 50, 50: 100}
"""RDED's evaluation batch (``re_batch_size``) on CIFAR-10 by IPC (argument.py, "set up batch size":
10/50/100 for IPC 1/10/50, times 1 for 10 classes, capped at ipc·nclass)."""
RDED_CIFAR100 = {"train.batch_size": 25, "train.lr": 0.002}
"""CIFAR-100 with conv3 observer and student: argument.py's "special experiment" sets
``re_batch_size = 25`` and ``adamw_lr = 0.002``."""
_SOURCE = ("{commit} scripts/{dataset}_10ipc_conv3_to_conv3_cr5.sh (--factor 1, --arch-name conv3, "
           "--stud-name conv3, --re-epochs 300); synthesize/utils.py (conv3: a 3-layer ConvNet with BatchNorm); "
           "argument.py ({batch})")


def rded_recipes() -> tuple[MethodRecipe, ...]:
    """RDED's CIFAR scripts: factor 1, a BatchNorm ConvNet observer (the protocol's teacher) and
    its evaluation batch (and, on CIFAR-100, its student LR)."""
    bn = {"teacher.arch": "convnet_bn"}
    c10 = tuple(MethodRecipe(dataset="cifar10", ipcs=(ipc,), params={"factor": 1},
                             protocol_overrides={**bn, "train.batch_size": batch},
                             source=_SOURCE.format(commit=RDED_COMMIT, dataset="cifar10",
                                                   batch=f"set up batch size: re_batch_size {batch} at IPC {ipc}"))
                for ipc, batch in RDED_CIFAR10_BATCH.items())
    c100 = MethodRecipe(dataset="cifar100", name="cifar100", params={"factor": 1},
                        protocol_overrides={**bn, **RDED_CIFAR100},
                        source=_SOURCE.format(commit=RDED_COMMIT, dataset="cifar100",
                                              batch="special experiment: re_batch_size 25, adamw_lr 0.002"))
    return c10 + (c100,)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="rded",
            paper="On the Diversity and Realism of Distilled Dataset: An Efficient Dataset Distillation Paradigm",
            venue="CVPR 2024",
            year=2024,
            code="https://github.com/LINs-lab/RDED",
            label_type="soft",
            reported=load_reported(__name__),  # with their sources: reported.yaml beside this file
            version="2",  # 2: crops resampled as RDED's RandomResizedCrop (cut, then antialiased resize)
            target="ddr_methods.rded.method:RDED",
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
            recipes=rded_recipes(),
        )
    ]
