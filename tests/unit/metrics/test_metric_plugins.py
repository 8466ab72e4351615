"""Metrics as plugins: the registry (built-ins through the same ``ddr_metrics`` hook a plugin
uses), the columns reports take from it, student metrics measured inside the student jobs, and
metrics computed from other scores. The installed third-party path is
tests/install/test_contributing_example.py (CONTRIBUTING.md's example package)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ddr import MetricSpec, ParamSpec
from ddr.errors import ConfigError, DdrError, InvalidSpecError, UnknownComponentError
from ddr.plugin.manager import PluginSystem
from ddr.protocol.plan import PlanInputs, build_plan
from ddr.protocol.score import metric_scores
from ddr.records.jobs import DataRef, JobResult, StudentJob
from ddr.records.recipe import Recipe
from ddr.report.columns import builtin_columns, column, extra_columns
from ddr.runs.evaluate import choose_metrics, metric_overrides


@pytest.fixture(scope="module")
def system() -> PluginSystem:
    return PluginSystem()


def test_the_builtin_scores_are_metrics_with_their_direction_and_formula(system: PluginSystem) -> None:
    metrics = system.metrics()
    assert {"acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars",
            "robust_fgsm", "robust_pgd"} <= set(metrics.names())
    assert metrics.get("lrs").name == "ddrs"  # DD-Ranking's name is an alias
    hlr, ddrs = metrics.get("hlr"), metrics.get("ddrs")
    assert (hlr.higher_is_better, hlr.unit, hlr.inputs) == (False, "difference", ("acc_real_hard", "acc_syn_hard"))
    assert ddrs.formula == "α = w·IOR − (1−w)·HLR;  DDRS = (e^α − e^−1) / (e − e^−1)" and ddrs.label == "DDRS (LRS)"
    assert [c.header for c in builtin_columns(system)] == [
        "acc real (hard) ↑", "acc syn (hard) ↑", "acc syn (any) ↑", "acc random (any) ↑", "HLR ↓", "IOR ↑",
        "DDRS (LRS) ↑", "ARS ↑"]
    # the targets are the protocol's own formulas: a metric's target computes the score it names
    target = system.metrics().materialize(ddrs)
    assert target(0.0626, 0.2179, w=0.5) == pytest.approx((math.exp(0.5 * 0.2179 - 0.5 * 0.0626) - math.exp(-1))
                                                           / (math.e - math.exp(-1)), abs=1e-15)


def test_a_student_metric_reports_per_side_and_the_gap(system: PluginSystem) -> None:
    pgd = system.metrics().get("robust_pgd")
    assert pgd.needs == "student" and pgd.outputs == ("clean", "robust") and pgd.roles == ("syn_any", "rdm_any")
    assert pgd.columns() == ("robust_pgd_syn", "robust_pgd_rdm", "robust_pgd_gap", "robust_pgd_clean_syn",
                             "robust_pgd_clean_rdm")
    labels = [c.header for c in extra_columns(["robust_pgd_gap", "robust_pgd_syn", "acc_syn_hard", "x"], system)]
    assert labels == ["robust acc (PGD) syn ↑", "robust acc (PGD) gap syn − random ↑"]
    assert column("robust_pgd_clean_rdm", system).label == "robust acc (PGD) clean, random"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"needs": "student"}, r"names its outputs"),
    ({"needs": "student", "outputs": ("v",), "roles": ("real",)}, r"roles must be some of"),
    ({"needs": "student", "outputs": ("v",), "builtin_score": True}, r"chosen with --metric"),
    ({"needs": "weights"}, r"needs must be one of"),
    ({"unit": "percent", "inputs": ("hlr",)}, r"unit must be one of"),
    ({}, r"names its inputs"),
    ({"inputs": "hlr"}, r"inputs must be a tuple of names"),
    ({"inputs": ("hlr",), "higher_is_better": "yes"}, r"higher_is_better must be True or False"),
])
def test_bad_metric_specs_are_refused_when_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        MetricSpec(name="m", target="m:f", **kwargs)


def test_choosing_metrics_checks_names_and_parameters(system: PluginSystem) -> None:
    chosen = choose_metrics(system, ["robust_pgd.mnist", "ddrs", "robust_fgsm"], {"robust_fgsm": {"epsilon": 0.2}})
    assert [(m.spec.name, m.params["epsilon"]) for m in chosen] == [("robust_pgd", 0.1), ("robust_fgsm", 0.2)]
    assert chosen[0].ref() == {"name": "robust_pgd", "version": "1", "params": {
        "attack": "pgd", "epsilon": 0.1, "max_images": None, "steps": 10, "step_size": None}}
    with pytest.raises(UnknownComponentError, match=r"unknown metric 'robust_pdg'; did you mean 'robust_pgd'"):
        choose_metrics(system, ["robust_pdg"])
    with pytest.raises(ConfigError, match=r"has no parameter 'epsilom'; did you mean 'epsilon'\?"):
        choose_metrics(system, ["robust_pgd"], {"robust_pgd": {"epsilom": 0.1}})
    with pytest.raises(ConfigError, match=r"metric 'robust_fgsm' is not reported; add --metric robust_fgsm"):
        choose_metrics(system, ["robust_pgd"], {"robust_fgsm": {"epsilon": 0.1}})
    with pytest.raises(ConfigError, match=r"asked for twice with different parameters"):
        choose_metrics(system, ["robust_pgd", "robust_pgd.mnist"])
    assert metric_overrides({"train.epochs": 3, "metric.robust_pgd.epsilon": 0.1}) == (
        {"train.epochs": 3}, {"robust_pgd": {"epsilon": 0.1}})
    with pytest.raises(ConfigError, match=r"metric.NAME.KEY=VALUE"):
        metric_overrides({"metric.robust_pgd": 0.1})


def _inputs(metrics: tuple[dict[str, Any], ...], strategy: str = "hard") -> PlanInputs:
    recipe = Recipe(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, epochs=2, batch_size=8,
                    schedule="constant", milestones=(), gamma=0.1)
    return PlanInputs(seed=0, ipc=1, distilled_sha256="ab" * 32, has_soft_labels=False, learned_lr=None,
                      strategy=strategy, loss=None, strategy_soft=False, strategy_teacher=False, arch="convnet",
                      arch_params={}, teacher_arch="convnet", teacher_arch_params={}, train=recipe, real=recipe,
                      lr_override=None, ars=False, context={"dataset": "digits"}, metrics=metrics)


def test_the_plan_puts_each_metric_on_the_jobs_of_its_roles(system: PluginSystem) -> None:
    from ddr.protocol.config import resolve_protocol

    protocol = resolve_protocol("digits", {"num_eval": 2}, system)
    ref = {"name": "robust_pgd", "version": "1", "params": {"epsilon": 0.1}, "roles": ["syn_any", "rdm_any"]}
    plain = build_plan(protocol, _inputs(()))
    measured = build_plan(protocol, _inputs((ref,)))
    assert plain.syn_any_is_syn_hard  # digits: hard labels, same augmentation: syn_any is syn_hard's job
    jobs = {(j.role, j.index): j for j in measured.jobs}
    assert all(j.metrics == ({"name": "robust_pgd", "version": "1", "params": {"epsilon": 0.1}},)
               for (role, _), j in jobs.items() if role in ("syn_hard", "rdm_any"))
    assert jobs[("real", 0)].metrics == () and jobs[("real", 0)].key == plain.real.key
    assert all(a.key != b.key for a, b in zip(plain.students, measured.students))  # the metric is in the key
    assert "metrics" not in plain.students[0].to_dict()  # jobs without metrics keep the keys they had
    again = StudentJob.from_dict(measured.students[0].to_dict())
    assert again == measured.students[0] and again.key == measured.students[0].key


def _job(role: str, index: int) -> StudentJob:
    recipe = Recipe(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, epochs=1, batch_size=8,
                    schedule="constant", milestones=(), gamma=0.1)
    return StudentJob(role=role, index=index, data=DataRef("pool"), recipe=recipe, lr_candidates=(0.01,),
                      selection="last", test_interval=0, label_strategy="hard", loss=None, augmentation=(),
                      arch="convnet", arch_params={}, seed=index, needs_teacher=False, context={}, key=f"{role}{index}")


def test_scores_of_a_student_metric_pair_the_students_by_index() -> None:
    from ddr.protocol.plan import Plan

    jobs = [_job(r, i) for i in range(3) for r in ("syn_hard", "syn_any", "rdm_any")]
    plan = Plan(real=_job("real", 0), students=tuple(jobs), num_eval=3, syn_any_is_syn_hard=False, ars=False)
    robust = {"syn_any": [0.30, 0.25, 0.35], "rdm_any": [0.10, 0.20, 0.05]}
    results = {j.key: JobResult(key=j.key, role=j.role, index=j.index, seed=j.index, accuracy=0.5, lr=0.01,
                                epochs_trained=1, seconds=0.0,
                                metrics={"m": {"clean": 0.9, "robust": robust[j.role][j.index]}}
                                if j.role in robust else {}) for j in jobs}
    scores = metric_scores(plan, results, {"m": (("syn_any", "rdm_any"), ("clean", "robust"))})
    assert sorted(scores) == ["m_clean_rdm", "m_clean_syn", "m_gap", "m_rdm", "m_syn"]
    assert scores["m_syn"].values == [0.30, 0.25, 0.35] and scores["m_rdm"].mean == pytest.approx(0.35 / 3)
    assert scores["m_gap"].values == pytest.approx([0.20, 0.05, 0.30]) and scores["m_gap"].std == pytest.approx(
        float(__import__("numpy").std([0.20, 0.05, 0.30], ddof=1)))
    results[jobs[2].key].metrics = {}
    with pytest.raises(DdrError, match=r"metric 'm' has no value for some rdm_any student"):
        metric_scores(plan, results, {"m": (("syn_any", "rdm_any"), ("clean", "robust"))})


def test_a_metric_computed_from_other_scores_is_computed_per_student() -> None:
    from ddr.protocol.metrics import summarize
    from ddr.runs.evaluate import ChosenMetric, accuracy_metric_scores

    spec = MetricSpec(name="ior_rel", target=lambda ior, rdm, floor=0.0: ior / max(rdm, floor),
                      inputs=("ior", "acc_rdm_any"), params=(ParamSpec("floor", 0.0, "", minimum=0.0),))
    scores = {"ior": summarize([0.1, 0.2]), "acc_rdm_any": summarize([0.5, 0.4])}
    out = accuracy_metric_scores([ChosenMetric(spec, {"floor": 0.0})], scores, _Registry(spec))
    assert out["ior_rel"].values == pytest.approx([0.2, 0.5])
    with pytest.raises(ConfigError, match=r"needs \['acc_syn_noaug'\]"):
        accuracy_metric_scores([ChosenMetric(MetricSpec(name="x", target="m:f", inputs=("acc_syn_noaug",)), {})],
                               scores, _Registry(spec))


class _Registry:
    """A plugin system stand-in whose metric registry materialises one spec's callable target."""

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec

    def metrics(self) -> "_Registry":
        return self

    def materialize(self, spec: MetricSpec) -> Any:
        return spec.target


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_ddr_run_measures_robustness_inside_the_student_jobs(ddr_cli, tmp_path: Path) -> None:
    """The issue's acceptance command on digits: clean and robust accuracies of the syn- and the
    random-trained students, in the JSON, the record, the job cache and the leaderboard."""
    common = ["run", "--method", "dm", "--metric", "robust_pgd", "--set", "metric.robust_pgd.epsilon=0.1",
              "--set", "metric.robust_pgd.max_images=100", "--set", "metric.robust_pgd.steps=3", "--num-eval", "2",
              "--epochs", "5", "--set", "real.epochs=1", "--no-progress", "--json", "--db", str(tmp_path / "r.sqlite"),
              "--out", str(tmp_path / "runs")]
    env = {"DDR_CACHE_DIR": str(tmp_path / "cache")}
    proc = ddr_cli(*common, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("robust_pgd_syn", "robust_pgd_rdm", "robust_pgd_gap", "robust_pgd_clean_syn", "robust_pgd_clean_rdm"):
        assert result[key]["n"] == 2 and all(0.0 <= v <= 1.0 or key.endswith("gap") for v in result[key]["values"])
    # an attack never helps: robust <= clean on the same images, per student
    assert all(r <= c for r, c in zip(result["robust_pgd_syn"]["values"], result["robust_pgd_clean_syn"]["values"]))
    assert all(r <= c for r, c in zip(result["robust_pgd_rdm"]["values"], result["robust_pgd_clean_rdm"]["values"]))
    assert result["robust_pgd_gap"]["values"] == pytest.approx(
        [a - b for a, b in zip(result["robust_pgd_syn"]["values"], result["robust_pgd_rdm"]["values"])])
    assert result["run_spec"]["metrics"] == [{"name": "robust_pgd", "version": "1", "params": {
        "attack": "pgd", "epsilon": 0.1, "max_images": 100, "steps": 3, "step_size": None}}]
    record = json.loads((Path(result["record_dir"]) / "metrics.json").read_text())
    measured = [s for s in record["students"] if "metrics" in s]
    assert {s["role"] for s in measured} == {"syn_hard", "rdm_any"}  # syn_any is syn_hard's job on digits
    again = json.loads(ddr_cli(*common, env=env).stdout)  # every student from the job cache, metrics included
    assert again["reused_jobs"] == {"real": 1, "rdm_any": 2, "syn_hard": 2}
    assert again["robust_pgd_syn"]["values"] == result["robust_pgd_syn"]["values"]
    board = ddr_cli("leaderboard", "--db", str(tmp_path / "r.sqlite"), env=env)
    assert board.returncode == 0, board.stderr
    assert "robust acc (PGD) syn ↑" in board.stdout and "robust acc (PGD) gap syn − random ↑" in board.stdout
    assert "Reported metrics: robust acc (PGD) (higher is better): fraction of test images" in board.stdout
    import csv
    import io

    listed = ddr_cli("results", "--db", str(tmp_path / "r.sqlite"), "--csv", env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = list(csv.DictReader(io.StringIO(listed.stdout)))
    for key in ("robust_pgd_syn", "robust_pgd_gap", "robust_pgd_clean_rdm"):  # every reported metric, mean and std
        assert float(row[key]) == pytest.approx(result[key]["mean"])
        assert float(row[f"{key}_std"]) == pytest.approx(result[key]["std"])
    listing = ddr_cli("list", "metrics", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["hlr"]["higher_is_better"] is False and rows["robust_pgd"]["needs"] == "student"


def test_a_protocol_and_a_suite_can_name_metrics(tmp_path: Path, system: PluginSystem) -> None:
    from ddr.resources.session import Session
    from ddr.runs.evaluate import EvalOptions, Evaluator
    from ddr.runs.suite import load_suite

    protocol = tmp_path / "p.yaml"
    protocol.write_text("name: p\nversion: 1\ninclude: ddr.builtins.protocols:digits.yaml\n"
                        "metrics: {extra: [robust_fgsm.mnist]}\n")
    session = Session(system=system, progress_bars=False)
    evaluator = Evaluator(EvalOptions(dataset="digits", ipc=1, protocol=str(protocol), metrics=("robust_pgd",)),
                          session=session)
    assert [(m.spec.name, m.params["epsilon"]) for m in evaluator.metrics] == [("robust_fgsm", 0.1),
                                                                               ("robust_pgd", 8 / 255)]
    suite = tmp_path / "s.yaml"
    suite.write_text("suite: s\nmethods: [random]\nmetrics: [robust_pgd]\nset: {metric.robust_pgd.steps: 3}\n")
    units = load_suite(str(suite), system).units()
    assert units[0].metrics == ("robust_pgd",) and units[0].identity()["metrics"] == ["robust_pgd"]
    from ddr.runs.scheduler import unit_options

    options = unit_options(units[0], EvalOptions())
    assert options.metrics == ("robust_pgd",) and dict(options.metric_params) == {"robust_pgd": {"steps": 3}}
    assert "metric.robust_pgd.steps" not in options.overrides
    suite.write_text("suite: s\nmethods: [random]\nmetrics: [robust_pdg]\n")
    with pytest.raises(DdrError, match=r"unknown metric 'robust_pdg'; did you mean 'robust_pgd'"):
        load_suite(str(suite), system)
    old = tmp_path / "old.yaml"
    old.write_text("suite: s\nmethods: [random]\n")
    assert "metrics" not in load_suite(str(old), system).units()[0].identity()  # older suites keep their unit ids
