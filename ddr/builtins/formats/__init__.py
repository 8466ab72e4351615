"""ddr's own distilled-set loaders as the last implementation of its ``ddr_load_distilled`` hook.

Its directory format, DD-Ranking's ``.pt`` layouts and class-folder image trees
(:func:`ddr.store.formats.load_distilled`); marked ``trylast`` so a plugin's format is asked first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ddr import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.distilled import DistilledSet

@hookimpl(trylast=True)
def ddr_load_distilled(path: Path, num_classes: int | None, ipc: int | None,
                       pixel_space: str | None) -> "DistilledSet":
    from ddr.store.formats import load_distilled

    return load_distilled(path, num_classes=num_classes, ipc=ipc, pixel_space=pixel_space)
