"""Run configs (``ddr validate run.yaml``): the YAML form of one ``ddr run`` / ``ddr eval``.

Keys mirror the CLI options; names are checked against the registries so a typo fails before
any work starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ddr.errors import ConfigError
from ddr.protocol.yaml import check_schema, dotted_to_nested

RUN_SCHEMA: dict[str, Any] = {
    "method": str, "method_params": dict, "dataset": str, "ipc": int, "arch": str, "protocol": str,
    "label_strategy": str, "loss": (str, dict), "seed": int, "num_eval": int, "epochs": int,
    "set": dict, "iterations": int,
}


def validate_run_config(data: Mapping[str, Any], system: Any, where: str = "run config") -> str:
    """Check keys, types and that every named component exists; return a one-line summary."""
    from ddr.protocol.config import default_protocol, resolve_protocol

    check_schema(data, RUN_SCHEMA, where)
    if "ipc" in data and data["ipc"] < 1:
        raise ConfigError(f"{where}: ipc must be >= 1")
    method_protocol = "hard"
    if "method" in data:
        spec = system.methods().resolve(data["method"]).spec
        spec.check_params(dict(data.get("method_params") or {}))
        method_protocol = spec.protocol
    dataset = data.get("dataset", "digits")
    system.datasets().resolve(dataset)
    if "arch" in data:
        system.architectures().resolve(data["arch"])
    if "label_strategy" in data:
        ref = data["label_strategy"]
        if ref not in system.losses():
            system.label_strategies().resolve(ref)
    if "loss" in data:
        from ddr.engine.build import loss_spec

        loss_spec(data["loss"], system=system)
    protocol = resolve_protocol(data.get("protocol") or default_protocol(dataset, method_protocol),
                                dotted_to_nested(dict(data.get("set") or {})), system, dataset=dataset,
                                ipc=data.get("ipc") if isinstance(data.get("ipc"), int) else None)
    return (f"method {data.get('method', '-')}, dataset {dataset}, ipc {data.get('ipc', 1)}, "
            f"protocol {protocol.name} v{protocol.version}")
