"""Typed records of a run: what was asked (:class:`RunSpec`) and what came out
(:class:`EvaluationResult`). Lifecycle hooks receive these; both serialise to JSON.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ddr.records.jobs import JobResult
from ddr.records.summary import Summary

SCORE_KEYS = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")


@dataclass(frozen=True)
class RunSpec:
    """What a ``ddr run`` / ``ddr eval`` was asked to do, before any work.

    Attributes:
        command: ``run`` or ``eval``.
        method: the method reference (``dm``, ``dm.paper``) or ``None`` for ``eval``.
        method_params: the method's user overrides (``--set method.KEY``), before defaults.
        source: the evaluated path (``eval``), else ``None``.
        dataset, ipc, protocol, seed, executor, device: as given (protocol ``None``: default).
        overrides: every protocol override (``--set``, ``--epochs``, ``--num-eval``, ``--lr``).
    """

    command: str
    method: str | None
    method_params: Mapping[str, Any]
    source: str | None
    dataset: str
    ipc: int | None
    protocol: str | None
    seed: int
    executor: str
    device: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["method_params"] = dict(self.method_params)
        out["overrides"] = dict(self.overrides)
        return out


@dataclass
class EvaluationResult:
    """The typed result of one evaluation (``to_json`` gives the ``--json`` schema).

    Attributes:
        scores: ``acc_real_hard``, ``acc_syn_hard``, ``acc_syn_any``, ``acc_rdm_any``, ``hlr``,
            ``ior``, ``ddrs`` (and ``ddranking_lrs`` in compat mode, and the columns of every reported
            metric, e.g. ``robust_pgd_syn``) as :class:`Summary` (fractions).
        ars: the ARS table, when asked.
        students: the students' job results in plan order (``syn_hard``, ``syn_any``, ``rdm_any``
            per index); reference: the real-data reference's job result.
        run_spec: the resolved settings (``run_spec.json``).
        reused: how many jobs came from the job cache, by role.
        extra: what ``ddr run`` adds (method, method_params, distill time, budget, ...).
    """

    scores: dict[str, Summary]
    ars: dict[str, Summary] | None
    protocol: str
    protocol_version: str
    seed: int
    distilled_sha256: str
    test_set_selection: bool
    students: list[JobResult]
    reference: JobResult
    run_spec: dict[str, Any]
    eval_seconds: float
    reused: dict[str, int] = field(default_factory=dict)
    record_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def real_cached(self) -> bool:
        """Whether the real-data reference came from the cache."""
        return bool(self.reused.get("real"))

    def __getattr__(self, name: str) -> Any:
        scores = self.__dict__.get("scores", {})
        if name in scores:
            return scores[name]
        raise AttributeError(name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.scores[k].to_dict() for k in SCORE_KEYS}
        out.update({k: v.to_dict() for k, v in self.scores.items() if k not in out})  # ddranking_lrs, metrics
        if self.ars is not None:
            out["ars"] = self.ars["ars"].to_dict()
            out["ars_details"] = {k: v.to_dict() for k, v in self.ars.items() if k != "ars"}
        out.update({
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "seed": self.seed,
            "distilled_sha256": self.distilled_sha256,
            "test_set_selection": self.test_set_selection,
            "eval_seconds": round(self.eval_seconds, 3),
            "real_cached": self.real_cached,
            "reused_jobs": dict(self.reused),
            "run_spec": self.run_spec,
        })
        out.update(self.extra)
        if self.record_dir:
            out["record_dir"] = self.record_dir
        return out

    def metrics_record(self) -> dict[str, Any]:
        """What ``metrics.json`` holds: every score plus each job's result."""
        out = self.to_json()
        out["reference"] = self.reference.to_dict()
        out["students"] = [s.to_dict() for s in self.students]
        return out
