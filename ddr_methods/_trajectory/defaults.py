"""Per-(dataset, ipc) hyper-parameters of the trajectory methods, and the shared parameter schema.

Never imports torch (registration modules import it to build their specs).

``MTT_TABLE`` is MTT's per-setting table (GeorgeCazenavette/mtt-distillation, readme.md "full list
of hyper-parameters", an image there; Cazenavette et al., CVPR 2022) as DD-Ranking transcribes it
as commands in NUS-HPC-AI-Lab/DD-Ranking ``methods/MTT/readme.md``: ``syn_steps``,
``expert_epochs``, ``max_start_epoch``, ``lr_img``, ``lr_lr``, ``lr_teacher`` (the initial learnable
student LR), ``batch_syn`` (None: the whole synthetic set) and whether the authors used ZCA. Every
row below equals that file's command; the CIFAR-100 IPC 1 row is also the MTT readme's own example
command. CIFAR-10 IPC 10 uses ``lr_img = 100``: the value in MTT's table image makes the images
explode (mtt-distillation issue #31).

``DATM_TABLE`` is the official DATM configs, NUS-HPC-AI-Lab/DATM ``configs/<dataset>/ConvIN/IPC<k>.yaml``
(``CIFAR-10``, ``CIFAR-100``, ``TinyImageNet``), with the defaults of ``utils/cfg.py`` for keys a
config leaves out (``Sequential_Generation: True``, ``current_max_start_epoch: 20``,
``expansion_end_epoch: 3000``, ``lr_y: 2``, ``threshold: 1``, ``Iteration: 5000``). A config with
``Sequential_Generation: False`` has a fixed window: ``current_max_start_epoch = max_start_epoch``
here. ``init`` is its ``pix_init`` (``samples_predicted_correctly`` -> ``correct``).

Experts: MTT trains them with plain SGD (``buffer.py``; ``expert_optimizer: sgd``), DATM with FTD's
GSAM (README line 31: ``buffer_FTD.py --train_epochs=100 --rho_max=0.01 --rho_min=0.01 --alpha=0.3
--lr_teacher=0.01 --mom=0. --batch_train=256``), so DATM's parameters default to
``expert_optimizer: gsam`` with ``expert_rho_max``/``expert_rho_min`` 0.01 and ``expert_alpha`` 0.3
(:data:`GSAM_RHO_MAX`, ...; the step is :mod:`ddr_methods._trajectory.gsam`) and 100 expert epochs;
the LR (0.01), batch (256) and DSA are MTT's and DATM's alike. DATM's ``reduced`` and ``smoke``
presets keep GSAM (it is the method's recipe; two gradient passes a step, about twice the expert
cost, seconds on digits).

A parameter left ``null`` takes its value from the method's table for the run's (dataset, ipc),
else from ``GENERIC`` / ``DATM_GENERIC``. ZCA is a property of the loaded dataset, not a method
parameter: :func:`mtt_recipes` / :func:`datm_recipes` turn the tables' ``zca`` column (and DATM's
evaluation batch) into the methods' :class:`ddr.MethodRecipe` records, which ``ddr run`` applies
for the run's (dataset, ipc) unless the user says ``--zca`` / ``--no-zca``.
"""

from __future__ import annotations

from typing import Any

from ddr import MethodRecipe, ParamSpec

GSAM_RHO_MAX = 0.01
"""GSAM's largest radius for DATM's experts: ``--rho_max=0.01`` (NUS-HPC-AI-Lab/DATM README.md line 31;
``buffer/buffer_FTD.py``'s own default, line 144, is 2.0)."""
GSAM_RHO_MIN = 0.01
"""``--rho_min=0.01`` (DATM README.md line 31; ``buffer_FTD.py`` line 145 defaults to 2.0)."""
GSAM_ALPHA = 0.3
"""GSAM's surrogate-gap weight: ``--alpha=0.3`` (DATM README.md line 31; ``buffer_FTD.py`` line 146: 0.4)."""
GSAM_ADAPTIVE = True
"""Adaptive (weight-scaled) perturbation: ``--adaptive`` defaults to True (``buffer_FTD.py`` line 147,
``type=bool``) and the README does not set it."""
EXPERT_OPTIMIZERS = ("sgd", "gsam")

TABLE_KEYS = ("syn_steps", "expert_epochs", "max_start_epoch", "lr_img", "lr_lr", "lr_teacher", "batch_syn")

MTT_TABLE: dict[tuple[str, int], dict[str, Any]] = {
    # source: NUS-HPC-AI-Lab/DD-Ranking methods/MTT/readme.md (the commands transcribing the table of
    # GeorgeCazenavette/mtt-distillation readme.md; CIFAR-10 IPC 10: lr_img 100, not the table's typo
    # that makes the images explode, mtt-distillation issue #31)
    ("cifar10", 1): dict(syn_steps=50, expert_epochs=2, max_start_epoch=2, lr_img=100, lr_lr=1e-07,
                         lr_teacher=0.01, batch_syn=None, zca=True),
    ("cifar10", 10): dict(syn_steps=30, expert_epochs=2, max_start_epoch=20, lr_img=100, lr_lr=1e-05,
                          lr_teacher=0.001, batch_syn=None, zca=True),
    ("cifar10", 50): dict(syn_steps=30, expert_epochs=2, max_start_epoch=40, lr_img=1000, lr_lr=1e-05,
                          lr_teacher=0.001, batch_syn=None, zca=False),
    ("cifar100", 1): dict(syn_steps=20, expert_epochs=3, max_start_epoch=20, lr_img=1000, lr_lr=1e-05,
                          lr_teacher=0.01, batch_syn=None, zca=True),
    ("cifar100", 10): dict(syn_steps=20, expert_epochs=2, max_start_epoch=20, lr_img=1000, lr_lr=1e-05,
                           lr_teacher=0.01, batch_syn=None, zca=False),
    ("cifar100", 50): dict(syn_steps=80, expert_epochs=2, max_start_epoch=40, lr_img=1000, lr_lr=1e-05,
                           lr_teacher=0.01, batch_syn=125, zca=True),
    ("tinyimagenet", 1): dict(syn_steps=10, expert_epochs=2, max_start_epoch=10, lr_img=10000, lr_lr=1e-04,
                              lr_teacher=0.01, batch_syn=None, zca=False),
    ("tinyimagenet", 10): dict(syn_steps=20, expert_epochs=2, max_start_epoch=40, lr_img=10000, lr_lr=1e-04,
                               lr_teacher=0.01, batch_syn=200, zca=False),
    ("tinyimagenet", 50): dict(syn_steps=20, expert_epochs=2, max_start_epoch=40, lr_img=10000, lr_lr=1e-04,
                               lr_teacher=0.01, batch_syn=300, zca=False),
}

GENERIC: dict[str, Any] = dict(syn_steps=20, expert_epochs=2, max_start_epoch=20, lr_img=1000, lr_lr=1e-05,
                               lr_teacher=0.01, batch_syn=None)


DATM_TABLE_KEYS = TABLE_KEYS + ("min_start_epoch", "current_max_start_epoch", "expansion_end_epoch", "lr_y",
                                 "threshold", "init", "iterations")


def _datm(syn_steps: int, expert_epochs: int, lr_img: float, lr_lr: float, batch_syn: int, lr_y: float,
          min_start: int, max_start: int, current_max: int | None = None, expansion_end: int = 3000,
          threshold: float = 1.0, init: str = "correct") -> dict[str, Any]:
    """One DATM config; ``current_max=None``: ``Sequential_Generation: False`` (a fixed window)."""
    return dict(syn_steps=syn_steps, expert_epochs=expert_epochs, lr_img=lr_img, lr_lr=lr_lr, lr_teacher=0.01,
                batch_syn=batch_syn, lr_y=lr_y, min_start_epoch=min_start, max_start_epoch=max_start,
                current_max_start_epoch=max_start if current_max is None else current_max,
                expansion_end_epoch=expansion_end if current_max is not None else 1, threshold=threshold, init=init,
                iterations=10000, zca=True)


DATM_TABLE: dict[tuple[str, int], dict[str, Any]] = {
    # source: NUS-HPC-AI-Lab/DATM configs/<CIFAR-10|CIFAR-100|TinyImageNet>/ConvIN/IPC<k>.yaml, keys a
    # config omits from utils/cfg.py (Sequential_Generation True, expansion_end_epoch 3000, threshold 1).
    # Every config: lr_teacher 0.01, Iteration 10000, zca True. batch_syn above K*ipc means the whole set.
    ("cifar10", 1): _datm(80, 2, 100, 1e-07, 10, 5.0, 0, 4, threshold=1.1),  # Sequential_Generation: False
    ("cifar10", 10): _datm(80, 2, 100, 1e-05, 100, 2.0, 0, 20, current_max=10, expansion_end=1000),
    ("cifar10", 50): _datm(80, 2, 1000, 1e-05, 500, 2.0, 0, 40, current_max=20, expansion_end=2000),
    ("cifar100", 1): _datm(40, 3, 1000, 1e-05, 1000, 10.0, 0, 20, current_max=10, expansion_end=1000),
    ("cifar100", 10): _datm(80, 2, 1000, 1e-05, 1000, 10.0, 0, 50, current_max=30, expansion_end=2000),
    ("cifar100", 50): _datm(80, 2, 1000, 1e-05, 1000, 10.0, 20, 70, init="real"),  # Sequential_Generation: False
    ("tinyimagenet", 1): _datm(40, 2, 10000, 1e-04, 1000, 10.0, 0, 20, current_max=15, expansion_end=2000),
    ("tinyimagenet", 10): _datm(40, 2, 100, 1e-04, 500, 10.0, 10, 50),  # Sequential_Generation: False
    ("tinyimagenet", 50): _datm(20, 2, 100, 1e-04, 1000, 10.0, 40, 70),  # Sequential_Generation: False
}

DATM_GENERIC: dict[str, Any] = {
    # MTT's generic values, and utils/cfg.py's defaults for DATM's own keys (a fixed window unless asked)
    **GENERIC, "min_start_epoch": 0, "current_max_start_epoch": None, "expansion_end_epoch": 3000, "lr_y": 2.0,
    "threshold": 1.0, "init": "correct", "iterations": 5000,
}


MTT_SOURCE = ("GeorgeCazenavette/mtt-distillation readme.md hyper-parameter table (the zca column), as "
              "NUS-HPC-AI-Lab/DD-Ranking methods/MTT/readme.md transcribes it; ZCA fit in utils.py get_dataset")
DATM_EVAL_BATCH = 128
"""DATM trains its evaluation students with ``batch_train: 128`` (every config; distill/evaluation.py:99)."""
DATM_SOURCE = ("NUS-HPC-AI-Lab/DATM configs/{folder}/ConvIN/IPC{ipc}.yaml (zca: True, batch_train: 128); "
               "distill/evaluation.py:99 (the evaluation batch); utils/utils_baseline.py (the ZCA fit)")
DATM_FOLDERS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet"}


def mtt_recipes() -> tuple[MethodRecipe, ...]:
    """MTT's (dataset, ipc) cells: ZCA as its table says."""
    return tuple(MethodRecipe(dataset=dataset, ipcs=(ipc,), zca=bool(row["zca"]), source=MTT_SOURCE)
                 for (dataset, ipc), row in MTT_TABLE.items())


def datm_recipes() -> tuple[MethodRecipe, ...]:
    """DATM's (dataset, ipc) cells: ZCA on and its evaluation students' batch of 128."""
    return tuple(MethodRecipe(dataset=dataset, ipcs=(ipc,), zca=bool(row["zca"]),
                              protocol_overrides={"train.batch_size": DATM_EVAL_BATCH},
                              source=DATM_SOURCE.format(folder=DATM_FOLDERS[dataset], ipc=ipc))
                 for (dataset, ipc), row in DATM_TABLE.items())


def table_value(dataset: str, ipc: int, key: str, method: str = "mtt") -> Any:
    """The method's table value of ``key`` for (dataset, ipc), else its generic default."""
    table, generic = (DATM_TABLE, DATM_GENERIC) if method == "datm" else (MTT_TABLE, GENERIC)
    row = table.get((dataset, int(ipc)))
    if row is not None and key in row:
        return row[key]
    return generic[key]


def common_params() -> tuple[ParamSpec, ...]:
    """Parameters MTT and DATM share."""
    return (
        ParamSpec("iterations", 5000, "distillation iterations (synthetic-set updates)", minimum=0),
        ParamSpec("num_experts", 100, "expert trajectories to use (trained and cached on demand)", minimum=1),
        ParamSpec("expert_train_epochs", 50, "epochs each expert is trained for (snapshots 0..E)", minimum=1),
        ParamSpec("expert_lr", 0.01, "expert training LR (SGD, momentum 0, wd 0, constant; GSAM's base step)",
                  minimum=0.0),
        ParamSpec("expert_batch_size", 256, "expert training batch size", minimum=1),
        ParamSpec("expert_augmentation", "dsa", "augmentation of the real images during expert training "
                  "(a registered name; none disables)"),
        ParamSpec("expert_optimizer", "sgd", "how experts are trained: sgd (MTT's buffer.py) or gsam (DATM's, "
                  "FTD's buffer_FTD.py: adaptive GSAM, two gradient passes a step); part of the expert cache key",
                  choices=EXPERT_OPTIMIZERS),
        ParamSpec("expert_rho_max", GSAM_RHO_MAX, "GSAM's perturbation radius rho (gsam experts only; DATM: 0.01)",
                  minimum=0.0),
        ParamSpec("expert_rho_min", GSAM_RHO_MIN, "GSAM's smallest rho; the expert LR is constant, so it must "
                  "equal expert_rho_max (gsam experts only)", minimum=0.0),
        ParamSpec("expert_alpha", GSAM_ALPHA, "GSAM's surrogate-gap weight alpha (gsam experts only; DATM: 0.3)",
                  minimum=0.0),
        ParamSpec("expert_seed", 0, "seed of the expert set (part of the expert cache key)", minimum=0),
        ParamSpec("experts", None, "directory of experts to use instead: official replay_buffer_*.pt files or "
                  "a `ddr experts import` folder", type="str"),
        ParamSpec("syn_steps", None, "student steps unrolled per iteration (null: the paper table)", type="int",
                  minimum=1),
        ParamSpec("expert_epochs", None, "expert epochs the student must cover (target = start + this)",
                  type="int", minimum=1),
        ParamSpec("max_start_epoch", None, "start epochs are drawn from [min, max_start_epoch)", type="int",
                  minimum=1),
        ParamSpec("lr_img", None, "SGD learning rate of the synthetic images", type="float", minimum=0.0),
        ParamSpec("lr_lr", None, "SGD learning rate of the learnable student LR", type="float", minimum=0.0),
        ParamSpec("lr_teacher", None, "initial learnable student LR (null: the table, 0.01)", type="float",
                  minimum=0.0),
        ParamSpec("batch_syn", None, "synthetic images per unrolled step (null: all)", type="int", minimum=1),
        ParamSpec("momentum_img", 0.5, "SGD momentum of the images", minimum=0.0),
        ParamSpec("momentum_lr", 0.5, "SGD momentum of the learnable LR", minimum=0.0),
        ParamSpec("lr_param", "plain", "parametrisation of the learnable LR", choices=("plain", "log")),
        ParamSpec("init", "real", "initial images: real images of each class or noise", choices=("real", "noise")),
        ParamSpec("augmentation", "dsa", "augmentation of the synthetic minibatches in the unroll (none disables)"),
        ParamSpec("augmentation_params", {}, "parameters of that augmentation"),
        ParamSpec("checkpoint_segments", 0, "0: keep the whole unroll graph; S>0: checkpoint S segments "
                  "(less memory, ~1 more forward)", minimum=0),
    )


REDUCED_COMMON: dict[str, Any] = {
    # digits (16x16 grey, ~1100 training images): 2 experts x 8 epochs with batch 64 (17 steps an
    # epoch instead of 4 at 256), 40 iterations of 10 unrolled steps from start epochs 0..3. Digits
    # are not mirror-symmetric: DSA without flips, as in the digits protocol.
    "num_experts": 2, "expert_train_epochs": 8, "expert_batch_size": 64, "expert_augmentation": "dsa.noflip",
    "augmentation": "dsa.noflip", "iterations": 40, "syn_steps": 10, "expert_epochs": 2, "max_start_epoch": 4,
    "lr_img": 100.0, "lr_lr": 1e-05, "lr_teacher": 0.01,
}

SMOKE_COMMON: dict[str, Any] = {
    "num_experts": 1, "expert_train_epochs": 3, "expert_augmentation": "none", "augmentation": "none",
    "iterations": 3, "syn_steps": 3, "expert_epochs": 1, "max_start_epoch": 2, "lr_img": 100.0,
    "lr_lr": 1e-05, "lr_teacher": 0.01,
}
