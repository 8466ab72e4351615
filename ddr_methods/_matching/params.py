"""The parameter schema DC and DSA share (no torch: registration modules import it)."""

from __future__ import annotations

from ddr import ParamSpec


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
