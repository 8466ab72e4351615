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

On ImageNet-1K ``ddr run`` applies D4M's own recipe (:func:`d4m_recipes`, transcribed from the
official scripts at :data:`D4M_COMMIT`): 512 px encoding, ``km_expand`` 1, strength 0.7, guidance 8,
every real image of a class, evaluated under ``sre2l-paper`` (the official ``validate/`` code is
SRe2L's student recipe) with torchvision ResNet-18 teacher and student. The official repository has
no script, configuration or evaluation code for CIFAR-10/100 or Tiny-ImageNet (only their loaders
and prompt files), so those datasets get no recipe. D4M prompts each class with its line of a label
file (``distillation/label-prompt/*.txt``); pass it as ``--set method.label_file=PATH`` (ImageNet
and Tiny-ImageNet carry no class names in ddr, so their prompts are otherwise class indices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ddr import MethodRecipe, MethodSpec, ParamSpec, hookimpl, load_reported

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
    ParamSpec("label_file", None, "a text file of class names, one line per class in class-index order, the name "
              "being the line's text before its first tab (D4M --label_file_path, distillation/label-prompt/*.txt); "
              "each replaces {name} in prompt; null: the dataset's class names", type="str"),
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


D4M_COMMIT = "suduo94/D4M@da35d10"
"""The official repository at the commit the recipes are transcribed from (da35d100fdd5, 2024-09-06)."""

D4M_IMAGENET_SOURCE = (
    "{commit}: distillation/gen_prototype_imgnt.sh:6-8 (--ipc 10, --km_expand 1, --label_file_path "
    "./label-propmt/imagenet_classes.txt, misspelt for label-prompt/), gen_prototype.py:45 (--size 512, the side "
    "every image is resized to before encoding; dataset_utils.py:18-21 Resize((size, size))) and :55-56, :80-84 "
    "(MiniBatchKMeans partial_fit in chunks of km_expand*ipc latents of every training image); "
    "distillation/gen_syn_image_imgnt.sh:4-5 (--guidance_scale 8, --strength 0.7); gen_syn_image.py:65 "
    "(negative_prompt 'cartoon, anime, painting', the pipeline's default 50 inference steps) and :69 (images "
    "saved resized to 224x224); matching/matching.sh:2-13 and generate_soft_label.py:132 (teacher: torchvision "
    "resnet18, weights='DEFAULT'; RandomResizedCrop 224 scale 0.08-1, flip, cutmix; 300 epochs of batch 1024); "
    "validate/train_FKD.sh:2-7 and train_FKD.py:34, :55-58, :108-111, :144, :148-160, :245-247 (torchvision "
    "resnet18 student, AdamW 1e-3 wd 0.01 as --sgd is absent, cosine over 300 epochs, batch 1024 in 2 "
    "accumulation steps, KLDivLoss(batchmean) at -T 20 without T^2)")


def d4m_recipes() -> tuple[MethodRecipe, ...]:
    """D4M's ImageNet-1K recipe (the only dataset its repository has scripts for; they run IPC 10, and
    nothing in them depends on the IPC, so the recipe covers every IPC).

    Distillation: images resized to 512x512 and encoded, every image of a class clustered
    (``mipc`` null) by MiniBatchKMeans in chunks of ``km_expand`` (1) x ipc latents, img2img at
    strength 0.7, guidance 8, 50 steps, negative prompt "cartoon, anime, painting"; the images come
    out at 224 px, ImageNet's size in ddr. Evaluation: ``sre2l-paper`` (AdamW 1e-3 wd 0.01, cosine,
    300 epochs, batch 1024, RandomResizedCrop(0.08, 1) + flip + CutMix, KL at T = 20 unscaled), the
    same numbers as D4M's ``train_FKD.py``, with torchvision's ResNet-18 as teacher and student
    (``arch_by_size`` pinned to it too, since protocol mappings merge). D4M's teacher is torchvision's
    ImageNet-pretrained ResNet-18; ddr trains its own unless given ``--teacher FILE``."""
    resnet18 = "torchvision:resnet18"
    params = {"resolution": 512, "km_expand": 1, "strength": 0.7, "guidance_scale": 8.0, "num_inference_steps": 50,
              "mipc": None, "negative_prompt": "cartoon, anime, painting"}
    return (MethodRecipe(dataset="imagenet", name="imagenet", params=params, protocol="sre2l-paper",
                         protocol_overrides={"teacher.arch": resnet18, "student.arch": resnet18,
                                             "student.arch_by_size": {"64": resnet18, "128": resnet18}},
                         source=D4M_IMAGENET_SOURCE.format(commit=D4M_COMMIT)),)


@hookimpl
def ddr_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="d4m",
            paper="D4M: Dataset Distillation via Disentangled Diffusion Model",
            venue="CVPR 2024",
            year=2024,
            code="https://github.com/suduo94/D4M",
            label_type="soft",
            reported=load_reported(__name__),  # with their sources: reported.yaml beside this file
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
            recipes=d4m_recipes(),
        )
    ]
