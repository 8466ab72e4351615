"""The recorded outputs of a fixed set of runs are reproduced bit for bit.

tests/data/golden/record.py recorded them on the commit before the architecture step; each
command names every method parameter and protocol setting it depends on, so only a change of
behaviour (not of a default) can move these numbers. Timings, paths and cache flags are not
compared; every accuracy, score, per-student value, seed, learning rate and the distilled set's
hash are, exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden"
COMMANDS: dict[str, list[str]] = json.loads((GOLDEN / "commands.json").read_text())
SCORES = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
FIELDS = ("distilled_sha256", "seed", "protocol", "protocol_version", "test_set_selection", "method", "method_params")


def compared(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``--json`` result that must not change."""
    out: dict[str, Any] = {key: record[key] for key in SCORES}
    out.update({key: record.get(key) for key in FIELDS})
    out["label_strategy"] = record["run_spec"]["label_strategy"]
    return out


@pytest.fixture(scope="module")
def golden_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for all golden runs, as when they were recorded (the real-data model trains once)."""
    return tmp_path_factory.mktemp("golden-cache")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_recorded_run_is_reproduced(name: str, golden_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(golden_cache))
    argv = [*COMMANDS[name], "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "ddr", *argv], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=1800, check=False)
    assert done.returncode == 0, done.stderr
    expected = json.loads((GOLDEN / "outputs" / f"{name}.json").read_text())
    assert compared(json.loads(done.stdout)) == compared(expected)
