"""Student metrics measured inside a student job, on the executor that trained the student.

A :class:`ddr.plugin.specs.MetricSpec` with ``needs="student"`` names a target
``measure(model, test, params) -> {output: value}``; the plan puts the metrics a job must measure
on the job (:attr:`ddr.records.jobs.StudentJob.metrics`, part of its cache key), and every
executor calls :func:`measure_student` with the student it reports, before the model is dropped,
so no weights travel or are stored for it. The values land in the job's
:attr:`ddr.records.jobs.JobResult.metrics` (and so in the job cache and the run record).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ddr.errors import DdrError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import ImageDataset
    from ddr.execute.workspace import Workspace
    from ddr.records.jobs import StudentJob


@dataclass(frozen=True)
class StudentTest:
    """What a student metric measures the trained model on.

    Attributes:
        images: float32 ``[N, C, H, W]`` test images in the model's input space (normalised,
            ZCA-whitened when the run whitens), on ``device``.
        labels: int64 ``[N]`` their classes.
        dataset: the dataset (its normalisation and ZCA fit map inputs to 0..1 pixels and back).
        device: where the model and images live.
        seed: the job's seed (for randomised measurements such as PGD's random start).
        role: the student's role (``syn_any``, ``rdm_any``, ``syn_hard``).
    """

    images: "torch.Tensor"
    labels: "torch.Tensor"
    dataset: "ImageDataset"
    device: "torch.device"
    seed: int
    role: str


def measure_student(job: "StudentJob", model: "torch.nn.Module", ws: "Workspace") -> dict[str, dict[str, float]]:
    """Every metric of ``job`` measured on its trained ``model`` (left in eval mode):
    ``{metric name: {output: value}}``; empty when the job measures none."""
    if not job.metrics:
        return {}
    if ws.test.images is None:
        raise DdrError("student metrics need the test split in memory; this dataset streams its test split")
    test = StudentTest(images=ws.test.images, labels=ws.test.labels, dataset=ws.dataset, device=ws.device,
                       seed=job.seed, role=job.role)
    out: dict[str, dict[str, float]] = {}
    registry = ws.system.metrics()
    for ref in job.metrics:
        spec = registry.get(str(ref["name"]))
        if spec.version != str(ref.get("version")):
            raise DdrError(f"metric '{spec.name}' is version {spec.version} here but the job asked for version "
                           f"{ref.get('version')}; run every worker with the same plugins installed")
        measure = registry.materialize(spec)
        model.eval()
        values = measure(model, test, dict(ref.get("params") or {}))
        out[spec.name] = _checked(spec.name, spec.outputs, values)
    return out


def _checked(name: str, outputs: tuple[str, ...], values: Any) -> dict[str, float]:
    """The metric's values as finite floats, exactly its declared outputs."""
    if not isinstance(values, Mapping) or set(values) != set(outputs):
        raise DdrError(f"metric '{name}' returned {values!r:.200}; it must return a mapping with exactly its "
                       f"declared outputs {list(outputs)} (the metric plugin is broken)")
    out = {}
    for key in outputs:
        try:
            number = float(values[key])
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise DdrError(f"metric '{name}' returned {key}={values[key]!r}, not a finite number (the metric plugin "
                           "is broken)")
        out[key] = number
    return out
