"""ddr.engine.seeds and ddr.store.hashing: golden values, stability across processes, validation."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch

from ddr.engine import seeds as seeding
from ddr.errors import ArtifactError, DdrError
from ddr.plugin.specs import DatasetSpec
from ddr.store import hashing

REPO_ROOT = Path(__file__).resolve().parents[3]

# ---------------------------------------------------------------------------------------------
# seeding: stable_hash / derive_seed

GOLDEN_SEEDS = {
    (0, "student", 0): 2889535263132632231,
    (0, "student", 1): 3005296578328690960,
    (0, "random_subset", 0): 3456592525356179394,
    (42, "student", 0): 7057638083857453352,
    (2**63 - 1, "x", 7): 1983586288050058007,
}


def test_stable_hash_golden_values():
    assert seeding.stable_hash("student", 0) == 1383834473
    assert seeding.stable_hash("student", 1) == 1088988374
    # defined as the first 4 bytes (big-endian) of sha256('["student",0]')
    expected = int.from_bytes(hashlib.sha256(b'["student",0]').digest()[:4], "big")
    assert seeding.stable_hash("student", 0) == expected


def test_stable_hash_distinguishes_types():
    assert seeding.stable_hash("1") == 1138637377
    assert seeding.stable_hash(1) == 134913748
    assert seeding.stable_hash(True) != seeding.stable_hash(1)
    assert seeding.stable_hash("a", "b") != seeding.stable_hash("ab")


def test_derive_seed_golden_values():
    for (seed, role, index), expected in GOLDEN_SEEDS.items():
        assert seeding.derive_seed(seed, role, index) == expected


def test_derive_seed_follows_the_protocol_definition():
    sequence = np.random.SeedSequence(7, spawn_key=(seeding.stable_hash("teacher", 3),))
    high, low = (int(w) for w in sequence.generate_state(2, dtype=np.uint32))
    assert seeding.derive_seed(7, "teacher", 3) == (high << 31) | (low >> 1)


def test_derive_seed_separates_roles_indices_and_seeds():
    derived = {
        seeding.derive_seed(seed, role, index)
        for seed in (0, 1, 2)
        for role in ("student/syn_hard", "student/syn_any", "student/rdm_any", "random_subset")
        for index in range(5)
    }
    assert len(derived) == 3 * 4 * 5
    assert all(0 <= value < 2**63 for value in derived)
    assert seeding.derive_seed(0, "student") == seeding.derive_seed(0, "student", 0)
    assert seeding.derive_seed(0, "student", np.int64(1)) == GOLDEN_SEEDS[(0, "student", 1)]


def test_derive_seed_same_in_fresh_processes_with_different_hash_seeds():
    script = (
        "from ddr.engine.seeds import derive_seed, stable_hash;"
        "print(derive_seed(0, 'student', 1), derive_seed(42, 'student', 0),"
        " stable_hash('student', 0))"
    )
    outputs = []
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO_ROOT))
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.append(result.stdout.split())
    expected = [
        str(GOLDEN_SEEDS[(0, "student", 1)]),
        str(GOLDEN_SEEDS[(42, "student", 0)]),
        "1383834473",
    ]
    assert outputs == [expected, expected]


@pytest.mark.parametrize("bad", [-1, 2**63, 1.0, True, "3", None, np.float64(2.0)])
def test_invalid_seeds_are_rejected(bad):
    with pytest.raises(DdrError, match="seed"):
        seeding.derive_seed(bad, "student")
    with pytest.raises(DdrError, match="seed"):
        seeding.numpy_generator(bad)
    with pytest.raises(DdrError, match="seed"):
        seeding.torch_generator(bad)


@pytest.mark.parametrize("role, index", [("", 0), (3, 0), ("student", -1), ("student", True)])
def test_invalid_roles_and_indices_are_rejected(role, index):
    with pytest.raises(DdrError):
        seeding.derive_seed(0, role, index)


# ---------------------------------------------------------------------------------------------
# seeding: generators


def test_torch_generator_reproducible_and_seed_dependent():
    first = torch.rand(5, generator=seeding.torch_generator(123))
    again = torch.rand(5, generator=seeding.torch_generator(123))
    other = torch.rand(5, generator=seeding.torch_generator(124))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    generator = seeding.torch_generator(GOLDEN_SEEDS[(42, "student", 0)], torch.device("cpu"))
    assert generator.initial_seed() == GOLDEN_SEEDS[(42, "student", 0)]
    assert generator.device.type == "cpu"


def test_torch_generator_on_unusable_device_is_a_ddr_error():
    with pytest.raises(DdrError, match="device"):
        seeding.torch_generator(0, "no-such-device")


def test_numpy_generator_reproducible():
    first = seeding.numpy_generator(123).integers(0, 1000, 8)
    again = seeding.numpy_generator(np.int64(123)).integers(0, 1000, 8)
    other = seeding.numpy_generator(124).integers(0, 1000, 8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.array_equal(first, np.random.default_rng(123).integers(0, 1000, 8))


@pytest.fixture
def restore_global_rngs():
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def _global_draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_seeds_all_global_generators(restore_global_rngs):
    big = GOLDEN_SEEDS[(0, "student", 0)]  # > 2**32: legacy numpy must still accept it
    seeding.seed_everything(big)
    first = _global_draws()
    seeding.seed_everything(big)
    assert _global_draws() == first
    seeding.seed_everything(big + 2**32)  # differs only above bit 32
    assert _global_draws()[1] != first[1]
    assert torch.initial_seed() == big + 2**32
    with pytest.raises(DdrError):
        seeding.seed_everything(-5)


@pytest.fixture
def restore_determinism(monkeypatch):
    state = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield monkeypatch
    torch.use_deterministic_algorithms(state[0], warn_only=state[1])
    torch.backends.cudnn.benchmark = state[2]
    torch.backends.cudnn.deterministic = state[3]


def test_set_deterministic_on_and_off(restore_determinism):
    record = seeding.set_deterministic(True)
    assert record == {
        "deterministic": True,
        "use_deterministic_algorithms": True,
        "warn_only": True,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "cublas_workspace_config": ":4096:8",
    }
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()
    record = seeding.set_deterministic(False)
    assert record["use_deterministic_algorithms"] is False
    assert record["cudnn_deterministic"] is False
    assert not torch.are_deterministic_algorithms_enabled()


def test_set_deterministic_keeps_a_user_cublas_setting(restore_determinism):
    restore_determinism.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert seeding.set_deterministic(True)["cublas_workspace_config"] == ":16:8"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    with pytest.raises(DdrError):
        seeding.set_deterministic(1)


# ---------------------------------------------------------------------------------------------
# hashing: canonical JSON

SAMPLE = {"b": [1, 2.5, (3, "x")], "a": {"z": None, "y": True}, "c": 0.1}
SAMPLE_JSON = '{"a":{"y":true,"z":null},"b":[1,2.5,[3,"x"]],"c":0.1}'
SAMPLE_SHA256 = "f94d3356e70b9254b6cff1ac6594da59835c87bf74635249542e4e653248dc17"


def test_canonical_json_golden():
    assert hashing.canonical_json(SAMPLE) == SAMPLE_JSON
    assert hashing.sha256_json(SAMPLE) == SAMPLE_SHA256
    assert hashlib.sha256(SAMPLE_JSON.encode()).hexdigest() == SAMPLE_SHA256


def test_key_order_does_not_matter():
    reordered = {"c": 0.1, "a": {"y": True, "z": None}, "b": [1, 2.5, [3, "x"]]}
    assert hashing.sha256_json(reordered) == SAMPLE_SHA256
    assert hashing.sha256_json(MappingProxyType(reordered)) == SAMPLE_SHA256


def test_values_that_must_differ_do():
    assert hashing.sha256_json({"lr": 1}) != hashing.sha256_json({"lr": 1.0})
    assert hashing.sha256_json([1, 2]) != hashing.sha256_json([2, 1])
    assert hashing.sha256_json({"x": "1"}) != hashing.sha256_json({"x": 1})
    assert hashing.sha256_json({"x": True}) != hashing.sha256_json({"x": 1})


def test_floats_use_shortest_round_trip_form():
    assert hashing.canonical_json([0.1, 1e-05, 1e100, 2.0]) == "[0.1,1e-05,1e+100,2.0]"
    assert hashing.canonical_json(np.float32(0.5)) == "0.5"
    assert hashing.canonical_json({"n": np.int64(3), "f": np.float64(0.25)}) == '{"f":0.25,"n":3}'


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan")])
def test_non_finite_floats_are_rejected(bad):
    with pytest.raises(DdrError, match=r"value\['params'\]\['lr'\]"):
        hashing.canonical_json({"params": {"lr": bad}})


def test_paths_enums_sets_and_non_ascii():
    class Space(enum.Enum):
        ZCA = "zca"

    value = {"dir": Path("/data") / "cifar10", "space": Space.ZCA, "tags": {"b", "a"}, "név": "é"}
    assert (
        hashing.canonical_json(value)
        == '{"dir":"/data/cifar10","n\\u00e9v":"\\u00e9","space":"zca","tags":["a","b"]}'
    )


def test_dataclasses_hash_as_their_fields():
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: tuple[float, ...]

    assert hashing.canonical_json(Point(1, (0.5,))) == '{"x":1,"y":[0.5]}'
    spec = DatasetSpec(name="digits", target="ddr.builtins.datasets.digits:load", num_classes=10)
    text = hashing.canonical_json(spec)
    assert json.loads(text)["num_classes"] == 10
    assert hashing.sha256_json(spec) == hashing.sha256_json(
        DatasetSpec(name="digits", target="ddr.builtins.datasets.digits:load", num_classes=10)
    )


@pytest.mark.parametrize("bad", [{1: "a"}, {"f": object()}, [np.zeros(3)], {"t": torch.zeros(1)}])
def test_unhashable_values_are_rejected(bad):
    with pytest.raises(DdrError, match="cannot hash"):
        hashing.canonical_json(bad)


# ---------------------------------------------------------------------------------------------
# hashing: bytes and files


def test_sha256_bytes_known_vector():
    # FIPS 180-2 test vector
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hashing.sha256_bytes(b"abc") == expected
    assert hashing.sha256_bytes(memoryview(b"abc")) == expected


def test_sha256_file_reads_in_chunks(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 2_500_000, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)  # 2.4 MiB: three 1 MiB chunks
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert hashing.sha256_file(str(path)) == hashing.sha256_bytes(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hashing.sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_sha256_file_missing_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="absent.bin"):
        hashing.sha256_file(tmp_path / "absent.bin")


# ---------------------------------------------------------------------------------------------
# hashing: tensors

IMAGES = torch.arange(6, dtype=torch.float32).reshape(2, 3)
LABELS = torch.tensor([0, 1])
TENSOR_GOLDEN = "6e7d52108e09c4b0ad0665f286fe428d93c639eee3cc0e4c151450e1285cff15"


def test_tensor_sha256_golden_and_documented_format():
    assert hashing.tensor_sha256(IMAGES, LABELS, None) == TENSOR_GOLDEN
    expected = hashlib.sha256(
        b'{"dtype":"torch.float32","shape":[2,3]}\n'
        + np.arange(6, dtype="<f4").tobytes()
        + b'{"dtype":"torch.int64","shape":[2]}\n'
        + np.array([0, 1], dtype="<i8").tobytes()
        + b"none\n"
    ).hexdigest()
    assert expected == TENSOR_GOLDEN


def test_tensor_sha256_changes_with_value_dtype_shape_order_and_presence():
    base = hashing.tensor_sha256(IMAGES, LABELS, None)
    one_value = IMAGES.clone()
    one_value[1, 2] = 5.000001
    assert hashing.tensor_sha256(one_value, LABELS, None) != base
    assert hashing.tensor_sha256(IMAGES.double(), LABELS, None) != base
    assert hashing.tensor_sha256(IMAGES.reshape(3, 2), LABELS, None) != base  # same bytes
    assert hashing.tensor_sha256(IMAGES, LABELS) != base
    assert hashing.tensor_sha256(LABELS, IMAGES, None) != base
    assert hashing.tensor_sha256(None, IMAGES, LABELS) != base


def test_tensor_sha256_ignores_memory_layout_and_autograd():
    images = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    strided = images.transpose(2, 3).contiguous().transpose(2, 3)  # same values, other strides
    assert not strided.is_contiguous()
    assert torch.equal(strided, images)
    channels_last = images.to(memory_format=torch.channels_last)
    reference = hashing.tensor_sha256(images)
    assert hashing.tensor_sha256(strided) == reference
    assert hashing.tensor_sha256(channels_last) == reference
    assert hashing.tensor_sha256(images.clone().requires_grad_(True)) == reference
    assert hashing.tensor_sha256(images.numpy()) == reference
    assert hashing.tensor_sha256(np.asfortranarray(images.numpy())) == reference


def test_tensor_sha256_handles_dtypes_numpy_lacks_and_scalars():
    bf16 = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert hashing.tensor_sha256(bf16) != hashing.tensor_sha256(bf16.half())
    assert hashing.tensor_sha256(torch.tensor(3.0)) != hashing.tensor_sha256(torch.tensor([3.0]))
    assert hashing.tensor_sha256(torch.zeros(0, 3)) != hashing.tensor_sha256(torch.zeros(3, 0))


def test_tensor_sha256_rejects_other_objects():
    with pytest.raises(DdrError, match="argument 1"):
        hashing.tensor_sha256(IMAGES, [0, 1])
    with pytest.raises(DdrError, match="layout"):
        hashing.tensor_sha256(IMAGES.to_sparse())
