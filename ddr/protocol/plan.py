"""Plan: the protocol turned into typed student jobs, and what running one returns.

:func:`build_plan` turns (a distilled set's identity, dataset identity, ipc, protocol, seed, the
resolved label strategy) into a :class:`Plan`: the real-data reference job plus, for each
student index ``i < num_eval``, the jobs ``syn_hard``, ``syn_any`` (left out when it would train
exactly what ``syn_hard`` trains), ``rdm_any`` and, for ARS, ``syn_noaug`` and ``rdm_noaug``.
Each :class:`StudentJob` names its data (:class:`DataRef`), recipe, LR candidates, selection
rule, label strategy, loss, augmentation, architecture, derived seed and a content key; an
executor runs jobs and returns :class:`JobResult` records. Both are serialisable
(``to_dict``/``from_dict``) so they can cross a process boundary.

The content key covers everything the result depends on and nothing else: the random baseline's
key does not contain the distilled set, so it is shared by every method evaluated at one
(dataset, ipc, protocol recipe, seed), and the reference's key is the same for every run.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ddr.engine.seeds import derive_seed
from ddr.records.jobs import DataRef, StudentJob
from ddr.records.recipe import Recipe


@dataclass(frozen=True)
class Plan:
    """The jobs of one evaluation: ``real`` first, then the students in index order.

    ``syn_any_is_syn_hard``: ``syn_any`` trains exactly what ``syn_hard`` trains (hard labels,
    same augmentation), so its job is left out and its accuracies are ``syn_hard``'s.
    """

    real: StudentJob
    students: tuple[StudentJob, ...]
    num_eval: int
    syn_any_is_syn_hard: bool
    ars: bool

    @property
    def jobs(self) -> tuple[StudentJob, ...]:
        return (self.real, *self.students)

    def by_role(self, role: str) -> list[StudentJob]:
        """The jobs of ``role`` in index order."""
        return sorted((j for j in self.students if j.role == role), key=lambda j: j.index)

    def restricted(self, indices: "Sequence[int]") -> "Plan":
        """The plan of the students at ``indices`` only (the reference kept), as ``ddr verify
        --students K`` re-runs a sample of them: each job keeps its seed and key."""
        chosen = {int(i) for i in indices}
        unknown = sorted(chosen - set(range(self.num_eval)))
        if unknown:
            from ddr.errors import ConfigError

            raise ConfigError(f"student index {unknown[0]} is not in this plan (students 0..{self.num_eval - 1})")
        return Plan(real=self.real, students=tuple(j for j in self.students if j.index in chosen),
                    num_eval=len(chosen), syn_any_is_syn_hard=self.syn_any_is_syn_hard, ars=self.ars)


@dataclass(frozen=True)
class PlanInputs:
    """Everything :func:`build_plan` needs, already resolved (no registry look-ups here).

    Attributes:
        seed: the run seed; ipc: images per class.
        distilled_sha256: the distilled set's content hash.
        has_soft_labels: the set stores soft labels; learned_lr: its learned LR, if any.
        strategy, loss: acc_syn_any's label strategy and loss; strategy_soft/strategy_teacher:
            its spec flags.
        arch, arch_params: the student; teacher_arch, teacher_arch_params: the reference/teacher.
        train, real: the student and real-data recipes (``real`` with its epochs resolved).
        lr_override: ``--lr`` (replaces the protocol LR everywhere except a learned LR).
        context: see :attr:`StudentJob.context`.
        metrics: the student metrics to measure, each ``{"name", "version", "params", "roles"}``;
            a metric for ``syn_any`` runs in the ``syn_hard`` job when that job is also syn_any's.
    """

    seed: int
    ipc: int
    distilled_sha256: str
    has_soft_labels: bool
    learned_lr: float | None
    strategy: str
    loss: Any
    strategy_soft: bool
    strategy_teacher: bool
    arch: str
    arch_params: Mapping[str, Any]
    teacher_arch: str
    teacher_arch_params: Mapping[str, Any]
    train: Recipe
    real: Recipe
    lr_override: float | None
    ars: bool
    context: Mapping[str, Any]
    metrics: tuple[Mapping[str, Any], ...] = ()


def reference_job(protocol: Any, *, seed: int, arch: str, arch_params: Mapping[str, Any], real: Recipe,
                  context: Mapping[str, Any]) -> StudentJob:
    """The real-data reference: the teacher architecture ``arch`` on the whole pool under the real
    recipe ``real`` (its epochs resolved), seeded from the run seed ``seed``.

    Its key depends on neither the distilled set nor the IPC nor the teacher, so every method and
    IPC reuses one trained reference (and teacher) per (dataset, protocol recipe, seed). Under
    ``real.selection: ddranking`` it reports the best test accuracy every ``test_interval`` epochs.
    """
    selection = getattr(protocol, "real_selection", "last")
    return StudentJob(role="real", index=0, data=DataRef("pool"), recipe=real,
                      lr_candidates=(float(real.lr),), selection=selection,
                      test_interval=protocol.test_interval if selection == "ddranking" else 0,
                      label_strategy="hard", loss=None,
                      augmentation=tuple(protocol.real_augmentation), arch=arch,
                      arch_params=arch_params, seed=derive_seed(seed, "real"),
                      needs_teacher=False, context=context)


def build_plan(protocol: Any, inputs: PlanInputs) -> Plan:
    """The jobs of one evaluation under ``protocol`` (a :class:`ddr.protocol.config.Protocol`)."""
    seed = inputs.seed
    selection = protocol.selection
    train_recipe = inputs.train.with_lr(inputs.lr_override)
    grid = tuple(float(x) for x in protocol.lr_grid)

    def candidates(lr: float | None) -> tuple[float, ...]:
        if lr is not None:
            return (float(lr),)
        if selection == "last":
            return (train_recipe.lr,)
        return grid

    def measured(role: str) -> tuple[dict[str, Any], ...]:
        """The metrics a job of ``role`` measures (syn_hard's job is syn_any's too when they coincide)."""
        roles = {role, "syn_any"} if role == "syn_hard" and same_run else {role}
        return tuple({k: m[k] for k in ("name", "version", "params")} for m in inputs.metrics
                     if roles & set(m["roles"]))

    def job(role: str, index: int, data: DataRef, *, strategy: str, loss: Any, augmentation: tuple[Any, ...],
            lr: float | None, teacher: bool) -> StudentJob:
        return StudentJob(role=role, index=index, data=data, recipe=train_recipe, lr_candidates=candidates(lr),
                          selection=selection, test_interval=protocol.test_interval if selection == "ddranking" else 0,
                          label_strategy=strategy,
                          loss=loss, augmentation=augmentation, arch=inputs.arch, arch_params=inputs.arch_params,
                          seed=derive_seed(seed, role, index), needs_teacher=teacher, context=inputs.context,
                          metrics=measured(role))

    real = reference_job(protocol, seed=seed, arch=inputs.teacher_arch, arch_params=inputs.teacher_arch_params,
                         real=inputs.real, context=inputs.context)
    hard_aug, any_aug = tuple(protocol.hard_augmentation), tuple(protocol.augmentation)
    same_run = inputs.strategy == "hard" and inputs.loss is None and list(hard_aug) == list(any_aug) and (
        inputs.learned_lr is None or getattr(protocol, "syn_hard_learned_lr", True))
    syn = DataRef("distilled", sha256=inputs.distilled_sha256,
                  soft="stored" if inputs.has_soft_labels else None)
    rdm_soft = "teacher" if inputs.has_soft_labels and inputs.strategy == "stored_soft" else None
    teacher_any = inputs.strategy_teacher
    students: list[StudentJob] = []
    for i in range(protocol.num_eval):
        hard_lr = inputs.learned_lr if getattr(protocol, "syn_hard_learned_lr", True) else None
        students.append(job("syn_hard", i, DataRef("distilled", sha256=inputs.distilled_sha256), strategy="hard",
                            loss=None, augmentation=hard_aug, lr=hard_lr, teacher=False))
        if not same_run:
            students.append(job("syn_any", i, syn, strategy=inputs.strategy, loss=inputs.loss, augmentation=any_aug,
                                lr=inputs.learned_lr, teacher=teacher_any))
        rdm = DataRef("random", index=i, ipc=inputs.ipc, soft=rdm_soft)
        students.append(job("rdm_any", i, rdm, strategy=inputs.strategy, loss=inputs.loss, augmentation=any_aug,
                            lr=None, teacher=teacher_any or rdm_soft is not None))
        if inputs.ars:  # ARS "without": no augmentation at all (mixing included)
            students.append(job("syn_noaug", i, syn, strategy=inputs.strategy, loss=inputs.loss, augmentation=(),
                                lr=inputs.learned_lr, teacher=teacher_any))
            students.append(job("rdm_noaug", i, rdm, strategy=inputs.strategy, loss=inputs.loss, augmentation=(),
                                lr=None, teacher=teacher_any or rdm_soft is not None))
    return Plan(real=real, students=tuple(students), num_eval=protocol.num_eval, syn_any_is_syn_hard=same_run,
                ars=inputs.ars)
