"""What each command of README's tour costs: run them in order, as a new user would, and time them.

Every command runs through the installed ``ddr`` console script in a subprocess, on one fresh
cache (``DDR_CACHE_DIR``) and one scratch folder, in the README's order: a later command finds
what an earlier one cached (the real-data reference, distilled sets, student jobs), exactly as it
would for a user following the tour. Commands that need data this machine cannot download (CIFAR-10)
are listed with the reason and not run.

Writes ``--out`` (JSON: per command its wall seconds, exit status and the last line it printed)
and prints a Markdown table. Wall seconds are the subprocess' elapsed time (``time.perf_counter``)
including interpreter start-up and imports.

    python benchmarks/readme_tour.py --out benchmarks/results/readme_tour.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOUR: list[tuple[str, str | None]] = [
    ("ddr list methods", None),
    ("ddr list datasets cifar*", None),
    ("ddr describe method dm", None),
    ("ddr plugins", None),
    ("ddr doctor --materialize", None),
    ("ddr run --method dm", None),
    ("ddr run --method dm --dry-run", None),
    ("ddr run --method dsa --ipc 10 --num-eval 3 --json", None),
    ("ddr run --method dm.paper --dataset cifar10 --ipc 10 --download --protocol hard",
     "needs CIFAR-10 (a download; this machine has no internet)"),
    ("ddr run --method dm --set method.iterations=500 --set train.epochs=500 --save-distilled out/dm", None),
    ("ddr run --method dm --distill-seeds 3", None),
    ("ddr run --method dm --dataset mnist5k --protocol digits", None),
    ("ddr eval out/dm --dataset digits --ipc 1", None),
    ("ddr eval mtt_files/ --dataset cifar10 --ipc 10 --zca", "needs CIFAR-10 and a DD-Ranking-layout set"),
    ("ddr eval my_images/ --dataset cifar10 --ipc 10 --resize", "needs CIFAR-10 and an image folder"),
    ("ddr teacher train --dataset digits", None),
    ("ddr show ddr-runs", None),
    ("ddr show {RUN_DIR}", None),
    ("ddr validate benchmarks/suites/digits.yaml", None),
    ("ddr export {RUN_ID} -o dm.zip", None),
    ("ddr verify dm.zip", None),
    ("ddr import dm.zip --verify", None),
]
"""README's tour (section "A short tour"), in its order; the second item says why a command is
not run here (``None``: it is run)."""


def run_tour(out: Path, only: list[int] | None = None, timeout: float = 3600.0,
             skip: list[int] | None = None) -> list[dict[str, object]]:
    """Run the tour's commands (``only``: their positions; ``skip``: positions left out, listed as
    "skipped") and return one result per command."""
    repo = Path(__file__).resolve().parents[1]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="ddr-tour-") as scratch:
        work = Path(scratch)
        (work / "benchmarks").symlink_to(repo / "benchmarks")
        env = {**os.environ, "DDR_CACHE_DIR": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
        env.pop("DDR_RESULTS_DB", None)
        for i, (command, why) in enumerate(TOUR):
            if only is not None and i not in only:
                continue
            row: dict[str, object] = {"command": command}
            if why is None and i in (skip or []):
                why = "left out with --skip"
            if why is not None:
                row.update(status="not run", reason=why)
                rows.append(row)
                print(f"-- {command}: not run ({why})", flush=True)
                continue
            command = fill(command, work)
            row["command"] = command
            print(f"-- {command}", flush=True)
            start = time.perf_counter()
            try:
                quiet = ["--no-progress"] if shlex.split(command)[1] in ("run", "eval", "verify") else []
                proc = subprocess.run(["ddr", *shlex.split(command)[1:], *quiet],
                                      cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
                seconds = time.perf_counter() - start
                lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
                row.update(status="ok" if proc.returncode == 0 else "failed", returncode=proc.returncode,
                           seconds=round(seconds, 1), last_line=lines[-1][:200] if lines else "")
            except subprocess.TimeoutExpired:
                row.update(status="timeout", seconds=timeout)
            rows.append(row)
            print(f"   {row['status']} in {row.get('seconds')} s", flush=True)
            out.write_text(json.dumps({"machine": machine(), "commands": rows}, indent=2) + "\n")
    return rows


def fill(command: str, work: Path) -> str:
    """``{RUN_ID}`` / ``{RUN_DIR}``: the first ``ddr run --method dm`` record of the tour (the README
    writes them as ``RUN_ID`` and ``ddr-runs/dm-digits-ipc1-seed0-…``)."""
    if "{RUN_" not in command:
        return command
    first = sorted((work / "ddr-runs").glob("dm-digits-ipc1-seed0-*"), key=lambda p: p.stat().st_mtime)[0]
    run_id = json.loads((first / "metrics.json").read_text())["run_id"]
    return command.replace("{RUN_ID}", run_id[:10]).replace("{RUN_DIR}", f"ddr-runs/{first.name}")


def machine() -> dict[str, object]:
    """Where the tour ran: CPU count, platform, Python, torch, thread setting."""
    import torch

    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "date": time.strftime("%Y-%m-%d")}


def fmt(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    return f"{seconds:.1f} s" if seconds < 90 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/readme_tour.json"))
    parser.add_argument("--only", type=int, nargs="*", help="positions (0-based) of the commands to run")
    parser.add_argument("--skip", type=int, nargs="*", help="positions (0-based) of the commands to leave out")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = run_tour(args.out.resolve(), args.only, skip=args.skip)
    print("\n| command | wall time | status |\n|---|---|---|")
    for row in rows:
        print(f"| `{row['command']}` | {fmt(row.get('seconds'))} | {row['status']} {row.get('reason', '')} |")
    return 0 if all(r["status"] in ("ok", "not run") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
