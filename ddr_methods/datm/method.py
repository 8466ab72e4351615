"""DATM's method class (the loop is :class:`ddr_methods._trajectory.matching.TrajectoryMatching`)."""

from ddr_methods._trajectory.matching import DATM

__all__ = ["DATM"]
