"""DD-Ranking 0.2.0's hard-label evaluation and ddr's `ddranking-hard` side by side: time and numbers.

Both evaluate the same synthetic set (the first IPC training images of each class) on the same
generated CIFAR-10-format dataset with the same DD-Ranking config file, on the same device,
interleaved A B A B, each in a fresh process. DD-Ranking runs in its own virtual environment
(created on first use and reused: `ddranking==0.2.0` from the package index plus the same torch
as ddr's), with the minimal patches it needs to run at all (docs/ddranking.md and below):

* W1  torchvision md5-checks every CIFAR file (DD-Ranking passes download=True); the generated
      files are not the official ones, so the check is switched off;
* W2  LabelRobustScoreHard appends each run's LRS twice and then fails in pandas while saving its
      CSV, after all training: the save is made tolerant (the duplicate row padded);
* W3  every evaluation run is seeded from the clock: the seed is fixed (``--seed``).

ddr runs ``ddr eval SYN --ddranking-config CONFIG --no-job-cache`` with a fresh cache, so it trains
everything as DD-Ranking does, except that it trains the real-data model once instead of once per
run (docs/ddranking.md §2). Times: wall clock of the whole process and its CPU time (user + sys of
the child and its children), median over rounds.

    python benchmarks/speed_vs_ddranking.py --quick              # 10 epochs, 1 run: < 10 min on 2 idle CPU cores
    python benchmarks/speed_vs_ddranking.py --device cuda        # 1000 epochs, 5 runs, on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
DDRANKING = "ddranking==0.2.0"
DEFAULT_VENV = Path.home() / ".cache" / "ddr" / "ddranking-0.2.0-venv"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # DD-Ranking's (and ddr's) CIFAR-10 constants

RUN_DDRANKING = r'''
import json, resource, sys, time
import yaml
import torchvision.datasets.cifar as cifar
cifar.check_integrity = lambda *a, **k: True                       # W1
import pandas as pd
import ddranking.metrics.hard_label as hard_label
from ddranking.utils import misc
def tolerant_save(results, path):                                  # W2
    n = max(len(v) for v in results.values())
    pd.DataFrame({k: list(v) + [None] * (n - len(v)) for k, v in results.items()}).to_csv(path, index=False)
hard_label.save_results = tolerant_save
seed = int(sys.argv[4])
hard_label.set_seed = lambda s=None: misc.set_seed(seed)           # W3
import torch
from ddranking import LabelRobustScoreHard
config = yaml.safe_load(open(sys.argv[1]))
config.update(random_data_path=sys.argv[3] + "/random_data", save_path=sys.argv[3] + "/hard_scores.csv")
images = torch.load(sys.argv[2] + "/images.pt", weights_only=True)
start = time.perf_counter()
evaluator = LabelRobustScoreHard(**config)
result = evaluator.compute_metrics(image_tensor=images)
print("RESULT " + json.dumps({k: float(v) for k, v in result.items()}))
print("EVAL_SECONDS %.3f" % (time.perf_counter() - start))
'''


# -- set-up ------------------------------------------------------------------------------------

def ensure_venv(venv: Path) -> Path:
    """DD-Ranking's virtual environment (reused when it already imports ddranking)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import ddranking, torch; print(torch.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating DD-Ranking's environment in {venv} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *TORCH], check=True)
    subprocess.run([*pip, DDRANKING, "pyyaml", *TORCH], check=True)  # keep the same torch
    subprocess.run(probe, check=True)
    return python


def make_cifar10(root: Path, per_class_train: int, per_class_test: int, seed: int) -> Path:
    """A CIFAR-10-format dataset (torchvision's on-disk pickles) of class-specific smooth patterns,
    shifted by up to 3 px, plus Gaussian noise: learnable but not trivial."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    templates = []
    for _ in range(10):
        f = rng.uniform(1.0, 4.0, size=(3, 2))
        phase = rng.uniform(0, 2 * np.pi, size=3)
        templates.append(np.stack([np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy) + phase[c]) for c in range(3)]))

    def draw(count: int) -> tuple[np.ndarray, list[int]]:
        images, labels = [], []
        for c in range(10):
            for _ in range(count):
                dx, dy = rng.integers(0, 8, size=2)
                pattern = templates[c][:, dy:dy + 32, dx:dx + 32]
                pixels = 127.5 + 70.0 * pattern + rng.normal(0.0, 300.0, size=(3, 32, 32))
                images.append(np.clip(pixels, 0, 255).astype(np.uint8).reshape(-1))
                labels.append(c)
        order = rng.permutation(len(labels))
        return np.stack(images)[order], [labels[i] for i in order]

    train_x, train_y = draw(per_class_train)
    parts = np.array_split(np.arange(len(train_y)), 5)
    for i, index in enumerate(parts, start=1):
        batch = {"batch_label": f"training batch {i} of 5", "labels": [train_y[j] for j in index],
                 "data": train_x[index], "filenames": [f"train_{j}.png" for j in index]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    test_x, test_y = draw(per_class_test)
    (folder / "test_batch").write_bytes(pickle.dumps({"batch_label": "testing batch 1 of 1", "labels": test_y,
                                                      "data": test_x, "filenames": [f"test_{j}.png" for j in
                                                                                    range(len(test_y))]}))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": len(parts[0]),
                                                        "num_vis": 3072}))
    return root


def make_synthetic_set(data: Path, out: Path, ipc: int) -> Path:
    """images.pt: the first ``ipc`` training images of each class, class-major, normalised."""
    import torch

    xs, ys = [], []
    for i in range(1, 6):
        batch = pickle.loads((data / "cifar-10-batches-py" / f"data_batch_{i}").read_bytes())
        xs.append(batch["data"])
        ys.extend(batch["labels"])
    x, y = np.concatenate(xs), np.asarray(ys)
    picks = np.concatenate([np.flatnonzero(y == c)[:ipc] for c in range(10)])
    images = torch.tensor(x[picks].reshape(-1, 3, 32, 32), dtype=torch.float32) / 255.0
    images = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(images.contiguous(), out / "images.pt")
    return out


def write_config(path: Path, *, data: Path, ipc: int, epochs: int, num_eval: int, device: str) -> Path:
    """One DD-Ranking hard-label config (its DSA/DM eval-config layout) that both tools read."""
    import yaml

    config = {
        "dataset": "CIFAR10", "real_data_path": str(data), "ipc": ipc, "im_size": [32, 32],
        "model_name": "ConvNet-3", "use_torchvision": False, "data_aug_func": "dsa",
        "aug_params": {"flip": 0.5, "rotate": 15.0, "scale": 1.2, "crop": 0.125, "cutout": 0.5,
                       "brightness": 1.0, "saturation": 2.0, "contrast": 0.5},
        "use_zca": False, "custom_train_trans": None, "custom_val_trans": None, "optimizer": "sgd",
        "lr_scheduler": "step", "step_size": max(1, epochs // 2), "weight_decay": 0.0005, "momentum": 0.9,
        "num_eval": num_eval, "num_epochs": epochs, "num_workers": 0, "device": device, "dist": False,
        "syn_batch_size": 256, "real_batch_size": 256, "eval_full_data": True, "random_data_format": "tensor",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- running -----------------------------------------------------------------------------------

def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child and its children, stdout) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} ... failed (exit {done.returncode}); see {log}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout + done.stderr


def run_ddranking(python: Path, config: Path, syn: Path, work: Path, seed: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    script = work / "run_ddranking.py"
    script.write_text(RUN_DDRANKING)
    env = dict(os.environ)
    wall, cpu, out = timed([str(python), str(script), str(config), str(syn), str(work), str(seed)], env,
                           work / "log.txt")
    result = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    accs: dict[str, list[float]] = {"syn": [], "real": [], "random": []}
    for line in out.splitlines():
        for key, marker in (("syn", "Syn data hard label acc: "), ("real", "Full data hard label acc: "),
                            ("random", "Random data hard label acc: ")):
            if marker in line:
                accs[key].append(float(line.split(marker)[1].rstrip("%").strip()) / 100.0)
    return {"wall": wall, "cpu": cpu, "result": result, "acc": accs}


def run_ddr(config: Path, syn: Path, work: Path, seed: int, device: str) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "DDR_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "ddr", "eval", str(syn), "--ddranking-config", str(config), "--seed", str(seed),
               "--no-job-cache", "--no-progress", "--json", "--out", str(work / "runs")]
    wall, cpu, out = timed(command, env, work / "log.txt")
    record = json.loads(out[out.index("{"):out.rindex("}") + 1])
    accs = {"syn": record["acc_syn_hard"]["values"], "real": record["acc_real_hard"]["values"],
            "random": record["acc_rdm_any"]["values"]}
    return {"wall": wall, "cpu": cpu, "result": record["ddranking"]["result"], "acc": accs,
            "ddranking_lrs": record["ddranking_lrs"]["mean"], "ddrs": record["ddrs"]["mean"]}


def versions(python: Path) -> dict[str, str]:
    import torch

    import ddr

    code = "import importlib.metadata as m, torch; print(m.version('ddranking'), torch.__version__)"
    ref = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"ddr": getattr(ddr, "__version__", "?"), "torch (ddr)": torch.__version__, "ddranking": ref[0],
            "torch (ddranking)": ref[1], "python": platform.python_version(), "cpus": str(os.cpu_count())}


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 epochs, 1 run, IPC 10, 2 rounds (< 10 min, 2 cores)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both tools)")
    parser.add_argument("--epochs", type=int, default=None, help="num_epochs (default 1000; --quick 10)")
    parser.add_argument("--num-eval", type=int, default=None, help="num_eval (default 5; --quick 1)")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=None, help="A B rounds (default 3; --quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"DD-Ranking's environment ({DEFAULT_VENV})")
    parser.add_argument("--work", type=Path, default=DEFAULT_VENV.parent / "speed_vs_ddranking-work",
                        help="scratch folder: data, logs, records (emptied first)")
    parser.add_argument("--summary", type=Path, default=ROOT / "benchmarks" / "results" / "speed_vs_ddranking.json",
                        help="where the summary JSON goes")
    args = parser.parse_args(argv)
    epochs = args.epochs or (10 if args.quick else 1000)
    num_eval = args.num_eval or (1 if args.quick else 5)
    rounds = args.rounds or (2 if args.quick else 3)
    train_per_class, test_per_class = (50, 20) if args.quick else (500, 100)

    python = ensure_venv(args.venv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    data = make_cifar10(work / "data", train_per_class, test_per_class, args.seed)
    syn = make_synthetic_set(data, work / "syn", args.ipc)
    config = write_config(work / "config.yaml", data=data, ipc=args.ipc, epochs=epochs, num_eval=num_eval,
                          device=args.device)
    info = versions(python)
    print(f"device {args.device}; {info}; CIFAR-10-format data {train_per_class}/{test_per_class} per class; "
          f"IPC {args.ipc}, {epochs} epochs, num_eval {num_eval}, {rounds} rounds", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"DD-Ranking 0.2.0": [], "ddr ddranking-hard": []}
    for r in range(rounds):  # A B A B
        a = run_ddranking(python, config, syn, work / f"ddranking-{r}", args.seed)
        runs["DD-Ranking 0.2.0"].append(a)
        print(f"round {r + 1}: DD-Ranking wall {a['wall']:.1f} s, CPU {a['cpu']:.1f} s", flush=True)
        b = run_ddr(config, syn, work / f"ddr-{r}", args.seed, args.device)
        runs["ddr ddranking-hard"].append(b)
        print(f"round {r + 1}: ddr        wall {b['wall']:.1f} s, CPU {b['cpu']:.1f} s", flush=True)

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    ref, ours = "DD-Ranking 0.2.0", "ddr ddranking-hard"
    rows = [["tool", "wall (s, median)", "CPU (s, median)", "per round (wall)"]]
    for name in runs:
        rows.append([name, f"{median(name, 'wall'):.1f}", f"{median(name, 'cpu'):.1f}",
                     ", ".join(f"{run['wall']:.1f}" for run in runs[name])])
    print("\n" + table(rows))
    print(f"\nDD-Ranking / ddr: wall {median(ref, 'wall') / median(ours, 'wall'):.2f}x, "
          f"CPU {median(ref, 'cpu') / median(ours, 'cpu'):.2f}x")
    rows = [["tool", "round", "acc syn-hard", "acc real-hard", "acc random"]]
    for name in runs:
        for r, run in enumerate(runs[name], start=1):
            rows.append([name, str(r), *(" ".join(f"{v:.4f}" for v in run["acc"][k]) for k in ("syn", "real", "random"))])
    print("\naccuracies (fractions, per evaluation run)\n" + table(rows))
    rows = [["tool", "round", "HLR", "IOR", "LRS as 0.2.0 (percent)", "DDRS (fractions)"]]
    for r, run in enumerate(runs[ref], start=1):
        res = run["result"]
        rows.append([ref, str(r), f"{res['hard_label_recovery_mean'] / 100:.4f}",
                     f"{res['improvement_over_random_mean'] / 100:.4f}", f"{res['label_robust_score_mean']:.4f}", "—"])
    for r, run in enumerate(runs[ours], start=1):
        res = run["result"]
        rows.append([ours, str(r), f"{res['hard_label_recovery_mean']:.4f}", f"{res['improvement_over_random_mean']:.4f}",
                     f"{run['ddranking_lrs']:.4f}", f"{run['ddrs']:.4f}"])
    print("\nscores (HLR/IOR as fractions)\n" + table(rows))
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps({"command": " ".join(["python", "benchmarks/speed_vs_ddranking.py",
                                                             *(argv if argv is not None else sys.argv[1:])]),
                                        "versions": info, "device": args.device, "epochs": epochs,
                                        "num_eval": num_eval, "ipc": args.ipc, "data_per_class": [train_per_class,
                                                                                                   test_per_class],
                                        "runs": runs}, indent=2) + "\n")
    print(f"\nraw: {args.summary}; logs and records: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
