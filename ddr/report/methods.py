"""What a report says about the method behind an entry: its paper's venue and year, and the label
type its students trained with.

Bibliographic facts come from the method's spec (:class:`ddr.plugin.specs.MethodSpec` fields
``paper``, ``venue``, ``year``, ``code``, ``label_type``), looked up by name in the installed
plugins; a method that is not installed here (a record from elsewhere) simply has none. The label
type of an entry is what its students trained on: ``hard`` when the run's label strategy is
``hard``, ``soft`` for every other strategy (``stored_soft``, ``teacher``, ``teacher_views:K``);
records without a label strategy fall back to the spec's ``label_type``.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class MethodInfo:
    """The bibliographic fields of one method (each ``None`` when the spec leaves it out)."""

    paper: str | None = None
    venue: str | None = None
    year: int | None = None
    code: str | None = None
    label_type: str | None = None
    family: str | None = None

    @property
    def venue_text(self) -> str:
        """``ICLR 2021`` (the venue, with the year when the venue does not carry it); ``-`` when unknown."""
        if self.venue and self.year is not None and str(self.year) not in self.venue:
            return f"{self.venue} {self.year}"
        if self.venue:
            return self.venue
        return str(self.year) if self.year is not None else "-"


@lru_cache(maxsize=1)
def _infos() -> dict[str, MethodInfo]:
    from ddr.plugin.manager import PluginSystem

    try:
        specs = PluginSystem().methods().list()
    except Exception:  # noqa: BLE001 - a report of records made elsewhere needs no installed plugin
        return {}
    out: dict[str, MethodInfo] = {}
    for spec in specs:
        info = MethodInfo(getattr(spec, "paper", None), getattr(spec, "venue", None), getattr(spec, "year", None),
                          getattr(spec, "code", None), getattr(spec, "label_type", None),
                          getattr(spec, "family", None))
        for name in (spec.name, *spec.aliases):
            out.setdefault(name, info)
    return out


def method_info(method: str) -> MethodInfo:
    """The installed method ``method``'s bibliographic fields (all ``None`` when it is not installed)."""
    return _infos().get(str(method), MethodInfo())


def label_type(method: str, recipe: Mapping[str, Any] | None = None) -> str:
    """``hard`` or ``soft``: what the entry's students trained on (its run's label strategy, else the
    method spec's ``label_type``); ``-`` when neither says."""
    recipe = recipe or {}
    config = recipe.get("protocol_config") if isinstance(recipe.get("protocol_config"), Mapping) else {}
    strategy = recipe.get("label_strategy") or (config or {}).get("label_strategy")
    if strategy:
        return "hard" if str(strategy) == "hard" else "soft"
    return method_info(method).label_type or "-"


def method_family(method: str) -> str:
    """``selection`` (a coreset: it picks real images) or ``distillation``, from the installed
    method's spec; a method not installed here counts as ``distillation``."""
    return method_info(method).family or "distillation"
