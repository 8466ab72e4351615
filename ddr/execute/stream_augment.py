"""Augmenting the batches of several students at once, each with its own generator.

Stream ``s`` (one job: its data order, its augmentation, its generator) gets exactly what
``Pipeline.__call__(images, generator)`` gives it in THE training loop: the same augmentations
in the same order, drawing the same numbers from the same generator. Only the scheduling across
streams differs: the augmentations are applied stage by stage, and a DSA stage in its one-op
mode (``mode="S"``) first draws every stream's op family and reads them to the host together,
so a CUDA device sees one synchronisation per stage instead of one per student.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ddr.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.augment import Pipeline


def _one_family_dsa(aug: Any) -> bool:
    from ddr.builtins.augmentations.dsa import DSA

    return type(aug) is DSA and aug.mode == "S" and bool(aug.families)


def augment_streams(pipelines: "Sequence[Pipeline | None]", images: "Sequence[torch.Tensor]",
                    generators: "Sequence[torch.Generator]") -> "list[torch.Tensor]":
    """Augment ``images[s]`` (``[B, C, H, W]``) with ``pipelines[s]`` and ``generators[s]``.

    Returns the augmented batches (same shapes). A mixing augmentation is refused (the batched
    executor trains mixed batches per job): its result would need mixed targets.
    """
    import torch

    from ddr.builtins.augmentations.checks import check_batch

    out = list(images)
    chains: list[list[Any]] = [list(p.augmentations) if p else [] for p in pipelines]
    names = [list(p.names) if p else [] for p in pipelines]
    for stage in range(max((len(c) for c in chains), default=0)):
        active = [s for s, chain in enumerate(chains) if stage < len(chain)]
        one_family = [s for s in active if _one_family_dsa(chains[s][stage])]
        picks: dict[int, int] = {}
        if one_family:
            draws = []
            for s in one_family:
                check_batch("dsa", out[s], generators[s])
                draws.append(torch.randint(len(chains[s][stage].families), (1,), generator=generators[s],
                                           device=out[s].device))
            picks = dict(zip(one_family, torch.cat(draws).tolist()))  # one host read for every stream
        for s in active:
            aug = chains[s][stage]
            if s in picks:  # DSA.__call__ after its draw of the op family
                family = aug.families[picks[s]]
                out[s] = getattr(aug, f"_{family}")(out[s], generators[s], False).contiguous()
                continue
            out[s], mix = aug(out[s], generators[s])
            if mix is not None:
                name = names[s][stage] if stage < len(names[s]) else type(aug).__name__
                raise ConfigError(f"augmentation '{name}' mixed a batch, which the batched executor does not "
                                  "train; declare it with mixes=True in its AugmentationSpec (such jobs then "
                                  "run one by one) or use --executor local")
    return out
