"""A summary of per-student values: mean, sample and population spread (fractions in, fractions out).

Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Summary:
    """Per-student values of one quantity and their mean and spread.

    Attributes:
        mean: arithmetic mean of ``values``.
        std: sample standard deviation (ddof=1); 0.0 when ``n == 1`` (one student has no spread
            to estimate; DD-Ranking's population std is 0.0 there as well).
        std_population: population standard deviation (ddof=0), what DD-Ranking 0.2.0 prints.
        values: the per-student values, in student order.
        n: number of values.
    """

    mean: float
    std: float
    std_population: float
    values: list[float] = field(default_factory=list)
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with keys mean, std, std_population, n, values."""
        return {
            "mean": self.mean,
            "std": self.std,
            "std_population": self.std_population,
            "n": self.n,
            "values": list(self.values),
        }
