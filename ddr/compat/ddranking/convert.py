"""``ddr ddranking convert CONFIG.yaml -o ddr-config.yaml``: a DD-Ranking 0.2.0 config as a ddr
protocol file (docs/ddranking.md §3).

The written file ``include``s the protocol the config maps onto (``ddranking-hard`` or
``ddranking-soft``) and sets every key the mapping changes, the student architecture, label
strategy, loss and ``num_eval`` included, so ``ddr eval DIR --protocol ddr-config.yaml`` trains
what ``ddr eval DIR --ddranking-config CONFIG.yaml`` trains. What is not a protocol key (dataset,
IPC, device, ZCA, the teacher checkpoint, ARS) is written in the comment header as the ``ddr eval``
flags to give. Every problem of the config is raised at once (one ConfigError).

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddr.compat.ddranking.config import CLASS_NAMES, MappedConfig, evaluator_for, load_config, map_config
from ddr.errors import ConfigError

OPTION_KEYS = {"num_eval": "num_eval", "arch": "student.arch", "arch_params": "student.arch_params",
               "label_strategy": "label_strategy", "loss": "loss"}
"""Options of a mapped config that are protocol keys too (written into the file)."""

FLAGS = {"dataset": "--dataset", "ipc": "--ipc", "device": "--device", "teacher": "--teacher"}
"""Options of a mapped config that stay ``ddr eval`` flags."""


@dataclass(frozen=True)
class Conversion:
    """One converted config.

    Attributes:
        mapped: the mapping (protocol, options, overrides, notes).
        overrides: every dotted protocol key the written file sets over ``mapped.protocol``.
        flags: the ``ddr eval`` flags the file cannot hold (``["--dataset", "cifar10", ...]``).
        text: the YAML written.
    """

    mapped: MappedConfig
    overrides: Mapping[str, Any]
    flags: tuple[str, ...]
    text: str


def convert(path: str | Path, *, protocol: str | None = None, ars: bool | None = None) -> Conversion:
    """Map the DD-Ranking config at ``path`` and render the ddr protocol file (not written)."""
    import yaml

    from ddr.protocol.yaml import dotted_to_nested

    data = load_config(path)
    evaluator = evaluator_for(data, protocol=protocol, ars=ars)
    mapped = map_config(data, evaluator=evaluator, where=str(path))
    overrides = dict(mapped.overrides)
    for option, key in OPTION_KEYS.items():
        if option in mapped.options and mapped.options[option] is not None:
            value = mapped.options[option]
            overrides[key] = dict(value) if isinstance(value, Mapping) else value
        elif option == "loss" and option in mapped.options:  # label_type hard: no soft loss
            overrides[key] = None
    if mapped.options.get("ars"):
        overrides["metrics.ars"] = True
    flags: list[str] = []
    for option, flag in FLAGS.items():
        if mapped.options.get(option) is not None:
            flags += [flag, str(mapped.options[option])]
    if mapped.options.get("zca"):
        flags.append("--zca")
    body = {"include": f"ddr.builtins.protocols:{mapped.protocol}.yaml", **dotted_to_nested(overrides)}
    header = [f"# Converted by `ddr ddranking convert` from the DD-Ranking 0.2.0 config {path}",
              f"# ({CLASS_NAMES[evaluator]} -> protocol {mapped.protocol}; docs/ddranking.md §3).",
              f"# Evaluate with: ddr eval DIR --protocol THIS_FILE {' '.join(flags)}".rstrip()]
    if mapped.data_root is not None:
        header.append(f"# real_data_path: set DDR_DATA_DIR={mapped.data_root}")
    if mapped.save_path is not None:
        header.append(f"# save_path {mapped.save_path}: only `ddr eval --ddranking-config` writes DD-Ranking's CSV")
    header += [f"# note: {note}" for note in mapped.notes]
    text = "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, default_flow_style=None)
    return Conversion(mapped=mapped, overrides=overrides, flags=tuple(flags), text=text)


def write(conversion: Conversion, out: str | Path) -> Path:
    """Write the converted protocol file (a ConfigError naming the path when it cannot be)."""
    target = Path(out)
    try:
        target.write_text(conversion.text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc}; choose a writable -o FILE") from None
    return target
