"""PNG plots of result rows (matplotlib, the optional extra ``ddr-bench[plots]``).

- :func:`plot_accuracy_vs_ipc`: acc_syn_hard (mean ± sample std) vs IPC per method, with the
  random-subset (acc_rdm_any) and full-data (acc_real_hard) references; one file per dataset.
- :func:`plot_hlr_ior`: HLR vs IOR scatter of every (method, IPC), with iso-DDRS lines; one
  file per dataset.
- :func:`plot_cross_arch`: heat map, rows methods, columns evaluation architectures (the rows'
  ``eval_arch`` or ``arch``); one file per (dataset, IPC) with more than one architecture.
- :func:`plot_w_stability`: mean DDRS of each entry against w, where the ranking changes marked.
- :func:`plot_pareto`: DDRS against distillation time and against storage, Pareto front joined.

Every title names the protocol the plotted runs were evaluated under. Files are PNG by default;
a :class:`PlotStyle` (``ddr plot --format png|pdf|svg --dpi N --size WxH``) picks the format, the
resolution (dots per inch) and a fixed figure size in inches, so a PNG is exactly
``W*dpi × H*dpi`` pixels (without a size, each figure keeps its own size, cropped to its content).

matplotlib is imported lazily, with the Agg backend; torch is never imported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ddr.errors import DdrError
from ddr.protocol.metrics import exp_score
from ddr.report.columns import column
from ddr.report.leaderboard import Board, Stat, build_leaderboard
from ddr.report.leaderboard_text import pareto

INSTALL_HINT = 'pip install "ddr-bench[plots]"'
PLOT_FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 120
RANDOM_METHOD = "random"
RANDOM_NOTE = ("the random method's subset is drawn with the distillation seed, the random-subset baseline's "
               "with each student's evaluation seed")
"""Why the ``random`` method's point is not on the random-subset line."""


@dataclass(frozen=True)
class PlotStyle:
    """How plots are written: ``fmt`` (png, pdf or svg), ``dpi`` (dots per inch) and ``size``
    ((width, height) in inches; None: each figure's own size, cropped to its content)."""

    fmt: str = "png"
    dpi: int = DEFAULT_DPI
    size: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.fmt not in PLOT_FORMATS:
            raise DdrError(f"unknown plot format '{self.fmt}'; choose one of {', '.join(PLOT_FORMATS)}")
        if isinstance(self.dpi, bool) or not isinstance(self.dpi, int) or not 10 <= self.dpi <= 2400:
            raise DdrError(f"dpi must be a whole number of dots per inch in [10, 2400], got {self.dpi!r}")
        if self.size is not None:
            w, h = self.size
            if not (0.5 <= float(w) <= 100 and 0.5 <= float(h) <= 100):
                raise DdrError(f"plot size must be between 0.5 and 100 inches per side, got {w}x{h}")


def parse_size(text: str) -> tuple[float, float]:
    """``"7x4.5"`` → ``(7.0, 4.5)`` (inches); a :class:`DdrError` for anything else."""
    width, sep, height = str(text).lower().replace(" ", "").partition("x")
    try:
        size = (float(width), float(height))
    except ValueError:
        size = None
    if not sep or size is None or not all(math.isfinite(v) and v > 0 for v in size):
        raise DdrError(f"--size expects WIDTHxHEIGHT in inches, e.g. 7x4.5, got '{text}'")
    PlotStyle(size=size)  # checks the range
    return size


def protocol_text(boards: Sequence[Board]) -> str:
    """The protocols (name, version, overrides) of ``boards``' entries, each once: what a title names."""
    found = list(dict.fromkeys(p for b in boards for p in b.protocols))
    return found[0] if len(found) == 1 else "mixed protocols: " + "; ".join(found)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise DdrError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "plot"


def _save(fig: Any, path: Path, style: PlotStyle | None = None) -> Path:
    """Write ``fig`` to ``path`` with its suffix set to the style's format; with a size, the figure
    is laid out to exactly that size (no cropping), else cropped to its content."""
    import warnings

    import matplotlib.pyplot as plt

    from ddr.store.writable import write_output

    style = style or PlotStyle()
    path = path.with_suffix("." + style.fmt)
    options: dict[str, Any] = {"dpi": style.dpi, "format": style.fmt}  # the temporary name must not pick the format
    if style.size is not None:
        fig.set_size_inches(*style.size)
        with warnings.catch_warnings():  # a crowded small figure only warns that it could not fit every label
            warnings.simplefilter("ignore")
            fig.tight_layout()
    else:
        options["bbox_inches"] = "tight"
    if style.fmt != "png":
        options["metadata"] = {"Creator": "ddr"}
    try:
        write_output(path, lambda tmp: fig.savefig(tmp, **options),
                     what="the plot", choose="choose a writable output folder")
    finally:
        plt.close(fig)
    return path


def _boards(rows: Iterable[Mapping[str, Any]] | Iterable[Board]) -> list[Board]:
    """``rows`` as boards: already-built boards pass through, result rows are ranked (w = 0.5)."""
    items = list(rows)
    if items and isinstance(items[0], Board):
        return cast("list[Board]", items)
    return build_leaderboard(cast("list[Mapping[str, Any]]", items))


def plot_accuracy_vs_ipc(rows: Iterable[Mapping[str, Any]] | Iterable[Board], out_dir: str | Path,
                         metric: str = "acc_syn_hard", style: PlotStyle | None = None) -> list[Path]:
    """``<out_dir>/accuracy_vs_ipc_<dataset>.png`` per dataset (accuracies as fractions); when the
    ``random`` method's points are off the dashed random-subset line, a note says why."""
    plt = _pyplot()
    boards = _boards(rows)
    out = []
    for dataset in sorted({b.dataset for b in boards}):
        mine = sorted((b for b in boards if b.dataset == dataset), key=lambda b: b.ipc)
        series: dict[str, list[tuple[int, Any]]] = {}
        # the references depend on the student architecture: one line per architecture
        random_ref: dict[str, list[tuple[int, Stat]]] = {}
        real_values: dict[str, list[float]] = {}
        for board in mine:
            rdm: dict[str, list[float]] = {}
            for e in board.entries:
                series.setdefault(e.label, []).append((board.ipc, e.acc(metric)))
                rdm.setdefault(e.arch or "-", []).extend(e.acc_values["acc_rdm_any"])
                real_values.setdefault(e.arch or "-", []).extend(e.acc_values["acc_real_hard"])
            for arch, values in rdm.items():
                random_ref.setdefault(arch, []).append((board.ipc, Stat.of(values)))
        fig, ax = plt.subplots(figsize=(7.5, 5))
        markers = "osD^v<>pPX*h"
        for k, (label, points) in enumerate(sorted(series.items())):
            xs = [p[0] for p in points]
            ax.errorbar(xs, [p[1].mean for p in points], yerr=[p[1].std for p in points], marker=markers[k % len(markers)],
                        capsize=3, linewidth=1.6, label=label)
        several = len(real_values) > 1
        greys = ["0.0", "0.45", "0.65", "0.3", "0.55"]
        for k, arch in enumerate(sorted(random_ref)):
            points = random_ref[arch]
            tag = f", {arch}" if several else ""
            ax.plot([p[0] for p in points], [p[1].mean for p in points], color=greys[k % 5], linestyle="--",
                    linewidth=1.4, marker="x" if len(points) == 1 else None,
                    label=f"random subset (acc_rdm_any{tag})")
            real = Stat.of(real_values.get(arch, []))
            if real.mean is not None:
                ax.axhline(real.mean, color=greys[k % 5], linestyle=":", linewidth=1.6,
                           label=f"full data{tag} (acc_real_hard = {real.mean:.3f})")
        ipcs = [b.ipc for b in mine]
        if len(ipcs) > 1 and max(ipcs) / min(ipcs) >= 8:
            ax.set_xscale("log")
        ax.set_xticks(ipcs)
        ax.set_xticklabels([str(i) for i in ipcs])
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel(f"{metric} (fraction, mean ± sample std)")
        random_off = [b.ipc for b in mine for e in b.entries if e.method == RANDOM_METHOD
                      and abs((e.acc(metric).mean or 0.0) - (Stat.of(e.acc_values["acc_rdm_any"]).mean or 0.0)) >= 5e-4]
        if random_off:
            ax.annotate(f"random ≠ random subset: {RANDOM_NOTE}", (0.0, -0.16), xycoords="axes fraction",
                        fontsize=7, color="0.35", va="top", wrap=True)
        ax.set_title(f"{dataset}: {metric} vs IPC\n{protocol_text(mine)}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, frameon=False)
        out.append(_save(fig, Path(out_dir) / f"accuracy_vs_ipc_{_slug(dataset)}.png", style))
    return out


def plot_hlr_ior(rows: Iterable[Mapping[str, Any]] | Iterable[Board], out_dir: str | Path,
                 w: float = 0.5, style: PlotStyle | None = None) -> list[Path]:
    """``<out_dir>/hlr_vs_ior_<dataset>.png`` per dataset: one point (mean ± sample std) per
    (method, IPC), the marker showing the IPC and a thin line joining a method's IPCs; the faint
    grey lines are iso-DDRS(w) lines (DDRS grows towards the upper left); the dashed line is the
    random-subset baseline (IOR = 0 by definition). When the ``random`` method's point is off that
    line (|IOR| ≥ 0.0005), a note says why: :data:`RANDOM_NOTE`."""
    plt = _pyplot()
    boards = _boards(rows)
    labels = sorted({e.label for b in boards for e in b.entries})
    colors = {label: plt.cm.tab10(k % 10) if len(labels) <= 10 else plt.cm.tab20(k % 20)
              for k, label in enumerate(labels)}
    out = []
    for dataset in sorted({b.dataset for b in boards}):
        mine = sorted((b for b in boards if b.dataset == dataset), key=lambda b: b.ipc)
        ipcs = [b.ipc for b in mine]
        markers = dict(zip(ipcs, "osD^v<>pPX*h" * 4))
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        xs, ys = [], []
        paths: dict[str, list[tuple[float, float]]] = {}
        for board in mine:
            for e in board.entries:
                h, i = e.hlr, e.ior
                # every entry of a leaderboard pools ≥ 1 student, so its HLR and IOR means exist
                assert h.mean is not None and i.mean is not None
                ax.errorbar(h.mean, i.mean, xerr=h.std, yerr=i.std, marker=markers[board.ipc], color=colors[e.label],
                            markersize=7, capsize=2, linestyle="none", elinewidth=0.9)
                paths.setdefault(e.label, []).append((h.mean, i.mean))
                xs += [h.mean - (h.std or 0), h.mean + (h.std or 0)]
                ys += [i.mean - (i.std or 0), i.mean + (i.std or 0)]
        for label, points in paths.items():
            if len(points) > 1:
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colors[label], linewidth=0.8, alpha=0.5)
        ys.append(0.0)  # the random-subset line stays in view
        lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
        pad_x, pad_y = max((hi_x - lo_x) * 0.08, 0.01), max((hi_y - lo_y) * 0.08, 0.01)
        x0, x1, y0, y1 = lo_x - pad_x, hi_x + pad_x, lo_y - pad_y, hi_y + pad_y
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        if 0 < w < 1:
            import numpy as np

            grid_x = np.linspace(x0, x1, 50)
            corners = [w * y - (1 - w) * x for x in (x0, x1) for y in (y0, y1)]
            for alpha in np.linspace(min(corners), max(corners), 6)[1:-1]:
                ax.plot(grid_x, (alpha + (1 - w) * grid_x) / w, color="0.8", linewidth=0.8, zorder=0)
                x_at, y_at = x1, (alpha + (1 - w) * x1) / w
                if y_at > y1:  # the line leaves through the top edge
                    x_at, y_at = (w * y1 - alpha) / (1 - w), y1
                ax.annotate(f"DDRS {exp_score(float(alpha)):.3f}", (x_at, y_at), fontsize=7, color="0.5", ha="right",
                            va="top",
                            xytext=(-3, -3), textcoords="offset points")
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1.0, zorder=1,
                   label="random subset (IOR = 0, by definition)")
        random_off = [(board.ipc, e.ior.mean) for board in mine for e in board.entries
                      if e.method == RANDOM_METHOD and e.ior.mean is not None and abs(e.ior.mean) >= 5e-4]
        if random_off:
            where = ", ".join(f"IPC {ipc}: IOR {value:+.4f}" for ipc, value in random_off)
            ax.annotate(f"random method ≠ random-subset line ({where}): {RANDOM_NOTE}", (0.0, -0.14),
                        xycoords="axes fraction", fontsize=7, color="0.35", va="top", wrap=True)
        for label in labels:
            if label in paths:
                ax.plot([], [], marker="o", linestyle="none", color=colors[label], label=label)
        for ipc in ipcs:
            ax.plot([], [], marker=markers[ipc], linestyle="none", color="0.3", label=f"IPC {ipc}")
        ax.set_xlabel(f"{column('hlr').formula} ({column('hlr').direction_words})")
        ax.set_ylabel(f"{column('ior').formula} ({column('ior').direction_words})")
        ax.set_title(f"{dataset}: HLR vs IOR (grey: iso-DDRS lines, w = {w:g})\n{protocol_text(mine)}", fontsize=10)
        ax.grid(True, alpha=0.25)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, frameon=False)
        out.append(_save(fig, Path(out_dir) / f"hlr_vs_ior_{_slug(dataset)}.png", style))
    return out


def cross_arch_matrix(
    boards: Sequence[Board], metric: str = "acc_syn_hard",
) -> list[tuple[Board, list[str], list[str], list[list[float | None]]]]:
    """Per board with ≥ 2 architectures: (board, method labels, archs, matrix of metric means)."""
    out = []
    for board in boards:
        archs = sorted({e.arch for e in board.entries if e.arch})
        if len(archs) < 2:
            continue
        methods = sorted({e.base_label for e in board.entries})
        cells: dict[tuple[str, str | None], float | None] = {}
        for e in board.entries:
            cells[(e.base_label, e.arch)] = e.ddrs.mean if metric == "ddrs" else (
                e.hlr.mean if metric == "hlr" else e.ior.mean if metric == "ior" else e.acc(metric).mean)
        out.append((board, methods, archs, [[cells.get((m, a)) for a in archs] for m in methods]))
    return out


def plot_cross_arch(rows: Iterable[Mapping[str, Any]] | Iterable[Board], out_dir: str | Path,
                    metric: str = "acc_syn_hard", style: PlotStyle | None = None) -> list[Path]:
    """``<out_dir>/cross_arch_<dataset>_ipc<N>.png`` for each (dataset, IPC) evaluated on ≥ 2 architectures."""
    plt = _pyplot()
    import numpy as np

    out = []
    for board, methods, archs, matrix in cross_arch_matrix(_boards(rows), metric):
        data = np.array([[math.nan if v is None else v for v in row] for row in matrix], dtype=float)
        fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(archs), 1.2 + 0.55 * len(methods)))
        image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(archs)))
        ax.set_xticklabels(archs, rotation=30, ha="right")
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods)
        finite = data[np.isfinite(data)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0
        for r in range(len(methods)):
            for c in range(len(archs)):
                value = data[r, c]
                if not math.isfinite(value):
                    ax.text(c, r, "n/a", ha="center", va="center", fontsize=9, color="0.45")
                else:
                    ax.text(c, r, f"{value:.3f}", ha="center", va="center", fontsize=9,
                            color="white" if value < middle else "black")
        ax.set_xlabel("evaluation architecture")
        ax.set_title(f"{board.title}: {metric}\n{protocol_text([board])}", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.04, label=metric)
        out.append(_save(fig, Path(out_dir) / f"cross_arch_{_slug(board.dataset)}_ipc{board.ipc}.png", style))
    return out


def plot_w_stability(rows: Iterable[Mapping[str, Any]] | Iterable[Board], out_dir: str | Path,
                     style: PlotStyle | None = None) -> list[Path]:
    """``<out_dir>/ddrs_vs_w_<dataset>_ipc<k>.png`` per board: mean DDRS (LRS) of each entry against
    w ∈ [0, 1], recomputed per student; dashed lines where neighbours swap (the ranking holds
    between them), the shaded band the hierarchical/t 95 % interval at each w on a 0.05 grid."""
    import numpy as np

    plt = _pyplot()
    out = []
    for board in _boards(rows):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        grid = np.linspace(0.0, 1.0, 101)
        coarse = np.linspace(0.0, 1.0, 21)
        for k, e in enumerate(board.entries):
            color = plt.cm.tab10(k % 10)
            means = [float(np.mean(e.values("ddrs", float(w)))) for w in grid]
            ax.plot(grid, means, color=color, linewidth=1.6, label=e.label)
            bands = [e.ddrs_at(float(w)).ci for w in coarse]
            if all(b is not None for b in bands):
                ax.fill_between(coarse, [b.low for b in bands if b], [b.high for b in bands if b],
                                color=color, alpha=0.12, linewidth=0)
        segments = board.analysis.segments if board.analysis is not None else []
        for seg in segments[1:]:
            ax.axvline(seg.low, color="0.4", linestyle="--", linewidth=0.8)
            ax.annotate(f"w = {seg.low:.2f}", (seg.low, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                        rotation=90, va="top", ha="right", color="0.3")
        ax.axvline(board.w, color="0.0", linewidth=0.6, alpha=0.5)
        ax.set_xlabel("w (weight of IOR against HLR)")
        ax.set_ylabel(f"{column('ddrs').label}, mean over students")
        ax.set_title(f"{board.title}: ranking against w ({protocol_text([board])})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, frameon=False)
        out.append(_save(fig, Path(out_dir) / f"ddrs_vs_w_{_slug(board.dataset)}_ipc{board.ipc}.png", style))
    return out


def plot_pareto(rows: Iterable[Mapping[str, Any]] | Iterable[Board], out_dir: str | Path,
                style: PlotStyle | None = None) -> list[Path]:
    """``<out_dir>/pareto_<dataset>_ipc<k>.png`` per board with recorded costs: DDRS (LRS) against
    distillation wall time and against storage (log scales), each entry a point with its 95 %
    interval, the Pareto front (nothing is both better and cheaper) joined by a line."""
    plt = _pyplot()
    out = []
    for board in _boards(rows):
        panels = [("distill_wall_seconds", "distillation wall time (s, log)"), ("storage", "storage (bytes, log)")]
        data = []
        for key, label in panels:
            points = []
            for e in board.entries:
                cost = e.storage_bytes if key == "storage" else e.cost(key)
                if cost is not None and cost > 0 and e.ddrs.mean is not None:
                    points.append((e.label, float(e.ddrs.mean), float(cost)))
            data.append((key, label, points))
        if not any(points for _, _, points in data):
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        by_label = {e.label: e for e in board.entries}
        for ax, (key, label, points) in zip(axes, data):
            on_front = pareto(board.entries, "storage" if key == "storage" else key)
            for k, (name, score, cost) in enumerate(points):
                ci = by_label[name].ddrs.ci
                err = [[score - ci.low], [ci.high - score]] if ci is not None else None
                ax.errorbar(cost, score, yerr=err, marker="o", color=plt.cm.tab10(k % 10), capsize=2,
                            linestyle="none")
                ax.annotate(name, (cost, score), fontsize=8, xytext=(4, 3), textcoords="offset points")
            front = sorted((p for p in points if p[0] in on_front), key=lambda p: p[2])
            if len(front) > 1:
                ax.plot([p[2] for p in front], [p[1] for p in front], color="0.3", linewidth=1, linestyle="--",
                        label="Pareto front")
                ax.legend(fontsize=8, frameon=False)
            if points:
                ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(column("ddrs").label)
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"{board.title}: score against cost ({protocol_text([board])})", fontsize=10)
        out.append(_save(fig, Path(out_dir) / f"pareto_{_slug(board.dataset)}_ipc{board.ipc}.png", style))
    return out


def plot_all(rows: Iterable[Mapping[str, Any]], out_dir: str | Path, w: float = 0.5, *, fmt: str = "png",
             dpi: int | None = None, size: tuple[float, float] | None = None) -> list[Path]:
    """Every plot of ``rows`` into ``out_dir`` as ``fmt`` files (png, pdf or svg) at ``dpi`` dots per
    inch (default 120) and, when given, exactly ``size`` = (width, height) inches; returns the paths."""
    style = PlotStyle(fmt, DEFAULT_DPI if dpi is None else dpi, size)
    _pyplot()
    rows = list(rows)
    if not rows:
        raise DdrError("no runs to plot; import run folders with `ddr results import DIR` first")
    boards = build_leaderboard(rows, w)
    return (plot_accuracy_vs_ipc(boards, out_dir, style=style) + plot_hlr_ior(boards, out_dir, w, style)
            + plot_cross_arch(boards, out_dir, style=style) + plot_w_stability(boards, out_dir, style)
            + plot_pareto(boards, out_dir, style))
