"""Resources: the dataset, splits, reference model, teachers and assets of one dataset, protocol
and seed, built without any evaluation (``ddr teacher``, ``ddr experts``, a plugin's command)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from ddr import DdrError, Resources
from ddr.cli import main
from ddr.resources.session import Session
from ddr.runs.evaluate import Evaluator

TINY = ("name: tiny\nversion: 1\ninclude: ddr.builtins.protocols:_base.yaml\n"
        "student: {arch: convnet, arch_params: {width: 8}}\nreal: {epochs: 1, augmentation: []}\n")


def test_opened_resources_are_the_evaluators_own() -> None:
    """The pool, validation split, student and reference job are those an evaluation at any IPC of
    the same (dataset, protocol, seed) uses: nothing depends on the IPC or the method."""
    opened = Resources.open(dataset="digits", seed=3, device="cpu")
    evaluator = Evaluator(dataset="digits", ipc=5, seed=3, device="cpu")
    mine, theirs = opened, evaluator.resources
    assert torch.equal(mine.pool.images, theirs.pool.images) and torch.equal(mine.pool.labels, theirs.pool.labels)
    assert torch.equal(mine.validation.labels, theirs.validation.labels)
    assert mine.student_arch() == theirs.student_arch() and mine.reference().key == theirs.reference().key
    assert len(mine.pool) + len(mine.validation) == len(mine.dataset.train)
    other_seed = Resources.open(dataset="digits", seed=4, device="cpu")
    assert not torch.equal(other_seed.pool.images, mine.pool.images)  # another seed holds out other images
    assert mine.reference().key != other_seed.reference().key


def test_one_workspace_per_ipc_and_an_ipc_the_pool_cannot_fill_is_refused() -> None:
    resources = Resources.open(dataset="digits", device="cpu")
    assert resources.workspace(2) is resources.workspace(2) and resources.workspace(2).ipc == 2
    assert resources.workspace(3).pool is resources.pool
    with pytest.raises(DdrError, match=r"holds out 10 per class for validation and ipc is 500; lower ipc"):
        resources.workspace(500)


def test_resources_check_what_they_are_given(tmp_path: Path) -> None:
    with pytest.raises(DdrError, match="teacher checkpoint not found"):
        Resources.open(dataset="digits", device="cpu", teacher=tmp_path / "absent.pt")
    with pytest.raises(DdrError, match="seed"):
        Resources.open(dataset="digits", device="cpu", seed=-1)
    with pytest.raises(DdrError, match="executor"):
        Resources.open(dataset="digits", device="cpu", executor="no-such-executor")
    with pytest.raises(DdrError, match="device"):
        Resources.open(dataset="digits", device="tpu")


def _no_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("this command must not build an Evaluator")

    monkeypatch.setattr(Evaluator, "__init__", refuse)


def test_teacher_and_experts_commands_build_no_evaluator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(TINY)
    _no_evaluator(monkeypatch)
    torch.set_num_threads(1)
    assert main(["teacher", "train", "--dataset", "digits", "--protocol", str(protocol), "--device", "cpu",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["arch"] == "convnet" and Path(record["checkpoint"]).is_file()
    assert main(["experts", "train", "--dataset", "digits", "--protocol", str(protocol), "--device", "cpu",
                 "--num-experts", "1", "--epochs", "1", "--augmentation", "none", "--json"]) == 0
    experts = json.loads(capsys.readouterr().out)
    assert experts["trained"] == 1 and Path(experts["folders"][0], "trajectory.safetensors").is_file()
    # the teacher the command trained is the one an evaluation under that protocol reads
    session = Session()
    resources = Resources.open(session, dataset="digits", protocol=str(protocol), device="cpu")
    assert resources.real_accuracy()[1] is True  # cached by `ddr teacher train`
    assert resources.teacher_checkpoint() == Path(record["checkpoint"])
