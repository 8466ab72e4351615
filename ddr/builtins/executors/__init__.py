"""Registration of the built-in executors (cheap: no torch import here)."""

from __future__ import annotations

from ddr import hookimpl
from ddr.plugin.specs import ExecutorSpec


@hookimpl
def ddr_executors() -> list[ExecutorSpec]:
    return [
        ExecutorSpec(name="local", target="ddr.execute.local:LocalExecutor",
                     summary="one job after another in this process (the default)",
                     presets={"compiled": {"compile": True}, "bf16": {"bf16": True}}),
        ExecutorSpec(name="ray", target="ddr.execute.ray:RayExecutor",
                     summary="each job a Ray task, on a local Ray (ended with ddr) or a cluster (--address ADDR; "
                             "--executor-option connect_timeout=SECONDS, default 30)"),
        ExecutorSpec(name="batched", target="ddr.execute.batched:BatchedExecutor",
                     summary="compatible students trained together as one stacked model (grouped convs / vmap); "
                             "the rest job by job",
                     presets={"bf16": {"bf16": True}, "vmap": {"backend": "vmap"}}),
    ]
