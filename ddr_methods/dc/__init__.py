"""The ``dc`` method: dataset condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021).

Registered through the ``ddr`` entry point ``dc = "ddr_methods.dc"``. Importing this module does not
import torch; the algorithm is :func:`ddr_methods._matching.gradient.gradient_matching` (via :mod:`ddr_methods.dc.method`).

Defaults are the authors' (VICO-UoE/DatasetCondensation ``main.py``), on every dataset. A dataset may ask for a reduced
budget: digits does (its ``reduced`` preset: 50 iterations, small real batches, so that
``ddr run --method dc`` distils in seconds on 2 CPU cores); the run names the budget it used.

On the cells of DC's Table 1 (MNIST, Fashion-MNIST, SVHN, CIFAR-10 at IPC 1/10/50, CIFAR-100 at IPC
1/10) ``ddr run`` applies the authors' recipe (:func:`ddr_methods._matching.recipes.dc_recipes`):
main.py's parameters and its evaluation, the ``hard-dc`` protocol (300 epochs, no augmentation).
On MNIST the official students train 1000 epochs with DC's own augmentation (``get_daparam``:
``crop_scale_rotate``), which ddr does not have: the recipe asks for the 1000 epochs and its
students train without that augmentation (a known deviation, docs/fidelity.md).
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported
from ddr_methods._matching.params import matching_params
from ddr_methods._matching.recipes import dc_recipes


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dc",
            paper="Dataset Condensation with Gradient Matching",
            venue="ICLR 2021",
            year=2021,
            code="https://github.com/VICO-UoE/DatasetCondensation",
            label_type="hard",
            target="ddr_methods.dc.method:DC",
            summary="Gradient matching (Zhao et al. ICLR'21): synthetic images whose training gradients match real ones",
            params=matching_params("noise", augmentation=False),
            presets={"paper": {"iterations": 1000, "batch_real": 256},
                     "reduced": {"iterations": 50, "batch_real": 32},  # digits on a CPU: ~10-20 s
                     "smoke": {"iterations": 2, "batch_real": 8}},
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/dc/reported.yaml
            reported=load_reported(__name__),
            recipes=dc_recipes(),
        )
    ]
