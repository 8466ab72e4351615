"""Fixtures shared by the whole suite.

* Every test starts without the ``DDR_*`` variables that change plugin loading, so a developer's
  shell cannot change what a test sees (there is no process-wide plugin system to reset).
* ``DDR_CACHE_DIR`` points at one temporary directory per test session (inherited by the
  subprocesses tests start): nothing ever touches ``~/.cache/ddr``.
* ``fake_dist`` writes a real installed distribution (``*.dist-info`` with ``METADATA`` and
  ``entry_points.txt``) plus its module sources into a temporary directory on ``sys.path``, so
  plugins are discovered through ``importlib.metadata`` exactly as installed packages are.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

PLUGIN_ENV_VARS = ("DDR_DISABLE_PLUGINS", "DDR_PLUGINS", "DDR_DISABLE_PLUGIN_AUTOLOAD", "DDR_STRICT_PLUGINS")


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``DDR_CACHE_DIR`` at a per-session temporary directory (restored afterwards)."""
    cache = tmp_path_factory.mktemp("ddr-cache")
    previous = os.environ.get("DDR_CACHE_DIR")
    os.environ["DDR_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("DDR_CACHE_DIR", None)
    else:
        os.environ["DDR_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def _fresh_plugin_system(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in PLUGIN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


FakeDist = Callable[..., Path]


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDist]:
    """Factory ``fake_dist(name, entry_points, modules, version="1.0") -> site directory``.

    Args (of the factory):
        name: the distribution name, e.g. ``"ddr-fake-good"``.
        entry_points: entry points of group ``ddr``, ``{"fakegood": "fake_good_plugin"}``.
        modules: source files relative to the site directory, ``{"fake_good_plugin/__init__.py":
            "..."}``; sources are dedented.
        version: the distribution version.

    All distributions go into one directory ``<tmp>/site`` that is prepended to ``sys.path`` (pass
    it as ``PYTHONPATH`` to a subprocess). The fake top-level modules are removed from
    ``sys.modules`` after the test.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    top_level: set[str] = set()

    def make(name: str, entry_points: Mapping[str, str], modules: Mapping[str, str], version: str = "1.0") -> Path:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = ["[ddr]", *(f"{ep} = {value}" for ep, value in entry_points.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for relative, source in modules.items():
            path = site / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            top_level.add(Path(relative).parts[0].removesuffix(".py"))
        importlib.invalidate_caches()
        return site

    yield make

    for module_name in list(sys.modules):
        if module_name.split(".")[0] in top_level:
            del sys.modules[module_name]
    importlib.invalidate_caches()


DdrCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def ddr_cli(tmp_path: Path) -> DdrCli:
    """``ddr_cli(*args, pythonpath=None, env=None, timeout=900)``: run ``python -m ddr ARGS`` in a
    subprocess (the current interpreter and environment, ``pythonpath`` prepended to
    ``PYTHONPATH``, ``env`` added, working directory ``tmp_path``) and return the completed process with text stdout/stderr."""

    def run(*args: str, pythonpath: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 900) -> "subprocess.CompletedProcess[str]":
        full_env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV_VARS}
        if pythonpath is not None:
            full_env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(pythonpath), full_env.get("PYTHONPATH", "")) if p)
        full_env.update(env or {})
        return subprocess.run([sys.executable, "-m", "ddr", *args], capture_output=True, text=True,
                              env=full_env, timeout=timeout, cwd=tmp_path)

    return run


@pytest.fixture
def local_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], Path]]:
    """Factory ``local_module(name, source) -> path``: write ``<tmp>/modules/<name>.py`` (an
    importable module that belongs to no distribution); it is removed from ``sys.modules`` after
    the test."""
    folder = tmp_path / "modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def make(name: str, source: str) -> Path:
        path = folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        names.append(name)
        importlib.invalidate_caches()
        return path

    yield make

    for name in names:
        sys.modules.pop(name, None)
