"""The ``ray`` executor driven from this process: the local executor's numbers bit for bit, a
task's DdrError raised as is, Ctrl-C cancelling every task, distillations as Ray tasks and a
suite sending them ahead.

These tests start Ray inside the pytest process (one local ``ray.init(num_cpus=2)`` on CPU). A
Ray core failure ends its driver process outright (the raylet going away makes the driver
exit with status 1, printing nothing to stdout), which would end the whole test run without a
report, so the default suite runs this file in a child pytest of its own
(``tests/unit/execute/test_ray_executor.py::test_the_in_process_ray_cases_pass_in_a_driver_of_their_own``).
Run it directly while working on the executor: ``python -m pytest tests/unit/execute/ray_driver_cases.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from ddr.errors import DdrError
from ddr.execute.ray import RayExecutor
from ddr.resources.session import Session
from ddr.runs.evaluate import EvalOptions, Evaluator

FAST = {"real.epochs": 1}



@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local Ray for this module (2 CPUs), shut down afterwards unless it was running before."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        import logging

        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


def distilled_set(soft: bool) -> Any:
    """A fixed digits set at IPC 1 (first pool image of each class), optionally with soft labels."""
    import torch

    from ddr.method.distilled import DistilledSet

    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, device="cpu"), session=Session(progress_bars=False))
    pool = evaluator.resources.pool
    picks = torch.stack([index[0] for index in pool.class_indices(10)])
    labels = pool.labels[picks]
    logits = torch.nn.functional.one_hot(labels, 10).float() * 3.0 if soft else None
    return DistilledSet(images=pool.images[picks].clone(), labels=labels.clone(), soft_labels=logits,
                        pixel_space="normalized")


def evaluate(executor: str, distilled: Any, **options: Any) -> tuple[Any, Evaluator]:
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, num_eval=2, epochs=3, device="cpu", job_cache=False,
                                      executor=executor, overrides={**FAST, **options.pop("overrides", {})},
                                      **options),
                          session=Session(progress_bars=False))
    return evaluator.evaluate(distilled), evaluator


def reference_state(evaluator: Evaluator) -> dict[str, Any]:
    from safetensors.torch import load_file

    from ddr.store.jobs import model_path

    return load_file(str(model_path(evaluator.resources.reference().key)))


@pytest.mark.parametrize("case", [
    # stored soft labels: the random baseline is labelled by the teacher's logits in the worker;
    # an LR search on the validation split
    {"soft": True, "overrides": {"selection": "validation", "lr_grid": [0.005, 0.05]}},
    # the teacher relabels every batch (the teacher's state dict crosses to the workers)
    {"soft": False, "label_strategy": "teacher"},
])
def test_ray_gives_the_local_numbers_bit_for_bit(local_ray: Any, case: dict[str, Any], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    options = {k: v for k, v in case.items() if k != "soft"}
    distilled = distilled_set(case["soft"])
    local, local_eval = evaluate("local", distilled, **dict(options))
    local_reference = reference_state(local_eval)
    remote, remote_eval = evaluate("ray", distilled, **dict(options))
    assert remote.run_spec["executor"] == "ray" and remote.reused == {}
    assert [(s.role, s.index, s.seed) for s in remote.students] == [(s.role, s.index, s.seed) for s in local.students]
    assert [s.accuracy for s in remote.students] == [s.accuracy for s in local.students]
    assert [s.lr for s in remote.students] == [s.lr for s in local.students]
    assert [s.selection for s in remote.students] == [s.selection for s in local.students]
    assert remote.reference.accuracy == local.reference.accuracy
    for name in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs"):
        assert remote.to_json()[name] == local.to_json()[name], name
    # the reference trained on Ray is cached (as the teacher) exactly as the local one was
    remote_reference = reference_state(remote_eval)
    assert sorted(remote_reference) == sorted(local_reference)
    assert all(torch.equal(remote_reference[k], local_reference[k]) for k in local_reference)
    if case["soft"]:
        assert {s.selection.get("mode") for s in remote.students} == {"validation"}


def test_a_ddr_error_in_a_task_is_raised_in_the_driver_as_is(local_ray: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.execute.student import run_job

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, num_eval=1, epochs=2, device="cpu"),
                          session=Session(progress_bars=False))
    distilled = distilled_set(False)
    from ddr.method.distilled import distilled_sha256

    sha = distilled_sha256(distilled)
    plan = evaluator.plan(distilled, "hard", None, sha)
    evaluator.workspace.add_distilled(sha, distilled_split(distilled), None)
    job = replace(plan.by_role("syn_hard")[0], lr_candidates=(1e30,), key="")  # diverges in the first epoch
    with pytest.raises(DdrError) as expected:
        run_job(job, evaluator.workspace)
    assert "training diverged" in str(expected.value)
    seen: list[Any] = []
    with pytest.raises(DdrError) as raised:
        RayExecutor().run([job], evaluator.workspace, lambda *args: seen.append(args))
    assert type(raised.value) is type(expected.value) and str(raised.value) == str(expected.value)
    assert seen == []
    assert "Traceback" not in str(raised.value) and "RayTaskError" not in repr(raised.value)


def distilled_split(distilled: Any) -> Any:
    from ddr.engine.data import Split

    return Split(labels=distilled.labels, images=distilled.images)


class InterruptingRay:
    """The real ``ray`` module, except that ``wait`` is interrupted (Ctrl-C) and ``cancel`` is recorded."""

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self.cancelled: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ray, name)

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    def cancel(self, ref: Any, **kwargs: Any) -> None:
        self.cancelled.append(ref)
        self._ray.cancel(ref, **kwargs)


def test_ctrl_c_cancels_every_outstanding_task(local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, num_eval=2, epochs=1000, device="cpu"),
                          session=Session(progress_bars=False))
    distilled = distilled_set(False)
    from ddr.method.distilled import distilled_sha256

    sha = distilled_sha256(distilled)
    evaluator.workspace.add_distilled(sha, distilled_split(distilled), None)
    jobs = list(evaluator.plan(distilled, "hard", None, sha).students)
    executor = RayExecutor()
    executor.ray = fake = InterruptingRay(local_ray)
    with pytest.raises(KeyboardInterrupt):
        executor.run(jobs, evaluator.workspace, lambda *args: None)
    assert len(fake.cancelled) == len(jobs)



class SubmitSpy:
    """Records every task ``RayExecutor.submit`` sends (what it is, and whether a unit's record
    folder existed then), passing each on to the real method."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, watch: Path | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        real = RayExecutor.submit
        spy = self

        def submit(executor: RayExecutor, function: Any, argument: Any, **kwargs: Any) -> Any:
            spy.calls.append((kwargs["what"], watch is not None and any(watch.glob("*/env.json"))))
            return real(executor, function, argument, **kwargs)

        monkeypatch.setattr(RayExecutor, "submit", submit)


@pytest.mark.parametrize("method", ["dm.smoke", "rded.smoke"])  # rded: the teacher's weights travel to the task
def test_a_distillation_runs_as_a_ray_task_and_gives_the_local_set(local_ray: Any, method: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from ddr.runs.run import run

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    spy = SubmitSpy(monkeypatch)

    def distilled(executor: str) -> Any:
        options = EvalOptions(dataset="digits", ipc=1, num_eval=1, epochs=2, device="cpu", executor=executor,
                              overrides=dict(FAST))
        _, outcome = run(method, options=options, session=Session(progress_bars=False), use_cache=False)
        return outcome

    local = distilled("local")
    assert spy.calls == []
    remote = distilled("ray")
    plugin = method.split(".")[0]
    assert [what for what, _ in spy.calls] == [f"the distillation of method '{method}' (plugin '{plugin}', ddr-bench "
                                               f"{version('ddr-bench')})"]
    assert remote.key == local.key and not remote.cached
    assert torch.equal(remote.distilled.images, local.distilled.images)
    assert torch.equal(remote.distilled.labels, local.distilled.labels)
    assert (remote.distilled.soft_labels is None) == (local.distilled.soft_labels is None)
    assert remote.distilled.meta["distill_key"] == local.distilled.meta["distill_key"]
    assert remote.distilled.meta["method"] == method.split(".")[0] and remote.seconds > 0


def test_a_failing_remote_distillation_is_the_same_ddr_error(local_ray: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.runs.run import run

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    options = EvalOptions(dataset="digits", ipc=1, num_eval=1, epochs=2, device="cpu", executor="ray",
                          overrides=dict(FAST))
    # the time limit is armed in the worker, as --timeout arms it locally
    with pytest.raises(DdrError, match=r"method 'dm' \(plugin 'dm'.*ran past --timeout 0.01 s") as raised:
        run("dm", options=options, session=Session(progress_bars=False), use_cache=False,
            method_overrides={"iterations": 100000}, timeout=0.01)
    assert "Traceback" not in str(raised.value) and "Ray" not in type(raised.value).__name__


def test_a_suite_under_ray_submits_the_next_units_distillations_ahead(local_ray: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.runs.scheduler import run_suite
    from ddr.runs.suite import load_suite

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "s.yaml").write_text("suite: ahead\nmethods: [dm]\ndatasets: [digits]\nipcs: [1]\nseeds: [0, 1]\n"
                                     "num_eval: 1\nepochs: 2\nper_method: {dm: {preset: smoke}}\n"
                                     "set: {real.epochs: 1}\n", encoding="utf-8")
    spy = SubmitSpy(monkeypatch, watch=tmp_path / "runs" / "ahead")
    session = Session(progress_bars=False, results_db=str(tmp_path / "results.sqlite"))
    report = run_suite(load_suite(tmp_path / "s.yaml", session.system), session=session, out=tmp_path / "runs",
                       base=EvalOptions(device="cpu", executor="ray"))
    assert report.exit_status == 0 and report.count("done") == 2
    distillations = [seen for what, seen in spy.calls if what.startswith("the distillation")]
    # both were sent before the first unit's record existed (2 CPUs: two tasks at once)
    assert distillations == [False, False]
    assert session.prefetched == {}
