"""DD-Ranking's per-method evaluation configs (its ``eval`` branch) as named protocols with cells
by dataset and IPC, and the protocol ``cells:`` mechanism they rest on.

The configs below are transcribed here, independently of the protocol files, from
NUS-HPC-AI-Lab/DD-Ranking, branch ``eval``: ``{SRe2L,D4M,RDED,DATM}/{CIFAR10,CIFAR100}/IPC{1,10,50}.yaml``.
Each named protocol must resolve, cell by cell, to what ddr's own DD-Ranking config reader
(``ddr eval --ddranking-config``) makes of the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ddr.compat.ddranking.config import map_config
from ddr.errors import ConfigError
from ddr.plugin.manager import PluginSystem
from ddr.protocol.config import Protocol, load_protocol, resolve_protocol

CIFAR10_NORM = {"name": "Normalize", "args": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}}
COMMON: dict[str, Any] = {  # keys every one of these files sets alike
    "im_size": [32, 32], "stu_use_torchvision": False, "tea_use_torchvision": False, "use_zca": False,
    "custom_train_trans": None, "custom_val_trans": None, "soft_label_mode": "M", "soft_label_criterion": "kl",
    "optimizer": "adamw", "lr_scheduler": "cosine", "weight_decay": 0.01, "num_eval": 5, "real_batch_size": 256,
}
SRE2L = {**COMMON, "model_name": "ResNet-18-BN", "stu_use_torchvision": True, "tea_use_torchvision": True,
         "data_aug_func": "mixup", "aug_params": {"lambda": 0.8},
         "custom_train_trans": [{"name": "RandomCrop", "args": {"size": 32, "padding": 4}},
                                {"name": "RandomHorizontalFlip", "args": {"p": 0.5}}, {"name": "ToTensor"},
                                CIFAR10_NORM],
         "use_aug_for_hard": False, "temperature": 30.0, "num_epochs": 400, "default_lr": 0.001,
         "syn_batch_size": 256}
D4M = {**COMMON, "model_name": "ConvNet-3", "data_aug_func": "cutmix", "aug_params": {"beta": 1.0},
       "custom_train_trans": [{"name": "RandomResizedCrop", "args": {"size": 32, "scale": [0.08, 1.0]}},
                              {"name": "RandomHorizontalFlip", "args": {"p": 0.5}}, {"name": "ToTensor"}, CIFAR10_NORM],
       "use_aug_for_hard": False, "temperature": 20.0, "num_epochs": 500, "default_lr": 0.01, "syn_batch_size": 100}
RDED = {**COMMON, "model_name": "ConvNet-3-BN", "data_aug_func": "cutmix", "aug_params": {"beta": 1.0},
        "custom_val_trans": [{"name": "Resize", "args": {"size": 32, "antialias": True}},
                             {"name": "CenterCrop", "args": {"size": 32}}, {"name": "ToTensor"}, CIFAR10_NORM],
        "temperature": 20.0, "num_epochs": 300, "default_lr": 0.01}
DATM = {**COMMON, "model_name": "ConvNet-3", "data_aug_func": "dsa",
        "aug_params": {"flip": 0.5, "rotate": 15.0, "saturation": 2.0, "brightness": 1.0, "contrast": 0.5, "scale": 1.2,
                       "crop": 0.125, "cutout": 0.5},
        "use_zca": True, "soft_label_mode": "S", "soft_label_criterion": "sce", "temperature": 1.0, "optimizer": "sgd",
        "lr_scheduler": "step", "weight_decay": 0.0005, "momentum": 0.9, "num_epochs": 1000, "default_lr": 0.01,
        "syn_batch_size": 256}

EVAL_CONFIGS: dict[tuple[str, str, int], dict[str, Any]] = {
    **{("ddranking-sre2l", d, k): SRE2L for d in ("CIFAR10", "CIFAR100") for k in (1, 10, 50)},
    **{("ddranking-d4m", d, k): D4M for d in ("CIFAR10", "CIFAR100") for k in (1, 10, 50)},
    ("ddranking-d4m", "CIFAR100", 1): {**D4M, "temperature": 30.0},
    ("ddranking-rded", "CIFAR10", 1): {**RDED, "syn_batch_size": 10},
    ("ddranking-rded", "CIFAR10", 10): {**RDED, "syn_batch_size": 100},
    ("ddranking-rded", "CIFAR10", 50): {**RDED, "syn_batch_size": 200},
    ("ddranking-rded", "CIFAR100", 1): {**RDED, "syn_batch_size": 25, "default_lr": 0.001, "use_aug_for_hard": False},
    ("ddranking-rded", "CIFAR100", 10): {**RDED, "syn_batch_size": 25},
    ("ddranking-rded", "CIFAR100", 50): {**RDED, "syn_batch_size": 25, "default_lr": 0.001, "use_aug_for_hard": False},
    ("ddranking-datm", "CIFAR10", 1): {**DATM, "use_aug_for_hard": True},
    ("ddranking-datm", "CIFAR10", 10): {**DATM, "use_aug_for_hard": True},
    **{("ddranking-datm", d, k): DATM for d, k in (("CIFAR10", 50), ("CIFAR100", 1), ("CIFAR100", 10),
                                                   ("CIFAR100", 50))},
}
"""(protocol, DD-Ranking dataset, IPC) -> the eval config's keys that shape the evaluation.

Left out, because ddr handles them itself or the protocol states its choice: ``real_data_path``,
``teacher_dir``, ``save_path``, ``device``, ``num_workers`` and the SRe2L/D4M files'
``random_data_format: image`` / ``random_data_path`` (ddr keeps random subsets as tensors). The DATM
files set ``lr_scheduler: step`` without ``step_size`` (DD-Ranking 0.2.0 asserts on it): the
protocol steps at 500, the step of DD-Ranking's other 1000-epoch eval configs."""

DATM_STEP_SIZE = 500


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def _as_read(name: str, dataset: str, ipc: int, system: PluginSystem) -> Protocol:
    """What ``ddr eval --ddranking-config`` makes of the eval config, as a protocol."""
    config = {**EVAL_CONFIGS[(name, dataset, ipc)], "dataset": dataset, "ipc": ipc}
    if name == "ddranking-datm":
        config["step_size"] = DATM_STEP_SIZE
    mapped = map_config(config, evaluator="soft", system=system)
    options = mapped.options
    overrides = {**mapped.overrides, "student.arch": options["arch"], "student.arch_params": options["arch_params"],
                 "label_strategy": options["label_strategy"], "loss": options["loss"]}
    assert options["zca"] is (name == "ddranking-datm")  # the one key a protocol cannot carry
    return resolve_protocol(mapped.protocol, overrides, system)


def _behaviour(p: Protocol) -> dict[str, Any]:
    return {"student": (p.student.arch, dict(p.student.arch_params)), "train": p.train, "real": p.real,
            "augmentation": list(p.augmentation), "hard_augmentation": list(p.hard_augmentation),
            "label_strategy": p.label_strategy, "loss": dict(p.loss), "teacher": p.teacher, "selection": p.selection,
            "real_selection": p.real_selection, "lr_grid": p.lr_grid, "test_interval": p.test_interval,
            "num_eval": p.num_eval, "metrics": p.metrics, "syn_hard_learned_lr": p.syn_hard_learned_lr}


@pytest.mark.parametrize(("name", "dataset", "ipc"), sorted(EVAL_CONFIGS))
def test_each_cell_is_what_the_ddranking_reader_makes_of_its_file(name: str, dataset: str, ipc: int,
                                                                  system: PluginSystem) -> None:
    named = resolve_protocol(name, system=system, dataset=dataset.lower(), ipc=ipc)
    assert named.cell is not None and f"/{dataset}/" in named.cell and f"IPC{ipc}.yaml" in named.cell
    assert _behaviour(named) == _behaviour(_as_read(name, dataset, ipc, system))


def test_the_cells_differ_where_the_files_do(system: PluginSystem) -> None:
    def cell(name: str, dataset: str, ipc: int) -> Protocol:
        return resolve_protocol(name, system=system, dataset=dataset, ipc=ipc)

    assert [cell("ddranking-rded", "cifar10", k).train.batch_size for k in (1, 10, 50)] == [10, 100, 200]
    assert [cell("ddranking-rded", "cifar100", k).train.lr for k in (1, 10, 50)] == [0.001, 0.01, 0.001]
    assert [cell("ddranking-d4m", "cifar100", k).loss["temperature"] for k in (1, 10, 50)] == [30.0, 20.0, 20.0]
    assert cell("ddranking-d4m", "cifar10", 1).loss["temperature"] == 20.0
    assert [list(cell("ddranking-datm", "cifar10", k).hard_augmentation) for k in (1, 10, 50)] == [["dsa"], ["dsa"], []]
    sre2l = cell("ddranking-sre2l", "cifar100", 50)
    assert (sre2l.student.arch, sre2l.train.epochs, sre2l.loss["temperature"]) == ("torchvision:resnet18", 400, 30.0)
    assert list(sre2l.augmentation) == [{"name": "crop_flip", "padding": 4, "reference_size": 32, "flip": 0.5},
                                        {"name": "mixup", "alpha": 0.8}]


def test_settings_given_by_the_user_win_over_the_cell(system: PluginSystem) -> None:
    p = resolve_protocol("ddranking-rded", {"train.batch_size": 64}, system, dataset="cifar10", ipc=1)
    assert p.train.batch_size == 64 and p.cell is not None  # the cell applied, then --set
    assert resolve_protocol("ddranking-rded", system=system).train.batch_size == 256  # no dataset: no cell
    assert resolve_protocol("ddranking-rded", system=system, dataset="cifar10:train_per_class=5", ipc=10
                            ).train.batch_size == 100  # dataset options do not hide the cell
    other = resolve_protocol("ddranking-rded", system=system, dataset="digits", ipc=1)
    assert other.cell is None and other.train.batch_size == 256 and len(other.cells) == 5


def test_a_cell_for_one_ipc_wins_over_one_for_every_ipc(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nversion: 1\ninclude: ddr.builtins.protocols:hard.yaml\ncells:\n"
                    "  - {dataset: cifar10, set: {train.epochs: 7}, source: a table}\n"
                    "  - {dataset: cifar10, ipcs: [10], set: {train.epochs: 9, num_eval: 2}, source: a file}\n")
    assert load_protocol(str(path), dataset="cifar10", ipc=1).train.epochs == 7
    ten = load_protocol(str(path), dataset="cifar10", ipc=10)
    assert (ten.train.epochs, ten.num_eval) == (9, 2) and ten.cell == "cifar10 IPC 10: train.epochs=9; num_eval=2 (a file)"
    assert "cells" not in ten.to_dict() and ten.to_dict()["train"]["epochs"] == 9  # records hold what applied
    assert load_protocol(str(path)).train.epochs == 1000


@pytest.mark.parametrize(("cells", "message"), [
    ("cells: {dataset: cifar10}", r"cells must be a list"),
    ("cells: [cifar10]", r"cells\[0\] must be a mapping"),
    ("cells: [{dataset: cifar10, set: {}}]", r"say where the cell's settings come from"),
    ("cells: [{dataset: cifar10, ipcs: [0], source: s}]", r"ipcs must list positive integers"),
    ("cells: [{dataset: cifar10, when: 1, source: s}]", r"unknown key 'when'"),
    ("cells: [{dataset: cifar10, set: [1], source: s}]", r"set must map dotted protocol keys"),
    ("cells: [{dataset: cifar10, set: {train.epoch: 3}, source: s}]", r"cells\[0\]\.set: unknown key 'train\.epoch'; "
                                                                       r"did you mean 'train\.epochs'\?"),
    ("cells: [{dataset: cifar10, ipcs: [1, 10], source: s}, {dataset: cifar10, ipcs: [10], source: t}]",
     r"cells\[1\]: covers cifar10 at IPC \[10\] like an earlier cell"),
])
def test_bad_cells_are_refused_when_the_protocol_loads(tmp_path: Path, cells: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nversion: 1\ninclude: ddr.builtins.protocols:hard.yaml\n{cells}\n")
    with pytest.raises(ConfigError, match=message):
        load_protocol(str(path), dataset="digits", ipc=1)  # a cell for another dataset is checked too


def test_a_run_names_the_cell_it_applies_or_warns_there_is_none(system: PluginSystem) -> None:
    from ddr.resources.session import Session
    from ddr.runs.evaluate import EvalOptions, Evaluator

    lines: list[str] = []
    session = Session(system=system, log=lines.append, progress_bars=False)
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, protocol="ddranking-rded"), session=session)
    assert not any("has no cell" in line for line in lines)  # said before the first work, not at construction
    evaluator.announce_protocol()
    evaluator.announce_protocol()  # once
    assert sum("has no cell" in line for line in lines) == 1
    assert lines[-1].startswith("warning: protocol ddranking-rded has no cell for digits IPC 1, so its own values "
                                "apply; it has cells for cifar10 IPC 1, cifar10 IPC 10")


def test_describe_lists_the_cells(ddr_cli) -> None:
    proc = ddr_cli("describe", "protocol", "ddranking-d4m")
    assert proc.returncode == 0, proc.stderr
    assert "  cifar100 IPC 1: loss.temperature=30.0 (DD-Ranking eval branch D4M/CIFAR100/IPC1.yaml)" in proc.stdout
