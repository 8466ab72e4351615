"""Fuzzing the distilled-set readers (``ddr eval PATH``): ddr's own format (``meta.json`` and
``images.safetensors``) and DD-Ranking's ``.pt`` layouts (``images.pt``/``labels.pt``/``lr.pt``, a
single ``.pt`` file). Each property: :func:`~ddr.store.formats.load_distilled` gives a set that
:func:`~ddr.method.distilled.validate_distilled` accepts or refuses with a DdrError, or it raises
a DdrError itself; nothing else escapes and nothing in the folder changes."""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.fuzzing import (
    EDGE_NUMBERS,
    EDGE_TEXT,
    HUGE_NUMBERS,
    json_values,
    mutated,
    mutated_bytes,
    one_key_at_its_edge,
    parse_outcome,
    scratch_dir,
    snapshot,
    weighted,
    yaml_soup,
)
from hypothesis import strategies as st

from ddr.method.distilled import DistilledSet, validate_distilled
from ddr.store.formats import META_FILE, TENSOR_FILE, load_distilled, save_distilled

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, on generated pickles
NUM_CLASSES, IPC = 2, 2


def _reference(folder: Path) -> tuple[dict[str, Any], bytes]:
    """meta.json (as data) and images.safetensors (bytes) of a small valid set."""
    ds = DistilledSet(images=torch.rand(4, 1, 4, 4), labels=torch.tensor([0, 0, 1, 1]), soft_labels=torch.randn(4, 2),
                      lr=0.01, meta={"method": "dm", "warnings": ["w"], "ipc": 2})
    save_distilled(ds, folder / "set")
    return json.loads((folder / "set" / META_FILE).read_text()), (folder / "set" / TENSOR_FILE).read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    return _reference(tmp_path_factory.mktemp("reference"))


def _validate(ds: DistilledSet, resize: bool = False) -> DistilledSet:
    return validate_distilled(ds, num_classes=NUM_CLASSES, ipc=IPC, channels=1, image_size=4, mean=(0.5,),
                              std=(0.25,), resize=resize)


def _check(path: Path, **kwargs: Any) -> None:
    """The property: load, then validate; a valid set is float32 [N, 1, 4, 4] with finite values."""
    ds, _ = parse_outcome(lambda: load_distilled(path, **kwargs))
    if ds is None:
        return
    assert isinstance(ds, DistilledSet)
    checked, _ = parse_outcome(lambda: _validate(ds, resize=bool(kwargs)))
    if checked is not None:
        assert checked.images.dtype == torch.float32 and tuple(checked.images.shape[1:]) == (1, 4, 4)
        assert bool(torch.isfinite(checked.images).all())
        assert checked.lr is None or (math.isfinite(checked.lr) and checked.lr > 0)


META_KEYS = ["format", "format_version", "lr", "meta", "pixel_space", "label_strategy", "sha256", "shape",
             "num_images", "warnings", "resized_from", "source_format"]
META_VALUES = weighted((json_values(), 3), (st.sampled_from(HUGE_NUMBERS), 2), (st.integers(-2, 3), 1),
                       (st.sampled_from(("ddr-distilled", "normalized", "zca", "pixel01", "hard", "teacher", "")), 2))


def test_meta_json(run_property: Callable[..., None], reference: tuple[dict[str, Any], bytes]) -> None:
    """meta.json holding anything beside a valid tensor file: the real record with wrong types,
    unknown keys, huge/negative/NaN numbers (lr, format_version), a meta that is no mapping,
    deep nesting; JSON-ish soup, random text and bytes."""
    record, tensors = reference
    no_sha = {k: v for k, v in record.items() if k != "sha256"}  # so that edits reach past the hash check
    structured = st.sampled_from((record, no_sha)).flatmap(
        lambda base: mutated(base, META_KEYS, META_VALUES, cycles=False)).map(lambda d: json.dumps(d).encode())
    contents = weighted((structured, 6), (yaml_soup(("{", "}", "[", "]", '"', ":", ",", "NaN", "-Infinity", "1e999",
                                                     "true", "null", '"format"', '"ddr-distilled"', "\\u0000",
                                                     "1" + "0" * 5000))
                                          .map(str.encode), 1),
                        (st.sampled_from((10, 1000, 100_000)).map(lambda n: ("[" * n + "]" * n).encode()), 1),
                        (st.binary(max_size=100), 1))

    def prop(content: bytes, as_file: bool) -> None:
        with scratch_dir() as tmp:
            folder = tmp / "set"
            folder.mkdir()
            (folder / META_FILE).write_bytes(content)
            (folder / TENSOR_FILE).write_bytes(tensors)
            before = snapshot(tmp)
            _check(folder / META_FILE if as_file else folder)
            assert snapshot(tmp) == before

    run_property(prop, contents, st.booleans())


def _safetensors(header: Any, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@st.composite
def _tensor_files(draw: st.DrawFn, base: bytes) -> bytes:
    """A safetensors file: the valid one with bytes edited, or a header of wrong dtypes, shapes
    and offsets (or no JSON object at all) before random data."""
    if draw(st.booleans()):
        return draw(mutated_bytes(base))
    length = struct.unpack("<Q", base[:8])[0]
    header = json.loads(base[8:8 + length])
    entry = st.fixed_dictionaries({
        "dtype": st.sampled_from(("F32", "F64", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "C64",
                                  "X", "", "f32")),
        "shape": st.lists(st.sampled_from((0, 1, 2, 4, 16, 2**40, -1)), max_size=5),
        "data_offsets": st.lists(st.sampled_from((0, 8, 32, 64, 288, 320, 2**63, -1)), min_size=0, max_size=3),
    })
    header = draw(weighted((mutated(header, ["images", "labels", "soft_labels", "__metadata__"],
                                    weighted((entry, 3), (json_values(), 1)), cycles=False), 4),
                           (json_values(), 1)))
    return _safetensors(header, draw(st.binary(max_size=400)))


def test_tensor_file(run_property: Callable[..., None], reference: tuple[dict[str, Any], bytes]) -> None:
    """images.safetensors holding anything beside a valid meta.json (with or without its sha256)."""
    record, tensors = reference
    no_sha = {k: v for k, v in record.items() if k != "sha256"}

    def prop(content: bytes, with_sha: bool) -> None:
        with scratch_dir() as tmp:
            folder = tmp / "set"
            folder.mkdir()
            (folder / META_FILE).write_text(json.dumps(record if with_sha else no_sha))
            (folder / TENSOR_FILE).write_bytes(content)
            before = snapshot(tmp)
            _check(folder)
            assert snapshot(tmp) == before

    run_property(prop, _tensor_files(tensors), st.booleans())


DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8,
          torch.int8, torch.bool, torch.complex64)


@st.composite
def tensors(draw: st.DrawFn) -> torch.Tensor:
    """A tensor of any dtype and a small shape (empty dims too), sometimes holding NaN or Inf."""
    shape = draw(weighted((st.lists(st.integers(0, 5), max_size=5), 2),
                          (st.sampled_from(((4, 1, 4, 4), (4,), (4, 2), (4, 0), (0, 1, 4, 4), (4, 3, 4, 4))), 3)))
    dtype = draw(st.sampled_from(DTYPES))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    values = torch.randn(shape, generator=generator) * draw(st.sampled_from((1.0, 3.0, 1e30)))
    if dtype.is_floating_point or dtype.is_complex:
        tensor = values.to(dtype)
        if tensor.numel() and draw(st.booleans()):
            tensor.view(-1)[0] = draw(st.sampled_from((math.nan, math.inf, -math.inf)))
        return tensor
    return values.clamp(-3, 3).round().to(dtype)


def _pt_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(("images", "labels", "lr", "syn_lr", "data", "x", "y", "z"))
    return st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4)


PT_VALUES = st.recursive(
    weighted((tensors(), 4), (st.sampled_from(HUGE_NUMBERS), 1), (st.integers(-3, 3), 1), (st.text(max_size=5), 1),
             (st.none(), 1), (st.booleans(), 1)),
    _pt_containers, max_leaves=6)
"""What a user's .pt files hold: tensors, numbers, strings, and lists/dicts of them (DD-Ranking
and VICO layouts among them)."""


def _pt_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


class _Callable:  # a Python object: weights_only loading refuses it
    pass


PT_FILES = weighted((PT_VALUES.map(_pt_bytes), 6), (PT_VALUES.map(_pt_bytes).flatmap(mutated_bytes), 2),
                    (st.binary(max_size=64), 1), (st.just(pickle.dumps(_Callable())), 1))


def test_pt_layouts(run_property: Callable[..., None]) -> None:
    """DD-Ranking's images.pt/labels.pt/lr.pt directory and single .pt files holding tensors of any
    dtype and shape (NaN, Inf, empty dims, complex), numbers of any size, dicts and VICO lists, with
    and without --dataset/--ipc and a pixel space; plus damaged files and pickled objects."""
    layouts = st.one_of(
        st.fixed_dictionaries({"images.pt": PT_FILES}, optional={"labels.pt": PT_FILES, "lr.pt": PT_FILES}),
        st.fixed_dictionaries({"set.pt": PT_FILES}),
    )
    options = st.fixed_dictionaries({}, optional={"num_classes": st.sampled_from((NUM_CLASSES, 1, 3)),
                                                  "ipc": st.sampled_from((IPC, 1)),
                                                  "pixel_space": st.sampled_from(("normalized", "pixel01", "zca", "rgb"))})

    def prop(files: dict[str, bytes], kwargs: dict[str, Any]) -> None:
        with scratch_dir() as tmp:
            folder = tmp / "set"
            folder.mkdir()
            for name, content in files.items():
                (folder / name).write_bytes(content)
            before = snapshot(tmp)
            _check(folder / "set.pt" if "set.pt" in files else folder, **kwargs)
            assert snapshot(tmp) == before

    run_property(prop, layouts, options)


def _pt_edges() -> list[Any]:
    """What one file of a DD-Ranking layout may hold at the edges: every dtype, empty and 0-d
    shapes, NaN/Inf, huge numbers, K = 0 soft labels, a VICO list of the wrong length."""
    nan = torch.tensor([0.0, math.nan, 1.0, 1.0])
    return [
        torch.tensor(1 + 2j), torch.tensor([0.01]), torch.tensor(math.nan), torch.tensor(-1.0), torch.tensor(True),
        torch.tensor(3), 10**400, 10**5000, -(10**400), 2**63, math.nan, math.inf, 0, -0.5, 1e-320, "0.01", None, [], {},
        torch.zeros(4, 0), torch.zeros(0, 0), torch.zeros(0), torch.zeros(0, 1, 4, 4), torch.tensor(1.0),
        torch.zeros(4, 2, 2), torch.rand(4, 2).to(torch.float16), torch.rand(4, 2).to(torch.bfloat16),
        torch.tensor([0, 0, 1, 1], dtype=torch.complex64), torch.tensor([0, 0, 1, 1], dtype=torch.bool),
        torch.tensor([0, 0, 1, 1], dtype=torch.uint8), torch.tensor([0, 0, 1, 2**40]), torch.tensor([0, 0, 1, -1]),
        torch.tensor([0.0, 0.0, 1.0, 1e30]), nan, nan.to(torch.float16), torch.rand(4, 1, 4, 4).to(torch.float64),
        torch.rand(4, 3, 4, 4), torch.rand(4, 1, 8, 4), torch.rand(4, 1, 4, 4, 1), torch.full((4, 1, 4, 4), math.inf),
        torch.ones(4, 1, 4, 4, dtype=torch.complex64), torch.ones(4, 1, 4, 4, dtype=torch.int64),
        {"data": [[torch.rand(4, 1, 4, 4)]]}, {"data": []}, {"data": [[1, 2]]}, {"images": 5}, {"x": torch.rand(4)},
        {"images": torch.rand(4, 1, 4, 4), "lr": torch.tensor(1 + 2j)}, {"images": torch.rand(4, 1, 4, 4), "y": 10**400},
    ]


def test_pt_layout_edges(run_property: Callable[..., None]) -> None:
    """A valid images.pt/labels.pt/lr.pt directory (or a single .pt dict) with one file (or key)
    holding an edge value, every edge value a few times."""
    edges = _pt_edges()
    valid: dict[str, Any] = {"images.pt": torch.rand(4, 1, 4, 4), "labels.pt": torch.tensor([0, 0, 1, 1]),
                             "lr.pt": torch.tensor(0.01)}

    def prop(index: int, where: str, single: bool, with_counts: bool) -> None:
        files = dict(valid)
        files[where] = edges[index]
        kwargs = {"num_classes": NUM_CLASSES, "ipc": IPC} if with_counts else {}
        with scratch_dir() as tmp:
            folder = tmp / "set"
            folder.mkdir()
            if single:
                (folder / "set.pt").write_bytes(_pt_bytes({name.removesuffix(".pt"): v for name, v in files.items()}))
            else:
                for name, value in files.items():
                    (folder / name).write_bytes(_pt_bytes(value))
            before = snapshot(tmp)
            _check(folder / "set.pt" if single else folder, **kwargs)
            assert snapshot(tmp) == before

    run_property(prop, st.integers(0, len(edges) - 1), st.sampled_from(sorted(valid)), st.booleans(), st.booleans())


def test_meta_json_key_edges(run_property: Callable[..., None], reference: tuple[dict[str, Any], bytes]) -> None:
    """meta.json (without its sha256, so every value is read) with one key at an edge of its type."""
    record, tensors = reference
    base = {k: v for k, v in record.items() if k != "sha256"}
    edges = {key: weighted((EDGE_NUMBERS, 1), (EDGE_TEXT, 1), (st.dictionaries(st.sampled_from(("warnings", "x")),
                                                                               weighted((EDGE_NUMBERS, 1), (EDGE_TEXT, 1))),
                                                                1))
             for key in META_KEYS}
    edges["meta.warnings"] = weighted((EDGE_NUMBERS, 1), (EDGE_TEXT, 1))

    def prop(case: tuple[str, Any, dict[str, Any]]) -> None:
        with scratch_dir() as tmp:
            folder = tmp / "set"
            folder.mkdir()
            (folder / META_FILE).write_text(json.dumps(case[2]))
            (folder / TENSOR_FILE).write_bytes(tensors)
            _check(folder)

    run_property(prop, one_key_at_its_edge(base, edges), examples=0.8)
