"""MTT's method class (the loop is :class:`ddr_trajectory.matching.TrajectoryMatching`)."""

from ddr_trajectory.matching import MTT

__all__ = ["MTT"]
