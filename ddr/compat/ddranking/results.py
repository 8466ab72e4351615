"""DD-Ranking's result: the dict ``compute_metrics`` returns and the per-run CSV it saves.

From a ddr :class:`~ddr.records.run.EvaluationResult`: the hard- and soft-label evaluators return
``hard_label_recovery_mean/_std``, ``improvement_over_random_mean/_std`` and
``label_robust_score_mean/_std``; AugmentationRobustScore returns ``with_aug_scores_mean/_std``,
``without_aug_scores_mean/_std`` and ``augmentation_robust_score_mean/_std``. Each ``_std`` is the
population standard deviation over the ``num_eval`` runs (``np.std``, as DD-Ranking).

Units: by default FRACTIONS (HLR, IOR and the ARS terms in [-1, 1], the scores in [0, 1], as ddr
defines them); ``percent=True`` gives DD-Ranking 0.2.0's numbers: percentage points, and the
scores computed from them as 0.2.0 does (saturating at -0.1565). Never imports torch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ddr.errors import ArtifactError
from ddr.protocol.metrics import ddranking_ars_percent, ddranking_lrs_percent

if TYPE_CHECKING:  # pragma: no cover
    from ddr.compat.ddranking.config import MappedConfig
    from ddr.records.run import EvaluationResult

LRS_NAMES = ("hard_label_recovery", "improvement_over_random", "label_robust_score")
ARS_NAMES = ("with_aug_scores", "without_aug_scores", "augmentation_robust_score")
CSV_COLUMNS = {"lrs": ("hard_label_recovery", "improvement_over_random", "lrs"),
               "ars": ("with_aug_scores", "without_aug_scores", "ars_list")}
"""The CSV columns DD-Ranking writes (one row per evaluation run)."""


def per_run(result: "EvaluationResult", evaluator: str, *, percent: bool = False, w: float = 0.5,
            lam: float = 0.5) -> dict[str, list[float]]:
    """The per-run values DD-Ranking reports, keyed by the names of :data:`LRS_NAMES` (hard/soft)
    or :data:`ARS_NAMES` (``ars``); fractions, or DD-Ranking's percent numbers with ``percent``.

    ``w`` (``lrs_lambda``) and ``lam`` (``ars_lambda``) matter only with ``percent`` (the fraction
    scores come from the result, computed with the protocol's weights).
    """
    if evaluator == "ars":
        if result.ars is None:
            raise ArtifactError("the evaluation has no ARS table; evaluate with ARS (--ars / metrics.ars: true)")
        table = result.ars
        if not percent:
            return {ARS_NAMES[0]: list(table["with_aug"].values), ARS_NAMES[1]: list(table["without_aug"].values),
                    ARS_NAMES[2]: list(table["ars"].values)}
        accs = [table[k].values for k in ("acc_syn_aug", "acc_rdm_aug", "acc_syn_noaug", "acc_rdm_noaug")]
        return {ARS_NAMES[0]: [100.0 * v for v in table["with_aug"].values],
                ARS_NAMES[1]: [100.0 * v for v in table["without_aug"].values],
                ARS_NAMES[2]: [ddranking_ars_percent(a, b, c, d, lam) for a, b, c, d in zip(*accs)]}
    scores = result.scores
    if not percent:
        return {LRS_NAMES[0]: list(scores["hlr"].values), LRS_NAMES[1]: list(scores["ior"].values),
                LRS_NAMES[2]: list(scores["ddrs"].values)}
    syn_hard, syn_any, rdm_any = (scores[k].values for k in ("acc_syn_hard", "acc_syn_any", "acc_rdm_any"))
    real = list(scores["acc_real_hard"].values)
    real = real * len(syn_hard) if len(real) == 1 else real
    return {LRS_NAMES[0]: [100.0 * v for v in scores["hlr"].values],
            LRS_NAMES[1]: [100.0 * v for v in scores["ior"].values],
            LRS_NAMES[2]: [ddranking_lrs_percent(r, s, a, d, w) for r, s, a, d in zip(real, syn_hard, syn_any, rdm_any)]}


def result_dict(values: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """``{name}_mean`` and ``{name}_std`` (population std) of each list of :func:`per_run`."""
    out: dict[str, float] = {}
    for name, runs in values.items():
        array = np.asarray(list(runs), dtype=np.float64)
        out[f"{name}_mean"] = float(array.mean())
        out[f"{name}_std"] = float(array.std())
    return out


def write_csv(path: Path, evaluator: str, values: Mapping[str, Sequence[float]]) -> Path:
    """DD-Ranking's per-run CSV at ``path`` (parents created); columns :data:`CSV_COLUMNS`."""
    names = ARS_NAMES if evaluator == "ars" else LRS_NAMES
    columns = CSV_COLUMNS["ars" if evaluator == "ars" else "lrs"]
    from ddr.store.writable import write_output

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in zip(*(values[n] for n in names)):
                writer.writerow([repr(float(v)) for v in row])

    return write_output(Path(path), write, what="DD-Ranking's results (save_path)", choose="choose a writable save_path")


def attach_result(result: "EvaluationResult", mapped: "MappedConfig", *, log: Callable[[str], None],
                  percent: bool = False) -> dict[str, float]:
    """DD-Ranking's result dict of ``result`` (fractions unless ``percent``): stored in
    ``result.extra["ddranking"]``, written beside the run record (``ddranking.json``) and, when the
    config has ``save_path``, as DD-Ranking's CSV there."""
    from ddr.compat.ddranking.config import CLASS_NAMES

    metrics = result.run_spec.get("protocol_config", {}).get("metrics", {})
    values = per_run(result, mapped.evaluator, percent=percent, w=float(metrics.get("w", 0.5)),
                     lam=float(metrics.get("lambda", 0.5)))
    out = result_dict(values)
    record = {"evaluator": CLASS_NAMES[mapped.evaluator], "units": "percent" if percent else "fractions",
              "result": out, "per_run": values, "notes": list(mapped.notes)}
    if mapped.save_path is not None:
        record["save_path"] = str(write_csv(mapped.save_path, mapped.evaluator, values))
    result.extra["ddranking"] = record
    if result.record_dir:
        try:
            (Path(result.record_dir) / "ddranking.json").write_text(json.dumps(record, indent=2) + "\n",
                                                                    encoding="utf-8")
        except OSError as exc:
            log(f"warning: cannot write ddranking.json into {result.record_dir}: {exc}")
    log(f"{record['evaluator']} result ({record['units']}): " +
        ", ".join(f"{k} {v:.4f}" for k, v in out.items()))
    return out
