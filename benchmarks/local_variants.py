"""The CPU variants of the local executor (``local.compiled``, ``local.bf16``) against plain
``local``: the same evaluation, its time and its numbers.

Runs ``ddr run --method random`` (a random real subset: no distillation cost, so the time is the
students' and the reference's) once per executor, each on its own empty cache (the job cache
does not key on the executor, so a shared cache would hand the second run the first run's
students), then prints the wall and CPU time of each process and every per-student accuracy
side by side: ``acc_syn_hard`` and ``acc_rdm_any`` (the random baseline) of each student, the
reference's ``acc_real_hard``, each variant's difference from the first executor, and Welch's t
of the means (sample std).

    python benchmarks/local_variants.py                                 # digits, IPC 10, 5 students, 300 epochs
    python benchmarks/local_variants.py --executors local local.bf16 --epochs 100 --json out.json

torch.compile caches its compiled kernels on disk (``TORCHINDUCTOR_CACHE_DIR``, default under
/tmp): the first run on a machine pays the compilation, later ones mostly load it. ``--cold``
points it at an empty folder, so the printed time includes compiling.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEYS = ("acc_syn_hard", "acc_rdm_any", "acc_real_hard")


def run(executor: str, work: Path, args: argparse.Namespace, inductor_cache: Path | None) -> dict[str, Any]:
    """One ``ddr run`` with ``executor`` on an empty cache under ``work``: times and per-student values."""
    cache = work / executor / "cache"
    shutil.rmtree(work / executor, ignore_errors=True)
    cache.mkdir(parents=True)
    env = {**os.environ, "DDR_CACHE_DIR": str(cache)}
    if inductor_cache is not None:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(inductor_cache)
    command = [sys.executable, "-m", "ddr", "run", "--method", "random", "--dataset", args.dataset,
               "--ipc", str(args.ipc), "--num-eval", str(args.num_eval), "--seed", str(args.seed),
               "--executor", executor, "--device", "cpu", "--no-progress", "--json", "--out", str(work / executor / "runs")]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{executor}: ddr run failed (exit {done.returncode})\n{done.stderr[-3000:]}")
    out = done.stdout
    record = json.loads(out[out.index("{"):out.rindex("}") + 1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"executor": executor, "wall": wall, "cpu": cpu, "command": " ".join(command[1:]),
            "values": {k: list(record[k]["values"]) for k in KEYS}}


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """Δ = mean(b) − mean(a) and Welch's t (sample std; a single value adds no spread)."""
    def mean_var(x: list[float]) -> tuple[float, float]:
        m = sum(x) / len(x)
        return m, (sum((v - m) ** 2 for v in x) / (len(x) - 1) / len(x) if len(x) > 1 else 0.0)

    (ma, va), (mb, vb) = mean_var(a), mean_var(b)
    se = math.sqrt(va + vb)
    return mb - ma, ((mb - ma) / se if se > 0 else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--num-eval", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (default: the protocol's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--executors", nargs="+", default=["local", "local.compiled", "local.bf16"],
                        help="the first is the reference the others are compared with")
    parser.add_argument("--cold", action="store_true", help="an empty torch.compile cache: time the compilation too")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ddr-local-variants")
    parser.add_argument("--json", type=Path, default=None, help="write both runs here")
    args = parser.parse_args()
    inductor = None
    if args.cold:
        inductor = args.work / "inductor-cache"
        shutil.rmtree(inductor, ignore_errors=True)
    runs = [run(executor, args.work, args, inductor) for executor in args.executors]
    reference = runs[0]
    print(f"load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs")
    print(f"| executor | wall (s) | CPU (s) | {reference['executor']} / it, wall | CPU |\n|---|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['executor']} | {r['wall']:.1f} | {r['cpu']:.1f} | {reference['wall'] / r['wall']:.2f}x "
              f"| {reference['cpu'] / r['cpu']:.2f}x |")
    print("\n| quantity | executor | per student | mean | Δ mean | t |\n|---|---|---|---:|---:|---:|")
    for key in KEYS:
        base = reference["values"][key]
        for r in runs:
            values = r["values"][key]
            diff, t = welch(base, values)
            print(f"| {key} | {r['executor']} | {' '.join(f'{v:.4f}' for v in values)} | "
                  f"{sum(values) / len(values):.4f} | {diff:+.4f} | {t:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "load_average": os.getloadavg()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
