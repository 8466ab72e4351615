"""Markdown, plain-text and CSV tables and number formatting shared by the leaderboard and the results commands.

Only the standard library; never imports torch.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any


def fmt_num(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals; ``-`` for missing or non-finite."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "-"
    return f"{number:.{digits}f}"


def fmt_pm(mean: Any, std: Any, digits: int = 4) -> str:
    """``mean ± std`` (``-`` when the mean is missing)."""
    if mean is None:
        return "-"
    return f"{fmt_num(mean, digits)} ± {fmt_num(std, digits)}"


def fmt_bytes(value: Any) -> str:
    """Bytes in B, KiB, MiB or GiB (1 decimal); ``-`` when unknown."""
    if value is None:
        return "-"
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(number) < 1024 or unit == "GiB":
            return f"{int(number)} B" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} GiB"  # pragma: no cover


def fmt_seconds(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    if number < 60:
        return f"{number:.1f} s"
    if number < 3600:
        return f"{number / 60:.1f} min"
    return f"{number / 3600:.2f} h"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds ``l``/``r`` per column."""
    align = list(align or ["l"] * len(headers))
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               align: Sequence[str] | None = None) -> str:
    """A fixed-width plain-text table for terminals."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    align = list(align or ["l"] * len(headers))
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV (RFC 4180, ``\\n`` line ends) with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(["" if c is None else c for c in row] for row in rows)
    return buffer.getvalue()
