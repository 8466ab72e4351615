"""Record the golden run outputs that tests/test_golden.py reproduces.

Every command gives each method parameter and the protocol settings it depends on explicitly,
so changing a default never changes these numbers; only a change in behaviour does. The
outputs were recorded on the commit before the architecture step (9dfefa1); CPU kernels differ
in their last bits between machines, so on a new machine they were re-recorded from abd1fac
(which reproduced 9dfefa1's outputs bit for bit on the old one). Every later commit must
reproduce them bit for bit on the same kind of machine (CPU, 2 threads). ``machine.json`` names
that kind (CPU model, torch's CPU capability, torch version); tests/test_golden.py compares bit
for bit there and within a tolerance elsewhere.

    python tests/data/golden/record.py          # rewrites commands.json and outputs/*.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROTOCOL = ["--set", "train.epochs=20", "--set", "num_eval=2", "--set", "real.epochs=5",
            "--set", "validation_per_class=10", "--set", "selection=last", "--set", "train.lr=0.01",
            "--set", "train.batch_size=256", "--set", "metrics.w=0.5", "--seed", "0", "--no-progress", "--json"]
FEATURE = ["--set", "method.arch=null", "--set", "method.feature_epochs=2", "--set", "method.feature_lr=0.01",
           "--set", "method.feature_batch_size=256", "--set", "method.feature_augmentation=null",
           "--set", "method.embed_batch_size=512"]
MATCHING = ["--set", "method.iterations=3", "--set", "method.batch_real=8", "--set", "method.lr_img=0.1",
            "--set", "method.momentum_img=0.5", "--set", "method.lr_net=0.01", "--set", "method.batch_train=256",
            "--set", "method.metric=ours", "--set", "method.outer_loop=null", "--set", "method.inner_loop=null"]

COMMANDS: dict[str, list[str]] = {
    "random": ["run", "--method", "random", "--dataset", "digits", "--ipc", "1", "--protocol", "digits", *PROTOCOL],
    "herding": ["run", "--method", "herding", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
                *FEATURE, *PROTOCOL],
    "kcenter": ["run", "--method", "kcenter", "--dataset", "digits", "--ipc", "2", "--protocol", "digits",
                *FEATURE, *PROTOCOL],
    "dc": ["run", "--method", "dc", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
           *MATCHING, "--set", "method.init=noise", *PROTOCOL],
    "dsa": ["run", "--method", "dsa", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
            *MATCHING, "--set", "method.init=real", "--set", "method.augmentation_params={}", *PROTOCOL],
    "dm": ["run", "--method", "dm", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
           "--set", "method.iterations=5", "--set", "method.batch_real=16", "--set", "method.lr_img=1.0",
           "--set", "method.momentum_img=0.5", "--set", "method.init=real", "--set", "method.augmentation=dsa",
           "--set", "method.augmentation_params={}", *PROTOCOL],
    "eval": ["eval", "tests/data/golden/dm-ipc1", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
             *PROTOCOL],
    "soft": ["run", "--method", "random", "--dataset", "digits", "--ipc", "1", "--protocol", "soft",
             "--set", "train.epochs=10", "--set", "num_eval=2", "--set", "real.epochs=5",
             "--set", "validation_per_class=10", "--set", "selection=last", "--seed", "0", "--no-progress", "--json"],
    "ddranking": ["eval", "tests/data/golden/dm-ipc1", "--dataset", "digits", "--ipc", "1", "--protocol", "digits",
                  "--set", "selection=ddranking", "--set", "test_interval=5", "--set", "lr_grid=[0.005,0.01,0.05]",
                  "--set", "train.epochs=10", "--set", "num_eval=1", "--set", "real.epochs=5",
                  "--set", "validation_per_class=10", "--seed", "0", "--no-progress", "--json"],
}


def machine_kind() -> dict[str, str]:
    """What decides a CPU run's last bits: the CPU model (MKL picks kernels by vendor), the
    instruction set torch dispatches to, and torch's version."""
    import platform

    import torch

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def run(argv: list[str], cache: str) -> dict:
    env = {**os.environ, "DDR_CACHE_DIR": cache, "DDR_DISABLE_PLUGIN_AUTOLOAD": ""}
    done = subprocess.run([sys.executable, "-m", "ddr", *argv], capture_output=True, text=True, env=env,
                          cwd=HERE.parents[2], check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv}: exit {done.returncode}\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        saved = HERE / "dm-ipc1"
        if not saved.exists():  # the set `eval` and `ddranking` evaluate: DM, 5 iterations, committed
            run([*COMMANDS["dm"], "--save-distilled", str(saved), "--out", out], cache)
        (HERE / "outputs").mkdir(exist_ok=True)
        for name, argv in COMMANDS.items():
            result = run([*argv, "--out", out], cache)
            (HERE / "outputs" / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
            print(name, result["ddrs"]["mean"])
    (HERE / "commands.json").write_text(json.dumps(COMMANDS, indent=1) + "\n")
    (HERE / "machine.json").write_text(json.dumps(machine_kind(), indent=1) + "\n")


if __name__ == "__main__":
    main()
