"""Install a plugin package into a fresh virtual environment (for install-level tests).

The venv is made ``--without-pip`` (fast, offline). ddr, torch, pluggy, pip and setuptools are
made importable in it through a ``.pth`` file that calls ``site.addsitedir`` on this interpreter's
site-packages: ``--system-site-packages`` would expose the *base* interpreter's site-packages, not
this venv's, and ``addsitedir`` (unlike a plain path line) also processes that directory's own
``.pth`` files, which an editable install of ddr relies on. The plugin itself exists only in the
fresh venv, so ``ddr`` finds it through its installed entry point alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def install_in_fresh_venv(package: Path, root: Path) -> tuple[Path, dict[str, str]]:
    """pip-install ``package`` (a source tree) into a new venv under ``root``; return (python, env)."""
    source = root / "src"  # build outside the repository: pip writes build/ and *.egg-info there
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = root / "venv"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("DDR_DISABLE_PLUGINS", "DDR_PLUGINS",
                                                     "DDR_DISABLE_PLUGIN_AUTOLOAD", "DDR_STRICT_PLUGINS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env, root)
    if made.returncode != 0:
        pytest.skip(f"cannot create a virtual environment with {sys.executable}: {made.stderr.strip()}")
    python = venv / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env, root)
    assert purelib.returncode == 0, purelib.stderr
    parent_site = sysconfig.get_paths()["purelib"]
    (Path(purelib.stdout.strip()) / "_ddr_parent_env.pth").write_text(
        f"import site; site.addsitedir({parent_site!r})\n")
    install = run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                   str(source)], env, root)
    assert install.returncode == 0, install.stdout + install.stderr
    return python, env
