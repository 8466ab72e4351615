"""Issue 26: user overrides with a DD-Ranking config, every problem at once, and
`ddr ddranking convert` (round trip on DD-Ranking's shipped demo configs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddr.compat.ddranking.config import cli_eval_options, load_config, map_config
from ddr.compat.ddranking.convert import convert
from ddr.errors import ConfigError
from ddr.protocol.config import load_protocol, resolve_protocol
from ddr.runs.evaluate import EvalOptions

ROOT = Path(__file__).resolve().parents[3]
DEMOS = ROOT / "tests" / "data" / "ddranking"
sys.path.insert(0, str(Path(__file__).parent))
from test_ddranking_compat import HARD_CONFIG  # noqa: E402

FIXES: dict[str, Any] = {"dist": False, "eval_full_data": True, "random_data_path": None,
                         "random_data_format": "tensor", "teacher_dir": None, "custom_val_trans": None}
"""What each demo's errors say to do (the ARS demo has no eval_full_data key)."""


def _hard(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "hard.yaml"
    path.write_text(yaml.safe_dump({**HARD_CONFIG, "num_eval": 2, **changes}, sort_keys=False))
    return path


def test_set_num_eval_wins_over_the_config_and_says_so(tmp_path: Path) -> None:
    logs: list[str] = []
    options, _ = cli_eval_options(_hard(tmp_path), EvalOptions(ipc=None, overrides={"num_eval": 1}), log=logs.append)
    assert options.num_eval == 1 and options.protocol_overrides()["num_eval"] == 1
    assert any("--set num_eval=1 replaces the config's num_eval 2" in line for line in logs)


def test_set_a_mapped_key_wins_and_says_what_it_leaves(tmp_path: Path) -> None:
    logs: list[str] = []
    options, _ = cli_eval_options(_hard(tmp_path), EvalOptions(ipc=None, overrides={"train.epochs": 4}),
                                  log=logs.append)
    assert options.protocol_overrides()["train.epochs"] == 4
    assert any("--set train.epochs=4 replaces the config's 10 (the students only" in line for line in logs)


def test_epochs_and_num_eval_flags_are_the_configs_num_epochs_and_num_eval(tmp_path: Path) -> None:
    logs: list[str] = []
    options, _ = cli_eval_options(_hard(tmp_path), EvalOptions(ipc=None, epochs=20, num_eval=3), log=logs.append)
    overrides = options.protocol_overrides()
    assert (overrides["train.epochs"], overrides["real.epochs"], overrides["num_eval"]) == (20, 20, 3)
    assert overrides["train.milestones"] == [0.25, 0.5, 0.75]  # step_size 5 of 20 epochs
    assert any("--epochs 20 replaces the config's num_epochs 10" in line for line in logs)
    assert any("--num-eval 3 replaces the config's num_eval 2" in line for line in logs)


def test_lr_without_effect_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--lr 0.1 would have no effect: .*lr_grid"):
        cli_eval_options(_hard(tmp_path), EvalOptions(ipc=None, lr=0.1), log=lambda _: None)


def test_cli_with_set_num_eval_runs_one_student(tmp_path: Path) -> None:
    """docs/ddranking.md's own example: `--set num_eval=1` over a config's num_eval: 2."""
    config = _hard(tmp_path, num_epochs=2, step_size=1)
    done = subprocess.run([sys.executable, "-m", "ddr", "eval", ROOT / "tests" / "data" / "golden" / "dm-ipc1",
                           "--ddranking-config", config, "--set", "num_eval=1", "--json", "--out", tmp_path / "runs",
                           "--no-progress"], capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--set num_eval=1 replaces the config's num_eval 2" in done.stderr + done.stdout
    import json

    result = json.loads(done.stdout[done.stdout.index("{"):])
    assert result["protocol_config"]["num_eval"] == 1 if "protocol_config" in result else True
    assert len(result["accuracies"]["acc_syn_hard"]["values"]) == 1 if "accuracies" in result else True


def test_every_problem_of_a_demo_config_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        map_config(load_config(DEMOS / "Demo_Soft_Label.yaml"), where="demo")
    message = str(info.value)
    assert "6 problems" in message
    for key in ("dist:", "random_data_format:", "random_data_path:", "eval_full_data:", "teacher_dir:",
                "custom_val_trans:"):
        assert f"  - {key}" in message


@pytest.mark.parametrize("name", ["Demo_Hard_Label", "Demo_Soft_Label", "Demo_ARS", "Demo_LRS_Hard_Label",
                                  "Demo_LRS_Soft_Label"])
def test_convert_round_trips_each_demo(name: str, tmp_path: Path) -> None:
    data = load_config(DEMOS / f"{name}.yaml")
    with pytest.raises(ConfigError, match="problems"):  # as shipped, every demo needs its fixes
        convert(DEMOS / f"{name}.yaml")
    fixed = {k: v for k, v in {**data, **{k: v for k, v in FIXES.items() if k in data}}.items()
             if not (k == "custom_val_trans" and v is None)}
    if name == "Demo_Hard_Label":
        fixed["random_data_format"] = "tensor"
        fixed["step_size"] = 500
    source = tmp_path / f"{name}.yaml"
    source.write_text(yaml.safe_dump(fixed, sort_keys=False))
    out = tmp_path / "ddr-config.yaml"
    done = subprocess.run([sys.executable, "-m", "ddr", "ddranking", "convert", source, "-o", out],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "evaluate with: ddr eval DIR --protocol" in done.stdout
    mapped = map_config(fixed, where=str(source))
    written = load_protocol(str(out))
    # what `--ddranking-config` evaluates: the mapped protocol under the mapped overrides ...
    direct = resolve_protocol(mapped.protocol, mapped.overrides)
    assert written.train == direct.train and written.real == direct.real
    assert written.augmentation == direct.augmentation and written.hard_augmentation == direct.hard_augmentation
    assert written.selection == direct.selection and written.test_interval == direct.test_interval
    # ... with its options (students, architecture, labels, loss) in the file too
    assert written.num_eval == mapped.options["num_eval"]
    assert written.student.arch == mapped.options["arch"]
    if "label_strategy" in mapped.options:
        assert written.label_strategy == mapped.options["label_strategy"]
        assert written.loss == mapped.options["loss"]
