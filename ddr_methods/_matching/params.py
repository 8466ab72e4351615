"""The parameter schema DC and DSA share, and the loop lengths they derive from the IPC (no torch:
registration modules import it)."""

from __future__ import annotations

from ddr import ConfigError, ParamSpec

LOOPS: dict[int, tuple[int, int]] = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
"""DC/DSA ``ipc -> (outer_loop, inner_loop)``, VICO-UoE/DatasetCondensation ``utils.py`` ``get_loops``
(lines 275-293 at 53f63a6): image updates per sampled network, and epochs the network trains on the
synthetic set between two of them."""


def match_loops(ipc: int) -> tuple[int, int]:
    """DC/DSA's ``(outer_loop, inner_loop)`` for ``ipc`` (VICO ``get_loops``).

    ``outer_loop`` is the number of synthetic-image updates per sampled network, ``inner_loop``
    the number of epochs the network trains on the synthetic set between two of them.
    Raises :class:`ConfigError` for an IPC the authors did not tune.
    """
    if ipc not in LOOPS:
        raise ConfigError(
            f"DC/DSA loop lengths are defined for ipc in {sorted(LOOPS)} (VICO get_loops), got ipc={ipc}; "
            "set both method parameters outer_loop and inner_loop (e.g. --set outer_loop=50 --set inner_loop=10)"
        )
    return LOOPS[ipc]


def matching_params(init: str, *, augmentation: bool) -> tuple[ParamSpec, ...]:
    """DC's parameters (VICO main.py defaults); ``init`` differs (DC: noise, DSA: real) and DSA adds
    the parameters of its augmentation."""
    return (
        ParamSpec("iterations", 1000, "networks sampled (paper: 1000)", minimum=0),
        ParamSpec("batch_real", 256, "real images per class per match", minimum=1),
        ParamSpec("lr_img", 0.1, "SGD learning rate of the synthetic images", minimum=0.0),
        ParamSpec("momentum_img", 0.5, "SGD momentum of the synthetic images", minimum=0.0),
        ParamSpec("lr_net", 0.01, "SGD (no momentum) learning rate of the sampled network's inner loop", minimum=0.0),
        ParamSpec("batch_train", 256, "inner-loop batch size", minimum=1),
        ParamSpec("init", init, "initial images: noise (standard normal) or real (random real images)",
                  choices=("noise", "real")),
        ParamSpec("metric", "ours", "gradient distance: ours (layer-wise 1-cos), mse or cos",
                  choices=("ours", "mse", "cos")),
        ParamSpec("outer_loop", None, "image updates per sampled network (null: VICO get_loops(ipc))", type="int",
                  minimum=1),
        ParamSpec("inner_loop", None, "epochs the network trains between updates (null: get_loops(ipc))", type="int",
                  minimum=0),
        *((ParamSpec("augmentation_params", {}, "parameters of the 'dsa' augmentation (default: VICO ParamDiffAug)"),)
          if augmentation else ()),
    )
