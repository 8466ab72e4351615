"""The ``dm`` method: dataset condensation with distribution matching (Zhao & Bilen, WACV 2023).

Registered through the ``ddr`` entry point ``dm = "ddr_methods.dm"``. Importing this module does not
import torch; the algorithm lives in :mod:`ddr_methods.dm.method`.

Defaults are the authors' (VICO ``main_DM.py``), on every dataset. A dataset may ask for a reduced
budget: digits does (its ``reduced`` preset: 50 iterations, small real batches, so that
``ddr run --method dm`` distils in seconds on 2 CPU cores); the run names the budget it used.

On the cells of DM's Table 1 (CIFAR-10, CIFAR-100, Tiny-ImageNet at IPC 1/10/50) ``ddr run`` applies
the authors' recipe (:func:`ddr_methods._matching.recipes.dm_recipes`): main_DM.py's parameters,
evaluated under ``hard`` (1000 epochs, DSA), no ZCA.
"""

from __future__ import annotations

from ddr import MethodSpec, ParamSpec, hookimpl, load_reported
from ddr_methods._matching.recipes import dm_recipes


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="dm",
            paper="Dataset Condensation with Distribution Matching",
            venue="WACV 2023",
            year=2023,
            code="https://github.com/VICO-UoE/DatasetCondensation",
            label_type="hard",
            target="ddr_methods.dm.method:DM",
            summary="Distribution matching (Zhao & Bilen WACV'23): match mean embeddings under random networks",
            params=(
                ParamSpec("iterations", 20000, "networks sampled (paper: 20000)", minimum=0),
                ParamSpec("batch_real", 256, "real images per class per iteration (paper: 256)", minimum=1),
                ParamSpec("lr_img", 1.0, "SGD learning rate of the images (paper: 10 for CIFAR-10 at ipc >= 100)",
                          minimum=0.0),
                ParamSpec("momentum_img", 0.5, "SGD momentum of the images", minimum=0.0),
                ParamSpec("init", "real", "initial images: noise or real", choices=("noise", "real")),
                ParamSpec("augmentation", "dsa", "augmentation applied Siamese to real and synthetic batches "
                          "(a registered name; none disables it)", type="str"),
                ParamSpec("augmentation_params", {}, "parameters of that augmentation"),
            ),
            presets={"paper": {"iterations": 20000, "batch_real": 256},
                     "reduced": {"iterations": 50, "batch_real": 64},  # digits on a CPU: ~10 s
                     "smoke": {"iterations": 3, "batch_real": 16}},
            label_strategy="hard",
            protocol="hard",
            # published accuracies with their sources: ddr_methods/dm/reported.yaml
            reported=load_reported(__name__),
            recipes=dm_recipes(),
        )
    ]
