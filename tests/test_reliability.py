"""Bad input, faulty plugins, unusable output folders and interruption: one clear line, the right
exit status, nothing half-written on disk, and a rerun that completes what was finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FAST = ["--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1", "--no-progress"]

EXITING_METHOD = '''
from ddr import hookimpl
from ddr.plugin.specs import MethodSpec


class Quitter:
    def distill(self, ctx):
        import sys
        sys.exit(0)


@hookimpl
def ddr_methods():
    return [MethodSpec(name="quitter", target=Quitter, summary="calls sys.exit(0)")]
'''


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_method_that_calls_sys_exit_fails_its_run(ddr_cli, local_module, tmp_path: Path) -> None:
    module = local_module("quitting_plugin", EXITING_METHOD)
    out = tmp_path / "runs"
    proc = ddr_cli("-p", "quitting_plugin", "run", "--method", "quitter", *FAST, "--out", str(out),
                   pythonpath=module.parent)
    message = one_line_error(proc)
    assert "method 'quitter' (plugin 'quitting_plugin'" in message and "called sys.exit(0)" in message
    assert not out.exists() or not any(out.iterdir())  # no record of a run that produced nothing


def test_an_out_folder_below_a_file_fails_before_any_work(ddr_cli, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    start = time.perf_counter()
    proc = ddr_cli("run", "--method", "random", *FAST, "--out", str(blocker / "runs"))
    message = one_line_error(proc)
    assert f"cannot write run records to {blocker / 'runs'} (--out)" in message and "choose a writable" in message
    assert "training the real-data reference" not in message  # refused before any work
    assert time.perf_counter() - start < 600  # generous: only a sanity bound, not a timing assertion


def test_show_on_a_corrupt_record_is_one_line(ddr_cli, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("run_spec", "env"):
        (folder / f"{name}.json").write_text("{}")
    (folder / "metrics.json").write_text("{not json")
    message = one_line_error(ddr_cli("show", str(folder)))
    assert f"cannot read {folder / 'metrics.json'}" in message and "corrupt" in message
    (folder / "metrics.json").write_text("{}")
    assert "lacks 'protocol'" in one_line_error(ddr_cli("show", str(folder)))


def test_a_meta_json_with_a_non_numeric_lr_is_refused(ddr_cli, tmp_path: Path) -> None:
    import torch

    from ddr.method import DistilledSet
    from ddr.store.formats import save_distilled

    folder = save_distilled(DistilledSet(images=torch.zeros(10, 1, 16, 16), labels=torch.arange(10), lr=0.01),
                            tmp_path / "set")
    meta = json.loads((folder / "meta.json").read_text())
    meta["lr"] = "fast"
    (folder / "meta.json").write_text(json.dumps(meta))
    message = one_line_error(ddr_cli("eval", str(folder), *FAST))
    assert "'lr' is 'fast'; expected a positive number or null" in message


def test_teacher_files_get_messages_in_ddrs_words(tmp_path: Path) -> None:
    import torch

    from ddr.engine.teachers import read_state_dict
    from ddr.errors import ArtifactError

    (tmp_path / "random.pt").write_bytes(os.urandom(256))
    with pytest.raises(ArtifactError) as info:
        read_state_dict(tmp_path / "random.pt")
    assert str(info.value) == (f"cannot read {tmp_path / 'random.pt'}: it is not a torch.save file (or it is "
                               "truncated); re-copy or re-export it")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(ArtifactError, match=r"holds a Python object \(torch.nn.modules.linear.Linear\)") as info:
        read_state_dict(tmp_path / "module.pt")
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match="not a valid safetensors file"):
        read_state_dict(tmp_path / "bad.safetensors")


def test_sigterm_ends_a_run_with_143_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    """Killed while students train, then rerun: the same numbers as an uninterrupted run, and no
    half-written record folder left behind."""
    env = {**os.environ, "DDR_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "ddr", "run", "--method", "random", "--num-eval", "2", "--epochs", "40",
            "--set", "real.epochs=2", "--no-progress", "--json"]
    out = tmp_path / "runs"
    proc = subprocess.Popen([*argv, "--out", str(out)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    jobs = tmp_path / "cache" / "jobs"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:  # wait until some students are cached
        if jobs.is_dir() and len(list(jobs.glob("*/*/result.json"))) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=900)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived (a very fast machine)")
    assert proc.returncode == 143 and "terminated (SIGTERM); results written so far are kept" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() or not list(out.iterdir())  # no half-written record
    finished = len(list(jobs.glob("*/*/result.json")))
    rerun = subprocess.run([*argv, "--out", str(out)], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=1800)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads(rerun.stdout)
    assert sum(resumed["reused_jobs"].values()) == finished  # every finished job was kept
    fresh = subprocess.run(argv + ["--no-job-cache"], env={**env, "DDR_CACHE_DIR": str(tmp_path / "fresh")},
                           cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert fresh.returncode == 0, fresh.stderr
    reference = json.loads(fresh.stdout)
    for key in ("acc_real_hard", "acc_syn_hard", "acc_rdm_any", "ddrs"):
        assert resumed[key]["values"] == reference[key]["values"], key
    (record,) = out.iterdir()
    assert {p.name for p in record.iterdir()} == {"run_spec.json", "metrics.json", "env.json"}
