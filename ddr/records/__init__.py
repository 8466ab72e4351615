"""The contract layer's typed records, passed between layers and to plugins' hooks.

* :mod:`ddr.records.jobs`: :class:`StudentJob`, :class:`DataRef`, :class:`JobResult` (what an
  executor runs and returns);
* :mod:`ddr.records.summary`: :class:`Summary` (per-student values, mean and spread);
* :mod:`ddr.records.run`: :class:`RunSpec` (what a run was asked) and :class:`EvaluationResult`.

Nothing here imports torch or anything above :mod:`ddr.store.hashing`.
"""
