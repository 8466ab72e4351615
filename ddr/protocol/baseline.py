"""The random baseline: class-balanced random subsets of the training pool, same IPC.

Subset number ``index`` draws, per class in class order, a uniform permutation from a generator
seeded with ``derive_seed(seed, "random_subset", index)`` and keeps its first ``ipc`` entries;
it depends only on the pool, the seed and the index, never on the method evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover

    from ddr.engine.data import Split


def random_subset(pool: "Split", num_classes: int, ipc: int, seed: int, index: int) -> "Split":
    """Random subset number ``index`` of ``pool`` (materialised in memory)."""
    import torch

    from ddr.engine.seeds import derive_seed, torch_generator
    from ddr.method.helpers import random_picks

    generator = torch_generator(derive_seed(seed, "random_subset", index))
    picks = random_picks(pool.class_indices(num_classes), ipc, generator)
    return pool.subset(torch.cat(picks).to(pool.labels.device))
