"""The ``d4m`` method: dataset distillation via disentangled diffusion model (Su et al., CVPR 2024;
suduo94/D4M).

Registered through the ``ddr`` entry point ``d4m = "ddr_methods.d4m"`` (or ``DDR_PLUGINS=ddr_methods.d4m``).
Importing this module imports neither torch nor diffusers; the algorithm lives in
:mod:`ddr_methods.d4m.method`.

D4M needs a latent-diffusion generator, which ddr does not ship:

* ``--set method.generator=PATH``: a local diffusers Stable Diffusion folder (e.g. a saved
  ``stable-diffusion-v1-5`` snapshot; needs the optional extra ``pip install 'ddr-bench[d4m]'``,
  i.e. ``diffusers`` and ``transformers``);
* ``--set method.generator=NAME``: a generator another plugin registered with
  :func:`register_generator`;
* ``--set method.generator=package.module:factory``: a factory returning a generator object.

A generator object has ``encode(images) -> latents`` (``images`` float ``[N, 3, R, R]`` in
``[-1, 1]``) and ``generate(latents, prompts, *, strength, guidance_scale, num_inference_steps,
seed) -> images`` (float ``[N, 3, H, W]`` in ``[0, 1]``); see :class:`ddr_methods.d4m.method.DiffusersGenerator`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ddr import MethodSpec, ParamSpec, hookimpl

GENERATORS: dict[str, Callable[..., Any]] = {}
"""Generators registered by other plugins: name -> ``factory(device=torch.device) -> generator``."""


def register_generator(name: str, factory: Callable[..., Any]) -> None:
    """Make ``--set method.generator=NAME`` use ``factory(device=...)``'s generator object."""
    GENERATORS[str(name)] = factory


PARAMS = (
    ParamSpec("generator", None, "the latent-diffusion generator: a local diffusers folder, a registered "
              "generator name or a 'module:factory' target (required)", type="str"),
    ParamSpec("resolution", 512, "side in pixels at which real images are encoded (SD v1.5: 512)", minimum=8),
    ParamSpec("strength", 0.7, "img2img strength: fraction of the diffusion schedule re-noised (D4M: 0.7)",
              minimum=0.0),
    ParamSpec("guidance_scale", 8.0, "classifier-free guidance scale (D4M: 8)", minimum=0.0),
    ParamSpec("num_inference_steps", 50, "denoising steps of the full schedule (diffusers default 50)", minimum=1),
    ParamSpec("prompt", "{name}", "text prompt per class; {name} is the class name"),
    ParamSpec("mipc", None, "real images encoded per class (null: all)", type="int", minimum=1),
    ParamSpec("prototypes", "minibatch", "how class prototypes are clustered: minibatch (D4M's sklearn "
              "MiniBatchKMeans fed by partial_fit in chunks of km_expand*ipc latents, gen_prototype.py) or kmeans "
              "(exact k-means++ and Lloyd steps)", choices=("minibatch", "kmeans")),
    ParamSpec("km_expand", 10, "MiniBatchKMeans chunk size in units of ipc (D4M --km_expand, default 10)", minimum=1),
    ParamSpec("kmeans_iterations", 100, "Lloyd iterations of the exact k-means (prototypes=kmeans)", minimum=1),
    ParamSpec("latents", "sample", "encode real images to a sample of the VAE posterior (sample, as diffusers' "
              "img2img latents are drawn) or to its mean", choices=("sample", "mean")),
    ParamSpec("negative_prompt", "cartoon, anime, painting", "negative prompt of every generation "
              "(D4M gen_syn_image.py); empty: none", type="str"),
    ParamSpec("encode_batch", 32, "images per VAE encoder call", minimum=1),
    ParamSpec("generate_batch", 16, "prototypes per generator call", minimum=1),
    ParamSpec("labels", "teacher", "teacher: the evaluation relabels every augmented batch; "
              "stored_soft: store one teacher logit vector per image", choices=("teacher", "stored_soft")),
)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="d4m",
            target="ddr_methods.d4m.method:D4M",
            summary="D4M (Su et al. CVPR'24): latent k-means prototypes -> class-prompted img2img diffusion; teacher relabels",
            params=PARAMS,
            presets={
                "paper": {"resolution": 512, "strength": 0.7, "guidance_scale": 8.0, "num_inference_steps": 50},
                "smoke": {"resolution": 32, "num_inference_steps": 2, "mipc": 8, "kmeans_iterations": 5,
                          "generator": "ddr_methods.d4m.smoke:smoke_generator"},  # a stand-in: contract checks only
                "reduced": {"resolution": 256, "num_inference_steps": 25, "mipc": 100},
            },
            label_strategy="teacher",
            protocol="soft",
            needs_teacher=True,
        )
    ]
