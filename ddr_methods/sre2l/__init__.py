"""The ``sre2l`` method: squeeze, recover and relabel (Yin, Xing & Shen, NeurIPS 2023;
VILA-Lab/SRe2L ``recover/``).

Registered through the ``ddr`` entry point ``sre2l = "ddr_methods.sre2l"`` (or ``DDR_PLUGINS=ddr_methods.sre2l``).
Importing this module does not import torch; the algorithm lives in :mod:`ddr_methods.sre2l.method`.

*Squeeze* is the protocol's teacher (``ctx.teacher()``), which must have BatchNorm layers: run with
``--set teacher.arch=convnet_bn`` (or ``resnet18_bn``, or ``--teacher FILE`` of such a network).
*Recover* optimises images from noise so the teacher classifies them as their class while their
per-layer batch statistics match the teacher's BatchNorm running statistics. *Relabel* is the
evaluation's label strategy ``teacher`` (the teacher labels every augmented batch), or
``labels=stored_soft`` to store one logit vector per image.

On CIFAR-10/100 ``ddr run`` applies SRe2L's 32 px recipe (:func:`sre2l_recipes`: its teacher,
recovery and student settings, under the ``sre2l-paper`` protocol). Elsewhere the set is evaluated
under the shared ``soft`` protocol; SRe2L's own (ImageNet) student recipe
(``validate/train_KD.sh``: AdamW 1e-3 wd 0.01, cosine, 300 epochs, batch 1024, RandomResizedCrop +
flip + CutMix, KL T=20) is the ``sre2l-paper`` protocol (``--protocol sre2l-paper``).

Digits budget (``reduced``, what ``ddr run --method sre2l`` uses on the embedded default): 300
steps and ``crop_scale_min=0.5``. The paper's ``RandomResizedCrop(scale=(0.08, 1))`` is sized for
224 px; at 16 px the smallest crops are ~4 px, every such patch is pushed to look like a whole
digit, and the recovered set fell below random real images under the soft evaluation
(benchmarks/RESULTS.md). SRe2L's own 32 px CIFAR script drops the crop altogether (shift jitter
only), which on digits measured worse still, because the soft evaluation trains on crops.
"""

from __future__ import annotations

from ddr import MethodRecipe, MethodSpec, ParamSpec, hookimpl, load_reported

PARAMS = (
    ParamSpec("iterations", 1000, "Adam steps per batch of synthetic images (SRe2L: 1000)", minimum=0),
    ParamSpec("lr", 0.25, "Adam learning rate on the pixels, cosine-decayed to 0 (SRe2L: 0.25)", minimum=0.0),
    ParamSpec("beta1", 0.5, "Adam beta1 (SRe2L: 0.5)", minimum=0.0),
    ParamSpec("beta2", 0.9, "Adam beta2 (SRe2L: 0.9)", minimum=0.0),
    ParamSpec("r_bn", 0.01, "weight of the BatchNorm statistics loss (SRe2L --r-bn 0.01)", minimum=0.0),
    ParamSpec("first_bn_multiplier", 10.0, "extra weight of the first BatchNorm layer's term (SRe2L: 10)",
              minimum=0.0),
    ParamSpec("crop_scale_min", 0.08, "smallest area of the random resized crop applied each step "
              "(SRe2L ImageNet: RandomResizedCrop(scale=(0.08, 1)); its 32 px CIFAR script: no crop); 1 disables "
              "the crop; the digits preset 'reduced' uses 0.5", minimum=0.0),
    ParamSpec("jitter", None, "random shift in pixels per step (SRe2L: 32 at 224 px); null: side * 32/224",
              type="int", minimum=0),
    ParamSpec("flip", True, "random left-right flip per step"),
    ParamSpec("batch_size", 100, "classes recovered together (one image each) per batch (SRe2L: 100)",
              minimum=1),
    ParamSpec("labels", "teacher", "teacher: the evaluation relabels every augmented batch; "
              "stored_soft: store one teacher logit vector per image", choices=("teacher", "stored_soft")),
)


SRE2L_CIFAR_SOURCE = (
    "VILA-Lab/SRe2L@cb5fac3 SRe2L/*small_dataset/: squeeze_cifar.py (torchvision ResNet-18 with a 3x3 stem and no "
    "max-pool; SGD 0.1 momentum 0.9 wd 5e-4, cosine, 200 epochs, batch 128, RandomCrop(32, 4) + flip), "
    "recover_cifar.py + recover_cifar.sh (no crop, no flip, torch.roll jitter random.randint(0, 4); Adam 0.25, "
    "1000 iterations, r_bn 0.01, batch 100), relabel_cifar.py + relabel_cifar.sh (ResNet-18, AdamW 1e-3 wd 0.01, "
    "cosine, 400 epochs, batch 128, RandomCrop(32, 4) + flip, mixup 0.8, KL T=30)")


def sre2l_recipes() -> tuple[MethodRecipe, ...]:
    """SRe2L's 32 px CIFAR scripts: recover without crop or flip (shift jitter 0..4), a ResNet-18-BN
    teacher squeezed with its recipe (the protocol's real-data model), and its student recipe on
    top of ``sre2l-paper`` (ResNet-18-BN, 400 epochs, batch 128, crop + flip + mixup 0.8, KL T=30).
    The official scripts run CIFAR-100; the same files serve CIFAR-10 (their dataset is one line)."""
    settings = {
        "teacher.arch": "resnet18_bn", "student.arch": "resnet18_bn",
        "real.optimizer": "sgd", "real.lr": 0.1, "real.momentum": 0.9, "real.weight_decay": 0.0005,
        "real.schedule": "cosine", "real.epochs": 200, "real.batch_size": 128, "real.augmentation": ["crop_flip"],
        "train.epochs": 400, "train.batch_size": 128,
        "hard_augmentation": ["crop_flip"], "augmentation": ["crop_flip", "mixup.sre2l"],
        "loss.temperature": 30.0,
    }
    return tuple(MethodRecipe(dataset=dataset, params={"crop_scale_min": 1.0, "flip": False, "jitter": 4},
                              protocol="sre2l-paper", protocol_overrides=settings, source=SRE2L_CIFAR_SOURCE)
                 for dataset in ("cifar10", "cifar100"))


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="sre2l",
            paper="Squeeze, Recover and Relabel: Dataset Condensation at ImageNet Scale From A New Perspective",
            venue="NeurIPS 2023",
            year=2023,
            code="https://github.com/VILA-Lab/SRe2L",
            label_type="soft",
            reported=load_reported(__name__),  # with their sources: reported.yaml beside this file
            target="ddr_methods.sre2l.method:SRe2L",
            summary="SRe2L (Yin et al. NeurIPS'23): recover images from a BN teacher's statistics; teacher relabels",
            params=PARAMS,
            presets={
                "paper": {"iterations": 1000, "lr": 0.25, "r_bn": 0.01, "first_bn_multiplier": 10.0},
                "smoke": {"iterations": 5},
                # digits (16 px): 300 steps, and crops of at least half the image. SRe2L's
                # RandomResizedCrop(scale=(0.08, 1)) is sized for 224 px (a crop is >= ~63 px); at
                # 16 px it would ask every ~4 px patch to look like a whole digit (measured: sre2l
                # then falls below random; benchmarks/RESULTS.md). SRe2L's CIFAR script drops it.
                "reduced": {"iterations": 300, "crop_scale_min": 0.5},
            },
            label_strategy="teacher",
            protocol="soft",
            needs_teacher=True,
            # recovery matches the teacher's BatchNorm running statistics: the teacher must have them
            protocol_overrides={"teacher.arch": "convnet_bn"},
            recipes=sre2l_recipes(),
        )
    ]
