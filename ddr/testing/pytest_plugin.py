"""pytest fixtures for plugin authors (registered as the ``pytest11`` entry point ``ddr``).

* every test runs with ``DDR_CACHE_DIR`` pointing at one temporary directory per test session,
  so a plugin's tests never write to (or read stale entries from) ``~/.cache/ddr``;
* ``ddr_session``: a fresh :class:`ddr.resources.session.Session` (its own plugin system and
  dataset cache, no progress bars);
* ``ddr_cache``: the session cache directory (a ``Path``).

Import-light: pytest loads this in every run of the environment, so nothing heavy is imported
at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ddr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache directory of this test session (``DDR_CACHE_DIR``)."""
    return tmp_path_factory.mktemp("ddr-cache")


@pytest.fixture(autouse=True)
def _ddr_isolated_cache(ddr_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DDR_CACHE_DIR", str(ddr_cache))
    yield


@pytest.fixture
def ddr_session() -> Any:
    """A fresh Session: its own plugin system and datasets, no progress bars."""
    from ddr.resources.session import Session

    return Session(progress_bars=False)
