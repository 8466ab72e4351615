"""Helpers of the results/leaderboard/plot tests: real run records and synthetic rows.

``tests/data/results/`` holds run folders written by the real CLI (digits, 2 students, 20 epochs):

    DDR_CACHE_DIR=/tmp/bench-cache python -m ddr run --method dm --ipc 1 --seed 0 --num-eval 2 \
        --epochs 20 --set real.epochs=5 --out /tmp/bench-runs --no-progress

(and herding/random, seeds 0-1, IPC 1-2). ``results_xarch/`` holds ``ddr run --method dm --arch mlp``
(same options); ``results_eval/`` holds ``ddr eval <dm's IPC-1 distilled set> --arch mlp`` (a record
without a method).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "results"


def real_runs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if (p / "metrics.json").exists())


def copy_runs(dest: Path) -> list[Path]:
    """The fixture run folders copied under ``dest`` (tests may then modify them)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for run in real_runs():
        shutil.copytree(run, dest / run.name)
        out.append(dest / run.name)
    return out


def summary(values: Sequence[float]) -> dict[str, Any]:
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    pop = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {"mean": mean, "std": std, "std_population": pop, "n": n, "values": values}


def ddrs(h: float, i: float, w: float) -> float:
    """The formula, written out independently of ddr."""
    a = w * i - (1 - w) * h
    return (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def make_metrics(hlr: Sequence[float], ior: Sequence[float], real: float = 0.9, rdm: float = 0.5,
                 w: float = 0.5) -> dict[str, Any]:
    """A metrics.json body consistent with the given per-student HLR and IOR."""
    syn_hard = [real - h for h in hlr]
    syn_any = [rdm + i for i in ior]
    return {
        "acc_real_hard": summary([real]), "acc_syn_hard": summary(syn_hard), "acc_syn_any": summary(syn_any),
        "acc_rdm_any": summary([rdm] * len(ior)), "hlr": summary(hlr), "ior": summary(ior),
        "ddrs": summary([ddrs(h, i, w) for h, i in zip(hlr, ior)]),
    }


def make_row(method: str, hlr: Sequence[float], ior: Sequence[float], *, dataset: str = "digits", ipc: int = 1,
             seed: int = 0, arch: str = "convnet", params: dict[str, Any] | None = None, run_id: str | None = None,
             **extra: Any) -> dict[str, Any]:
    """A result row as ResultsDB.query returns it (only what the reports read)."""
    row = {"run_id": run_id or f"{method}-{dataset}-{ipc}-{seed}-{arch}", "method": method, "dataset": dataset,
           "ipc": ipc, "arch": arch, "seed": seed, "distill_seed": seed, "method_params": params or {},
           "protocol": "digits", "protocol_version": "1", "metrics": make_metrics(hlr, ior)}
    row.update(extra)
    return row


def write_run(folder: Path, method: str, hlr: Sequence[float], ior: Sequence[float], *, ipc: int = 1, seed: int = 0,
              dataset: str = "digits", extra_metrics: dict[str, Any] | None = None) -> Path:
    """A synthetic run folder (run_spec.json, metrics.json, env.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"method": method, "method_params": {}, "dataset": dataset, "ipc": ipc, "arch": "convnet",
            "protocol": "digits", "seed": seed}
    metrics = make_metrics(hlr, ior)
    metrics.update({"method": method, "method_params": {}, "protocol": "digits", "protocol_version": "1",
                    "seed": seed, "run_spec": spec, "distill_seconds": 1.5, "eval_seconds": 2.5,
                    "students": [{"role": "syn_hard", "index": k, "seed": 2**63 - 1 - k, "accuracy": 0.9 - h,
                                  "lr": 0.01, "epochs_trained": 20, "seconds": 0.1} for k, h in enumerate(hlr)]})
    metrics.update(extra_metrics or {})
    (folder / "run_spec.json").write_text(json.dumps(spec))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "env.json").write_text(json.dumps({"machine_id": "test"}))
    return folder
