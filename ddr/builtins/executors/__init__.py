"""Registration of the built-in executors (cheap: no torch import here)."""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import ExecutorSpec


@hookimpl
def ddr_executors() -> list[ExecutorSpec]:
    return [
        ExecutorSpec(name="local", target="ddr.execute.local:LocalExecutor",
                     summary="one job after another in this process (the default)"),
    ]
