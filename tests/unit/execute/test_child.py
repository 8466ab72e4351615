"""``--isolate``: the distillation in a child process (:mod:`ddr.execute.child`) gives the set the
method gives in-process, and a child that ends without a reply is reported with how it ended."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from ddr.errors import DdrError
from ddr.execute.child import ChildProcess, how_it_ended
from ddr.resources.session import Session
from ddr.runs.evaluate import EvalOptions
from ddr.runs.run import run


def test_an_isolated_distillation_equals_a_local_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    options = EvalOptions(dataset="digits", ipc=1, num_eval=1, epochs=1, device="cpu",
                          overrides={"real.epochs": 1})
    said: list[str] = []
    _, local = run("dm", options=options, session=Session(progress_bars=False), use_cache=False,
                   method_overrides={"iterations": 3})
    _, isolated = run("dm", options=options, session=Session(progress_bars=False, isolate=True, log=said.append),
                      use_cache=False, method_overrides={"iterations": 3})
    assert torch.equal(local.distilled.images, isolated.distilled.images)
    assert torch.equal(local.distilled.labels, isolated.distilled.labels)
    assert isolated.key == local.key
    assert any(line.startswith("dm: distilled in a child process (") for line in said), said


def _exit_with(status: int) -> None:
    os._exit(status)


def _kill_self(signum: int) -> None:
    os.kill(os.getpid(), signum)


def _echo(value: int) -> dict[str, int]:
    return {"value": value}


def test_a_child_that_ends_without_a_reply_is_reported_with_how_it_ended() -> None:
    runner = ChildProcess()
    assert runner.submit(_echo, 7, what="echo").result() == {"value": 7}
    with pytest.raises(DdrError, match=r"^the task ended its process \(exit status 0\) without a result"):
        runner.submit(_exit_with, 0, what="the task").result()
    with pytest.raises(DdrError, match=r"ended its process \(signal 9 \(SIGKILL\)\) without a result"):
        runner.submit(_kill_self, signal.SIGKILL, what="the task").result()
    assert how_it_ended(3) == "exit status 3" and how_it_ended(-6) == "signal 6 (SIGABRT)"
