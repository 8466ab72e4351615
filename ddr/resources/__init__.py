"""Resources: what the runs of one command share (:mod:`ddr.resources.session`) and what runs on
one dataset under one protocol and seed share (:class:`Resources`: the dataset, its splits, the
reference model, teachers, workspaces and cached assets), built once, on use."""

from ddr.resources.service import Resources

__all__ = ["Resources"]
