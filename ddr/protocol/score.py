"""Scoring: pure functions from a plan's job results to accuracies, HLR, IOR, DDRS and ARS.

Per student index the accuracies of the roles are paired and the scores computed, then
aggregated (:func:`ddr.protocol.metrics.score_table`); formulas in docs/protocol.md §1. Never
imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping

from ddr.errors import DdrError
from ddr.protocol.metrics import ars_table, score_table
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


def ordered_results(plan: Plan, results: Mapping[str, JobResult]) -> list[JobResult]:
    """The students' results in plan order (the reference first), as records list them."""
    return [results[job.key] for job in plan.jobs]


