"""A stand-in generator for D⁴M's ``smoke`` preset (contract checks, no diffusion model needed).

It has the generator interface (``encode(images) -> latents``, ``generate(latents, prompts, **kw)
-> images`` in [0, 1]): latents are the images average-pooled 4×, and "generation" upsamples a
prototype latent back with a little seeded noise. Everything else in D⁴M (latent k-means per
class, prompts, resizing, teacher relabelling) runs for real. Never use it for results.
"""

from __future__ import annotations

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
