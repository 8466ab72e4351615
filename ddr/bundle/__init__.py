"""Verifiable result bundles: one file holding a run (or a suite) exactly as evaluated, that anyone
can check and re-run.

* :func:`export_bundle` (``ddr export RUN|SUITE -o FILE``): the distilled sets (safetensors), every
  run record and job result (JSON), the resolved protocol, method and seeds, the plugins and the
  machine, and ``manifest.json`` with the sha256 of every member (:mod:`ddr.bundle.manifest`).
* :func:`read_manifest`: what a bundle holds, every member checked against its manifest; no torch,
  nothing extracted (for tools that list or link bundles, e.g. a static leaderboard site).
* :func:`open_bundle`: a bundle checked and opened (:mod:`ddr.bundle.contents`).
* :func:`verify_bundle` (``ddr verify FILE``): the evaluations re-run here, each quantity compared
  bit for bit or within a stated statistical tolerance (:mod:`ddr.bundle.verify`).
* :func:`import_bundle` (``ddr import FILE``): the runs into the results database, marked
  ``imported`` or ``imported+verified`` (:mod:`ddr.bundle.importing`).

Loading a bundle never executes anything from it: only JSON and safetensors are read, and a
member that does not match the manifest (or is missing, unexpected, unsafe or oversized) is refused
with an error naming it before anything is parsed. This package sits above ``ddr.runs`` (verify
evaluates through it) and below ``ddr.cli``; its format modules (``container``, ``manifest``,
``machine``, ``compare``) never import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ddr.bundle.container import BundleError
from ddr.bundle.manifest import FORMAT, FORMAT_VERSION, read_manifest

if TYPE_CHECKING:  # pragma: no cover
    from ddr.bundle.contents import open_bundle
    from ddr.bundle.export import export_bundle
    from ddr.bundle.importing import import_bundle
    from ddr.bundle.verify import verify_bundle

__all__ = ["FORMAT", "FORMAT_VERSION", "BundleError", "export_bundle", "import_bundle", "open_bundle",
           "read_manifest", "verify_bundle"]

_LAZY = {"export_bundle": "ddr.bundle.export", "import_bundle": "ddr.bundle.importing",
         "open_bundle": "ddr.bundle.contents", "verify_bundle": "ddr.bundle.verify"}


def __getattr__(name: str) -> Any:
    """The heavier entry points, imported on first use (``read_manifest`` stays light)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ddr.bundle' has no attribute {name!r}")
