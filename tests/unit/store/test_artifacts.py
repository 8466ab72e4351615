"""Distilled-set I/O (ddr format, DD-Ranking .pt layouts, class folders) and validation."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddr.errors import ArtifactError, ConfigError, DistilledSetError
from ddr.method.distilled import DistilledSet, distilled_sha256, validate_distilled
from ddr.store.formats import load_distilled, save_distilled

K, IPC, C, H, W = 3, 2, 3, 8, 8
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.1)


def make_set(*, soft: bool = False, lr: float | None = 0.01, seed: int = 0) -> DistilledSet:
    g = torch.Generator().manual_seed(seed)
    return DistilledSet(
        images=torch.randn(K * IPC, C, H, W, generator=g),
        labels=torch.arange(K).repeat_interleave(IPC),
        soft_labels=torch.randn(K * IPC, K, generator=g) if soft else None,
        lr=lr,
        label_strategy="stored_soft" if soft else None,
        meta={"method": "dm", "ipc": IPC, "nested": {"a": [1, 2.5]}},
    )


def validate(ds: DistilledSet, **overrides):
    kwargs = dict(num_classes=K, ipc=IPC, channels=C, image_size=(H, W), mean=MEAN, std=STD)
    kwargs.update(overrides)
    return validate_distilled(ds, **kwargs)


# --------------------------------------------------------------------------------- ddr format


def test_ddr_format_round_trip_is_bit_identical(tmp_path: Path) -> None:
    ds = make_set(soft=True)
    out = save_distilled(ds, tmp_path / "set")
    assert sorted(p.name for p in out.iterdir()) == ["images.safetensors", "meta.json"]
    back = load_distilled(out)
    assert torch.equal(back.images, ds.images) and back.images.dtype == torch.float32
    assert torch.equal(back.labels, ds.labels) and back.labels.dtype == torch.int64
    assert torch.equal(back.soft_labels, ds.soft_labels)
    assert back.lr == 0.01 and back.label_strategy == "stored_soft" and back.pixel_space == "normalized"
    assert back.meta == ds.meta
    record = json.loads((out / "meta.json").read_text())
    assert record["format"] == "ddr-distilled" and record["format_version"] == 1
    assert record["num_images"] == K * IPC and record["shape"] == [K * IPC, C, H, W]
    assert record["sha256"] == distilled_sha256(ds) == distilled_sha256(back)


def test_sha256_depends_on_every_part() -> None:
    base = make_set(soft=True)
    sha = distilled_sha256(base)
    assert sha == distilled_sha256(make_set(soft=True))
    assert len(sha) == 64
    images = base.images.clone()
    images[0, 0, 0, 0] += 1e-3
    variants = [
        DistilledSet(images=images, labels=base.labels, soft_labels=base.soft_labels, lr=base.lr),
        DistilledSet(images=base.images, labels=base.labels.flip(0), soft_labels=base.soft_labels, lr=base.lr),
        DistilledSet(images=base.images, labels=base.labels, soft_labels=None, lr=base.lr),
        DistilledSet(images=base.images, labels=base.labels, soft_labels=base.soft_labels, lr=0.02),
        DistilledSet(images=base.images, labels=base.labels, soft_labels=base.soft_labels, lr=None),
    ]
    shas = {distilled_sha256(v) for v in variants}
    assert sha not in shas and len(shas) == len(variants)


def test_save_replaces_existing_artifact_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "set"
    save_distilled(make_set(seed=0), target)
    second = make_set(seed=1, lr=None)
    save_distilled(second, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    back = load_distilled(target)
    assert torch.equal(back.images, second.images) and back.lr is None


def test_failed_save_keeps_previous_artifact(tmp_path: Path) -> None:
    target = tmp_path / "set"
    first = make_set(seed=0)
    save_distilled(first, target)
    broken = make_set(seed=1)
    broken.meta = {"tensor": torch.zeros(1)}  # not JSON-serialisable
    with pytest.raises(ArtifactError, match="'tensor'"):
        save_distilled(broken, target)
    assert torch.equal(load_distilled(target).images, first.images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_truncated_safetensors_is_reported(tmp_path: Path) -> None:
    out = save_distilled(make_set(), tmp_path / "set")
    data = (out / "images.safetensors").read_bytes()
    (out / "images.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"(?s)images\.safetensors.*truncated or corrupt"):
        load_distilled(out)


def test_tampered_tensor_file_fails_the_hash_check(tmp_path: Path) -> None:
    out = save_distilled(make_set(), tmp_path / "set")
    data = bytearray((out / "images.safetensors").read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last stored value; the file stays well-formed
    (out / "images.safetensors").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_distilled(out)


def test_foreign_meta_json_is_rejected(tmp_path: Path) -> None:
    out = save_distilled(make_set(), tmp_path / "set")
    (out / "meta.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtifactError, match="format='something-else'"):
        load_distilled(out)


# ------------------------------------------------------------------------- .pt layouts


def test_ddranking_layout_with_soft_labels_and_lr(tmp_path: Path) -> None:
    ds = make_set(soft=True)
    # DATM's learned soft labels start as teacher logits of the right class: make argmax agree.
    soft = ds.soft_labels + 10 * torch.nn.functional.one_hot(ds.labels, K)
    torch.save(ds.images, tmp_path / "images.pt")
    torch.save(soft, tmp_path / "labels.pt")
    torch.save(torch.tensor(0.03, requires_grad=True), tmp_path / "lr.pt")
    back = load_distilled(tmp_path, pixel_space="zca")
    assert torch.equal(back.images, ds.images) and torch.equal(back.soft_labels, soft)
    assert back.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert back.lr == pytest.approx(0.03) and back.pixel_space == "zca"
    assert back.meta["source_format"] == "ddranking_dir"
    assert any("agrees on 1.00" in w for w in back.meta["warnings"])


def test_ddranking_layout_hard_labels(tmp_path: Path) -> None:
    ds = make_set()
    labels = torch.tensor([2, 1, 0, 2, 1, 0])
    torch.save(ds.images, tmp_path / "images.pt")
    torch.save(labels, tmp_path / "labels.pt")
    back = load_distilled(tmp_path)
    assert torch.equal(back.labels, labels) and back.soft_labels is None and back.lr is None
    assert back.pixel_space == "normalized"


def test_missing_labels_are_inferred_class_major(tmp_path: Path) -> None:
    torch.save(make_set().images, tmp_path / "images.pt")
    back = load_distilled(tmp_path, num_classes=K, ipc=IPC)
    assert back.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert any("class-major" in w for w in back.meta["warnings"])
    with pytest.raises(ArtifactError, match="needs num_classes and ipc"):
        load_distilled(tmp_path)
    with pytest.raises(ArtifactError, match=r"num_classes\*ipc = 3\*3 = 9"):
        load_distilled(tmp_path, num_classes=K, ipc=3)


def test_single_pt_file_dict(tmp_path: Path) -> None:
    ds = make_set()
    file = tmp_path / "syn.pt"
    torch.save({"x": ds.images, "y": ds.labels, "lr": 0.5}, file)
    back = load_distilled(file)
    assert torch.equal(back.images, ds.images) and torch.equal(back.labels, ds.labels) and back.lr == 0.5


def test_vico_res_file_uses_first_experiment(tmp_path: Path) -> None:
    first, second = make_set(seed=0), make_set(seed=1)
    file = tmp_path / "res_DM_CIFAR10_ConvNet_2ipc.pt"
    data = [[first.images, first.labels], [second.images, second.labels]]
    torch.save({"data": data, "accs_all_exps": {"ConvNet": [0.5]}}, file)
    back = load_distilled(file)
    assert torch.equal(back.images, first.images)
    assert back.meta["source_format"] == "vico_res"
    assert "2 experiments; using the first one" in back.meta["warnings"][0]


class _WritesMarker:
    """Unpickling this runs ``touch <marker>`` (what a malicious images.pt would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_not_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "PWNED"
    payload = {"images": _WritesMarker(marker)}
    file = tmp_path / "images.pt"
    if writer == "torch.save":
        torch.save(payload, file)
    else:
        with open(file, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(ArtifactError, match="refusing to unpickle"):
        load_distilled(tmp_path, num_classes=K, ipc=IPC)
    with pytest.raises(ArtifactError, match="refusing to unpickle"):
        load_distilled(file)
    assert not marker.exists()


def test_corrupt_pt_file_is_reported(tmp_path: Path) -> None:
    torch.save(make_set().images, tmp_path / "images.pt")
    data = (tmp_path / "images.pt").read_bytes()
    (tmp_path / "images.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"(?s)images\.pt.*truncated"):
        load_distilled(tmp_path, num_classes=K, ipc=IPC)


def test_bad_lr_file_is_reported(tmp_path: Path) -> None:
    torch.save(make_set().images, tmp_path / "images.pt")
    torch.save(torch.ones(3), tmp_path / "lr.pt")
    with pytest.raises(ArtifactError, match=r"lr\.pt: expected a learning rate.*shape \(3,\)"):
        load_distilled(tmp_path, num_classes=K, ipc=IPC)


# ------------------------------------------------------------------------ class folders


def write_png_tree(root: Path, class_names: list[str], per_class: int, size: int = 4, mode: str = "RGB") -> None:
    for c, name in enumerate(class_names):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            value = 10 * c + i  # the pixel value encodes (class, index): the order is checked below
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(folder / f"img{i}.png")
    (root / class_names[0] / "notes.txt").write_text("ignored")


def test_class_folder_png_tree(tmp_path: Path) -> None:
    write_png_tree(tmp_path, ["cat", "dog", "ant"], per_class=2)
    ds = load_distilled(tmp_path, num_classes=3)
    assert ds.images.shape == (6, 3, 4, 4) and ds.pixel_space == "pixel01"
    assert ds.meta["class_names"] == ["ant", "cat", "dog"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    # ant = folder 2 written with values 20, 21; it sorts first
    assert ds.images[:, 0, 0, 0].mul(255).round().tolist() == [20, 21, 0, 1, 10, 11]


def test_numeric_class_folders_sort_numerically_and_train_subdir(tmp_path: Path) -> None:
    names = [str(i) for i in range(11)]  # unpadded: "10" must come after "9"
    write_png_tree(tmp_path / "train", names, per_class=1, mode="L")
    ds = load_distilled(tmp_path)
    assert ds.meta["class_names"] == names
    assert ds.images.shape == (11, 1, 4, 4)
    assert ds.images[:, 0, 0, 0].mul(255).round().tolist() == [10 * c for c in range(11)]


def test_class_folder_count_mismatch_and_corrupt_image(tmp_path: Path) -> None:
    write_png_tree(tmp_path, ["00000", "00001"], per_class=1)
    with pytest.raises(ArtifactError, match="2 class folders but the dataset has 3"):
        load_distilled(tmp_path, num_classes=3)
    (tmp_path / "00001" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ArtifactError, match="broken.png"):
        load_distilled(tmp_path)


def test_unknown_layouts_list_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"(?s)empty directory.*accepted distilled-set layouts"):
        load_distilled(tmp_path)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ArtifactError, match=r"(?s)found: readme.txt.*class-folder image tree"):
        load_distilled(tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_distilled(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="does not exist"):
        load_distilled(os.devnull)  # neither a file nor a folder
    with pytest.raises(ArtifactError, match="File name too long; give a shorter path"):
        load_distilled(tmp_path / ("a" * 300))


# ---------------------------------------------------------------------------- validation


def test_valid_set_passes_unchanged_and_input_is_not_mutated() -> None:
    ds = make_set(soft=True)
    before = ds.images.clone()
    out = validate(ds)
    assert out is not ds and torch.equal(out.images, before) and torch.equal(ds.images, before)
    assert out.pixel_space == "normalized" and out.lr == 0.01 and "warnings" not in out.meta


def test_wrong_image_count() -> None:
    ds = make_set()
    with pytest.raises(DistilledSetError, match=r"class 0: 2.*exactly ipc=3.*ipc\*num_classes = 9"):
        validate(ds, ipc=3)
    # as an upper bound, 2 images per class fit a budget of 3
    assert validate(ds, ipc=3, expect_ipc_exact=False).images.shape[0] == 6
    with pytest.raises(DistilledSetError, match="at most ipc=1"):
        validate(ds, ipc=1, expect_ipc_exact=False)


def test_wrong_channels_suggests_conversion() -> None:
    ds = make_set()
    grey = DistilledSet(images=ds.images[:, :1], labels=ds.labels)
    with pytest.raises(DistilledSetError, match="1 channel.*dataset has 3.*convert the set to RGB"):
        validate(grey)


def test_wrong_size_and_resize() -> None:
    ds = make_set()
    with pytest.raises(DistilledSetError, match=r"8x8 \(HxW\).*16x16.*resize=True"):
        validate(ds, image_size=(16, 16))
    out = validate(ds, image_size=(4, 4), resize=True)
    assert out.images.shape == (6, 3, 4, 4) and out.meta["resized_from"] == [8, 8]
    # a constant image stays constant under antialiased bilinear resizing
    flat = DistilledSet(images=torch.full((6, 3, 8, 8), 0.25), labels=ds.labels, pixel_space="zca")
    with pytest.raises(DistilledSetError, match="ZCA"):
        validate(flat, image_size=16, resize=True)
    flat.pixel_space = "normalized"
    assert torch.allclose(validate(flat, image_size=16, resize=True).images, torch.tensor(0.25))


def test_label_out_of_range_and_missing_class() -> None:
    ds = make_set()
    bad = DistilledSet(images=ds.images, labels=torch.tensor([0, 0, 1, 1, 2, 5]))
    with pytest.raises(DistilledSetError, match=r"1 label\(s\) lie outside \[0, 3\) \(values \[5\]\)"):
        validate(bad)
    missing = DistilledSet(images=ds.images, labels=torch.tensor([0, 0, 0, 1, 1, 1]))
    with pytest.raises(DistilledSetError, match=r"class\(es\) \[2\] have no images"):
        validate(missing)
    float_labels = DistilledSet(images=ds.images, labels=ds.labels.float())
    with pytest.raises(DistilledSetError, match="1-D integer"):
        validate(float_labels)
    short = DistilledSet(images=ds.images, labels=ds.labels[:5])
    with pytest.raises(DistilledSetError, match="6 images but 5 labels"):
        validate(short)


def test_non_finite_images_report_counts() -> None:
    ds = make_set()
    images = ds.images.clone()
    images[0, 0, 0, :3] = float("nan")
    images[4, 1, 2, 2] = float("inf")
    with pytest.raises(DistilledSetError, match="3 NaN and 1 Inf value.*in 2 of 6 images"):
        validate(DistilledSet(images=images, labels=ds.labels))


def test_images_must_be_4d_float() -> None:
    ds = make_set()
    with pytest.raises(DistilledSetError, match="expected 4-D"):
        validate(DistilledSet(images=ds.images[0], labels=ds.labels))
    with pytest.raises(DistilledSetError, match="dtype torch.uint8"):
        validate(DistilledSet(images=ds.images.to(torch.uint8), labels=ds.labels))


def test_soft_label_shape_and_values() -> None:
    ds = make_set(soft=True)
    wrong = DistilledSet(images=ds.images, labels=ds.labels, soft_labels=ds.soft_labels[:, :2])
    with pytest.raises(DistilledSetError, match=r"shape \(6, 2\); expected \[N, K\] = \[6, 3\]"):
        validate(wrong)
    soft = ds.soft_labels.clone()
    soft[1, 1] = float("nan")
    with pytest.raises(DistilledSetError, match="soft labels contain 1 NaN"):
        validate(DistilledSet(images=ds.images, labels=ds.labels, soft_labels=soft))


@pytest.mark.parametrize("lr", [-0.1, 0.0, float("nan"), float("inf")])
def test_bad_learning_rate(lr: float) -> None:
    with pytest.raises(DistilledSetError, match="expected a finite number > 0"):
        validate(make_set(lr=lr))


def test_pixel01_is_normalised() -> None:
    g = torch.Generator().manual_seed(3)
    pixels = torch.rand(K * IPC, C, H, W, generator=g)
    ds = DistilledSet(images=pixels, labels=torch.arange(K).repeat_interleave(IPC), pixel_space="pixel01")
    out = validate(ds)
    assert out.pixel_space == "normalized" and ds.pixel_space == "pixel01"
    # channel 2: (x - 0.3) / 0.1
    assert torch.allclose(out.images[:, 2], (pixels[:, 2] - 0.3) / 0.1)
    assert out.images[0, 0, 0, 0].item() == pytest.approx((pixels[0, 0, 0, 0].item() - 0.5) / 0.25)
    assert "warnings" not in out.meta
    with pytest.raises(ConfigError, match="do not fit 3-channel"):
        validate(ds, mean=(0.5,), std=(0.2,))


def test_normalized_set_that_looks_unnormalised_is_warned_not_rejected() -> None:
    pixels = torch.rand(K * IPC, C, H, W, generator=torch.Generator().manual_seed(4))
    out = validate(DistilledSet(images=pixels, labels=torch.arange(K).repeat_interleave(IPC)))
    assert torch.equal(out.images, pixels)
    assert len(out.meta["warnings"]) == 1 and "looks unnormalised" in out.meta["warnings"][0]


def test_loaded_png_tree_validates_to_normalised_images(tmp_path: Path) -> None:
    write_png_tree(tmp_path, ["a", "b", "c"], per_class=IPC, size=H)
    out = validate(load_distilled(tmp_path, num_classes=K))
    # class "b" image 1 holds pixel value 11/255 in every channel
    expected = (11 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(out.images[3, :, 0, 0], expected, atol=1e-6)
