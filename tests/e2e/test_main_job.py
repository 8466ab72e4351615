"""The README's main job, exactly as a user types it: ``ddr run --method dm`` with no other option
(digits, IPC 1, the digits protocol, 5 students), on an empty cache, then the other methods at
full defaults (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def ddr_run_json(method: str, cache: Path, cwd: Path) -> dict:
    env = {**os.environ, "DDR_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "ddr", "run", "--method", method, "--json", "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_ddr_run_dm_with_defaults(tmp_path: Path) -> None:
    result = ddr_run_json("dm", tmp_path / "cache", tmp_path)
    assert result["protocol"] == "digits" and result["run_spec"]["ipc"] == 1
    assert result["acc_syn_hard"]["n"] == 5 and len(result["ddrs"]["values"]) == 5
    assert result["real_cached"] is False  # an empty cache: the real-data reference was trained once
    assert result["acc_real_hard"]["mean"] >= 0.97
    assert 0.55 <= result["acc_rdm_any"]["mean"] <= 0.85  # docs/protocol.md §3: random IPC 1 ≈ 0.69 ± 0.04
    assert result["acc_syn_hard"]["mean"] >= result["acc_rdm_any"]["mean"] + 0.10
    assert result["hlr"]["mean"] == pytest.approx(result["acc_real_hard"]["mean"] - result["acc_syn_hard"]["mean"])
    assert 0.0 <= result["ddrs"]["mean"] <= 1.0
    assert Path(result["record_dir"], "metrics.json").is_file()
    assert result["budget"] == "reduced" and result["method_params"]["iterations"] == 50  # digits' budget
    again = ddr_run_json("dm", tmp_path / "cache", tmp_path)  # a rerun trains nothing
    assert again["distill_cached"] is True and again["reused_jobs"] == {"real": 1, "syn_hard": 5, "rdm_any": 5}
    assert again["ddrs"] == result["ddrs"]


@pytest.mark.slow
@pytest.mark.parametrize("method,margin", [("herding", 0.05), ("kcenter", 0.05), ("dc", 0.10), ("dsa", 0.10)])
def test_every_method_beats_random_at_full_defaults(method: str, margin: float, tmp_path_factory) -> None:
    cache = tmp_path_factory.getbasetemp() / "shared-cache"  # the real-data reference is trained once
    result = ddr_run_json(method, cache, tmp_path_factory.mktemp(method))
    assert result["acc_syn_hard"]["mean"] >= result["acc_rdm_any"]["mean"] + margin
