"""Where ddr keeps datasets and cached assets on disk.

Both locations are resolved on every call (never at import), so tests and users can redirect
them with the environment variables ``DDR_DATA_DIR`` and ``DDR_CACHE_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DDR_DATA_DIR"
CACHE_DIR_ENV = "DDR_CACHE_DIR"


def cache_dir() -> Path:
    """Root of ddr's content-addressed cache: ``$DDR_CACHE_DIR``, else ``~/.cache/ddr``."""
    value = os.environ.get(CACHE_DIR_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ddr"


def data_dir() -> Path:
    """Directory datasets are read from and downloaded to: ``$DDR_DATA_DIR``, else
    ``~/.cache/ddr/data``."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "ddr" / "data"
