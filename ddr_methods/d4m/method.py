"""D4M: dataset distillation via disentangled diffusion model (Su et al., CVPR 2024; suduo94/D4M).

1. Encode up to ``mipc`` real images per class with the generator's autoencoder (images taken
   to 0..1 pixels, grey repeated to RGB, resized to ``resolution``, scaled to ``[-1, 1]``).
   Latents are samples of the VAE posterior (``latents=sample``; ``mean`` takes its mean).
2. Per class, cluster the flattened latents into ``ipc`` prototypes as D4M's ``gen_prototype.py``
   does: sklearn ``MiniBatchKMeans(n_clusters=ipc, random_state=0, batch_size=km_expand*ipc,
   n_init="auto")`` fed by ``partial_fit`` on consecutive chunks of ``km_expand*ipc`` latents, and
   the last, shorter chunk when it holds at least ``ipc`` (D4M runs that last call only for its
   final class; here every class gets it). ``prototypes=kmeans`` runs exact k-means instead
   (k-means++ seeding, ``kmeans_iterations`` Lloyd steps).
3. Generate one image per prototype with the class-prompted img2img pipeline started from the
   prototype latent (``strength``, ``guidance_scale``, prompt ``prompt.format(name=class name)``,
   the class name read from ``label_file`` as D4M's ``gen_label_list`` reads its label files, else
   the dataset's; D4M's negative prompt ``cartoon, anime, painting``; gen_syn_image.py).
   benchmarks/fidelity_official.py --d4m runs D4M's own scripts beside this code: the same latents,
   prototypes and images (docs/fidelity.md, D⁴M).
4. Convert to the dataset (RGB -> luma for grey datasets, antialiased resize to the dataset size,
   normalise); the evaluation relabels with the teacher.

The generator is resolved before any other work, so a missing model fails at once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ddr import ConfigError, DataError, DdrError
from ddr_methods._teacherlib import (
    check_label_mode,
    child_generator,
    from_pixel_space,
    get_teacher,
    teacher_labelled_set,
    to_pixel_space,
)

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext

_INSTALL = "pip install 'ddr-bench[d4m]' (diffusers and transformers)"
_WHAT = ("method 'd4m' needs a latent-diffusion generator: pass --set method.generator=PATH with a local "
         "diffusers Stable Diffusion folder (e.g. a saved stable-diffusion-v1-5 snapshot; needs " + _INSTALL + "), "
         "or the name of a generator registered with ddr_methods.d4m.register_generator, or a 'module:factory' target")


class GeneratorError(DdrError):
    """The D4M generator is missing or unusable."""


# -- generators --------------------------------------------------------------------------------

class DiffusersGenerator:
    """A diffusers Stable Diffusion folder used as D4M's generator (img2img from latents)."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu"):
        try:
            import diffusers
        except ImportError as exc:
            raise GeneratorError(f"method 'd4m': --set method.generator={path} is a diffusers folder but diffusers "
                                 f"is not installed ({exc}); {_INSTALL}") from None
        try:
            pipe = diffusers.AutoPipelineForImage2Image.from_pretrained(str(path))
        except Exception as exc:  # a broken or foreign folder: tell the user which
            raise GeneratorError(f"method 'd4m': cannot load a diffusers image-to-image pipeline from {path}: "
                                 f"{type(exc).__name__}: {exc}; pass a Stable Diffusion folder saved with "
                                 "save_pretrained") from None
        pipe = pipe.to(device)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        if getattr(pipe, "safety_checker", None) is not None:
            pipe.safety_checker = None
        self.pipe = pipe
        self.device = torch.device(device)
        self.scaling = float(getattr(pipe.vae.config, "scaling_factor", 1.0))

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents of ``images`` (RGB in [-1, 1]): a posterior sample drawn from
        ``generator``, or the posterior mean without one."""
        vae = self.pipe.vae
        images = images.to(self.device, vae.dtype)
        dist = vae.encode(images).latent_dist
        latents = dist.mean if generator is None else dist.sample(generator=generator)
        return latents.float() * self.scaling

    @torch.no_grad()
    def generate(self, latents: torch.Tensor, prompts: list[str], *, strength: float, guidance_scale: float,
                 num_inference_steps: int, seed: int, negative_prompt: str | None = None) -> torch.Tensor:
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        negative = [negative_prompt] * len(prompts) if negative_prompt else None
        out = self.pipe(prompt=prompts, image=latents.to(self.device, self.pipe.vae.dtype), strength=strength,
                        guidance_scale=guidance_scale, num_inference_steps=num_inference_steps,
                        negative_prompt=negative, generator=gen, output_type="pt")
        images = out.images if hasattr(out, "images") else out[0]
        return images.float().clamp(0.0, 1.0)


def resolve_generator(ref: str | None, device: torch.device) -> Any:
    """The generator object ``ref`` names (see :mod:`ddr_methods.d4m`); GeneratorError saying what to provide."""
    from ddr_methods.d4m import GENERATORS

    if ref is None or str(ref).strip() == "":
        raise GeneratorError(_WHAT)
    ref = str(ref)
    if ref in GENERATORS:
        return _checked(GENERATORS[ref](device=device), ref)
    path = Path(ref).expanduser()
    if path.is_dir():
        return DiffusersGenerator(path, device)
    if ":" in ref and not path.exists():
        module_name, _, attr = ref.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise GeneratorError(f"method 'd4m': cannot import generator '{ref}': {type(exc).__name__}: {exc}; "
                                 + _WHAT) from None
        if not (hasattr(obj, "encode") and hasattr(obj, "generate")):
            obj = obj(device=device)
        return _checked(obj, ref)
    known = ", ".join(sorted(GENERATORS)) or "none registered"
    raise GeneratorError(f"method 'd4m': generator '{ref}' is neither a local folder nor a registered generator "
                         f"({known}) nor a 'module:factory' target; " + _WHAT)


def _checked(obj: Any, ref: str) -> Any:
    if not (callable(getattr(obj, "encode", None)) and callable(getattr(obj, "generate", None))):
        raise GeneratorError(f"method 'd4m': generator '{ref}' gave a {type(obj).__name__} without encode() and "
                             "generate() methods (see ddr_methods.d4m's docstring)")
    return obj


# -- prompts -----------------------------------------------------------------------------------

def read_label_file(path: str | Path, num_classes: int) -> list[str]:
    """Class names from a D4M label file (``distillation/label-prompt/*.txt``; its ``gen_label_list``
    in ``dataset_utils.py``): line ``c`` holds class ``c``, its name is the stripped text before the
    first tab. Trailing blank lines are ignored; any other count than ``num_classes`` is a ConfigError."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"method 'd4m': cannot read label_file {str(file)!r} ({type(exc).__name__}: {exc}); "
                          "pass a UTF-8 text file with one class name per line") from None
    names = [line.strip().split("\t")[0] for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    if len(names) != num_classes:
        raise ConfigError(f"method 'd4m': label_file {str(file)!r} has {len(names)} lines but the dataset has "
                          f"{num_classes} classes; give one line per class, in class-index order")
    return names


# -- k-means -----------------------------------------------------------------------------------

def kmeans(points: torch.Tensor, k: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """``[k, D]`` centroids of ``points [n, D]`` (k-means++ seeding, Lloyd steps); ``n >= k``."""
    n = len(points)
    dev = generator.device
    first = int(torch.randint(0, n, (1,), generator=generator, device=dev).item())
    centroids = [points[first]]
    d2 = ((points - points[first]) ** 2).sum(1)
    for _ in range(1, k):
        probs = d2.clamp(min=0).to(dev)
        if float(probs.sum()) <= 0:
            idx = int(torch.randint(0, n, (1,), generator=generator, device=dev).item())
        else:
            idx = int(torch.multinomial(probs / probs.sum(), 1, generator=generator).item())
        centroids.append(points[idx])
        d2 = torch.minimum(d2, ((points - points[idx]) ** 2).sum(1))
    c = torch.stack(centroids)
    for _ in range(iterations):
        assign = torch.cdist(points, c).argmin(1)
        new = c.clone()
        for j in range(k):
            members = points[assign == j]
            if len(members):
                new[j] = members.mean(0)
        if torch.allclose(new, c):
            break
        c = new
    return c


def minibatch_prototypes(points: torch.Tensor, k: int, km_expand: int) -> torch.Tensor:
    """``[k, D]`` prototypes of ``points [n, D]`` as D4M's gen_prototype.py computes them: sklearn's
    ``MiniBatchKMeans(n_clusters=k, random_state=0, batch_size=km_expand*k, n_init="auto")``
    ``partial_fit`` on consecutive chunks of ``km_expand*k`` rows, then on the remaining rows when
    there are at least ``k``. ``n >= k``."""
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    chunk = int(km_expand) * int(k)
    model = MiniBatchKMeans(n_clusters=int(k), random_state=0, batch_size=chunk, n_init="auto")
    data = points.detach().cpu().numpy().astype(np.float64)
    full = (len(data) // chunk) * chunk
    for start in range(0, full, chunk):
        model.partial_fit(data[start:start + chunk])
    if len(data) - full >= k:
        model.partial_fit(data[full:])
    return torch.as_tensor(model.cluster_centers_, dtype=points.dtype)


def _accepts(fn: Any, name: str) -> bool:
    """Whether ``fn`` takes a keyword ``name`` (a registered generator may predate it)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# -- the method --------------------------------------------------------------------------------

class D4M:
    """D4M. Parameters: see :data:`ddr_methods.d4m.PARAMS`."""

    name = "d4m"

    def distill(self, ctx: DistillContext):  # -> DistilledSet
        p = ctx.params
        generator = resolve_generator(p["generator"], ctx.device)  # before any work
        labels = check_label_mode(self.name, str(p["labels"]))
        resolution = int(p["resolution"])
        strength, guidance = float(p["strength"]), float(p["guidance_scale"])
        steps = int(p["num_inference_steps"])
        if not 0.0 < strength <= 1.0:
            raise ConfigError(f"method 'd4m': strength must lie in (0, 1], got {strength}")
        if steps * strength < 1:
            raise ConfigError(f"method 'd4m': num_inference_steps * strength = {steps * strength:g} < 1 runs no "
                              "denoising step; raise method.num_inference_steps")
        template = str(p["prompt"])
        mipc = p["mipc"]
        iters, enc_batch, gen_batch = int(p["kmeans_iterations"]), int(p["encode_batch"]), int(p["generate_batch"])
        negative = str(p["negative_prompt"] or "")
        sample = p["latents"] == "sample" and _accepts(generator.encode, "generator")
        negative_ok = _accepts(generator.generate, "negative_prompt")
        if negative and not negative_ok:
            ctx.log("d4m: this generator's generate() takes no negative_prompt; generating without one")
        encode_gen = child_generator(ctx, "cpu") if sample else None
        label_file = p.get("label_file")
        if label_file:
            names = read_label_file(label_file, ctx.num_classes)
        else:
            names = list(ctx.dataset.class_names)
            if not names:
                names = [str(c) for c in range(ctx.num_classes)]
                ctx.log("d4m: the dataset has no class names, so the prompts are class indices; pass "
                        "--set method.label_file=PATH (D4M: distillation/label-prompt/*.txt) for its prompts")
        try:
            prompts = [template.format(name=names[c]) for c in range(ctx.num_classes)]
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"method 'd4m': prompt {template!r} may only use {{name}} ({exc})") from None
        height, width = ctx.dataset.image_size
        channels = ctx.dataset.channels
        if channels not in (1, 3):
            raise DataError(f"method 'd4m' generates RGB images; the dataset has {channels} channels")

        gen = ctx.generator
        indices = ctx.class_indices()
        out = []
        for c in ctx.progress(range(ctx.num_classes), total=ctx.num_classes, desc=self.name):
            idx = indices[c]
            if len(idx) < ctx.ipc:
                raise DataError(f"method 'd4m': class {c} has {len(idx)} real images, fewer than ipc={ctx.ipc}")
            perm = torch.randperm(len(idx), generator=gen, device=gen.device)
            if mipc is not None:
                perm = perm[:int(mipc)]
            chosen = idx[perm.to(idx.device)]
            encoded_parts = []
            for i in range(0, len(chosen), enc_batch):
                real = ctx.train.take(chosen[i:i + enc_batch]).to(ctx.device, torch.float32)
                pixels = self._to_generator(ctx, real, resolution)
                encoded = generator.encode(pixels, generator=encode_gen) if sample else generator.encode(pixels)
                encoded_parts.append(encoded.float().cpu())
            latents = torch.cat(encoded_parts)
            shape = latents.shape[1:]
            if p["prototypes"] == "minibatch":
                centroids = minibatch_prototypes(latents.flatten(1), ctx.ipc, int(p["km_expand"]))
            else:
                centroids = kmeans(latents.flatten(1), ctx.ipc, iters, child_generator(ctx, "cpu"))
            prototypes = centroids.reshape(ctx.ipc, *shape)
            for i in range(0, ctx.ipc, gen_batch):
                batch = prototypes[i:i + gen_batch]
                seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
                extra = {"negative_prompt": negative} if negative and negative_ok else {}
                images = generator.generate(batch, [prompts[c]] * len(batch), strength=strength,
                                            guidance_scale=guidance, num_inference_steps=steps, seed=seed, **extra)
                out.append(self._to_dataset(ctx, images.to(ctx.device).float(), channels, (height, width)))

        images = torch.cat(out)
        if not bool(torch.isfinite(images).all()):
            raise DdrError("method 'd4m': the generator produced non-finite pixels; check the model")
        teacher = get_teacher(ctx, self.name) if labels == "stored_soft" else None
        meta = {"generator": str(p["generator"]), "label_file": str(label_file) if label_file else None,
                "resolution": resolution, "strength": strength,
                "guidance_scale": guidance, "num_inference_steps": steps, "prompts": prompts,
                "latent_shape": list(shape), "prototypes": p["prototypes"], "km_expand": int(p["km_expand"]),
                "latents": "sample" if sample else "mean", "negative_prompt": negative if negative_ok else None}
        return teacher_labelled_set(ctx, images, meta, labels=labels, teacher=teacher)

    @staticmethod
    def _to_generator(ctx: DistillContext, images: torch.Tensor, resolution: int) -> torch.Tensor:
        """Dataset images -> RGB ``[-1, 1]`` at ``resolution``."""
        pixels = from_pixel_space(ctx, images).clamp(0.0, 1.0)
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        if tuple(pixels.shape[-2:]) != (resolution, resolution):
            pixels = F.interpolate(pixels, size=(resolution, resolution), mode="bilinear", align_corners=False,
                                   antialias=True)
        return pixels * 2.0 - 1.0

    @staticmethod
    def _to_dataset(ctx: DistillContext, images: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
        """Generated RGB 0..1 -> the dataset's channels, size and pixel space."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise GeneratorError(f"method 'd4m': the generator returned images of shape {tuple(images.shape)}; "
                                 "expected [N, 3, H, W] RGB in [0, 1]")
        if channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)
            images = (images * weights).sum(1, keepdim=True)
        if tuple(images.shape[-2:]) != tuple(size):
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        return to_pixel_space(ctx, images.clamp(0.0, 1.0))
