"""Plan → execute → score, the job cache, executors, method parameter schemas and budgets,
typed lifecycle hooks, and the run record's description of what ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ddr import hookimpl
from ddr.errors import ConfigError, UnknownComponentError
from ddr.plugin.manager import PluginSystem
from ddr.plugin.specs import ExecutorSpec
from ddr.protocol.config import resolve_protocol
from ddr.protocol.plan import PlanInputs, build_plan
from ddr.records.jobs import DataRef, JobResult, StudentJob
from ddr.records.recipe import Recipe
from ddr.resources.session import Session
from ddr.runs.evaluate import EvalOptions
from ddr.runs.run import run

FAST = {"train.epochs": 3, "real.epochs": 1, "num_eval": 2}


def inputs(**changes: Any) -> PlanInputs:
    base = dict(seed=0, ipc=1, distilled_sha256="abc", has_soft_labels=False, learned_lr=None, strategy="hard",
                loss=None, strategy_soft=False, strategy_teacher=False, arch="convnet", arch_params={},
                teacher_arch="convnet", teacher_arch_params={}, train=Recipe(lr=0.01, epochs=3),
                real=Recipe(lr=0.01, epochs=1), lr_override=None, ars=False,
                context={"dataset": "digits", "seed": 0, "teacher": "reference:x"})
    base.update(changes)
    return PlanInputs(**base)


# -- the plan -----------------------------------------------------------------------------------

def test_plan_roles_seeds_and_keys() -> None:
    protocol = resolve_protocol("digits", {"num_eval": 3})
    plan = build_plan(protocol, inputs())
    assert plan.real.role == "real" and plan.syn_any_is_syn_hard  # hard labels, same augmentation
    assert [(j.role, j.index) for j in plan.students] == [(r, i) for i in range(3) for r in ("syn_hard", "rdm_any")]
    assert len({j.seed for j in plan.jobs}) == len(plan.jobs) and len({j.key for j in plan.jobs}) == len(plan.jobs)
    soft = build_plan(resolve_protocol("soft", {"num_eval": 1}),
                      inputs(strategy="teacher", strategy_soft=True, strategy_teacher=True))
    assert [j.role for j in soft.students] == ["syn_hard", "syn_any", "rdm_any"] and not soft.syn_any_is_syn_hard
    ars = build_plan(protocol, inputs(ars=True))
    assert {j.role for j in ars.students} == {"syn_hard", "rdm_any", "syn_noaug", "rdm_noaug"}


def test_the_random_baseline_and_the_reference_do_not_depend_on_the_distilled_set() -> None:
    protocol = resolve_protocol("digits")
    a, b = build_plan(protocol, inputs(distilled_sha256="aaa")), build_plan(protocol, inputs(distilled_sha256="bbb"))
    assert [j.key for j in a.by_role("rdm_any")] == [j.key for j in b.by_role("rdm_any")]
    assert a.real.key == b.real.key
    assert [j.key for j in a.by_role("syn_hard")] != [j.key for j in b.by_role("syn_hard")]
    # another IPC: another random subset, the same reference
    c = build_plan(protocol, inputs(ipc=2))
    assert c.real.key == a.real.key and c.by_role("rdm_any")[0].key != a.by_role("rdm_any")[0].key
    # a job that never uses the teacher does not depend on it; one that does, does
    other_teacher = build_plan(protocol, inputs(context={"dataset": "digits", "seed": 0, "teacher": "file:y"}))
    assert other_teacher.by_role("rdm_any")[0].key == a.by_role("rdm_any")[0].key
    soft = dict(strategy="teacher", strategy_soft=True, strategy_teacher=True)
    t1 = build_plan(protocol, inputs(**soft))
    t2 = build_plan(protocol, inputs(**soft, context={"dataset": "digits", "seed": 0, "teacher": "file:y"}))
    assert t1.by_role("rdm_any")[0].key != t2.by_role("rdm_any")[0].key


def test_learned_lr_and_selection_shape_the_lr_candidates() -> None:
    plan = build_plan(resolve_protocol("digits", {"selection": "validation"}), inputs(learned_lr=0.03))
    assert plan.by_role("syn_hard")[0].lr_candidates == (0.03,)  # the method's learned LR, as is
    assert plan.by_role("rdm_any")[0].lr_candidates == (0.001, 0.005, 0.01, 0.05, 0.1)  # random: the search
    ddranking = build_plan(resolve_protocol("digits", {"selection": "ddranking", "test_interval": 7}), inputs())
    assert {j.test_interval for j in ddranking.students} == {7} and ddranking.real.test_interval == 0


def test_jobs_and_results_round_trip_through_dicts() -> None:
    plan = build_plan(resolve_protocol("digits"), inputs(has_soft_labels=True, strategy="stored_soft"))
    for job in plan.jobs:
        again = StudentJob.from_dict(json.loads(json.dumps(job.to_dict())))
        assert again == job and again.key == job.key
    result = JobResult(key="k", role="rdm_any", index=1, seed=5, accuracy=0.5, lr=0.01, epochs_trained=3,
                       seconds=1.25, peak_memory_bytes=10, selection={"mode": "validation"})
    assert JobResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert plan.by_role("rdm_any")[0].data == DataRef("random", index=0, ipc=1, soft="teacher")


# -- execute: the job cache and the executor registry ------------------------------------------

def test_the_second_method_reuses_the_random_baseline_and_the_reference(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    session = Session(progress_bars=False)
    options = EvalOptions(overrides=FAST, device="cpu")
    first, _ = run("random", options=options, session=session)
    assert first.reused == {}
    second, _ = run("dm", options=options, session=session, method_overrides={"iterations": 2, "batch_real": 8})
    assert second.reused == {"real": 1, "rdm_any": 2}
    assert second.scores["acc_rdm_any"].values == first.scores["acc_rdm_any"].values
    again, _ = run("dm", options=options, session=session, method_overrides={"iterations": 2, "batch_real": 8})
    assert again.reused == {"real": 1, "syn_hard": 2, "rdm_any": 2}
    assert again.to_json()["ddrs"] == second.to_json()["ddrs"]
    fresh, _ = run("dm", options=EvalOptions(overrides=FAST, device="cpu", job_cache=False), session=session,
                   method_overrides={"iterations": 2, "batch_real": 8})
    assert fresh.reused == {} and fresh.to_json()["ddrs"] == second.to_json()["ddrs"]


class CountingExecutor:
    """A third-party executor: runs jobs in reverse order, through the shared per-job code."""

    name = "counting"
    ran: list[str] = []

    def run(self, jobs: Any, workspace: Any, on_result: Any) -> list[JobResult]:
        from ddr.execute.student import run_job

        out = []
        for job in reversed(list(jobs)):
            result, model = run_job(job, workspace)
            CountingExecutor.ran.append(job.role)
            on_result(job, result, model)
            out.append(result)
        return out


class ExecutorPlugin:
    @hookimpl
    def ddr_executors(self) -> list[ExecutorSpec]:
        return [ExecutorSpec(name="counting", target=CountingExecutor, summary="reverse order, for a test")]


def test_a_registered_executor_runs_the_jobs_and_gives_the_same_numbers(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    system = PluginSystem()
    system.pm.register(ExecutorPlugin(), name="counting-plugin")
    assert system.executors().get("counting").provider == "counting-plugin"
    session = Session(system=system, progress_bars=False)
    local, _ = run("random", options=EvalOptions(overrides=FAST, device="cpu", job_cache=False), session=session)
    CountingExecutor.ran = []
    other, _ = run("random", options=EvalOptions(overrides=FAST, device="cpu", job_cache=False, executor="counting"),
                   session=session)
    assert CountingExecutor.ran == ["real", "rdm_any", "syn_hard", "rdm_any", "syn_hard"]
    assert other.to_json()["ddrs"] == local.to_json()["ddrs"]
    assert other.run_spec["executor"] == "counting"
    with pytest.raises(UnknownComponentError, match="unknown executor 'countng'; did you mean 'counting'"):
        run("random", options=EvalOptions(overrides=FAST, device="cpu", executor="countng"), session=session)


# -- method parameters and budgets ---------------------------------------------------------------

def test_every_method_rejects_a_misspelt_parameter_with_did_you_mean() -> None:
    system = PluginSystem()
    for spec in system.methods().list():
        name = spec.params[0].name if spec.params else None
        if name is None:
            with pytest.raises(ConfigError, match=f"method '{spec.name}' has no parameter 'iterations'"):
                spec.check_params({"iterations": 3})
            continue
        typo = name[:-1] + ("x" if name[-1] != "x" else "y")
        with pytest.raises(ConfigError, match=f"has no parameter '{typo}'; did you mean '{name}'"):
            spec.check_params({typo: spec.params[0].default})


def test_wrong_types_and_ranges_are_config_errors() -> None:
    dm = PluginSystem().methods().get("dm")
    with pytest.raises(ConfigError, match="parameter iterations='many' is invalid; expected an integer >= 0"):
        dm.check_params({"iterations": "many"})
    with pytest.raises(ConfigError, match="parameter init='zeros' is invalid; expected one of 'noise', 'real'"):
        dm.check_params({"init": "zeros"})
    with pytest.raises(ConfigError, match="expected a finite number >= 0"):
        dm.check_params({"lr_img": -1.0})
    assert dm.check_params({"lr_img": 2}) == {"lr_img": 2}


def test_paper_defaults_and_the_digits_budget() -> None:
    from ddr.runs.distill import resolve_method

    system = PluginSystem()
    dm = system.methods().get("dm")
    assert (dm.defaults["iterations"], dm.defaults["batch_real"]) == (20000, 256)  # the paper's
    on_digits = resolve_method(system, "dm", "digits")
    assert on_digits.budget == "reduced" and on_digits.params["iterations"] == 50
    on_cifar = resolve_method(system, "dm", "cifar10")
    assert on_cifar.budget is None and on_cifar.params["iterations"] == 20000
    paper = resolve_method(system, "dm.paper", "digits", {"batch_real": 32})
    assert (paper.params["iterations"], paper.params["batch_real"]) == (20000, 32)
    herding = system.methods().get("herding")
    assert herding.defaults["feature_epochs"] is None and herding.needs_teacher  # the trained reference, as IDC


def test_a_typo_in_a_method_parameter_fails_before_any_work(ddr_cli) -> None:
    proc = ddr_cli("run", "--method", "random", "--set", "method.iterations=3", "--no-progress")
    assert proc.returncode == 2
    assert "method 'random' has no parameter 'iterations'" in proc.stderr and "Traceback" not in proc.stderr
    proc = ddr_cli("run", "--method", "dm", "--set", "method.iteratons=3", "--no-progress")
    assert proc.returncode == 2 and "did you mean 'iterations'?" in proc.stderr
    proc = ddr_cli("run", "--method", "dm", "--loss", "kll", "--protocol", "soft", "--no-progress")
    assert proc.returncode == 2 and "unknown loss 'kll'; did you mean 'kl'" in proc.stderr


def test_describe_shows_the_schema(ddr_cli) -> None:
    proc = ddr_cli("describe", "method", "dm")
    assert proc.returncode == 0, proc.stderr
    assert "iterations           int     default 20000; >= 0" in proc.stdout
    assert "preset dm.reduced: iterations=50, batch_real=64" in proc.stdout
    record = json.loads(ddr_cli("describe", "methods", "dm", "--json").stdout)
    assert {p["name"]: p["default"] for p in record["params"]}["batch_real"] == 256
    assert record["distribution"]["name"] == "ddr-bench"


# -- typed lifecycle hooks, also for ddr eval and on failure --------------------------------------

class Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    @hookimpl
    def ddr_run_start(self, run: Any) -> None:
        self.seen.append(("start", run))

    @hookimpl
    def ddr_run_finish(self, run: Any, result: Any) -> None:
        self.seen.append(("finish", result))

    @hookimpl
    def ddr_run_error(self, run: Any, error: BaseException) -> None:
        self.seen.append(("error", error))


def test_lifecycle_hooks_fire_for_run_and_eval_with_typed_records(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.records.run import EvaluationResult, RunSpec
    from ddr.runs.run import eval_path

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    system = PluginSystem()
    observer = Observer()
    system.pm.register(observer, name="observer")
    session = Session(system=system, progress_bars=False)
    result, _ = run("random", options=EvalOptions(overrides=FAST, device="cpu"), session=session,
                    save_distilled_to=tmp_path / "set")
    (kind, spec), (kind2, finished) = observer.seen
    assert (kind, kind2) == ("start", "finish") and isinstance(spec, RunSpec) and isinstance(finished, EvaluationResult)
    assert (spec.command, spec.method, spec.dataset, spec.overrides) == ("run", "random", "digits", FAST)
    observer.seen.clear()
    evaluated = eval_path(tmp_path / "set", options=EvalOptions(overrides=FAST, device="cpu", ipc=None),
                          session=session, out=tmp_path / "runs")
    assert [k for k, _ in observer.seen] == ["start", "finish"]
    assert observer.seen[0][1].command == "eval" and observer.seen[0][1].source == str(tmp_path / "set")
    assert evaluated.record_dir and (Path(evaluated.record_dir) / "metrics.json").is_file()
    assert evaluated.to_json()["ddrs"] == result.to_json()["ddrs"]  # the same set, the same students
    observer.seen.clear()
    with pytest.raises(UnknownComponentError):
        eval_path(tmp_path / "set", options=EvalOptions(overrides=FAST, device="cpu", arch="convnett"), session=session)
    assert [k for k, _ in observer.seen] == ["start", "error"]


# -- records say what was run -------------------------------------------------------------------

def test_the_printout_and_show_name_the_run_and_its_overrides(ddr_cli, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = ddr_cli("run", "--method", "random", "--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1",
                   "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "random · digits · IPC 1 · digits v1 + num_eval=1, real.epochs=1, train.epochs=2" in proc.stdout
    assert "(n=1)" in proc.stdout and "± 0.0000" not in proc.stdout
    (folder,) = out.iterdir()
    shown = ddr_cli("show", str(folder))
    assert shown.returncode == 0 and "random · digits · IPC 1 · digits v1 + num_eval=1" in shown.stdout
    listing = ddr_cli("show", str(out))
    assert listing.returncode == 0 and folder.name in listing.stdout and "DDRS" in listing.stdout


SESSION_OBSERVER = '''
import json, os
from ddr import hookimpl


@hookimpl
def ddr_session_finish(results, exitstatus):
    with open(os.environ["OBSERVED"], "a") as f:
        f.write(json.dumps({"n": len(results), "exitstatus": exitstatus}) + "\\n")
'''


def test_session_finish_fires_on_success_and_on_failure(ddr_cli, local_module, tmp_path: Path) -> None:
    module = local_module("session_observer", SESSION_OBSERVER)
    observed = tmp_path / "observed.jsonl"
    env = {"OBSERVED": str(observed), "DDR_CACHE_DIR": str(tmp_path / "cache")}
    failed = ddr_cli("-p", "session_observer", "run", "--method", "dmm", "--no-progress", pythonpath=module.parent,
                     env=env)
    assert failed.returncode == 2 and "did you mean 'dm'" in failed.stderr
    ok = ddr_cli("-p", "session_observer", "run", "--method", "random", "--num-eval", "1", "--epochs", "1",
                 "--set", "real.epochs=1", "--no-progress", pythonpath=module.parent, env=env)
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(line) for line in observed.read_text().splitlines()] == [
        {"n": 0, "exitstatus": 2}, {"n": 1, "exitstatus": 0}]
