"""DATM's method class (the loop is :class:`ddr_trajectory.matching.TrajectoryMatching`)."""

from ddr_trajectory.matching import DATM

__all__ = ["DATM"]
