"""The ``dsa`` method: gradient matching with Differentiable Siamese Augmentation (Zhao & Bilen,
ICML 2021).

Registered through the ``ddr`` entry point ``dsa = "ddr_methods.dsa"``. Importing this module does not
import torch; the algorithm is DC's loop (:func:`ddr_methods._matching.gradient.gradient_matching`) with the ``dsa``
augmentation (:mod:`ddr_methods.dsa.method`).

Defaults are the authors' (VICO ``main.py --method DSA --init real``), on every dataset. A dataset may ask for a reduced
budget: digits does (its ``reduced`` preset: 50 iterations, small real batches, so that
``ddr run --method dsa`` distils in seconds on 2 CPU cores); the run names the budget it used.

On the cells DSA reports (MNIST, Fashion-MNIST, SVHN, CIFAR-10 at IPC 1/10/50, CIFAR-100 at IPC
1/10/50) ``ddr run`` applies the authors' recipe (:func:`ddr_methods._matching.recipes.dsa_recipes`):
main.py's parameters with ``--init real``, evaluated under ``hard`` (1000 epochs, DSA); on the digit
datasets MNIST and SVHN without flips, distilling (``augmentation_params: {strategy:
color_crop_cutout_scale_rotate}``) and evaluating (``dsa.noflip``), as VICO's readme says. Elsewhere
``--set augmentation_params='{strategy: color_crop_cutout_scale_rotate}'`` asks for the same.
"""

from __future__ import annotations

from ddr import MethodSpec, hookimpl, load_reported
from ddr_methods._matching.params import matching_params
from ddr_methods._matching.recipes import dsa_recipes


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dsa",
            paper="Dataset Condensation with Differentiable Siamese Augmentation",
            venue="ICML 2021",
            year=2021,
            code="https://github.com/VICO-UoE/DatasetCondensation",
            label_type="hard",
            target="ddr_methods.dsa.method:DSA",
            summary="Gradient matching with Siamese DSA augmentation (Zhao & Bilen ICML'21)",
            params=matching_params("real", augmentation=True),
            presets={"paper": {"iterations": 1000, "batch_real": 256},
                     "reduced": {"iterations": 50, "batch_real": 32},  # digits on a CPU: ~10-20 s
                     "smoke": {"iterations": 2, "batch_real": 8}},
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/dsa/reported.yaml
            reported=load_reported(__name__),
            recipes=dsa_recipes(),
        )
    ]
