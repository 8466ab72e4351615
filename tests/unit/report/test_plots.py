"""PNG plots (ddr.report.plots): the optional matplotlib extra, files written, heat-map numbers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from helpers.results import FIXTURES, make_row, real_runs

from ddr.errors import DdrError
from ddr.report.leaderboard import build_leaderboard
from ddr.store.results import load_record

XARCH = FIXTURES.parent / "results_xarch"


def real_rows() -> list[dict]:
    runs = real_runs() + sorted(p for p in XARCH.iterdir() if (p / "metrics.json").exists())
    return [load_record(r) for r in runs]


def test_missing_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ddr.report import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(DdrError, match=r'pip install "ddr-bench\[plots\]"'):
        plots.plot_all([make_row("A", [0.1], [0.1])], tmp_path)
    assert not list(tmp_path.iterdir())


def test_cross_arch_matrix_numbers() -> None:
    from ddr.report.plots import cross_arch_matrix

    rows = [make_row("dm", [0.1], [0.2], arch="convnet"), make_row("dm", [0.3], [0.2], arch="mlp"),
            make_row("dc", [0.2, 0.4], [0.1, 0.1], arch="convnet"), make_row("dc", [0.2], [0.1], arch="resnet18"),
            make_row("dm", [0.1], [0.2], arch="convnet", ipc=10)]  # one arch only at IPC 10: no heat map
    ((board, methods, archs, matrix),) = cross_arch_matrix(build_leaderboard(rows))
    assert (board.ipc, methods, archs) == (1, ["dc", "dm"], ["convnet", "mlp", "resnet18"])
    assert matrix == [[pytest.approx(0.6, abs=1e-15), None, pytest.approx(0.7, abs=1e-15)],
                      [pytest.approx(0.8, abs=1e-15), pytest.approx(0.6, abs=1e-15), None]]
    ((_, _, _, ddrs),) = cross_arch_matrix(build_leaderboard(rows), metric="ddrs")
    assert ddrs[1][0] == build_leaderboard(rows)[0].entries[0].ddrs.mean


def _check_png(path: Path) -> None:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert width >= 400 and height >= 250
    assert float(image[..., :3].std()) > 0.05  # not blank


def test_plot_all_writes_readable_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ddr.report.plots import plot_all

    rows = real_rows()
    assert {r["arch"] for r in rows} == {"convnet", "mlp"}
    paths = plot_all(rows, tmp_path / "plots")
    assert [p.name for p in paths] == ["accuracy_vs_ipc_digits.png", "hlr_vs_ior_digits.png", "cross_arch_digits_ipc1.png",
                                       "ddrs_vs_w_digits_ipc1.png", "ddrs_vs_w_digits_ipc2.png",
                                       "pareto_digits_ipc1.png", "pareto_digits_ipc2.png"]
    for path in paths:
        _check_png(path)
    import matplotlib

    assert matplotlib.get_backend().lower() == "agg"


def test_synthetic_suite_several_datasets(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ddr.report.plots import plot_all

    rows = []
    for dataset in ("cifar10", "digits"):
        for ipc in (1, 10, 50):
            for k, method in enumerate(("random", "dm", "dc", "mtt")):
                rows.append(make_row(method, [0.4 / ipc ** 0.3 - 0.05 * k], [0.02 * k * ipc ** 0.2],
                                     dataset=dataset, ipc=ipc, arch="convnet"))
                rows.append(make_row(method, [0.45 / ipc ** 0.3 - 0.04 * k], [0.015 * k], dataset=dataset, ipc=ipc,
                                     arch="resnet18", run_id=f"{method}{dataset}{ipc}r"))
    paths = plot_all(rows, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(["accuracy_vs_ipc_cifar10.png", "accuracy_vs_ipc_digits.png", "hlr_vs_ior_cifar10.png",
                            "hlr_vs_ior_digits.png"]
                           + [f"{kind}_{d}_ipc{i}.png" for kind in ("cross_arch", "ddrs_vs_w")
                              for d in ("cifar10", "digits") for i in (1, 10, 50)])  # no costs: no Pareto plot
    for path in paths:
        _check_png(path)


def test_no_rows_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from ddr.cli.results import add_results_commands
    from ddr.report.plots import plot_all
    from ddr.store.results import ResultsDB

    with pytest.raises(DdrError, match="no runs to plot"):
        plot_all([], tmp_path)
    db_path = tmp_path / "r.sqlite"
    with ResultsDB(db_path) as db:
        db.import_dirs([FIXTURES, XARCH], suite="digits")
    parser = argparse.ArgumentParser()
    add_results_commands(parser.add_subparsers())
    args = parser.parse_args(["plot", "--db", str(db_path), "--suite", "digits", "-o", str(tmp_path / "out")])
    assert args.func(args) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["accuracy_vs_ipc_digits.png", "cross_arch_digits_ipc1.png",
                                                     "ddrs_vs_w_digits_ipc1.png", "ddrs_vs_w_digits_ipc2.png",
                                                     "hlr_vs_ior_digits.png", "pareto_digits_ipc1.png",
                                                     "pareto_digits_ipc2.png"]
    assert all(Path(p).exists() for p in printed)


def test_pareto_front_and_w_stability_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ddr.report.leaderboard_text import pareto
    from ddr.report.plots import plot_pareto, plot_w_stability

    rows = [make_row("A", [0.05, 0.07], [0.05, 0.07], image_bytes=1000, distill_seconds=3.0),
            make_row("B", [0.30, 0.32], [0.40, 0.42], image_bytes=5000, distill_seconds=30.0),
            make_row("C", [0.10, 0.12, 0.14], [0.20, 0.10, 0.15], image_bytes=800, distill_seconds=100.0)]
    boards = build_leaderboard(rows)
    # B has the best DDRS, A the cheapest distillation; C is slower than both and beaten by B
    assert pareto(boards[0].entries, "distill_wall_seconds") == {"A", "B"}
    assert pareto(boards[0].entries, "storage") == {"B", "C"}  # C stores the least
    (w_plot,) = plot_w_stability(boards, tmp_path)
    (front,) = plot_pareto(boards, tmp_path)
    assert (w_plot.name, front.name) == ("ddrs_vs_w_digits_ipc1.png", "pareto_digits_ipc1.png")
    for path in (w_plot, front):
        _check_png(path)
