"""ddr's D4M generator on a tiny random Stable Diffusion pipeline (``ddr_methods.d4m.smoke.tiny_stable_diffusion``):
what the differential check against the official code (benchmarks/fidelity_official.py --d4m) relies on,
checked without the official checkout. Slow: loading diffusers and transformers takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.mark.slow
def test_diffusers_generator_encodes_and_generates_as_stable_diffusion(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from ddr_methods.d4m.method import DiffusersGenerator
    from ddr_methods.d4m.smoke import tiny_stable_diffusion

    torch.set_num_threads(1)
    folder = tiny_stable_diffusion(tmp_path, sample_size=32)
    gen = DiffusersGenerator(folder, "cpu")
    assert type(gen.pipe.scheduler).__name__ == "PNDMScheduler" and gen.scaling == pytest.approx(0.18215)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mean = gen.encode(images)  # no generator: the posterior mean, scaled
    assert mean.shape == (3, 4, 8, 8)
    dist = gen.pipe.vae.encode(images).latent_dist
    assert torch.allclose(mean, dist.mean * 0.18215)
    sample = gen.encode(images, generator=torch.Generator().manual_seed(1))  # D4M: a posterior sample
    eps = torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(sample, (dist.mean + dist.std * eps) * 0.18215, atol=1e-6)
    kw = {"strength": 0.7, "guidance_scale": 8.0, "num_inference_steps": 10}
    out = gen.generate(sample[:2], ["tench", "goldfish"], seed=3, negative_prompt="cartoon, anime, painting", **kw)
    assert out.shape == (2, 3, 32, 32) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again = gen.generate(sample[:2], ["tench", "goldfish"], seed=3, negative_prompt="cartoon, anime, painting", **kw)
    assert torch.equal(out, again)  # seeded
    plain = gen.generate(sample[:2], ["tench", "goldfish"], seed=3, **kw)
    assert not torch.equal(out, plain)  # the negative prompt enters the guidance
