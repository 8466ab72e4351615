"""Does a re-run reproduce a recorded run? Per quantity, by one of two stated rules.

Both sides are ``metrics.json``-shaped dicts (:meth:`ddr.records.run.EvaluationResult.metrics_record`):
score summaries ``{mean, std, n, values}`` (fractions, one value per student index), the
``reference`` job and the ``students`` jobs. The re-run covers the student indices ``indices``
(all of them, or ``ddr verify --students K``'s sample); the reference is always re-run.

Quantities (:class:`Check` rows): the reference's accuracy, each re-run student job's accuracy,
each per-student value of every other score (HLR, IOR, DDRS, a reported metric), and every score's
mean.

* **bit-identical** (the machine is of the recorded kind, :mod:`ddr.bundle.machine`): every value
  must be exactly the recorded one (a mean over a sample: exactly the mean of the recorded values
  at those indices, computed the same way).
* **statistical** (any other machine): the same seeds on other hardware are another draw of the
  same student distribution, so

  - a per-student value reproduces when ``|Δ| ≤ max(z·√2·s, 0.01)``: ``s`` is the recorded sample
    standard deviation of that quantity over the run's students, ``√2·s`` the spread of the
    difference of two draws, and ``z = Φ⁻¹(1 − α_family / 2m)`` (Bonferroni over the run's ``m``
    per-student comparisons, family ``α`` :data:`FAMILY_ALPHA`); 0.01 (one percentage point) is the
    floor when the students did not spread;
  - the reference's accuracy (one value, no spread to estimate) reproduces when
    ``|Δ| ≤`` :data:`REFERENCE_TOLERANCE`;
  - a mean reproduces when Welch's two-sided t test of the recorded values against the re-run
    ones gives ``p ≥`` :data:`MEAN_ALPHA`; with fewer than two values on a side, by the per-value
    rule instead.

Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

FAMILY_ALPHA = 0.01
"""Family-wise false-alarm rate of a run's per-student comparisons (statistical rule)."""
MEAN_ALPHA = 0.01
"""A mean reproduces when Welch's t test gives p at least this (statistical rule)."""
REFERENCE_TOLERANCE = 0.02
"""Largest |Δ| of the real-data reference's accuracy (a fraction: 2 percentage points) that
reproduces on another kind of machine."""
STUDENT_FLOOR = 0.01
"""Smallest per-student tolerance (a fraction: one percentage point), for students that did not spread."""
EXACT = "bit-identical"
ROLE_ORDER = ("syn_hard", "syn_any", "rdm_any", "syn_noaug", "rdm_noaug")
SCORE_ORDER = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars")


def _role_key(role: str) -> tuple[int, str]:
    return (ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER), role)


def _score_key(key: str) -> tuple[int, str]:
    return (SCORE_ORDER.index(key) if key in SCORE_ORDER else len(SCORE_ORDER), key)


@dataclass(frozen=True)
class Check:
    """One compared quantity: its name, the recorded and re-run values, the rule applied and
    whether it reproduces (``None``: shown for information, not counted)."""

    quantity: str
    recorded: Any
    rerun: Any
    rule: str
    reproduces: bool | None

    @property
    def delta(self) -> float | None:
        if isinstance(self.recorded, (int, float)) and isinstance(self.rerun, (int, float)):
            return float(self.rerun) - float(self.recorded)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "recorded": self.recorded, "rerun": self.rerun, "delta": self.delta,
                "rule": self.rule, "reproduces": self.reproduces}


@dataclass
class Comparison:
    """The checks of one run and the rule they were judged by (``exact``; ``z`` and ``comparisons``
    of the statistical rule)."""

    exact: bool
    checks: list[Check] = field(default_factory=list)
    z: float | None = None
    comparisons: int = 0

    @property
    def reproduced(self) -> bool:
        return all(c.reproduces for c in self.checks if c.reproduces is not None)

    @property
    def counted(self) -> list[Check]:
        return [c for c in self.checks if c.reproduces is not None]

    def rules(self) -> str:
        """The rule in words, with its thresholds (printed above the table)."""
        if self.exact:
            return ("bit-identical: every re-run value must equal the recorded one exactly (the machine is of the "
                    "recorded kind)")
        return (f"statistical (another kind of machine): per student |Δ| ≤ max(z·√2·s, {STUDENT_FLOOR:g}) with "
                f"z = {self.z:.2f} (Bonferroni over {self.comparisons} per-student comparisons, family α = "
                f"{FAMILY_ALPHA:g}; s = the recorded students' sample std of that quantity); reference |Δ| ≤ "
                f"{REFERENCE_TOLERANCE:g}; means: Welch two-sided t test, reproduces when p ≥ {MEAN_ALPHA:g}")


def _summaries(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in record.items() if isinstance(v, Mapping) and isinstance(v.get("values"), list)
            and "mean" in v}


def _std(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _jobs(record: Mapping[str, Any]) -> dict[tuple[str, int], float | None]:
    out = {}
    for job in record.get("students") or []:
        if isinstance(job, Mapping) and "role" in job:
            out[(str(job["role"]), int(job.get("index") or 0))] = _num(job.get("accuracy"))
    return out


def compare(recorded: Mapping[str, Any], rerun: Mapping[str, Any], indices: Sequence[int], *,
            exact: bool) -> Comparison:
    """The :class:`Comparison` of a re-run (students at ``indices``) with its record."""
    from ddr.protocol.metrics import summarize

    indices = sorted(int(i) for i in indices)
    rec_scores, new_scores = _summaries(recorded), _summaries(rerun)
    rec_jobs, new_jobs = _jobs(recorded), _jobs(rerun)
    n_students = max((len(v["values"]) for k, v in rec_scores.items() if k != "acc_real_hard"), default=0)
    everyone = indices == list(range(n_students))

    # the per-student rows first (their count sets z), then the reference, then the means
    per_student: list[tuple[str, float | None, float | None, list[float]]] = []
    role_values: dict[str, list[float]] = {}
    for (role, _), acc in sorted(rec_jobs.items(), key=lambda item: item[0][1]):
        if acc is not None:
            role_values.setdefault(role, []).append(acc)
    for (role, index), acc in sorted(new_jobs.items(), key=lambda item: (item[0][1], _role_key(item[0][0]))):
        per_student.append((f"{role} #{index} accuracy", rec_jobs.get((role, index)), acc, role_values.get(role, [])))
    for key in sorted(new_scores, key=_score_key):
        if key.startswith("acc_") or key not in rec_scores:
            continue  # accuracies are the jobs' rows above
        rec_values = [_num(v) for v in rec_scores[key]["values"]]
        new_values = [_num(v) for v in new_scores[key]["values"]]
        if len(rec_values) != n_students or len(new_values) != len(indices):
            continue
        spread = [v for v in rec_values if v is not None]
        for position, index in enumerate(indices):
            per_student.append((f"{key} #{index}", rec_values[index], new_values[position], spread))

    out = Comparison(exact=exact)
    if not exact:
        out.comparisons = max(len(per_student), 1)
        out.z = NormalDist().inv_cdf(1 - FAMILY_ALPHA / (2 * out.comparisons))
    tolerance: dict[str, float] = {}

    def student_rule(spread: Sequence[float]) -> float:
        assert out.z is not None
        return max(out.z * math.sqrt(2.0) * _std(spread), STUDENT_FLOOR)

    def judge_value(name: str, old: float | None, new: float | None, bound: float | None) -> Check:
        if old is None or new is None:
            return Check(name, old, new, "missing on one side", False)
        if exact or bound is None:
            return Check(name, old, new, EXACT, old == new)
        return Check(name, old, new, f"|Δ| ≤ {bound:.4f}", abs(new - old) <= bound)

    reference_old = _num((recorded.get("reference") or {}).get("accuracy"))
    reference_new = _num((rerun.get("reference") or {}).get("accuracy"))
    out.checks.append(judge_value("reference (real) accuracy", reference_old, reference_new,
                                  None if exact else REFERENCE_TOLERANCE))
    for name, old, new, spread in per_student:
        bound = None if exact else student_rule(spread)
        quantity = name.rsplit(" #", 1)[0].removesuffix(" accuracy")
        if bound is not None:
            tolerance[quantity] = bound
        out.checks.append(judge_value(name, old, new, bound))

    from ddr.report.statistics import welch_test

    for key in sorted(new_scores, key=_score_key):
        if key not in rec_scores:
            continue
        old_summary, new_summary = rec_scores[key], new_scores[key]
        name = f"{key} (mean of {len(new_summary['values'])})"
        new_mean = _num(new_summary.get("mean"))
        old_values = [float(v) for v in old_summary["values"] if _num(v) is not None]
        if exact:
            if key == "acc_real_hard" or everyone or len(old_values) != n_students:
                old_mean = _num(old_summary.get("mean"))
            else:
                old_mean = summarize([old_values[i] for i in indices], key).mean
            out.checks.append(judge_value(name, old_mean, new_mean, None))
            continue
        old_mean = _num(old_summary.get("mean"))
        rerun_values = [float(v) for v in new_summary["values"] if _num(v) is not None]
        test = welch_test(old_values, rerun_values, what="students") if len(old_values) > 1 and len(rerun_values) > 1 \
            else None
        if test is not None:
            out.checks.append(Check(name, old_mean, new_mean, f"Welch t: p = {test.p_value:.3g} "
                                    f"{'≥' if test.p_value >= MEAN_ALPHA else '<'} {MEAN_ALPHA:g}",
                                    test.p_value >= MEAN_ALPHA))
            continue
        if key == "acc_real_hard":
            bound = REFERENCE_TOLERANCE
        else:
            role = {"acc_syn_hard": "syn_hard", "acc_syn_any": "syn_any", "acc_rdm_any": "rdm_any"}.get(key, key)
            bound = tolerance.get(role) or tolerance.get("syn_hard" if key == "acc_syn_any" else role) or \
                student_rule(old_values)
        out.checks.append(judge_value(name, old_mean, new_mean, bound))
    return out
