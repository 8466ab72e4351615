"""ddr's CUDA path: what only a GPU can check. Every test here is marked ``gpu`` and skips without
CUDA (``torch.cuda.is_available()``), so the default suite collects and skips them on a CPU
machine; ``python -m pytest -m gpu tests/gpu`` (what benchmarks/gpu_acceptance.sh runs) selects them.

On the embedded digits dataset (16x16 grey, ConvNet-3 width 64, IPC 10, a few epochs):

* ``local``, ``batched`` and ``ray`` train on ``cuda`` (models and the allocator's peak on the GPU;
  ray only where Ray is installed) and ``batched`` students are within noise of ``local``'s
  (|Δ| ≤ 0.05 each, mean within 0.02: tests/helpers/executors.py ``within_noise``);
* the ``local.bf16``, ``batched.bf16`` and ``local.compiled`` presets run and learn (looser bounds:
  bfloat16 rounding and fused kernels move results further than the float32 reduction order);
* ``--deterministic`` holds on CUDA: two identical ``ddr run`` processes (fresh caches) give
  identical numbers under ``local`` and ``batched``, the run record says the deterministic
  settings were on (``CUBLAS_WORKSPACE_CONFIG=:4096:8``), and ``ray`` gives ``local``'s numbers;
* a real CUDA out-of-memory error in a batched group becomes a DdrError that suggests a smaller
  group, and the GPU trains again afterwards.

No timing is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.executors import digits_workspace, make_job, run, within_noise

from ddr.errors import DdrError
from ddr.execute.batched import BatchedExecutor
from ddr.execute.local import LocalExecutor
from ddr.records.jobs import JobResult, StudentJob

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA device (torch.cuda.is_available() is False)")]

SCORES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with digits_workspace(tmp_path_factory.mktemp("cuda-cache"), device="cuda") as workspace:
        yield workspace


@pytest.fixture(scope="module")
def jobs() -> list[StudentJob]:
    return [make_job(i, epochs=15) for i in range(4)]


@pytest.fixture(scope="module")
def local(ws: Any, jobs: list[StudentJob]) -> tuple[list[JobResult], dict[str, Any]]:
    return run(LocalExecutor(), jobs, ws)


def _on_cuda(models: dict[str, Any]) -> bool:
    return all(p.device.type == "cuda" for model in models.values() for p in model.parameters())


def _counting_groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the stacked groups the batched executor trains (members per group)."""
    import ddr.execute.group_training as group_training

    original = group_training.train_group
    sizes: list[int] = []

    def counted(stacked: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(int(stacked.members))
        return original(stacked, *args, **kwargs)

    monkeypatch.setattr(group_training, "train_group", counted)
    return sizes


# -- the executors train on cuda -----------------------------------------------------------------------

def test_the_workspace_and_the_local_executor_train_on_cuda(ws: Any, local: tuple[list[JobResult], dict[str, Any]]) -> None:
    results, models = local
    assert ws.device.type == "cuda" and ws.pool.images.device.type == "cuda"
    assert _on_cuda(models)
    assert all(r.peak_memory_bytes and r.peak_memory_bytes > 0 for r in results)  # the CUDA allocator's peak
    assert all(r.accuracy > 0.3 for r in results), [r.accuracy for r in results]


def test_batched_stacks_the_students_on_cuda_within_noise_of_local(
        ws: Any, jobs: list[StudentJob], local: tuple[list[JobResult], dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    groups = _counting_groups(monkeypatch)
    results, models = run(BatchedExecutor(), jobs, ws)
    assert groups == [len(jobs)], f"expected one stacked group of {len(jobs)} members, got {groups}"
    assert _on_cuda(models)
    within_noise(local[0], results)


def test_the_bf16_presets_run_on_cuda_and_learn(ws: Any, jobs: list[StudentJob],
                                                local: tuple[list[JobResult], dict[str, Any]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    groups = _counting_groups(monkeypatch)
    for executor in (LocalExecutor(bf16=True), BatchedExecutor(bf16=True)):
        results, models = run(executor, jobs, ws)
        assert _on_cuda(models)
        within_noise(local[0], results, each=0.1, mean=0.05)
    assert groups == [len(jobs)]


# -- out of memory ----------------------------------------------------------------------------------------

def test_a_real_cuda_out_of_memory_error_in_a_group_suggests_a_smaller_group(
        ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ddr.execute.group_training as group_training

    original = group_training.train_group

    def hungry(*args: Any, **kwargs: Any) -> Any:
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # 1 PiB: the CUDA allocator refuses
        return original(*args, **kwargs)

    small = [make_job(i, epochs=2) for i in range(2)]
    monkeypatch.setattr(group_training, "train_group", hungry)
    with pytest.raises(DdrError, match=r"ran out of memory .* max_images_per_step=\d+") as caught:
        run(BatchedExecutor(), small, ws)
    assert isinstance(caught.value.__cause__, torch.OutOfMemoryError)
    assert "--executor local" in str(caught.value)
    monkeypatch.setattr(group_training, "train_group", original)
    results, models = run(BatchedExecutor(), small, ws)  # the GPU trains again
    assert _on_cuda(models) and len(results) == 2


# -- determinism: identical processes, identical numbers -----------------------------------------------

def _ddr_run(folder: Path, executor: str) -> dict[str, Any]:
    """``ddr run --method random --device cuda --deterministic`` in a fresh process on a fresh cache:
    its JSON and its run record's environment (``env.json``)."""
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    env["DDR_CACHE_DIR"] = str(folder / "cache")
    command = [sys.executable, "-m", "ddr", "run", "--method", "random", "--device", "cuda", "--deterministic",
               "--executor", executor, "--num-eval", "2", "--epochs", "10", "--set", "real.epochs=3", "--json",
               "--no-progress", "--no-job-cache", "--out", str(folder / "runs")]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (record,) = [p for p in (folder / "runs").iterdir() if (p / "env.json").is_file()]
    return {"json": json.loads(proc.stdout), "env": json.loads((record / "env.json").read_text())}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], dict[str, Any]]:
    root = tmp_path_factory.mktemp("cuda-cli")
    done: dict[tuple[str, int], dict[str, Any]] = {}

    def ddr(executor: str, attempt: int) -> dict[str, Any]:
        if (executor, attempt) not in done:
            done[executor, attempt] = _ddr_run(root / f"{executor}-{attempt}", executor)
        return done[executor, attempt]

    return ddr


@pytest.mark.parametrize("executor", ["local", "batched"])
def test_two_deterministic_runs_on_cuda_give_identical_numbers(cli: Callable[[str, int], dict[str, Any]],
                                                               executor: str) -> None:
    first, second = cli(executor, 1), cli(executor, 2)
    for run_ in (first, second):
        assert run_["json"]["run_spec"]["device"] == "cuda" and run_["json"]["run_spec"]["executor"] == executor
        assert run_["env"]["cuda"]["available"] is True
        determinism = run_["env"]["determinism"]
        assert determinism["deterministic_algorithms"] is True and determinism["cudnn_deterministic"] is True
        assert determinism["cublas_workspace_config"] == ":4096:8"
    for name in SCORES:
        assert first["json"][name]["values"] == second["json"][name]["values"], name


def test_ray_trains_on_cuda_and_gives_the_local_numbers(cli: Callable[[str, int], dict[str, Any]]) -> None:
    pytest.importorskip("ray")
    remote, local_run = cli("ray", 1), cli("local", 1)
    assert remote["json"]["run_spec"]["executor"] == "ray" and remote["json"]["run_spec"]["device"] == "cuda"
    for name in SCORES:  # CPU draws differ from CUDA draws: equal numbers mean the worker trained on cuda
        assert remote["json"][name]["values"] == local_run["json"][name]["values"], name


# -- torch.compile (last: the compilation takes longest) -------------------------------------------------

def test_the_compiled_preset_runs_on_cuda_and_learns(ws: Any, jobs: list[StudentJob],
                                                     local: tuple[list[JobResult], dict[str, Any]]) -> None:
    results, models = run(LocalExecutor(compile=True), jobs[:2], ws)  # a compilation error is a DdrError
    assert _on_cuda(models)
    within_noise(local[0][:2], results, each=0.08, mean=0.05)
    torch._dynamo.reset()
