"""Upper bounds on the counts and sizes a user types, checked before any work starts.

A count is typed in a second and paid for in days: ``--num-eval 10000`` instead of ``100``,
``epochs: 30000`` for ``300``, a suite listing a million seeds. Every such number has a bound well
above what the field runs (DD papers train at most a few thousand epochs, evaluate a handful of
students per cell, and distil at most a few hundred images per class); a value above it is a
:class:`~ddr.errors.ConfigError` naming the bound and the environment variable that raises it, so
a deliberate large run stays one export away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ddr.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """The largest sane ``value`` of a count, what it counts (plural noun) and the variable that
    raises it."""

    limit: int
    counts: str
    env: str


BOUNDS: dict[str, Bound] = {
    "ipc": Bound(10_000, "images per class", "DDR_MAX_IPC"),
    "num_eval": Bound(1_000, "students per accuracy", "DDR_MAX_NUM_EVAL"),
    "epochs": Bound(10_000, "epochs of one training", "DDR_MAX_EPOCHS"),
    "distill_seeds": Bound(100, "distillations of one run (--distill-seeds)", "DDR_MAX_DISTILL_SEEDS"),
    "image_size": Bound(2_048, "pixels per image side", "DDR_MAX_IMAGE_SIZE"),
    "suite_runs": Bound(10_000, "runs in one suite", "DDR_MAX_SUITE_RUNS"),
}
"""Every bound, by the name :func:`check_bound` takes."""


def limit(name: str) -> int:
    """The bound of ``name``: its default, or the value of its environment variable."""
    bound = BOUNDS[name]
    raw = os.environ.get(bound.env)
    if raw is None or not raw.strip():
        return bound.limit
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{bound.env}={raw!r} must be a positive whole number (the most {bound.counts} ddr "
                          f"accepts; default {bound.limit:,})")
    return value


def check_bound(name: str, value: Any, *, what: str) -> None:
    """Refuse ``value`` (an int; other types are checked elsewhere) above the bound of ``name``;
    ``what`` names the setting in the message (``--num-eval``, ``digits.yaml: train.epochs``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return
    most = limit(name)
    if value > most:
        bound = BOUNDS[name]
        raise ConfigError(f"{what} = {value:,} is above ddr's bound of {most:,} {bound.counts}, which guards against "
                          f"a mistyped count that would run for days; if you mean it, set {bound.env}={value} "
                          "(or higher)")
