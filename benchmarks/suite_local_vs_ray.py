"""Run one suite under ``--executor local`` and under ``--executor ray`` (each with its own empty
cache) and check that every run's numbers are the same: the distilled set's sha256 and every
per-student value of every score.

    python benchmarks/suite_local_vs_ray.py                                  # benchmarks/suites/digits.yaml
    python benchmarks/suite_local_vs_ray.py SUITE.yaml --work DIR --reuse    # compare runs already there

Needs the ``ray`` extra (``pip install -e ".[ray]"``). Prints one row per run, both wall times,
and exits 1 when any number differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCORES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")


def run_suite(suite: Path, executor: str, work: Path) -> float:
    """``ddr run SUITE --executor EXECUTOR`` with a fresh cache under ``work/EXECUTOR``; wall seconds."""
    folder = work / executor
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DDR_CACHE_DIR": str(folder / "cache")}
    command = [sys.executable, "-m", "ddr", "run", str(suite), "--executor", executor, "--out", str(folder / "runs"),
               "--db", str(folder / "results.sqlite"), "--no-progress"]
    start = time.perf_counter()
    with open(folder / "log.txt", "w", encoding="utf-8") as log:
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}; see {folder / 'log.txt'}")
    return time.perf_counter() - start


def numbers(record: Path) -> dict[str, Any]:
    metrics = json.loads((record / "metrics.json").read_text(encoding="utf-8"))
    return {"sha256": metrics["distilled_sha256"], **{k: metrics[k]["values"] for k in SCORES}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", nargs="?", default=str(ROOT / "benchmarks" / "suites" / "digits.yaml"))
    parser.add_argument("--work", default="suite-local-vs-ray", help="where both runs go (default ./suite-local-vs-ray)")
    parser.add_argument("--reuse", action="store_true", help="compare the records already under --work")
    args = parser.parse_args(argv)
    suite, work = Path(args.suite).resolve(), Path(args.work).resolve()
    name = yaml.safe_load(suite.read_text(encoding="utf-8"))["suite"]
    seconds = {}
    for executor in ("local", "ray"):
        seconds[executor] = None if args.reuse else run_suite(suite, executor, work)
    runs = {e: sorted(p for p in (work / e / "runs" / name).iterdir() if (p / "metrics.json").is_file())
            for e in ("local", "ray")}
    if [p.name for p in runs["local"]] != [p.name for p in runs["ray"]]:
        print("the two runs wrote different record folders", file=sys.stderr)
        return 1
    differing = 0
    print(f"{'run':<48} {'DDRS (local)':>12} {'DDRS (ray)':>12}  numbers")
    for local, remote in zip(runs["local"], runs["ray"]):
        a, b = numbers(local), numbers(remote)
        same = a == b
        differing += not same
        ddrs_a, ddrs_b = sum(a["ddrs"]) / len(a["ddrs"]), sum(b["ddrs"]) / len(b["ddrs"])
        print(f"{local.name:<48} {ddrs_a:>12.4f} {ddrs_b:>12.4f}  {'identical' if same else 'DIFFER'}")
    total = len(runs["local"])
    print(f"{total - differing} of {total} runs identical (distilled sha256 and every per-student score)")
    if seconds["local"] is not None:
        print(f"wall: local {seconds['local']:.1f} s, ray {seconds['ray']:.1f} s")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
