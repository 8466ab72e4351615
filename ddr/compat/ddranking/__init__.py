"""DD-Ranking 0.2.0 compatibility: its configs and its evaluator classes on ddr (docs/ddranking.md).

``from ddr.compat.ddranking import LabelRobustScoreHard, Config`` replaces
``from ddranking import LabelRobustScoreHard, Config``; ``compute_metrics`` returns DD-Ranking's
result keys as fractions (``percent=True``: its percent numbers). ``ddr eval DIR
--ddranking-config FILE`` maps a config file on the command line. Importing this package imports
no torch.
"""

from __future__ import annotations

from ddr.compat.ddranking.config import Config, MappedConfig, load_config, map_config
from ddr.compat.ddranking.evaluators import (
    AugmentationRobustScore,
    GeneralEvaluator,
    HardLabelEvaluator,
    LabelRobustScoreHard,
    LabelRobustScoreSoft,
    SoftLabelEvaluator,
)

__all__ = ["AugmentationRobustScore", "Config", "GeneralEvaluator", "HardLabelEvaluator", "LabelRobustScoreHard",
           "LabelRobustScoreSoft", "MappedConfig", "SoftLabelEvaluator", "load_config", "map_config"]
