"""Compatibility layers: other evaluation tools' configs and APIs mapped onto ddr.

``ddr.compat.ddranking`` reads DD-Ranking 0.2.0 configs and offers its evaluator classes
(docs/ddranking.md). Nothing here imports torch at module level.
"""
