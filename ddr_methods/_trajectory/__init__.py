"""Trajectory-matching family (MTT, DATM): expert trajectories, functional unrolled training and
the import of official MTT buffers, plus the ``ddr experts`` command.

Registered through the ``ddr`` entry point ``trajectory = "ddr_methods._trajectory"``; it provides no
components, only ``ddr experts train|list|import``. Importing this module does not import torch;
the heavy code lives in :mod:`ddr_methods._trajectory.experts`, :mod:`ddr_methods._trajectory.gsam` (DATM's
GSAM expert training), :mod:`ddr_methods._trajectory.functional`, :mod:`ddr_methods._trajectory.matching` and
:mod:`ddr_methods._trajectory.cli`.
"""

from __future__ import annotations

from typing import Any

from ddr import hookimpl


@hookimpl
def ddr_add_commands(subparsers: Any) -> None:
    from ddr_methods._trajectory.cli import add_commands

    add_commands(subparsers)
