"""Which numbers a report shows, labelled and directed by the metric registry.

Every table, board and plot names a quantity through :func:`column`: its label, its direction
(↑ higher is better, ↓ lower) and its formula come from the :class:`ddr.plugin.specs.MetricSpec`
that defines it (``ddr list metrics``), built in or installed by a plugin, so no report spells a
direction or formula of its own. A student metric's columns (``robust_pgd_syn``, ``_rdm``,
``_gap``, ``_clean_syn`` ...) are labelled from its spec too.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

BUILTIN_ORDER = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs", "ars")
"""The built-in scores in the order every report lists them."""

_SIDE_WORDS = {"syn": "syn", "rdm": "random", "syn_hard": "syn (hard)", "gap": "gap syn − random"}


@dataclass(frozen=True)
class Column:
    """One reported quantity: its key in a result, label, direction and formula."""

    key: str
    label: str
    higher_is_better: bool
    formula: str
    metric: str
    metric_label: str = ""

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        """``HLR ↓``: the label with its direction."""
        return f"{self.label} {self.arrow}"

    @property
    def direction_words(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


@lru_cache(maxsize=1)
def _default_specs() -> tuple[Any, ...]:
    from ddr.plugin.manager import PluginSystem

    return tuple(PluginSystem().metrics().specs)


def metric_specs(system: Any = None) -> tuple[Any, ...]:
    """Every registered metric spec (the given plugin system's, else a default one, built once)."""
    return tuple(system.metrics().specs) if system is not None else _default_specs()


def _columns(specs: Iterable[Any]) -> dict[str, Column]:
    out: dict[str, Column] = {}
    for spec in specs:
        if spec.needs != "student":
            out[spec.name] = Column(spec.name, spec.label, spec.higher_is_better, spec.formula, spec.name, spec.label)
            continue
        for key in spec.columns():
            rest = key[len(spec.name) + 1:]
            output, _, side = rest.partition("_") if rest.split("_")[0] in spec.outputs[:-1] else ("", "", rest)
            words = _SIDE_WORDS.get(side, side)
            label = f"{spec.label} {output + ', ' if output else ''}{words}".strip()
            higher = spec.higher_is_better if not output else True
            out[key] = Column(key, label, higher, spec.formula, spec.name, spec.label)
    return out


def columns(system: Any = None) -> dict[str, Column]:
    """Every column any registered metric defines, by result key."""
    return _columns(metric_specs(system))


def column(key: str, system: Any = None) -> Column:
    """The column of ``key`` (an unregistered key: its own name, higher is better)."""
    return columns(system).get(key) or Column(key, key, True, "", key, key)


def builtin_columns(system: Any = None) -> list[Column]:
    """The built-in scores' columns in report order."""
    known = columns(system)
    return [known[k] for k in BUILTIN_ORDER if k in known]


def extra_columns(keys: Iterable[str], system: Any = None) -> list[Column]:
    """The registered metric columns among ``keys`` that are not built-in scores, in the order
    their metrics define them (so ``robust_pgd_syn, _rdm, _gap`` stay together)."""
    present = set(keys)
    return [c for k, c in columns(system).items() if k in present and k not in BUILTIN_ORDER]


def is_summary(value: Any) -> bool:
    """Whether a result value is a per-student summary (``{mean, values, ...}``)."""
    return isinstance(value, Mapping) and "mean" in value and "values" in value
