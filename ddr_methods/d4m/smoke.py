"""A stand-in generator for D⁴M's ``smoke`` preset (contract checks, no diffusion model needed), and
a tiny randomly initialised Stable-Diffusion-shaped diffusers pipeline for tests and differential
checks (:func:`tiny_stable_diffusion`; needs diffusers and transformers, never downloads).

The stand-in has the generator interface (``encode(images) -> latents``, ``generate(latents, prompts, **kw)
-> images`` in [0, 1]): latents are the images average-pooled 4×, and "generation" upsamples a
prototype latent back with a little seeded noise. Everything else in D⁴M (latent k-means per
class, prompts, resizing, teacher relabelling) runs for real. Never use it for results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


class SmokeGenerator:
    def __init__(self, device: Any = "cpu") -> None:
        self.device = device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images, 4)

    def generate(self, latents: torch.Tensor, prompts: list[str], **kw: Any) -> torch.Tensor:
        generator = torch.Generator().manual_seed(int(kw.get("seed", 0)))
        noise = torch.randn(latents.shape, generator=generator).to(latents.device) * 0.01
        up = torch.nn.functional.interpolate(latents + noise, scale_factor=4, mode="nearest")
        return ((up + 1) / 2).clamp(0, 1)


def smoke_generator(device: Any = "cpu") -> SmokeGenerator:
    return SmokeGenerator(device)


def tiny_stable_diffusion(folder: str | Path, *, sample_size: int = 64, seed: int = 0) -> Path:
    """Save a tiny, randomly initialised Stable Diffusion v1 pipeline under ``folder/pipe`` and return that path.

    Shaped like SD v1.5 and configured as its checkpoint ships, so D4M's pipelines and ddr's
    :class:`~ddr_methods.d4m.method.DiffusersGenerator` run it exactly as they run the real one:
    an ``AutoencoderKL`` with 4 latent channels and SD's ``scaling_factor`` 0.18215 (3 blocks, so
    latents are ``sample_size / 4`` px a side, where SD's are 1/8), a ``UNet2DConditionModel`` with
    cross-attention, a 1-layer ``CLIPTextModel`` (width 16, 32 positions) with a character-level
    ``CLIPTokenizer`` written to ``folder/tok`` (a-z, 0-9 and ','), and SD v1.5's scheduler,
    ``PNDMScheduler(scaled_linear, beta 0.00085..0.012, 1000 steps, skip_prk_steps, steps_offset=1)``;
    no safety checker. Weights are drawn from ``torch.manual_seed(seed)``. ``sample_size`` (pixels,
    a multiple of 4) is the image side the VAE config names; any multiple of 4 encodes."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(int(seed))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16),
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        layers_per_block=1, norm_num_groups=4, sample_size=int(sample_size))
    unet = UNet2DConditionModel(sample_size=int(sample_size) // 4, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    chars = [chr(i) for i in range(ord("a"), ord("z") + 1)] + [str(i) for i in range(10)] + [","]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({ch: 2 + i for i, ch in enumerate(chars)})
    vocab.update({ch + "</w>": 2 + len(chars) + i for i, ch in enumerate(chars)})
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=16))
    tok = folder / "tok"
    tok.mkdir(parents=True, exist_ok=True)
    (tok / "vocab.json").write_text(json.dumps(vocab))
    (tok / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok / "vocab.json"), str(tok / "merges.txt"), model_max_length=32)
    scheduler = PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", skip_prk_steps=True, set_alpha_to_one=False,
                              steps_offset=1)
    pipe: Any = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder / "pipe"))
    return folder / "pipe"
