"""The protocol's splits of a dataset: the training pool and the held-out validation split.

The validation split holds out ``per_class`` images of every class of the train split (drawn
with the run seed's ``validation`` generator); the pool is the rest. It depends on neither the
IPC nor the method, so every run of one (dataset, protocol, seed) distils from the same pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import ImageDataset, Split


def hold_out_validation(dataset: "ImageDataset", per_class: int, seed: int,
                        device: "torch.device") -> tuple["Split", "Split"]:
    """``(pool, validation)``: in-memory splits on ``device``; a streamed pool stays a lazy
    ``Subset`` of its source (labels in memory)."""
    import torch

    from ddr.engine.seeds import derive_seed, torch_generator

    generator = torch_generator(derive_seed(seed, "validation"))
    val_parts, pool_parts = [], []
    for c, idx in enumerate(dataset.train.class_indices(dataset.num_classes)):
        if len(idx) <= per_class:
            raise DdrError(f"class {c} of '{dataset.name}' has {len(idx)} training images; the protocol holds out "
                           f"{per_class} per class for validation, which leaves none to train on; "
                           "--set validation_per_class=N with a smaller N")
        perm = idx[torch.randperm(len(idx), generator=generator)]
        val_parts.append(perm[:per_class])
        pool_parts.append(perm[per_class:])
    val_index = torch.sort(torch.cat(val_parts)).values
    pool_index = torch.sort(torch.cat(pool_parts)).values
    train = dataset.train
    validation = train.subset(val_index).to(device)
    if train.in_memory:
        return train.subset(pool_index).to(device), validation
    from torch.utils.data import Subset

    from ddr.engine.data import Split

    return Split(labels=train.labels[pool_index], source=Subset(train.source, pool_index.tolist())), validation


def check_ipc(pool: "Split", dataset: "ImageDataset", ipc: int, per_class: int) -> None:
    """Refuse an IPC some class of the pool cannot fill (a random subset draws ``ipc`` per class)."""
    for c, idx in enumerate(pool.class_indices(dataset.num_classes)):
        if len(idx) < ipc:
            raise DdrError(
                f"class {c} of '{dataset.name}' has {len(idx) + per_class} training images; the protocol holds out "
                f"{per_class} per class for validation and ipc is {ipc}; lower ipc or --set validation_per_class=N"
            )
