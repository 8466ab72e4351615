"""One run id everywhere: the id `ddr results` shows ends the record folder's name and finds the run
in `ddr show` and `ddr compare`; an evaluated external set is labelled by what it is, as external.

Two `ddr eval` runs of one saved set (digits, 1 student of 2 epochs, a 1-epoch reference).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ddr.method.distilled import DistilledSet
from ddr.store.formats import save_distilled

FAST = ["--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1", "--no-progress"]


def test_eval_then_compare_by_the_ids_ddr_results_shows(ddr_cli: Any, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "runs"
    env = {"DDR_CACHE_DIR": str(cache)}  # the results database: its results.sqlite
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(10, 1, 16, 16, generator=generator)
    save_distilled(DistilledSet(images=images, labels=torch.arange(10), meta={"method": "dm"}), tmp_path / "dm-set")

    for seed in ("0", "1"):
        proc = ddr_cli("eval", str(tmp_path / "dm-set"), *FAST, "--seed", seed, "--out", str(out),
                       env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr

    listing = ddr_cli("results", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert len(rows) == 2
    for row in rows:  # labelled by what the set is, marked as external; never eval:NAME
        assert row["method"] == "dm (external set)"
        folder = Path(row["record_dir"])
        assert folder.name.endswith("-" + row["run_id"][:10])  # the folder suffix is the run id
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["run_id"] == row["run_id"]

    table = ddr_cli("results", env=env)
    assert table.returncode == 0, table.stderr
    shown = [row["run_id"][:10] for row in rows]
    assert all(run_id in table.stdout for run_id in shown) and "dm (external set)" in table.stdout

    compare = ddr_cli("compare", shown[0], shown[1], env=env)
    assert compare.returncode == 0, compare.stderr
    assert shown[0] in compare.stdout and shown[1] in compare.stdout

    show = ddr_cli("show", shown[0], env=env)
    assert show.returncode == 0, show.stderr
    assert f"run id {shown[0]}" in show.stdout
