"""The side-by-side benchmark's agreement statistics (benchmarks/speed_vs_ddranking.py)."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
from helpers.benchmarks import load_benchmark

from ddr.protocol.metrics import ddrs, hlr


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("speed_vs_ddranking")


def summary(mean: float, std: float, n: int) -> dict[str, float]:
    return {"mean": mean, "std": std, "n": n}


def test_welch_se_and_the_shared_draw(bench: ModuleType) -> None:
    a, b = summary(0.30, 0.10, 10), summary(0.25, 0.10, 10)
    plain = bench.agreement(a, b)
    assert plain["se"] == pytest.approx(math.sqrt(0.002)) and plain["t"] == pytest.approx(0.05 / math.sqrt(0.002))
    assert plain["agree"]
    shared = bench.agreement(a, b, 0.03)
    assert shared["se"] == pytest.approx(math.sqrt(0.002 + 0.0009))
    assert not bench.agreement(summary(0.45, 0.04, 10), summary(0.40, 0.0, 1))["agree"]  # n = 1 alone: SE 0.013
    assert bench.agreement(summary(0.45, 0.04, 10), summary(0.40, 0.0, 1), 0.04)["agree"]  # its draw counted


def per_set(real_ref_std: float, real_ddr_n: int, ddrs_mean: float) -> dict[str, dict[str, object]]:
    """DD-Ranking's ten real-data models beside ddr's ``real_ddr_n`` (1: one cached model)."""
    return {"REF": {"scores": {"acc_real_hard": summary(0.45, real_ref_std, 10)}},
            "DDR": {"scores": {"acc_real_hard": summary(0.41, 0.0, real_ddr_n), "ddrs": summary(ddrs_mean, 0.02, 10)}}}


def test_the_real_model_term_follows_each_scores_slope(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "REF", "REF")
    monkeypatch.setattr(bench, "DDR", "DDR")
    syn, rdm = 0.26, 0.27
    real = 0.41
    score = ddrs(hlr(real, syn), syn - rdm)
    sets = per_set(0.042, 1, score)
    assert bench.real_model_sd(sets, "hlr") == pytest.approx(0.042)
    assert bench.real_model_sd(sets, "acc_real_hard") == pytest.approx(0.042)
    assert bench.real_model_sd(sets, "acc_syn_hard") == 0.0 and bench.real_model_sd(sets, "ior") == 0.0
    eps = 1e-6  # DDRS's slope in the real-data accuracy, numerically, from ddr's own formula
    slope = abs(ddrs(hlr(real + eps, syn), syn - rdm) - ddrs(hlr(real - eps, syn), syn - rdm)) / (2 * eps)
    assert bench.real_model_sd(sets, "ddrs") == pytest.approx(slope * 0.042, rel=1e-4)
    assert bench.real_model_sd(per_set(0.042, 10, score), "hlr") == 0.0  # ddr trained one per evaluation
