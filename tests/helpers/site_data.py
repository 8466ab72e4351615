"""A small results database for the leaderboard-site and published-number tests: the real digits
records of ``tests/data/results`` plus synthetic CIFAR-10 IPC 10 runs of methods with published
numbers (dm, datm, random, rded), hard and soft labels, different storage.

Measured acc_syn_any (= 0.5 + IOR, :func:`helpers.results.make_metrics`) of the CIFAR-10 runs:
dm 0.51 (published 0.489 → +2.1 points), datm 0.66 (0.668 → −0.8), random 0.50 (0.310 → +19.0),
rded 0.70 (0.502, RDED's ConvNet number → +19.8).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from helpers.results import FIXTURES, make_metrics

KIB = 1024
CIFAR = {
    # method: (HLR per student, IOR per student, label strategy, storage bytes)
    "dm": ([0.30, 0.32], [0.01, 0.01], "hard", 30 * KIB),
    "datm": ([0.20, 0.22], [0.15, 0.17], "stored_soft", 70 * KIB),
    "random": ([0.40, 0.42], [0.00, 0.00], "hard", 30 * KIB),
    "rded": ([0.35, 0.37], [0.19, 0.21], "teacher", 3 * KIB * KIB),
}
SOFT = ("datm", "rded")
HARD = ("dm", "random")


def cifar_run(folder: Path, method: str, hlr: Sequence[float], ior: Sequence[float], *, label_strategy: str,
              storage: int, ipc: int = 10, seed: int = 0) -> Path:
    """A run folder of ``method`` on CIFAR-10 (run_spec.json, metrics.json, env.json); its name ends
    with the first 10 hex digits of its run id, as ddr names run folders."""
    from ddr.store.hashing import sha256_json

    # the shape of a real record (the digits fixtures'), so entries of one method share their labels
    base = next(FIXTURES.glob(f"{method}-digits-ipc1-seed0-*"), None) or next(FIXTURES.glob("dm-digits-ipc1-seed0-*"))
    spec = json.loads((base / "run_spec.json").read_text())
    spec.pop("distill_key", None)
    if spec["method"] != method:
        spec["method_params"] = {}
    spec.update({"method": method, "dataset": "cifar10", "ipc": ipc, "seed": seed, "label_strategy": label_strategy})
    spec["protocol_config"]["label_strategy"] = label_strategy
    run_id = sha256_json(spec)
    out = folder / f"{method}-cifar10-ipc{ipc}-seed{seed}-{run_id[:10]}"
    out.mkdir(parents=True)
    metrics: dict[str, Any] = make_metrics(hlr, ior)
    metrics.update({"method": method, "method_params": spec["method_params"], "protocol": spec["protocol"],
                    "protocol_version": spec["protocol_version"], "seed": seed,
                    "run_spec": spec, "distill_seconds": 12.0, "eval_seconds": 30.0,
                    "distilled_sha256": hashlib.sha256(run_id.encode()).hexdigest(),
                    "created": "2026-12-01T10:00:00+00:00",
                    "cost": {"distill_wall_seconds": 12.0, "eval_wall_seconds": 30.0,
                             "storage_bytes": {"total": storage, "images": storage},
                             "storage_note": "images (float32); the teacher is not needed"}})  # text, as runs write it
    (out / "run_spec.json").write_text(json.dumps(spec))
    (out / "metrics.json").write_text(json.dumps(metrics))
    (out / "env.json").write_text(json.dumps({"machine_id": "test", "ddr": {"version": "0.1.0", "git_commit": "abc"},
                                              "packages": {"torch": "2.14.1"}}))
    return out


def results_db(root: Path) -> tuple[Path, list[dict[str, Any]]]:
    """``(database path, its rows)``: the digits fixture records and the CIFAR-10 runs of :data:`CIFAR`."""
    from ddr.store.results import ResultsDB

    runs = root / "runs"
    for method, (hlr, ior, strategy, storage) in CIFAR.items():
        cifar_run(runs, method, hlr, ior, label_strategy=strategy, storage=storage)
    path = root / "results.sqlite"
    with ResultsDB(path) as db:
        db.import_dirs([FIXTURES, runs])
        rows = db.query()
    return path, rows


def bundles_dir(root: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """A folder of bundles: one zip holding dm's CIFAR-10 run folder (matched by the folder's 10-digit
    suffix), one named by random's full run id, and one holding no run of the site."""
    folder = root / "bundles"
    folder.mkdir()
    by_method = {(r["method"], r["dataset"]): r for r in rows}
    dm = by_method[("dm", "cifar10")]
    with zipfile.ZipFile(folder / "dm-cifar10.zip", "w") as z:
        z.writestr(f"dm-cifar10-ipc10-seed0-{dm['run_id'][:10]}/metrics.json", "{}")
    rid = by_method[("random", "cifar10")]["run_id"]
    (folder / f"{rid}.zip").write_bytes(b"not even a zip")
    with zipfile.ZipFile(folder / "other.zip", "w") as z:
        z.writestr("readme.txt", "nothing of these runs")
    return folder


class BuiltSite:
    """A site built once per test session from :func:`results_db` and :func:`bundles_dir` (with
    plots when matplotlib is installed), shared by the site tests."""

    def __init__(self, root: Path) -> None:
        from ddr.report.site import build_site

        self.root = root
        self.db, self.rows = results_db(root)
        self.bundles = bundles_dir(root, self.rows)
        self.out = root / "site"
        self.result = build_site(self.rows, self.out, bundles=self.bundles, generated="2026-12-07")

    def page(self, relative: str) -> str:
        return (self.out / relative).read_text(encoding="utf-8")

    def run_id(self, method: str, dataset: str = "cifar10") -> str:
        return next(str(r["run_id"]) for r in self.rows if r["method"] == method and r["dataset"] == dataset)


_BUILT: dict[str, BuiltSite] = {}


def built_site(factory: Any) -> BuiltSite:
    """The session's :class:`BuiltSite` (``factory``: pytest's ``tmp_path_factory``)."""
    if "site" not in _BUILT:
        _BUILT["site"] = BuiltSite(factory.mktemp("ddr-site"))
    return _BUILT["site"]
