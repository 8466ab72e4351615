"""The method author's contract: what ``distill(ctx)`` receives and returns, and the parameter
schema. (Helpers most methods share are in :mod:`ddr.method.helpers`, which imports torch.)

    from ddr.method import DistillContext, DistilledSet, ParamSpec
"""

from ddr.method.context import DistillContext, Method
from ddr.method.distilled import DistilledSet
from ddr.plugin.params import ParamSpec

__all__ = ["DistillContext", "DistilledSet", "Method", "ParamSpec"]
