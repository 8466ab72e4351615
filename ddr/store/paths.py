"""Where ddr keeps datasets and cached assets on disk.

Both locations are resolved on every call (never at import), so tests and users can redirect
them with the environment variables ``DDR_DATA_DIR`` and ``DDR_CACHE_DIR``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

from ddr.errors import DdrError

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


def path_kind(path: str | Path, *, what: str, error: type[DdrError] = DdrError) -> Literal["file", "dir"] | None:
    """Whether ``path`` is a file, a folder or absent (``None``), for a path a user gave.

    Python 3.11's ``Path.exists``/``is_file`` raise for a name longer than the file system allows
    or a folder that cannot be searched; that becomes an ``error`` naming ``what`` the path was
    meant to be, instead of a traceback.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError as exc:  # an embedded NUL byte
        raise error(f"{what} {str(path)!r} is not a usable path ({exc}); give another path") from None
    except OSError as exc:
        advice = "give a shorter path" if exc.errno == errno.ENAMETOOLONG else "give a path ddr can read"
        raise error(f"cannot look at {what} {path}: {exc.strerror or exc}; {advice}") from None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None
