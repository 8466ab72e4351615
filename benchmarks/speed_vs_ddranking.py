"""DD-Ranking 0.2.0's hard-label evaluation and ddr's `ddranking-hard` side by side: time and numbers.

Four synthetic sets ("methods") are built from one generated CIFAR-10-format dataset, all
deterministic: ``first`` (the first IPC training images of each class), ``random`` (a random
subset, another seed), ``class-mean`` (the images nearest each class mean in pixel space) and
``noisy`` (``first`` plus Gaussian pixel noise). Both tools read the same files, the same
DD-Ranking config file and run on the same device, interleaved A B A B (set by set), each
invocation a fresh process:

* DD-Ranking: one ``LabelRobustScoreHard.compute_metrics`` per set, as a DD-Ranking user runs it
  (its own virtual environment, created on first use and reused: ``ddranking==0.2.0`` and the same
  torch as ddr's), with the minimal patches it needs (docs/ddranking.md):

  * W1  torchvision md5-checks every CIFAR file (DD-Ranking passes download=True); the generated
        files are not the official ones, so the check is switched off;
  * W2  LabelRobustScoreHard appends each run's LRS twice and then fails in pandas while saving
        its CSV, after all training: the save is made tolerant (the duplicate row padded);
  * W3  every evaluation run is seeded from the clock: run i is seeded ``--seed`` + i.

* ddr: ``ddr eval SET --ddranking-config CONFIG`` per set on ONE cache that starts empty, so the
  first set is a cold evaluation and the later ones reuse the real-data model and the random
  baseline (docs/ddranking.md §2: ddr's structural saving).

Printed, in order: (1) the first set alone (one cold evaluation each): times, the per-evaluation
accuracies and scores of both tools, mean ± sample std, and whether the means agree within noise;
(2) the four-set comparison: total times, the ratio, per-set scores side by side; (3) ddr's own
``hard`` protocol on the same four sets and the same cache (last epoch, no LR search: a different
protocol, not the same result). Times: wall clock of each process and its CPU time (user + sys of
the child and its children).

Agreement: for each quantity, Δ = mean(DD-Ranking) − mean(ddr) and its combined standard error
SE = sqrt(s₁²/n₁ + s₂²/n₂ + c²·s_real²) (sample std); t = Δ / SE is Welch's statistic; "agree"
means |Δ| ≤ 2·SE. The last term is ddr's real-data model: ONE cached model shared by all of ddr's
evaluations, so its draw shifts every one of ddr's HLR/DDRS values alike, a variance their own
spread cannot show. It is estimated by DD-Ranking's spread of real-data accuracies (s_real, one
model per evaluation there) with c = 1 for the real-data accuracy and HLR, c = (1 − w)·e^ᾱ/(e − e⁻¹)
for DDRS (its slope in the real-data accuracy at ddr's mean ᾱ, w = 0.5) and c = 0 otherwise.

    python benchmarks/speed_vs_ddranking.py --quick          # 10 epochs, 3 evaluations, IPC 1 (aimed at < 10 min on 2 idle cores)
    python benchmarks/speed_vs_ddranking.py --device cuda    # 1000 epochs, 5 evaluations, IPC 10, on a GPU
    python benchmarks/speed_vs_ddranking.py --quick --ddr-only   # ddr's blocks only (no DD-Ranking environment)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
DDRANKING = "ddranking==0.2.0"
DEFAULT_VENV = Path.home() / ".cache" / "ddr" / "ddranking-0.2.0-venv"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # DD-Ranking's (and ddr's) CIFAR-10 constants
REF, DDR, HARD = "DD-Ranking 0.2.0", "ddr ddranking-hard", "ddr hard"
QUANTITIES = (("acc_syn_hard", "acc syn-hard"), ("acc_real_hard", "acc real-hard"), ("acc_rdm_any", "acc random"),
              ("hlr", "HLR"), ("ior", "IOR"), ("ddrs", "DDRS (fractions)"), ("ddranking_lrs", "LRS as 0.2.0"))
NOISE = 0.25  # the `noisy` set's Gaussian noise, in pixel units of [0, 1]

RUN_DDRANKING = r'''
import itertools, json, sys, time
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
runs = itertools.count(int(sys.argv[4]))
hard_label.set_seed = lambda s=None: misc.set_seed(next(runs))     # W3: run i gets seed + i
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


def load_train(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """The generated training split: images [N, 3, 32, 32] in [0, 1] (float64) and labels [N]."""
    xs, ys = [], []
    for i in range(1, 6):
        batch = pickle.loads((data / "cifar-10-batches-py" / f"data_batch_{i}").read_bytes())
        xs.append(batch["data"])
        ys.extend(batch["labels"])
    return np.concatenate(xs).reshape(-1, 3, 32, 32) / 255.0, np.asarray(ys)


# Each builder returns ``ipc`` images of one class (from that class's images, in file order).
def _first(images: np.ndarray, ipc: int, rng: np.random.Generator) -> np.ndarray:
    return images[:ipc]


def _random(images: np.ndarray, ipc: int, rng: np.random.Generator) -> np.ndarray:
    return images[np.sort(rng.choice(len(images), size=ipc, replace=False))]


def _class_mean(images: np.ndarray, ipc: int, rng: np.random.Generator) -> np.ndarray:
    distance = ((images - images.mean(axis=0)) ** 2).reshape(len(images), -1).sum(axis=1)
    return images[np.argsort(distance, kind="stable")[:ipc]]


def _noisy(images: np.ndarray, ipc: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(images[:ipc] + rng.normal(0.0, NOISE, size=images[:ipc].shape), 0.0, 1.0)


SET_BUILDERS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "first": _first, "random": _random, "class-mean": _class_mean, "noisy": _noisy}


def make_synthetic_sets(data: Path, out: Path, ipc: int, seed: int) -> dict[str, Path]:
    """One ``images.pt`` folder per builder: ``10 * ipc`` images, class-major, normalised like CIFAR-10.
    ``random`` and ``noisy`` draw from ``seed + 1``, never the seed both tools evaluate with."""
    import torch

    images, labels = load_train(data)
    sets = {}
    for name, build in SET_BUILDERS.items():
        rng = np.random.default_rng(seed + 1)
        chosen = np.concatenate([build(images[labels == c], ipc, rng) for c in range(10)])
        tensor = torch.tensor(chosen, dtype=torch.float32)
        tensor = (tensor - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(tensor.contiguous(), folder / "images.pt")
        sets[name] = folder
    return sets


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

def timed(command: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Wall seconds, CPU seconds (the child and its children), stdout + stderr and the 1-minute
    load average before and after, of one process."""
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} ... failed (exit {done.returncode}); see {log}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "load": [load_before, os.getloadavg()[0]], "output": done.stdout + done.stderr}


def scores(real: list[float], syn_hard: list[float], syn_any: list[float], rdm: list[float]) -> dict[str, Any]:
    """Per-evaluation HLR, IOR, DDRS and 0.2.0's LRS (with the accuracies) from accuracy fractions,
    by ddr's own score table: one code path for both tools' numbers."""
    from ddr.protocol.metrics import score_table

    return {k: v.to_dict() for k, v in score_table(real, syn_hard, syn_any, rdm, compat=True).items()}


def run_ddranking(python: Path, config: Path, syn: Path, work: Path, seed: int) -> dict[str, Any]:
    """One DD-Ranking invocation on one set: times, its result keys and the per-run accuracies of its log."""
    work.mkdir(parents=True, exist_ok=True)
    script = work / "run_ddranking.py"
    script.write_text(RUN_DDRANKING)
    run = timed([str(python), str(script), str(config), str(syn), str(work), str(seed)], dict(os.environ),
                work / "log.txt")
    out = run.pop("output")
    accs: dict[str, list[float]] = {"syn": [], "real": [], "random": []}
    for line in out.splitlines():
        for key, marker in (("syn", "Syn data hard label acc: "), ("real", "Full data hard label acc: "),
                            ("random", "Random data hard label acc: ")):
            if marker in line:
                accs[key].append(float(line.split(marker)[1].rstrip("%").strip()) / 100.0)
    reported = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    table = scores(accs["real"], accs["syn"], accs["syn"], accs["random"])
    if not math.isclose(table["ddranking_lrs"]["mean"], reported["label_robust_score_mean"], rel_tol=1e-3,
                        abs_tol=1e-4):
        print(f"warning: LRS recomputed from DD-Ranking's accuracies ({table['ddranking_lrs']['mean']:.4f}) "
              f"differs from its own ({reported['label_robust_score_mean']:.4f}); see {work / 'log.txt'}")
    return {**run, "reported": reported, "scores": table}


def ddr_runner(cache: Path, data: Path, device: str, seed: int) -> Callable[[list[str], Path, Path], dict[str, Any]]:
    """``ddr eval`` on one shared cache (and one data folder): a function of (protocol arguments,
    set folder, work folder) returning times, what the cache supplied and the per-student scores."""
    env = {**os.environ, "DDR_CACHE_DIR": str(cache), "DDR_DATA_DIR": str(data)}

    def run(protocol_args: list[str], syn: Path, work: Path) -> dict[str, Any]:
        work.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "ddr", "eval", str(syn), *protocol_args, "--device", device,
                   "--seed", str(seed), "--no-progress", "--json", "--out", str(work / "runs")]
        result = timed(command, env, work / "log.txt")
        out = result.pop("output")
        record = json.loads(out[out.index("{"):out.rindex("}") + 1])
        real = record["acc_real_hard"]["values"]
        table = scores(real, record["acc_syn_hard"]["values"], record["acc_syn_any"]["values"],
                       record["acc_rdm_any"]["values"])
        reused = ", ".join(f"{count} {role}" for role, count in record.get("reused_jobs", {}).items())
        return {**result, "scores": table, "reused": reused}

    return run


def ddranking_hard_args(config: Path) -> list[str]:
    return ["--ddranking-config", str(config)]


def hard_args(*, ipc: int, epochs: int, num_eval: int) -> list[str]:
    """ddr's own `hard` protocol at the benchmark's size (its real-data model trained `epochs` too)."""
    return ["--dataset", "cifar10", "--ipc", str(ipc), "--protocol", "hard", "--epochs", str(epochs),
            "--num-eval", str(num_eval), "--set", f"real.epochs={epochs}"]


def versions(python: Path | None) -> dict[str, str]:
    import torch

    import ddr

    info = {"ddr": getattr(ddr, "__version__", "?"), "torch (ddr)": torch.__version__,
            "python": platform.python_version(), "cpus": str(os.cpu_count()), "cpu": cpu_model()}
    if python is not None:
        code = "import importlib.metadata as m, torch; print(m.version('ddranking'), torch.__version__)"
        ref = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
        info.update({"ddranking": ref[0], "torch (ddranking)": ref[1]})
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# -- the steps ---------------------------------------------------------------------------------

def compare_sets(sets: dict[str, Path], python: Path | None, config: Path, work: Path, seed: int,
                 run_ddr: Callable[[list[str], Path, Path], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per set, interleaved: DD-Ranking (a fresh invocation) then ddr `ddranking-hard` (the shared cache)."""
    results: dict[str, dict[str, Any]] = {}
    for name, syn in sets.items():
        results[name] = {}
        if python is not None:
            results[name][REF] = run_ddranking(python, config, syn, work / "ddranking" / name, seed)
            progress(name, REF, results[name][REF])
        results[name][DDR] = run_ddr(ddranking_hard_args(config), syn, work / "ddr" / name)
        progress(name, DDR, results[name][DDR])
    return results


def hard_protocol(sets: dict[str, Path], work: Path, protocol_args: list[str],
                  run_ddr: Callable[[list[str], Path, Path], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ddr's `hard` protocol on every set, on the same cache (its own reference, trained once)."""
    results = {}
    for name, syn in sets.items():
        results[name] = {HARD: run_ddr(protocol_args, syn, work / "ddr-hard" / name)}
        progress(name, HARD, results[name][HARD])
    return results


def progress(name: str, tool: str, run: dict[str, Any]) -> None:
    reused = f"; reused from ddr's cache: {run['reused']}" if run.get("reused") else ""
    print(f"  {name:<10} {tool:<18} wall {run['wall']:6.1f} s, CPU {run['cpu']:6.1f} s, "
          f"load {run['load'][0]:.1f}→{run['load'][1]:.1f}{reused}", flush=True)


# -- statistics and printing -------------------------------------------------------------------

def agreement(a: dict[str, Any], b: dict[str, Any], shared_sd: float = 0.0) -> dict[str, float | bool]:
    """Δ = mean(a) − mean(b), SE = sqrt(s_a²/n_a + s_b²/n_b + shared_sd²) (sample std, ddof 1;
    n = 1 adds no spread of its own), Welch's t = Δ / SE and whether |Δ| ≤ 2·SE. ``shared_sd``:
    the standard deviation of a draw common to all of b's values (module docstring)."""
    diff = a["mean"] - b["mean"]
    se = math.sqrt(sum(s["std"] ** 2 / s["n"] for s in (a, b) if s["n"] > 1) + shared_sd ** 2)
    t = diff / se if se > 0 else (0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff))
    return {"diff": diff, "se": se, "t": t, "agree": abs(diff) <= 2 * se + 1e-12}


def real_model_sd(per_set: dict[str, Any], key: str) -> float:
    """How much ddr's one cached real-data model can shift the mean of ``key``: c·s_real (module
    docstring), 0 when ddr trained a real-data model per evaluation or DD-Ranking has < 2."""
    real_ref, real_ddr = per_set[REF]["scores"]["acc_real_hard"], per_set[DDR]["scores"]["acc_real_hard"]
    if real_ddr["n"] > 1 or real_ref["n"] < 2:
        return 0.0
    if key in ("acc_real_hard", "hlr"):
        slope = 1.0
    elif key == "ddrs":  # DDRS = (e^α − e^-1)/(e − e^-1), α = w·IOR − (1 − w)·HLR, HLR = real − syn
        span = math.e - math.exp(-1.0)
        exp_alpha = per_set[DDR]["scores"]["ddrs"]["mean"] * span + math.exp(-1.0)
        slope = 0.5 * exp_alpha / span
    else:
        return 0.0
    return slope * real_ref["std"]


def number(value: float, key: str) -> str:
    """Fractions to 3 decimals; 0.2.0's LRS (percent inside exp: -0.1565 up to ~1e43) to 4 digits."""
    return f"{value:.4g}" if key == "ddranking_lrs" else f"{value:.3f}"


def agreement_cells(per_set: dict[str, Any], key: str) -> list[str]:
    """Δ, SE, t and agree of DD-Ranking against ddr `ddranking-hard` for one quantity of one set."""
    a = agreement(per_set[REF]["scores"][key], per_set[DDR]["scores"][key], real_model_sd(per_set, key))
    return [number(a["diff"], key), number(a["se"], key), f"{a['t']:+.2f}", "yes" if a["agree"] else "NO"]


def mean_std(summary: dict[str, Any], key: str) -> str:
    return f"{number(summary['mean'], key)} ± {number(summary['std'], key)}"


def values(summary: dict[str, Any], key: str) -> str:
    return " ".join(number(v, key) for v in summary["values"])


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def total(results: dict[str, dict[str, Any]], tool: str, key: str) -> float:
    return sum(per_set[tool][key] for per_set in results.values())


def ratio_line(label: str, results: dict[str, dict[str, Any]], ref: str, ours: str) -> str:
    return (f"{label}{ref} / {ours}: wall {total(results, ref, 'wall') / total(results, ours, 'wall'):.2f}x, "
            f"CPU {total(results, ref, 'cpu') / total(results, ours, 'cpu'):.2f}x")


def print_single(name: str, per_set: dict[str, Any]) -> None:
    """Step 1: one set, one cold evaluation per tool: times, per-evaluation numbers, agreement."""
    print(f"\n## 1. one set ({name}), one cold evaluation each")
    print(table([["tool", "wall (s)", "CPU (s)"],
                 *([tool, f"{run['wall']:.1f}", f"{run['cpu']:.1f}"] for tool, run in per_set.items())]))
    if REF in per_set:
        print(ratio_line("\n", {name: per_set}, REF, DDR))
    both = REF in per_set
    rows = [["quantity", *(f"{tool} {column}" for tool in per_set for column in ("per evaluation", "mean ± std")),
             *(["Δ", "SE", "t", "agree"] if both else [])]]
    for key, label in QUANTITIES:
        rows.append([label, *(cell for run in per_set.values()
                              for cell in (values(run["scores"][key], key), mean_std(run["scores"][key], key))),
                     *(agreement_cells(per_set, key) if both else [])])
    print("\nfractions; LRS is 0.2.0's percent arithmetic; std is the sample std; agree: |Δ| ≤ 2·SE, "
          "SE = sqrt(s1²/n1 + s2²/n2 + (c·s_real)²) (ddr's one real-data model; see the docstring), "
          "t = Δ/SE (Welch)\n" + table(rows))


def print_sets(title: str, results: dict[str, dict[str, Any]], note: str = "", lrs: bool = True) -> None:
    """Steps 2 and 3: every set, every tool: time, accuracies and scores side by side (and the
    agreement of the DDRS and the syn-hard accuracy when both tools ran)."""
    tools = list(next(iter(results.values())))
    print(f"\n## {title}" + (f"\n{note}" if note else ""))
    keys = [k for k, _ in QUANTITIES if lrs or k != "ddranking_lrs"]
    rows = [["set", "tool", "wall (s)", "CPU (s)", *(label for k, label in QUANTITIES if k in keys)]]
    for name, per_set in results.items():
        for tool in tools:
            run, s = per_set[tool], per_set[tool]["scores"]
            rows.append([name, tool, f"{run['wall']:.1f}", f"{run['cpu']:.1f}",
                         *(mean_std(s[k], k) for k in keys)])
    for tool in tools:
        rows.append(["total", tool, f"{total(results, tool, 'wall'):.1f}", f"{total(results, tool, 'cpu'):.1f}",
                     *[""] * len(keys)])
    print(table(rows))
    if REF in tools:
        print(ratio_line("\n", results, REF, DDR))
        rows = [["set", *(f"{label} {column}" for label in ("DDRS", "acc syn-hard") for column in ("Δ", "SE", "t", "agree"))]]
        rows += [[name, *agreement_cells(per_set, "ddrs"), *agreement_cells(per_set, "acc_syn_hard")]
                 for name, per_set in results.items()]
        print("\nDD-Ranking − ddr, per set (agree: |Δ| ≤ 2·SE)\n" + table(rows))


def print_hard(hard: dict[str, dict[str, Any]], compared: dict[str, dict[str, Any]]) -> None:
    print_sets("3. ddr's own `hard` protocol on the same four sets and cache", hard,
               "(last-epoch accuracy, no LR search, a held-out validation split, its own real-data recipe: "
               "a different protocol, NOT the same result as the two above)", lrs=False)
    for tool in (t for t in (REF, DDR) if t in next(iter(compared.values()))):
        print(f"{tool} (four sets, step 2) / ddr hard: wall "
              f"{total(compared, tool, 'wall') / total(hard, HARD, 'wall'):.2f}x, "
              f"CPU {total(compared, tool, 'cpu') / total(hard, HARD, 'cpu'):.2f}x")


def load_range(*blocks: dict[str, dict[str, Any]]) -> tuple[float, float]:
    loads = [x for block in blocks for per_set in block.values() for run in per_set.values() for x in run["load"]]
    return min(loads), max(loads)


# -- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="10 epochs, 3 evaluations, IPC 1, 20/10 images per class (aimed at < 10 min on 2 idle cores)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both tools)")
    parser.add_argument("--epochs", type=int, default=None, help="num_epochs (default 1000; --quick 10)")
    parser.add_argument("--num-eval", type=int, default=None, help="num_eval, at least 3 (default 5; --quick 3)")
    parser.add_argument("--ipc", type=int, default=None, help="images per class (default 10; --quick 1)")
    parser.add_argument("--per-class", type=int, nargs=2, default=None, metavar=("TRAIN", "TEST"),
                        help="generated images per class (default 500 100; --quick 20 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ddr-only", action="store_true", help="skip DD-Ranking (no environment needed)")
    parser.add_argument("--sets", nargs="+", choices=list(SET_BUILDERS), default=list(SET_BUILDERS),
                        help="which synthetic sets (default: all four; one set is step 1's cold comparison alone)")
    parser.add_argument("--skip-hard", action="store_true", help="leave out step 3 (ddr's own `hard` protocol)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"DD-Ranking's environment ({DEFAULT_VENV})")
    parser.add_argument("--work", type=Path, default=DEFAULT_VENV.parent / "speed_vs_ddranking-work",
                        help="scratch folder: data, logs, records, ddr's cache (emptied first)")
    parser.add_argument("--summary", type=Path, default=ROOT / "benchmarks" / "results" / "speed_vs_ddranking.json",
                        help="where the summary JSON goes")
    args = parser.parse_args(argv)
    epochs = args.epochs or (10 if args.quick else 1000)
    num_eval = args.num_eval or (3 if args.quick else 5)
    ipc = args.ipc or (1 if args.quick else 10)
    train_per_class, test_per_class = args.per_class or ((20, 10) if args.quick else (500, 100))
    if num_eval < 3:
        parser.error("--num-eval must be at least 3: fewer evaluations cannot tell a disagreement from chance")
    if epochs % 10:
        parser.error("--epochs must be a multiple of 10: DD-Ranking's hard evaluator tests every 10 epochs only")

    python = None if args.ddr_only else ensure_venv(args.venv)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    data = make_cifar10(work / "data", train_per_class, test_per_class, args.seed)
    sets = {name: folder for name, folder in make_synthetic_sets(data, work / "sets", ipc, args.seed).items()
            if name in args.sets}
    config = write_config(work / "config.yaml", data=data, ipc=ipc, epochs=epochs, num_eval=num_eval,
                          device=args.device)
    info = versions(python)
    print(f"device {args.device}; {info}; CIFAR-10-format data {train_per_class}/{test_per_class} per class; "
          f"IPC {ipc}, {epochs} epochs, num_eval {num_eval}; sets {', '.join(sets)}", flush=True)
    run_ddr = ddr_runner(work / "ddr-cache", data, args.device, args.seed)
    started = time.perf_counter()
    compared = compare_sets(sets, python, config, work, args.seed, run_ddr)
    hard = {} if args.skip_hard else hard_protocol(sets, work, hard_args(ipc=ipc, epochs=epochs, num_eval=num_eval),
                                                   run_ddr)
    seconds = time.perf_counter() - started

    first = next(iter(sets))
    print_single(first, compared[first])
    print_sets("2. four sets: DD-Ranking once per set; ddr per set on one shared cache", compared)
    if hard:
        print_hard(hard, compared)
    low, high = load_range(compared, hard)
    print(f"\nall timed processes: {seconds:.0f} s wall; 1-minute load average {low:.1f}–{high:.1f} "
          f"on {info['cpus']} CPUs ({info['cpu']})")
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "benchmarks/speed_vs_ddranking.py", *(argv if argv is not None else sys.argv[1:])])
    args.summary.write_text(json.dumps({
        "command": command, "versions": info, "device": args.device, "epochs": epochs, "num_eval": num_eval,
        "ipc": ipc, "data_per_class": [train_per_class, test_per_class], "seconds": seconds,
        "load_average_1min": [low, high], "four_sets": compared, "hard": hard}, indent=2) + "\n")
    print(f"\nraw: {args.summary}; logs, records and ddr's cache: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
