"""Tests of the built-in augmentations (ddr/builtins/augmentations) and check_augmentation."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ddr.builtins.augmentations import ddr_augmentations
from ddr.builtins.augmentations.crops import CropFlip, Flip, RandomResizedCrop
from ddr.builtins.augmentations.dsa import DSA
from ddr.builtins.augmentations.mixing import CutMix, Mixup, sample_beta
from ddr.builtins.augmentations.rded import RDEDAugmentation, shuffle_patches
from ddr.builtins.augmentations.transforms import TorchvisionTransforms
from ddr.engine.augment import Mix
from ddr.engine.geometry import sample_crop_boxes
from ddr.errors import ConfigError
from ddr.testing.augmentations import check_augmentation, instantiate

SPECS = {spec.name: spec for spec in ddr_augmentations()}
CROP_FLIP_OPS = [{"name": "RandomCrop", "args": {"size": 32, "padding": 4}},
                 {"name": "RandomHorizontalFlip", "args": [0.5]}]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch: int = 8, channels: int = 3, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, h, w, generator=gen(seed))


def bright_pixel(batch: int, size: int, at: tuple[int, int]) -> torch.Tensor:
    x = torch.zeros(batch, 1, size, size)
    x[:, :, at[0], at[1]] = 1.0
    return x


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference zero-filled shift of one image [C,H,W]: out[i, j] = x[i + dy, j + dx]."""
    h, w = x.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(x, [pad, pad, pad, pad])
    return padded[..., pad + dy: pad + dy + h, pad + dx: pad + dx + w]


# -- registration and the contract ----------------------------------------------------------------

def test_expected_augmentations_are_registered():
    assert set(SPECS) == {"dsa", "mixup", "cutmix", "rded", "flip", "random_resized_crop", "crop_flip",
                          "transforms"}
    assert {name for name, spec in SPECS.items() if spec.mixes} == {"mixup", "cutmix"}
    assert SPECS["dsa"].presets["noflip"]["strategy"] == "color_crop_cutout_scale_rotate"


def test_registration_module_does_not_import_torch():
    code = "import sys, ddr.builtins.augmentations as m; m.ddr_augmentations(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_defaults_equal_the_target_signature(name):
    spec = SPECS[name]
    target = instantiate(spec, {"ops": CROP_FLIP_OPS} if name == "transforms" else None)
    signature = {k: p.default for k, p in inspect.signature(type(target).__init__).parameters.items()
                 if p.default is not inspect.Parameter.empty}
    expected = {k: v for k, v in signature.items() if not (name == "transforms" and k == "ops")}
    assert dict(spec.defaults) == expected


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_registered_augmentation_meets_the_contract(name):
    params = {"ops": CROP_FLIP_OPS} if name == "transforms" else None
    check_augmentation(SPECS[name], params=params)
    if name != "transforms":  # its RandomCrop size is fixed at 32
        check_augmentation(SPECS[name], params=params, channels=1, size=16, batch=5)


@pytest.mark.parametrize("preset", ["noflip", "all"])
def test_dsa_presets_meet_the_contract(preset):
    check_augmentation(SPECS["dsa"], params=dict(SPECS["dsa"].presets[preset]))


def test_check_augmentation_catches_global_rng_and_in_place_edits():
    def global_rng(x, g):
        return x + torch.rand(x.shape[0], 1, 1, 1), None

    def in_place(x, g):
        x.mul_(2.0)
        return x, None

    with pytest.raises(AssertionError, match="same generator seed"):
        check_augmentation(global_rng)
    with pytest.raises(AssertionError, match="in place"):
        check_augmentation(in_place, stochastic=False)


def test_check_augmentation_catches_a_broken_mix():
    def bad_mix(x, g):
        return x, Mix(perm=torch.zeros(x.shape[0], dtype=torch.int64), lam=torch.full((x.shape[0],), 0.5))

    with pytest.raises(AssertionError, match="permutation"):
        check_augmentation(bad_mix, stochastic=False)


# -- DSA: each op family --------------------------------------------------------------------------

def test_dsa_flip_with_probability_one_equals_torch_flip():
    x = images()
    out, mix = DSA(strategy="flip", flip=1.0)(x, gen())
    assert mix is None and torch.equal(out, torch.flip(x, dims=[3]))
    assert torch.equal(DSA(strategy="flip", flip=0.0)(x, gen())[0], x)


def test_dsa_flip_probability_is_per_sample():
    out, _ = DSA(strategy="flip", flip=0.5)(images(400, 1, 4, 4), gen())
    flipped = (out == torch.flip(images(400, 1, 4, 4), dims=[3])).flatten(1).all(1).float().mean()
    assert 0.4 < float(flipped) < 0.6


@pytest.mark.parametrize("strategy, params", [("rotate", {"rotate": 0.0}), ("scale", {"scale": 1.0})])
def test_dsa_zero_rotation_and_unit_scale_are_the_identity(strategy, params):
    x = images()
    out, _ = DSA(strategy=strategy, **params)(x, gen())
    assert torch.allclose(out, x, atol=1e-5)


def test_dsa_rotation_moves_content_around_the_centre():
    x = bright_pixel(64, 33, (16, 30))  # 14 px right of the centre pixel (16, 16)
    out, _ = DSA(strategy="rotate", rotate=15.0)(x, gen())
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    cy = (out[:, 0] * ys).sum((1, 2)) / mass - 16
    cx = (out[:, 0] * xs).sum((1, 2)) / mass - 16
    radius, angle = torch.hypot(cy, cx), torch.rad2deg(torch.atan2(cy, cx)).abs()
    assert torch.allclose(radius, torch.full_like(radius, 14.0), atol=0.6)
    assert float(angle.max()) <= 15.5 and float(angle.max()) > 10.0  # spread over [-15, 15] degrees


def test_dsa_crop_is_a_zero_filled_integer_shift_within_the_ratio():
    x = bright_pixel(200, 32, (10, 20))
    out, _ = DSA(strategy="crop", crop=0.125)(x, gen())  # round(32 * 0.125) = 4 px
    seen = set()
    for i in range(len(x)):  # test-side loop over samples to find each shift
        y, xx = divmod(int(out[i, 0].flatten().argmax()), 32)
        dy, dx = 10 - y, 20 - xx
        assert abs(dy) <= 4 and abs(dx) <= 4
        assert torch.equal(out[i], shifted(x[i], dy, dx))
        seen.add((dy, dx))
    assert len(seen) > 40  # most of the 81 shifts occur


def test_dsa_crop_fills_uncovered_pixels_with_zeros():
    x = torch.ones(64, 1, 16, 16)
    out, _ = DSA(strategy="crop", crop=0.25)(x, gen())  # shifts up to 4 px
    zero_rows = (out[:, 0] == 0).all(2).sum(1)
    assert int(zero_rows.max()) == 4 and int(zero_rows.min()) == 0


def test_dsa_cutout_zeros_a_box_of_the_right_size_and_fraction():
    size, side = 32, 16  # cutout 0.5 -> a 16 x 16 box, centre in 0..32 per axis
    out, _ = DSA(strategy="cutout", cutout=0.5)(torch.ones(1000, 1, size, size), gen())
    zero = out[:, 0] == 0
    rows, cols = zero.any(2), zero.any(1)
    # the zeros form one axis-aligned box (clipped at the border) per sample
    assert torch.equal(zero, rows.unsqueeze(2) & cols.unsqueeze(1))
    assert int(rows.sum(1).min()) >= side // 2 and int(rows.sum(1).max()) == side
    covered = [len(set(range(c - side // 2, c + side // 2)) & set(range(size))) for c in range(size + 1)]
    expected_fraction = (sum(covered) / len(covered)) ** 2 / size**2
    assert abs(float(zero.float().mean()) - expected_fraction) < 0.01


def test_dsa_color_changes_brightness_and_contrast_affinely():
    x = images(256, 1, 8, 8).expand(256, 3, 8, 8)  # grey: saturation has nothing to act on
    out, _ = DSA(strategy="color")(x, gen())
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], out[:, 2])
    centred_in = x - x.mean((1, 2, 3), keepdim=True)
    centred_out = out - out.mean((1, 2, 3), keepdim=True)
    gain = (centred_out * centred_in).sum((1, 2, 3)) / (centred_in**2).sum((1, 2, 3))
    assert torch.allclose(centred_out, gain[:, None, None, None] * centred_in, atol=1e-4)
    assert float(gain.min()) >= 0.5 - 1e-5 and float(gain.max()) <= 1.5 + 1e-5  # contrast 0.5 + U(0, 1)
    offset = out.mean((1, 2, 3)) - x.mean((1, 2, 3))
    assert float(offset.abs().max()) <= 0.5 + 1e-5 and float(offset.std()) > 0.2  # brightness U(-0.5, 0.5)


def test_dsa_saturation_scales_deviation_from_the_channel_mean():
    x = images(128, 3, 4, 4)
    out, _ = DSA(strategy="color", brightness=0.0, contrast=0.0, saturation=2.0)(x, gen())
    # with these params contrast multiplies by U(0,1) after saturation: colour deviations keep direction
    dev_in, dev_out = x - x.mean(1, keepdim=True), out - out.mean(1, keepdim=True)
    factor = (dev_out * dev_in).sum((1, 2, 3)) / (dev_in**2).sum((1, 2, 3))
    assert torch.allclose(dev_out, factor[:, None, None, None] * dev_in, atol=1e-4)
    assert float(factor.min()) >= 0 and float(factor.max()) <= 2.0 + 1e-5


# -- DSA: modes, siamese, parameters --------------------------------------------------------------

def test_dsa_mode_s_applies_one_op_family_per_batch():
    x = torch.rand(6, 3, 16, 16, generator=gen()) + 1.0  # no zeros of its own
    dsa = DSA(strategy="flip_cutout", flip=1.0, cutout=0.25, mode="S")
    outcomes = set()
    for seed in range(16):
        out, _ = dsa(x, gen(seed))
        if torch.equal(out, torch.flip(x, dims=[3])):
            outcomes.add("flip")
        else:
            zeros = out == 0
            assert zeros.flatten(1).any(1).all(), "cutout applies to every sample of the batch"
            assert torch.equal(out[~zeros], x[~zeros]), "nothing but cutout happened"
            outcomes.add("cutout")
    assert outcomes == {"flip", "cutout"}


def test_dsa_mode_m_applies_every_op_family():
    x = torch.rand(6, 3, 16, 16, generator=gen()) + 1.0
    out, _ = DSA(strategy="flip_cutout", flip=1.0, cutout=0.25, mode="M")(x, gen())
    zeros = out == 0
    assert zeros.flatten(1).any(1).all()
    assert torch.equal(out[~zeros], torch.flip(x, dims=[3])[~zeros])


@pytest.mark.parametrize("seed", range(6))
def test_dsa_siamese_gives_two_batches_the_same_op_and_parameters(seed):
    one = images(1, 3, 16, 16, seed=seed)
    real, syn = one.expand(5, -1, -1, -1), one.expand(9, -1, -1, -1).clone().requires_grad_(True)
    dsa = DSA()
    generator = gen(seed)
    state = generator.get_state()
    real_aug, _ = dsa(real, generator, siamese=True)
    twin = torch.Generator()
    twin.set_state(state)
    syn_aug, _ = dsa(syn, twin, siamese=True)
    assert torch.equal(generator.get_state(), twin.get_state()), "draws must not depend on the batch size"
    assert torch.allclose(real_aug, real_aug[:1].expand_as(real_aug))
    assert torch.allclose(syn_aug, real_aug[:1].expand_as(syn_aug))
    syn_aug.sum().backward()
    assert syn.grad is not None and bool((syn.grad != 0).any())


def test_dsa_without_siamese_draws_per_sample_parameters():
    one = images(1, 3, 16, 16).expand(8, -1, -1, -1)
    out, _ = DSA(mode="M")(one, gen())
    assert not torch.allclose(out, out[:1].expand_as(out))


def test_dsa_flip_decisions_are_shared_when_siamese():
    x = images(64, 1, 4, 4)
    out, _ = DSA(strategy="flip")(x, gen(3), siamese=True)
    flipped = (out == torch.flip(x, dims=[3])).flatten(1).all(1)
    assert bool(flipped.all()) or not bool(flipped.any())


def test_dsa_accepts_vico_long_names():
    x = images()
    assert torch.equal(DSA(strategy="flip", prob_flip=1.0)(x, gen())[0], torch.flip(x, dims=[3]))
    dsa = DSA(ratio_scale=1.5, ratio_rotate=10.0, ratio_crop_pad=0.25, ratio_cutout=0.3, aug_mode="M")
    assert (dsa.scale, dsa.rotate, dsa.crop, dsa.cutout, dsa.mode) == (1.5, 10.0, 0.25, 0.3, "M")
    assert DSA(flip=0.7, prob_flip=0.7).flip == 0.7  # the same value twice is fine


def test_dsa_rejects_conflicting_alias_and_unknown_keys():
    with pytest.raises(ConfigError, match="prob_flip"):
        DSA(flip=0.2, prob_flip=0.7)
    with pytest.raises(ConfigError, match=r"'flipp' \(did you mean 'flip'\?\).*brightness.*prob_flip"):
        DSA(flipp=0.5)
    with pytest.raises(ConfigError, match="did you mean 'rotate'"):
        DSA(strategy="color_rotat")
    with pytest.raises(ConfigError, match="mode"):
        DSA(mode="X")
    with pytest.raises(ConfigError, match="scale"):
        DSA(scale=-1.0)
    with pytest.raises(ConfigError, match="float batch"):
        DSA()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), gen())


def test_dsa_strategy_none_is_the_identity():
    x = images()
    assert DSA(strategy="none")(x, gen())[0] is x
    assert DSA(strategy=["flip", "crop"]).strategy == "flip_crop"


def test_dsa_large_batch_draws_per_sample_parameters_in_one_call():
    """256 copies of one image come out as many different images (per-sample parameters drawn in
    one batched call), reproducibly for a seed. Timing is a benchmark's job, never a test's."""
    x, dsa = images(1, 3, 32, 32).expand(256, 3, 32, 32).contiguous(), DSA(mode="M")
    out, mix = dsa(x, gen(3))
    assert out.shape == x.shape and mix is None and bool(torch.isfinite(out).all())
    distinct = torch.unique(out.reshape(256, -1), dim=0).shape[0]
    assert distinct > 200
    assert torch.equal(out, dsa(x, gen(3))[0])


# -- mixing -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [(2.0, 5.0), (1.0, 1.0), (0.2, 0.2), (0.8, 0.8)])
def test_sample_beta_matches_the_beta_mean_and_variance(a, b):
    draws = sample_beta(a, b, (20000,), gen(), "cpu", torch.float64)
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert bool(((draws >= 0) & (draws <= 1)).all())
    assert abs(float(draws.mean()) - mean) < 0.01
    assert abs(float(draws.var()) - var) < 0.1 * var
    assert torch.equal(draws, sample_beta(a, b, (20000,), gen(), "cpu", torch.float64))


def test_sample_beta_is_finite_for_tiny_concentrations():
    draws = sample_beta(0.01, 0.01, (1000,), gen(), "cpu")
    assert bool(torch.isfinite(draws).all())
    assert float(((draws < 0.01) | (draws > 0.99)).float().mean()) > 0.9  # mass at the ends


def test_mixup_mixes_images_and_reports_lam_and_perm():
    x = images()
    out, mix = Mixup(alpha=0.8)(x, gen())
    lam = float(mix.lam[0])
    assert torch.equal(mix.lam, torch.full((8,), lam))
    assert 0 < lam < 1 and not torch.equal(mix.perm, torch.arange(8))
    assert torch.allclose(out, lam * x + (1 - lam) * x[mix.perm], atol=1e-6)


def test_mixup_lambda_alias_and_probability():
    assert Mixup(**{"lambda": 0.8}).alpha == 0.8
    x = images()
    out, mix = Mixup(prob=0.0)(x, gen())
    assert mix is None and out is x
    mixed = sum(Mixup(prob=0.5)(x, gen(seed))[1] is not None for seed in range(40))
    assert 10 < mixed < 30
    with pytest.raises(ConfigError, match="alpha"):
        Mixup(alpha=0.0)
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        Mixup(alpah=1.0)


def test_cutmix_pastes_one_box_and_lam_is_the_kept_fraction():
    x = torch.arange(8.0)[:, None, None, None].expand(8, 3, 32, 32).contiguous()  # image i is all i
    lams = []
    for seed in range(30):
        out, mix = CutMix(beta=1.0)(x, gen(seed))
        own = out == x
        assert bool((own | (out == x[mix.perm])).all()), "every pixel comes from the sample or its partner"
        pasted = ~own[:, 0] & (mix.perm != torch.arange(8))[:, None, None]
        kept = 1.0 - pasted.flatten(1).float().mean(1)
        moved = mix.perm != torch.arange(8)
        assert torch.allclose(kept[moved], mix.lam[moved])
        assert torch.equal(mix.lam, mix.lam[:1].expand(8))
        lams.append(float(mix.lam[0]))
    assert min(lams) < 0.5 < max(lams)


def test_cutmix_probability_and_parameters():
    x = images()
    assert CutMix(prob=0.0)(x, gen())[1] is None
    with pytest.raises(ConfigError, match="did you mean 'beta'"):
        CutMix(betta=1.0)
    with pytest.raises(ConfigError, match=r"prob must lie in \[0.0, 1.0\]"):
        CutMix(prob=1.5)


# -- RDED ------------------------------------------------------------------------------------------

def test_shuffle_patches_permutes_rows_and_columns_of_the_patch_grid():
    block = torch.tensor([[0.0, 1.0], [10.0, 11.0]])  # value = 10 * row + column of the patch
    x = block.repeat_interleave(4, 0).repeat_interleave(4, 1).expand(64, 1, 8, 8)
    out = shuffle_patches(x, 2, gen())
    patches = out[:, 0, ::4, ::4]  # one pixel per patch
    assert torch.equal(out, patches.repeat_interleave(4, 1).repeat_interleave(4, 2).unsqueeze(1))
    rows, cols = (patches // 10), (patches % 10)
    assert torch.equal(rows[:, :, 0], rows[:, :, 1]) and torch.equal(cols[:, 0], cols[:, 1])
    layouts = {tuple(p.flatten().tolist()) for p in patches}
    assert len(layouts) == 4  # the four (row perm, column perm) combinations all occur


def test_shuffle_patches_keeps_the_remainder_in_place():
    x = images(4, 3, 32, 32)
    out = shuffle_patches(x, 3, gen())  # 3 strips of 10 px, 2 px remainder
    assert out.shape == x.shape
    assert torch.equal(out[..., 30:, 30:], x[..., 30:, 30:])
    assert torch.equal(shuffle_patches(x, 1, gen()), x)


def test_rded_without_shuffle_and_flip_is_the_identity():
    x = images()
    out, _ = RDEDAugmentation(factor=1, flip=0.0)(x, gen())
    assert torch.allclose(out, x, atol=1e-5)


def test_rded_defaults_and_shapes():
    rded = RDEDAugmentation()
    assert (rded.factor, rded.scale, rded.flip) == (2, (0.5, 1.0), 0.5)
    x = images(4, 3, 24, 40)
    out, mix = rded(x, gen())
    assert out.shape == x.shape and mix is None
    assert torch.equal(out, rded(x, gen())[0])
    with pytest.raises(ConfigError, match="factor"):
        RDEDAugmentation(factor=0)
    with pytest.raises(ConfigError, match="larger than the image side"):
        RDEDAugmentation(factor=8)(images(2, 3, 4, 4), gen())


# -- building blocks --------------------------------------------------------------------------------

def test_flip_block():
    x = images()
    assert torch.equal(Flip(p=1.0)(x, gen())[0], torch.flip(x, dims=[3]))
    assert torch.equal(Flip(p=0.0)(x, gen())[0], x)


def test_random_resized_crop_boxes_follow_scale_and_ratio():
    top, left, height, width = sample_crop_boxes(2000, (32, 48), (0.08, 1.0), (3 / 4, 4 / 3), gen(), "cpu")
    assert bool(((top >= 0) & (left >= 0) & (top + height <= 32) & (left + width <= 48)).all())
    assert bool((top == top.round()).all() and (width == width.round()).all())
    area = height * width / (32 * 48)
    assert float(area.min()) >= 0.06 and float(area.max()) <= 1.0
    aspect = width / height
    assert float(aspect.min()) > 0.6 and float(aspect.max()) < 1.5
    # the same distribution as torchvision's own sampler
    from torchvision.transforms import RandomResizedCrop as TorchvisionRRC

    torch.manual_seed(0)
    reference = torch.tensor([
        h * w / (32 * 48) for _, _, h, w in
        (TorchvisionRRC.get_params(torch.zeros(1, 32, 48), [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(2000))])
    assert abs(float(area.mean()) - float(reference.mean())) < 0.02
    assert abs(float(area.std()) - float(reference.std())) < 0.02


def test_random_resized_crop_of_the_whole_image_is_the_identity():
    x = images()
    out, _ = RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, gen())
    assert torch.allclose(out, x, atol=1e-5)
    with pytest.raises(ConfigError, match="min <= max"):
        RandomResizedCrop(scale=(0.9, 0.1))


def test_random_resized_crop_falls_back_to_the_central_crop_like_torchvision():
    # no 4:1 box of the whole area fits a ratio in [3/4, 4/3]: central 10 x round(10 * 4/3) box
    boxes = sample_crop_boxes(3, (10, 40), (1.0, 1.0), (3 / 4, 4 / 3), gen(), "cpu")
    assert [b.tolist() for b in boxes] == [[0.0] * 3, [13.0] * 3, [10.0] * 3, [13.0] * 3]


def test_crop_flip_pad_scales_with_small_images():
    crop_flip = CropFlip()
    assert [crop_flip.pad_for((s, s)) for s in (8, 16, 28, 32, 64)] == [1, 2, 4, 4, 4]
    assert CropFlip(reference_size=None).pad_for((16, 16)) == 4


def test_crop_flip_shifts_by_at_most_the_pad_and_flips():
    x = bright_pixel(300, 16, (8, 3))
    out, _ = CropFlip()(x, gen())  # pad 2 at 16 px
    flips = 0
    for i in range(len(x)):
        y, xx = divmod(int(out[i, 0].flatten().argmax()), 16)
        mirrored = abs(xx - 3) > 2
        flips += mirrored
        dx = (16 - 1 - xx) - 3 if mirrored else xx - 3
        assert abs(y - 8) <= 2 and abs(dx) <= 2
        expected = shifted(x[i], 8 - y, -dx)
        assert torch.equal(out[i], torch.flip(expected, dims=[2]) if mirrored else expected)
    assert 100 < flips < 200


# -- torchvision bridge -----------------------------------------------------------------------------

def test_transforms_bridge_is_deterministic_batch_level_and_leaves_the_global_rng():
    bridge = TorchvisionTransforms(ops=CROP_FLIP_OPS)
    x = images(1).expand(6, -1, -1, -1).contiguous()
    rng_before = torch.get_rng_state()
    out, mix = bridge(x, gen(5))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert mix is None and out.shape == x.shape
    assert torch.equal(out, bridge(x, gen(5))[0])
    assert torch.equal(out, out[:1].expand_as(out)), "one parameter set per batch"
    outputs = {bridge(x, gen(seed))[0][0].sum().item() for seed in range(8)}
    assert len(outputs) > 1


def test_transforms_bridge_accepts_bare_names_and_scalar_args():
    x = images()
    out, _ = TorchvisionTransforms(ops=["RandomHorizontalFlip", {"name": "RandomVerticalFlip", "args": 1.0}])(x, gen())
    assert out.shape == x.shape
    # vertical flip always; the horizontal one is one decision for the whole batch
    assert torch.equal(out, torch.flip(x, dims=[2])) or torch.equal(out, torch.flip(x, dims=[2, 3]))
    assert torch.equal(TorchvisionTransforms(ops=[{"name": "RandomVerticalFlip", "args": [1.0]}])(x, gen())[0],
                       torch.flip(x, dims=[2]))


def test_transforms_bridge_errors():
    with pytest.raises(ConfigError, match="did you mean.*RandomCrop"):
        TorchvisionTransforms(ops=[{"name": "RandomCorp", "args": {"size": 32}}])
    with pytest.raises(ConfigError, match="non-empty list 'ops'"):
        TorchvisionTransforms(ops=[])
    with pytest.raises(ConfigError, match="RandomCrop.*failed"):
        TorchvisionTransforms(ops=[{"name": "RandomCrop", "args": {"sise": 32}}])
    with pytest.raises(ConfigError, match="each op must be"):
        TorchvisionTransforms(ops=[{"nam": "RandomCrop"}])
