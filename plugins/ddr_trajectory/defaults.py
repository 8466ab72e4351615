"""Per-(dataset, ipc) hyper-parameters of the trajectory methods, and the shared parameter schema.

Never imports torch (registration modules import it to build their specs).

``MTT_TABLE`` is the table of the MTT README (GeorgeCazenavette/mtt-distillation; Cazenavette et
al., CVPR 2022): ``syn_steps``, ``expert_epochs``, ``max_start_epoch``, ``lr_img``, ``lr_lr``,
``lr_teacher`` (the initial learnable student LR), ``batch_syn`` (None: the whole synthetic set)
and whether the authors used ZCA, as DD-Ranking's methods/MTT readme transcribes it (CIFAR-10
IPC 10 uses ``lr_img = 100``: the README's value makes the images explode, README issue #31). A parameter
left ``null`` takes its value from the table for the run's (dataset, ipc), else from
``GENERIC``. ZCA is a property of the loaded dataset (``ddr run --zca``), not a method parameter:
the table's ``zca`` column is advice only.
"""

from __future__ import annotations

from typing import Any

from ddr.plugin.params import ParamSpec

TABLE_KEYS = ("syn_steps", "expert_epochs", "max_start_epoch", "lr_img", "lr_lr", "lr_teacher", "batch_syn")

MTT_TABLE: dict[tuple[str, int], dict[str, Any]] = {
    # the authors' table as DD-Ranking's methods/MTT readme transcribes it (CIFAR-10 IPC 10: lr_img
    # 100, not the README's typo that makes the images explode, mtt-distillation issue #31)
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


def table_value(dataset: str, ipc: int, key: str) -> Any:
    """The table's value of ``key`` for (dataset, ipc), else the generic default."""
    row = MTT_TABLE.get((dataset, int(ipc)))
    if row is not None and key in row:
        return row[key]
    return GENERIC[key]


def common_params() -> tuple[ParamSpec, ...]:
    """Parameters MTT and DATM share."""
    return (
        ParamSpec("iterations", 5000, "distillation iterations (synthetic-set updates)", minimum=0),
        ParamSpec("num_experts", 100, "expert trajectories to use (trained and cached on demand)", minimum=1),
        ParamSpec("expert_train_epochs", 50, "epochs each expert is trained for (snapshots 0..E)", minimum=1),
        ParamSpec("expert_lr", 0.01, "expert training LR (SGD, momentum 0, wd 0, constant)", minimum=0.0),
        ParamSpec("expert_batch_size", 256, "expert training batch size", minimum=1),
        ParamSpec("expert_augmentation", "dsa", "augmentation of the real images during expert training "
                  "(a registered name; none disables)"),
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
