"""The ``ray`` executor's edges: a cluster that does not answer is a clear error within the connect
timeout (``--executor-option connect_timeout=SECONDS``), a local Ray that ddr starts ends with ddr
(a normal end, SIGTERM, kill -9), and an option the chosen executor would ignore is refused.

Nothing here starts Ray inside the pytest process: ddr runs in a child process, or the check
fails before Ray is touched. Addresses are loopback only (``127.0.0.2``: Ray does not rewrite it
to this machine's own address); processes are told apart by the session the child ddr leads and
by the ``DDR_RAY_OWNER`` mark its local Ray inherits, so no unrelated process is ever signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ddr.cli.main import main
from ddr.errors import ConfigError
from ddr.execute.ray import OWNER_VARIABLE

ROOT = Path(__file__).resolve().parents[3]
RUN = ["run", "--method", "random", "--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1", "--no-progress"]
UNUSED = "127.0.0.2:1"
"""A loopback address where nothing listens (port 1): the connection is refused at once."""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DDR_CACHE_DIR": str(tmp_path / "cache"), **extra}
    env.pop("RAY_ADDRESS", None)
    return env


def _ddr(args: list[str], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ddr", *args, "--out", str(tmp_path / "runs")], capture_output=True,
                          text=True, env=_env(tmp_path), timeout=timeout, cwd=tmp_path)


# -- a cluster that does not answer ---------------------------------------------------------------

def test_a_cluster_nothing_listens_at_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    proc = _ddr([*RUN, "--executor", "ray", "--address", UNUSED], tmp_path)
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert f"the Ray cluster at '{UNUSED}' did not answer within 30 s" in message, proc.stderr
    for advice in ("ray start --head", "check the address", "--executor-option connect_timeout=SECONDS",
                   "leave --address out"):
        assert advice in message, (advice, message)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the kernel completes them) but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_a_cluster_that_never_answers_is_given_up_after_the_connect_timeout(tmp_path: Path, silent_port: int) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.2:{silent_port}"
    proc = _ddr([*RUN, "--executor", "ray", "--address", address, "--executor-option", "connect_timeout=2"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"ddr: error: the Ray cluster at '{address}' did not answer within 2 s (no reply from its GCS)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_ray_options_are_checked_before_ray_is_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from ddr.execute.ray import RayExecutor

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for bad in (0, -1, float("nan"), "soon", True):
        with pytest.raises(ConfigError, match="connect_timeout must be a positive number of seconds"):
            RayExecutor(address=UNUSED, connect_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"connect_timeout applies to connecting to a running cluster \(--address"):
        RayExecutor(connect_timeout=5)  # a local Ray would ignore it
    with pytest.raises(ConfigError, match="num_cpus sizes a local Ray that ddr starts"):
        RayExecutor(address=UNUSED, num_cpus=2)  # a cluster has its own
    with pytest.raises(ConfigError, match=f"the Ray cluster at '{UNUSED}' did not answer within 1.5 s"):
        RayExecutor(address=UNUSED, connect_timeout=1.5)  # refused by the probe: ray.init never runs
    import ray

    assert not ray.is_initialized()


# -- an option the executor would ignore ----------------------------------------------------------

@pytest.mark.parametrize(("executor", "option", "said"), [
    ("local", ["--address", UNUSED],
     "--address: executor 'local' has no option 'address' and would ignore it; --address is for an executor that "
     "runs jobs on a cluster (--executor ray); its options: compile, bf16"),
    ("batched", ["--address", UNUSED], "--address: executor 'batched' has no option 'address'"),
    ("local.compiled", ["--executor-option", "connect_timeout=5"],
     "--executor-option connect_timeout=...: executor 'local' has no option 'connect_timeout' and would ignore it"),
    ("batched", ["--executor-option", "max_member=8"], "did you mean 'max_members'?"),
    ("ray", ["--executor-option", "connect_timout=5"],
     "executor 'ray' has no option 'connect_timout' and would ignore it; did you mean 'connect_timeout'?"),
    ("ray", ["--executor-option", "connect_timeout"], "--executor-option expects KEY=VALUE, got 'connect_timeout'"),
    ("ray", ["--address", UNUSED, "--executor-option", f"address={UNUSED}"], "give the cluster's address once"),
])
def test_an_option_the_executor_would_ignore_is_refused_before_any_work(
        executor: str, option: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    code = main([*RUN, "--executor", executor, *option, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and said in err, err
    assert "distil" not in err and not (tmp_path / "cache").exists(), err  # refused before any work


def test_ddr_eval_refuses_it_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["eval", str(tmp_path / "missing"), "--ipc", "1", "--executor", "local", "--address", UNUSED])
    err = capsys.readouterr().err
    assert code == 2 and "--address: executor 'local' has no option 'address'" in err, err


def test_a_suite_checks_the_options_against_its_own_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    suite = tmp_path / "suite.yaml"
    suite.write_text("suite: tiny\nmethods: [random]\ndatasets: [digits]\nipcs: [1]\nseeds: [0]\nnum_eval: 1\n"
                     "epochs: 1\nexecutor: batched\n")
    code = main(["run", str(suite), "--address", UNUSED, "--no-progress", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "--address: executor 'batched' has no option 'address'" in err, err


# -- ddr's own local Ray ends with ddr ------------------------------------------------------------

def _stat(pid: int) -> tuple[int, str] | None:
    """(session id, state) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[3]), fields[0]


def _marked(pid: int, token: str) -> bool:
    try:
        return f"{OWNER_VARIABLE}={token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _theirs(leader: int, token: str | None) -> dict[int, str]:
    """Live processes of the session ``leader`` leads or carrying its Ray's mark: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None or stat[1] in ("Z", "X"):  # gone, or a zombie awaiting its parent (nothing runs)
            continue
        if stat[0] == leader or (token is not None and _marked(pid, token)):
            try:
                found[pid] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
            except OSError:
                continue
    return found


def _token(processes: dict[int, str]) -> str | None:
    """The DDR_RAY_OWNER mark of the session's Ray processes."""
    for pid in processes:
        try:
            for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                if item.startswith(f"{OWNER_VARIABLE}=".encode()):
                    return item.split(b"=", 1)[1].decode()
        except OSError:
            continue
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the watchdog is Linux only")
@pytest.mark.parametrize("ending", [pytest.param("exit", marks=pytest.mark.slow),
                                    pytest.param("SIGTERM", marks=pytest.mark.slow), "SIGKILL"])
def test_the_local_ray_ddr_starts_does_not_outlive_it(ending: str, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    told = []
    for attempt in range(2):  # a Ray core failure that ends ddr before the signal is told apart by a rerun
        outcome = _end_a_ray_run(ending, tmp_path / f"attempt{attempt}")
        if outcome is None:
            return
        told.append(outcome)
    pytest.fail("a Ray core failure ended ddr before its end, twice:\n" + "\n".join(told))


def _end_a_ray_run(ending: str, tmp_path: Path) -> str | None:
    """Run ddr on a local Ray, end it (``exit``: let it finish), check nothing of its Ray is left;
    the output of ddr when a Ray core failure ended it first (to run it again), else None."""
    tmp_path.mkdir()
    ray_tmp = tempfile.mkdtemp(prefix="ddr-ray-", dir="/tmp")  # short: Ray's socket paths must fit
    env = _env(tmp_path, RAY_TMPDIR=ray_tmp)
    # a reference of 300 epochs keeps a signalled run busy; the finishing one trains 1 epoch
    epochs = "real.epochs=1" if ending == "exit" else "real.epochs=300"
    args = [sys.executable, "-m", "ddr", "run", "--method", "random", "--executor", "ray", "--num-eval", "1",
            "--epochs", "2", "--set", epochs, "--no-progress", "--no-job-cache", "--out", str(tmp_path / "runs")]
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    token = None
    try:
        if ending != "exit":
            limit = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < limit:
                processes = _theirs(proc.pid, None)
                # the raylet's agents (ray::DashboardAgent, ray::RuntimeEnvAgent) are what used to stay;
                # the reference training as a Ray task says ray.init has returned (see the module's end)
                if (any(command.startswith("ray::") for command in processes.values())
                        and any("training the real-data reference" in line for line in lines)):
                    token = _token(processes)
                    break
                time.sleep(0.5)
            if proc.poll() is not None:
                reader.join(timeout=60)
                return f"--- exit {proc.returncode} ---\n" + "".join(lines)[-3000:]
            assert token is not None, f"no Ray agent within 300 s: {_theirs(proc.pid, None)}\n{''.join(lines)[-3000:]}"
            os.kill(proc.pid, getattr(signal, ending))
        proc.wait(timeout=600)
        reader.join(timeout=60)
        err = "".join(lines)
        # without the watchdog the agents of a killed ddr stayed about a minute (Ray's own GCS timeout)
        limit = time.monotonic() + 40
        left = _theirs(proc.pid, token)
        while left and time.monotonic() < limit:
            time.sleep(0.5)
            left = _theirs(proc.pid, token)
        assert not left, f"Ray processes outlived ddr ({ending}): {left}\n{err[-3000:]}"
        if ending == "exit" and proc.returncode != 0 and "Check failed" in err:  # Ray's core ended it
            return f"--- exit {proc.returncode} ---\n" + err[-3000:]
        expected = {"exit": 0, "SIGTERM": 143, "SIGKILL": -signal.SIGKILL}[ending]
        assert proc.returncode == expected, err[-3000:]
        if ending == "SIGTERM":
            assert "ddr: terminated (SIGTERM)" in err, err[-3000:]
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _theirs(proc.pid, token):  # only this test's: its session or its Ray's mark
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)


# SIGTERM while ray.init itself runs (the first seconds of a run) is the one case that does not end
# with status 143: Ray's C++ core installs its own SIGTERM handler while it connects the driver,
# which aborts the process (status 134); ddr restores its handler as soon as ray.init returns, and
# the watchdog still ends that Ray's processes (the SIGKILL case above is the same clean-up).
