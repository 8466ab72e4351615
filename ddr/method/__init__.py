"""The method author's contract: what ``distill(ctx)`` receives and returns, the data it holds and
the parameter schema. Cheap to import (no torch). Its submodules are the rest of the door:
:mod:`ddr.method.helpers` (what most methods share), :mod:`ddr.method.training` (ddr's one
training loop), :mod:`ddr.method.assets` (what a method caches), :mod:`ddr.method.augment`
(batched geometric primitives); they import torch.

    from ddr.method import DistillContext, DistilledSet, ParamSpec, Split
"""

from ddr.engine.data import ImageDataset, Split
from ddr.method.context import DistillContext, Method
from ddr.method.distilled import DistilledSet
from ddr.plugin.params import ParamSpec

__all__ = ["DistillContext", "DistilledSet", "ImageDataset", "Method", "ParamSpec", "Split"]
