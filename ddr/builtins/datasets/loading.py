"""Conventions every built-in dataset loader follows: argument and parameter checks, and the
error raised when the files are not where they should be."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ddr.errors import ConfigError, DataError


def reject_argument(dataset: str, argument: str | None) -> None:
    """Raise :class:`ConfigError` if ``argument`` was given to a dataset that takes none."""
    if argument:
        raise ConfigError(
            f"dataset '{dataset}' takes no ':ARGUMENT' (got '{dataset}:{argument}'); "
            "use its parameters instead (see `ddr list datasets`)"
        )


def reject_unknown_params(dataset: str, unknown: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise :class:`ConfigError` naming parameters ``dataset`` does not understand."""
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"dataset '{dataset}' got unknown parameter(s) {sorted(unknown)}; accepted: {accepted}"
        )


def missing_data(dataset: str, expected: Path, layout: str, how_to_get: str) -> DataError:
    """The error for a dataset whose files are absent.

    Args:
        dataset: registry name.
        expected: the directory or file that was looked for.
        layout: what must be inside ``expected`` (one or more lines).
        how_to_get: how to obtain the files (download flag, manual steps).
    """
    return DataError(
        f"dataset '{dataset}' not found: expected {expected}\n"
        f"  layout: {layout}\n"
        f"  to get it: {how_to_get}\n"
        "  (the data directory is $DDR_DATA_DIR, default ~/.cache/ddr/data)"
    )


def download_failed(dataset: str, target: Path, error: BaseException, manual: str) -> DataError:
    """The error for a download that did not succeed (offline, mirror down, bad checksum)."""
    return DataError(
        f"downloading dataset '{dataset}' into {target} failed: {type(error).__name__}: {error}\n"
        f"  check the network connection, or place the files by hand: {manual}"
    )
