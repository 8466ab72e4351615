"""The published numbers a method spec reports (``ddr describe method M``) are its paper's, cell by
cell, as the papers print them (percent, converted to fractions here)."""

from __future__ import annotations

import pytest

from ddr.plugin.manager import PluginSystem

PAPERS = {
    # MTT, Cazenavette et al. CVPR'22, Table 1 (ConvNet-3; TinyImageNet ConvNet-4)
    "mtt": {"cifar10": (46.3, 65.3, 71.6), "cifar100": (24.3, 40.1, 47.7), "tinyimagenet": (8.8, 23.2, 28.0)},
    # DATM, Guo et al. ICLR'24, Table 1 (ConvNet-3; TinyImageNet ConvNet-4)
    "datm": {"cifar10": (46.9, 66.8, 76.1), "cifar100": (27.9, 47.2, 55.0), "tinyimagenet": (17.1, 31.1, 39.7)},
}


@pytest.mark.parametrize("method", sorted(PAPERS))
def test_reported_numbers_are_the_papers(method: str) -> None:
    spec = PluginSystem().methods().resolve(method).spec
    expected = {f"{dataset}/ipc{ipc}": pct / 100 for dataset, cells in PAPERS[method].items()
                for ipc, pct in zip((1, 10, 50), cells)}
    assert {k: float(v) for k, v in spec.reported.items()} == pytest.approx(expected, abs=1e-9)
