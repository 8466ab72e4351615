"""Scoring: pure functions from a plan's job results to accuracies, HLR, IOR, DDRS and ARS.

Per student index the accuracies of the roles are paired and the scores computed, then
aggregated (:func:`ddr.protocol.metrics.score_table`); formulas in docs/protocol.md §1. Never
imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping

from ddr.errors import DdrError
from ddr.protocol.metrics import ars_table, score_table, summarize
from ddr.protocol.plan import Plan
from ddr.records.jobs import JobResult
from ddr.records.summary import Summary


def accuracies_by_role(plan: Plan, results: Mapping[str, JobResult]) -> dict[str, list[float]]:
    """``{role: [accuracy of student 0, 1, ...]}`` for every student role of ``plan``.

    ``results`` maps job keys to results; a missing job is an error (an executor lost it).
    """
    missing = [job.key[:12] for job in plan.jobs if job.key not in results]
    if missing:
        raise DdrError(f"the executor returned no result for {len(missing)} job(s) ({', '.join(missing[:5])}); "
                       "rerun the evaluation (finished jobs are cached)")
    out: dict[str, list[float]] = {}
    for role in ("syn_hard", "syn_any", "rdm_any", "syn_noaug", "rdm_noaug"):
        jobs = plan.by_role(role)
        if jobs:
            out[role] = [results[j.key].accuracy for j in jobs]
    if plan.syn_any_is_syn_hard:
        out["syn_any"] = list(out["syn_hard"])
    return out


def score(plan: Plan, results: Mapping[str, JobResult], *, w: float, lam: float,
          compat: bool) -> tuple[dict[str, Summary], dict[str, Summary] | None]:
    """(score table, ARS table or None) of a finished plan; see :func:`score_table`."""
    acc = accuracies_by_role(plan, results)
    real = [results[plan.real.key].accuracy]
    scores = score_table(real, acc["syn_hard"], acc["syn_any"], acc["rdm_any"], w=w, compat=compat)
    ars = None
    if plan.ars:
        ars = ars_table(acc["syn_any"], acc["rdm_any"], acc["syn_noaug"], acc["rdm_noaug"], lam=lam, compat=compat)
    return scores, ars


SIDES = {"syn_any": "syn", "rdm_any": "rdm", "syn_hard": "syn_hard"}
"""How a student metric's columns name the role it was measured on."""


def metric_scores(plan: Plan, results: Mapping[str, JobResult],
                  metrics: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> dict[str, Summary]:
    """The student metrics' columns (:meth:`ddr.plugin.specs.MetricSpec.columns`) of a finished plan.

    ``metrics`` maps each measured metric's name to (its roles, its outputs). Per role side, one
    value per student index: the last output (the metric's own value) as ``<name>_<side>``, the
    others as ``<name>_<output>_<side>``, and ``<name>_gap`` = syn − random per student index when
    it ran on both. When the plan trains ``syn_any`` through the ``syn_hard`` job, that job's
    values are the ``syn`` side.
    """
    out: dict[str, Summary] = {}
    for name, (roles, outputs) in metrics.items():
        sides: dict[str, list[float]] = {}
        for role in roles:
            source = "syn_hard" if role == "syn_any" and plan.syn_any_is_syn_hard else role
            jobs = plan.by_role(source)
            measured = [results[j.key].metrics.get(name) for j in jobs]
            if not jobs or any(m is None for m in measured):
                raise DdrError(f"metric '{name}' has no value for some {role} student (its job result lacks it); "
                               "rerun the evaluation with --no-job-cache")
            side = SIDES[role]
            for output in outputs[:-1]:
                values = [float(m[output]) for m in measured if m is not None]
                out[f"{name}_{output}_{side}"] = summarize(values, f"{name} {output} ({role})")
            sides[side] = [float(m[outputs[-1]]) for m in measured if m is not None]
            out[f"{name}_{side}"] = summarize(sides[side], f"{name} ({role})")
        if "syn" in sides and "rdm" in sides:
            out[f"{name}_gap"] = summarize([a - b for a, b in zip(sides["syn"], sides["rdm"])], f"{name} gap")
    return out


def ordered_results(plan: Plan, results: Mapping[str, JobResult]) -> list[JobResult]:
    """The students' results in plan order (the reference first), as records list them."""
    return [results[job.key] for job in plan.jobs]


