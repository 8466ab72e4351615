"""Result bundles end to end: ``ddr export`` → ``ddr verify`` → ``ddr import`` on a real digits run
(the ``random`` method, 2 students of 2 epochs, a 1-epoch reference), as a method author submits one
and a maintainer checks and publishes it. One run is made for the whole module; each verification
trains its jobs again (a fresh cache), so each costs a few seconds."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ddr.bundle import BundleError, read_manifest
from ddr.bundle.container import write_zip
from ddr.bundle.manifest import MANIFEST, build_manifest
from ddr.cli.main import main
from ddr.store.results import ResultsDB

FAST = ["--num-eval", "2", "--epochs", "2", "--set", "real.epochs=1", "--no-progress", "-q"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run recorded in its own database, exported twice."""
    root = tmp_path_factory.mktemp("bundles")
    db = root / "results.sqlite"
    assert main(["run", "--method", "random", *FAST, "--seed", "7", "--out", str(root / "runs"), "--db", str(db)]) == 0
    with ResultsDB(db) as database:
        run_id = database.query()[0]["run_id"]
    bundle = root / "random.zip"
    assert main(["export", run_id[:10], "-o", str(bundle), "--db", str(db), "-q"]) == 0
    assert main(["export", run_id[:10], "-o", str(root / "again.zip"), "--db", str(db), "-q"]) == 0
    return {"root": root, "db": db, "run_id": run_id, "bundle": bundle, "again": root / "again.zip"}


def members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as handle:
        return [(info.filename, handle.read(info)) for info in handle.infolist()]


def rebuilt(source: Path, target: Path, edit: Any, *, reseal: bool) -> Path:
    """``source`` with ``edit(name, bytes) -> bytes`` applied to its members; ``reseal``: a new
    manifest vouching for the edited bytes (a forger's bundle), else the original manifest."""
    content = [(name, edit(name, data)) for name, data in members(source) if name != MANIFEST]
    manifest = build_manifest(content).to_bytes() if reseal else members(source)[0][1]
    return write_zip(target, [(MANIFEST, manifest), *content])


def test_an_export_is_deterministic_and_carries_everything_the_run_was(made: dict[str, Any]) -> None:
    bundle = made["bundle"]
    assert bundle.read_bytes() == made["again"].read_bytes()  # exported twice: the same bytes
    info = read_manifest(bundle)
    run = info["runs"][0]
    assert info["kind"] == "run" and run["run_id"] == made["run_id"] and run["method"] == "random"
    assert run["scores"]["ddrs"]["n"] == 2 and info["plugins"][0]["name"] == "random"
    folder = run["folder"]
    names = [m["name"] for m in info["members"]]
    assert names[:2] == ["bundle.json", f"{folder}/run_spec.json"]
    assert {f"{folder}/jobs/real-0.json", f"{folder}/jobs/syn_hard-1.json", f"{folder}/jobs/rdm_any-1.json",
            f"sets/{run['distilled_sha256']}/images.safetensors"} <= set(names)
    resolved = json.loads(dict(members(bundle))[f"{folder}/resolved.json"])
    assert resolved["protocol"]["config"]["train"]["epochs"] == 2 and resolved["seeds"]["run"] == 7
    assert len(resolved["seeds"]["students"]) == 4 and resolved["method"]["plugin"]["distribution"] == "ddr-bench"
    assert resolved["machine"]["device"] == "cpu" and resolved["machine"]["cpu"]
    job = json.loads(dict(members(bundle))[f"{folder}/jobs/syn_hard-0.json"])
    assert job["job_cache"]["checksum"] and job["job_cache"]["accuracy"] == job["result"]["accuracy"]


def test_import_then_verify_marks_the_run_and_the_leaderboard_shows_it(
        made: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = str(tmp_path / "maintainer.sqlite")
    bundle = str(made["bundle"])
    assert main(["import", bundle, "--db", other, "--out", str(tmp_path / "records")]) == 0
    assert "random · digits · IPC 1 · seed 7: imported" in capsys.readouterr().out
    with ResultsDB(other) as db:
        row = db.get(made["run_id"])
    assert row["origin"] == "imported" and row["provenance"]["bundle"] == "random.zip"
    assert Path(row["record_dir"]).is_dir()
    assert main(["leaderboard", "--db", other]) == 0
    assert "| random (unverified) |" in capsys.readouterr().out
    assert main(["results", "--db", other, "--csv"]) == 0
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["method"], r["origin"]) for r in listed] == [("random", "imported")]
    assert main(["leaderboard", "--db", other, "--verified-only"]) == 2
    assert "none of the 1 matching run(s) is verified" in capsys.readouterr().err

    assert main(["verify", bundle, "--db", other, "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    assert "mode: bit-identical (this machine is of the recorded kind" in out
    assert "reference (real) accuracy" in out and "rdm_any #1 accuracy" in out and "ddrs (mean of 2)" in out
    assert "verified: 1 of 1 run(s)" in out and "marked 1 imported run(s) imported+verified" in out
    with ResultsDB(other) as db:
        row = db.get(made["run_id"])
    assert row["origin"] == "imported+verified" and row["provenance"]["verification"]["mode"] == "bit-identical"
    assert main(["leaderboard", "--db", other, "--verified-only"]) == 0
    assert "| random ✓ |" in capsys.readouterr().out
    assert main(["results", "--db", other]) == 0
    assert "imported+verified" in capsys.readouterr().out
    # the exporter's own database keeps its run as computed there
    assert main(["import", bundle, "--db", str(made["db"]), "--out", str(tmp_path / "records")]) == 0
    assert "kept local" in capsys.readouterr().out


def test_a_tampered_bundle_is_refused_and_a_resealed_forgery_does_not_verify(
        made: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = read_manifest(made["bundle"])
    image = f"sets/{info['runs'][0]['distilled_sha256']}/images.safetensors"
    metrics = f"{info['runs'][0]['folder']}/metrics.json"

    def flip_last_image_byte(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name == image else data

    def raise_accuracy(name: str, data: bytes) -> bytes:
        if name != metrics:
            return data
        record = json.loads(data)
        student = next(s for s in record["students"] if s["role"] == "syn_hard" and s["index"] == 0)
        student["accuracy"] = min(1.0, student["accuracy"] + 0.25)
        return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()

    for edit, member in ((flip_last_image_byte, image), (raise_accuracy, metrics)):
        path = rebuilt(made["bundle"], tmp_path / "tampered.zip", edit, reseal=False)
        for argv in (["verify", str(path), "--no-progress"], ["import", str(path), "--db", str(tmp_path / "x.db")]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"refusing bundle {path}: member '{member}' does not match the manifest" in err, err
    assert not (tmp_path / "x.db").exists()  # refused before the database is touched

    resealed = rebuilt(made["bundle"], tmp_path / "images.zip", flip_last_image_byte, reseal=True)
    assert read_manifest(resealed)["runs"]  # its manifest vouches for the edited bytes, but its tensors are not the set
    with pytest.raises(BundleError, match=f"member '{image}' cannot be loaded"):
        main(["--debug", "verify", str(resealed), "--no-progress"])
    forged = rebuilt(made["bundle"], tmp_path / "forged.zip", raise_accuracy, reseal=True)
    # the forged student is re-run (the sample of 1 at seed 1 is student 0) and does not reproduce
    assert main(["verify", str(forged), "--no-progress", "-q", "--no-mark", "--students", "1", "--sample-seed", "1"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "syn_hard #0 accuracy" in line)
    assert row.rstrip().endswith("NO") and "NOT verified: 0 of 1 run(s)" in out


def test_another_machine_is_judged_by_the_stated_tolerance_and_a_sample_of_students(
        made: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.bundle import verify_bundle

    monkeypatch.setattr("ddr.bundle.verify.differences", lambda recorded, here: ["cpu: 'A' recorded, 'B' here"])
    result = verify_bundle(made["bundle"], students=1, sample_seed=3)
    (run,) = result.runs
    assert result.verified and run.mode == "statistical" and len(run.indices) == 1
    assert run.why == "this machine differs from the recorded one: cpu: 'A' recorded, 'B' here"
    assert "Welch" in run.comparison.rules() and "reference |Δ| ≤ 0.02" in run.comparison.rules()
    assert {c.quantity for c in run.checks} >= {"reference (real) accuracy", f"syn_hard #{run.indices[0]} accuracy"}
    assert run.notes[0].startswith(f"students {run.indices[0]} of 0..1 re-run (a sample of 1, seed 3)")


def test_distill_without_the_method_plugin_cannot_verify(made: dict[str, Any], ddr_cli: Any) -> None:
    """The command line in a subprocess: exit status 3, one line saying what to do."""
    proc = ddr_cli("-p", "no:random", "verify", str(made["bundle"]), "--distill", "--no-progress", timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "could not verify run" in proc.stderr and "method 'random' cannot be used here (the bundle names plugin " \
        "'random', distribution ddr-bench" in proc.stderr and "install the method's plugin" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_digits_suite_is_exported_and_verified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/suites/digits.yaml reduced: two methods, two IPCs, 2 students of 20 epochs."""
    suite = tmp_path / "digits-bundle.yaml"
    suite.write_text("suite: digits-bundle\nmethods: [random, herding]\ndatasets: [digits]\nipcs: [1, 10]\n"
                     "seeds: [0]\nprotocol: digits\nnum_eval: 2\nepochs: 20\nset: {real.epochs: 5}\n")
    db = str(tmp_path / "results.sqlite")
    assert main(["run", str(suite), "--out", str(tmp_path / "runs"), "--db", db, "--no-progress", "-q"]) == 0
    assert main(["export", "digits-bundle", "-o", str(tmp_path / "suite.zip"), "--db", db, "-q"]) == 0
    info = read_manifest(tmp_path / "suite.zip")
    assert info["kind"] == "suite" and len(info["runs"]) == 4 and len(info["sets"]) == 4
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "suite.zip"), "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("mode: bit-identical") == 4 and "verified: 4 of 4 run(s)" in out
    assert "jobs shared with an earlier run of this verification" in out  # the reference and random subsets


class _Payload:
    """Unpickled, it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_teacher_checkpoint_travels_in_the_bundle_and_verify_uses_it(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A run given ``--teacher FILE`` (a state-dict .pt): the bundle carries the file under its
    sha256, verify re-runs the teacher-labelled students with the bundle's copy after the original
    is gone; a copy whose bytes do not match its name is refused, a pickle posing as the teacher is
    refused unrun."""
    import safetensors.torch
    import torch

    protocol = tmp_path / "quick.yaml"
    protocol.write_text("name: quick\nversion: 1\ninclude: ddr.builtins.protocols:digits.yaml\nreal: {epochs: 1}\n")
    trained = tmp_path / "teacher.safetensors"
    assert main(["teacher", "train", "--dataset", "digits", "--protocol", str(protocol), "--output", str(trained),
                 "--no-progress", "-q"]) == 0
    teacher = tmp_path / "teacher.pt"
    torch.save(safetensors.torch.load_file(str(trained)), teacher)
    sha = hashlib.sha256(teacher.read_bytes()).hexdigest()
    db = str(tmp_path / "results.sqlite")
    assert main(["run", "--method", "random", *FAST, "--teacher", str(teacher), "--label-strategy", "teacher",
                 "--out", str(tmp_path / "runs"), "--db", db]) == 0
    with ResultsDB(db) as database:
        (row,) = database.query()
    assert row["run_spec"]["teacher_sha256"] == sha
    bundle = tmp_path / "teacher.zip"
    assert main(["export", row["run_id"][:10], "-o", str(bundle), "--db", db]) == 0
    assert "1 teacher checkpoint(s)" in capsys.readouterr().out
    info = read_manifest(bundle)
    assert info["teachers"] == [f"teachers/{sha}.pt"] and info["runs"][0]["teacher"] == f"teachers/{sha}.pt"

    teacher.rename(tmp_path / "elsewhere.pt")  # the verifier has only the bundle
    assert main(["verify", str(bundle), "--db", str(tmp_path / "other.sqlite"), "--no-progress", "-q"]) == 0
    out = capsys.readouterr().out
    assert "verified: 1 of 1 run(s)" in out and "syn_any #1 accuracy" in out

    forged = rebuilt(bundle, tmp_path / "forged.zip",
                     lambda name, data: data + b"\0" if name.startswith("teachers/") else data, reseal=True)
    assert main(["verify", str(forged), "--no-progress", "-q"]) == 2
    assert f"member 'teachers/{sha}.pt' holds bytes whose sha256 is not the one it is named by" in \
        capsys.readouterr().err

    # a pickle that would write a file when unpickled, posing as the teacher under its own sha256
    marker = tmp_path / "marker"
    buffer = io.BytesIO()
    torch.save(_Payload(marker), buffer)  # a torch.save zip whose data.pkl would call open(marker, "w")
    payload = buffer.getvalue()
    evil = f"teachers/{hashlib.sha256(payload).hexdigest()}.pt"

    def swap(name: str, data: bytes) -> tuple[str, bytes]:
        if name.startswith("teachers/"):
            return evil, payload
        return name, data.replace(f"teachers/{sha}.pt".encode(), evil.encode()) if name == "bundle.json" else data

    content = [swap(name, data) for name, data in members(bundle) if name != MANIFEST]
    write_zip(tmp_path / "evil.zip", [(MANIFEST, build_manifest(content).to_bytes()), *content])
    assert main(["verify", str(tmp_path / "evil.zip"), "--no-progress", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"refusing bundle {tmp_path / 'evil.zip'}: member '{evil}' is not a usable teacher checkpoint: " in err
    assert "refusing to unpickle" in err and not marker.exists()

    # exported after the file changed: the bundle goes without it, and verify asks for the file
    teacher.write_bytes(b"not the teacher")
    assert main(["export", row["run_id"][:10], "-o", str(tmp_path / "without.zip"), "--db", db]) == 0
    assert "changed since the run" in capsys.readouterr().err
    assert "teachers" not in read_manifest(tmp_path / "without.zip")
    assert main(["verify", str(tmp_path / "without.zip"), "--no-progress", "-q"]) == 3
    err = capsys.readouterr().err
    assert f"it used the teacher checkpoint {teacher} (sha256 {sha[:16]}…), which this bundle does not carry" in err


def test_an_evaluated_external_set_is_exported_as_it_was_trained_on(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``ddr eval`` trains on the set validated against the dataset: a ``pixel01`` set is
    normalised, an 8x8 set resized (``--resize``). The export finds that set from the source (the
    file on disk is not the tensors the record's hash names) and verify reproduces the run."""
    import torch

    from ddr.method.distilled import DistilledSet
    from ddr.store.formats import save_distilled

    generator = torch.Generator().manual_seed(0)
    save_distilled(DistilledSet(images=torch.rand(10, 1, 16, 16, generator=generator), labels=torch.arange(10),
                                pixel_space="pixel01"), tmp_path / "pixel01")
    save_distilled(DistilledSet(images=torch.randn(10, 1, 8, 8, generator=generator), labels=torch.arange(10)),
                   tmp_path / "small")
    for name, extra in (("pixel01", []), ("small", ["--resize"])):
        assert main(["eval", str(tmp_path / name), "--ipc", "1", *FAST, *extra, "--out", str(tmp_path / "runs")]) == 0
        run_id = capsys.readouterr().out.rsplit("-", 1)[1].strip()
        bundle = tmp_path / f"{name}.zip"
        assert main(["export", run_id, "-o", str(bundle), "-q"]) == 0, capsys.readouterr().err
        (summary,) = read_manifest(bundle)["runs"]
        assert summary["method"] == f"{name} (external set)"
        assert main(["verify", str(bundle), "--db", str(tmp_path / "other.sqlite"), "--no-progress", "-q"]) == 0
        assert "verified: 1 of 1 run(s)" in capsys.readouterr().out
