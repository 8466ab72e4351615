"""Distilled sets: the one thing a method produces, and their on-disk formats.

ddr's own format is a directory with ``images.safetensors`` (tensors ``images`` [N,C,H,W] float32,
``labels`` [N] int64, optional ``soft_labels`` [N,K] float32 logits) and ``meta.json``. Nothing
user-supplied is ever unpickled: DD-Ranking's ``images.pt``/``labels.pt``/``lr.pt`` are read with
``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError, DistilledSetError
from ddr.method.distilled import PIXEL_SPACES, DistilledSet, distilled_sha256
from ddr.store.paths import path_kind

if TYPE_CHECKING:  # pragma: no cover
    import torch

# ddr's own format
# ---------------------------------------------------------------------------------------------

FORMAT_NAME = "ddr-distilled"
FORMAT_VERSION = 1
META_FILE = "meta.json"
TENSOR_FILE = "images.safetensors"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

ACCEPTED_LAYOUTS = (
    "accepted distilled-set layouts:\n"
    f"  - ddr format: a directory with {META_FILE} and {TENSOR_FILE} (written by ddr)\n"
    "  - DD-Ranking/MTT/DATM: a directory with images.pt [N,C,H,W], optional labels.pt "
    "([N] hard labels or [N,K] soft logits) and optional lr.pt\n"
    "  - a single .pt file holding a tensor of images, a dict {'images'|'data'|'x', "
    "'labels'|'y', 'lr'} or a VICO res_*.pt {'data': [[images, labels], ...]}\n"
    "  - a class-folder image tree <dir>/<class>/*.png|jpg|jpeg (or <dir>/train/<class>/...)"
)


def save_distilled(ds: DistilledSet, path: Path) -> Path:
    """Write ``ds`` to the directory ``path`` in ddr's format and return ``path``.

    The directory holds ``images.safetensors`` (``images`` float32 ``[N,C,H,W]``, ``labels``
    int64 ``[N]``, optional ``soft_labels`` float32 ``[N,K]``) and ``meta.json``. Everything is
    written into a sibling ``<name>.tmp-<pid>`` directory first and moved into place with
    ``os.replace``, so a reader sees either the previous complete artifact or the new one.
    """
    from ddr.store.writable import save_tensors

    path = Path(path)
    tensors = _storable_tensors(ds)
    stored = replace(
        ds, images=tensors["images"], labels=tensors["labels"], soft_labels=tensors.get("soft_labels")
    )
    record = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "num_images": int(stored.images.shape[0]),
        "shape": list(stored.images.shape),
        "pixel_space": stored.pixel_space,
        "lr": None if stored.lr is None else float(stored.lr),
        "label_strategy": stored.label_strategy,
        "sha256": distilled_sha256(stored),
        "meta": stored.meta,
    }
    meta_text = _to_json(record, path)

    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)  # left behind by a crashed earlier process that had our pid
        tmp.mkdir()
        save_tensors(tensors, tmp / TENSOR_FILE)
        with open(tmp / META_FILE, "w", encoding="utf-8") as f:
            f.write(meta_text)
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, path)
    except OSError as e:
        from ddr.store.writable import fix_for, reason

        raise ArtifactError(
            f"cannot write distilled set to {path}: {reason(e)}; "
            f"{fix_for(e, path.parent, 'choose another directory')}"
        ) from e
    finally:
        _remove(tmp)
    return path


def _storable_tensors(ds: DistilledSet) -> dict[str, "torch.Tensor"]:
    import torch

    for name in ("images", "labels"):
        if not isinstance(getattr(ds, name), torch.Tensor):
            raise DistilledSetError(
                f"cannot save a distilled set whose {name} is a {type(getattr(ds, name)).__name__}; "
                f"expected a torch.Tensor"
            )
    if not ds.images.is_floating_point():
        raise DistilledSetError(f"cannot save images of dtype {ds.images.dtype}; expected a float tensor")
    if ds.labels.is_floating_point() or ds.labels.is_complex():
        raise DistilledSetError(f"cannot save labels of dtype {ds.labels.dtype}; expected int64 class indices")
    tensors = {
        "images": ds.images.detach().to("cpu", torch.float32).contiguous(),
        "labels": ds.labels.detach().to("cpu", torch.int64).contiguous(),
    }
    if ds.soft_labels is not None:
        if not isinstance(ds.soft_labels, torch.Tensor) or not ds.soft_labels.is_floating_point():
            raise DistilledSetError("cannot save soft_labels that are not a float tensor [N, K] of logits")
        tensors["soft_labels"] = ds.soft_labels.detach().to("cpu", torch.float32).contiguous()
    return tensors


def _to_json(record: dict[str, Any], path: Path) -> str:
    try:
        return json.dumps(record, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as e:
        bad = [k for k, v in record["meta"].items() if not _json_ok(v)]
        raise ArtifactError(
            f"cannot save distilled set to {path}: meta is not JSON-serialisable ({e}); "
            f"offending keys: {bad}\n  store plain numbers, strings, lists and dicts in meta"
        ) from e


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _move_into_place(tmp: Path, dest: Path) -> None:
    """``os.replace`` a finished directory onto ``dest``, swapping out a previous artifact."""
    try:
        os.replace(tmp, dest)  # works when dest is absent (or an empty directory)
        return
    except OSError:
        if not dest.is_dir():
            raise ArtifactError(
                f"cannot write distilled set to {dest}: it exists and is not a directory; "
                "remove it or choose another path"
            ) from None
    old = dest.with_name(f"{dest.name}.old-{os.getpid()}")
    _remove(old)
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except OSError:
        if not dest.exists():
            os.replace(old, dest)  # put the previous complete artifact back
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_any(path: Path, system: Any, *, num_classes: int | None = None, ipc: int | None = None,
             pixel_space: str | None = None) -> DistilledSet:
    """Load ``path`` through the ``ddr_load_distilled`` hook: plugins' formats first, ddr's own
    (:func:`load_distilled`, registered ``trylast``) last."""
    loaded = system.pm.hook.ddr_load_distilled(path=Path(path), num_classes=num_classes, ipc=ipc,
                                               pixel_space=pixel_space)
    if loaded is None:
        raise ArtifactError(f"no loader recognised {path}\n{ACCEPTED_LAYOUTS}")
    if not isinstance(loaded, DistilledSet):
        raise ArtifactError(f"a ddr_load_distilled plugin returned {type(loaded).__name__} for {path}, "
                            "not a DistilledSet; see `ddr plugins` for which plugins implement the hook")
    return loaded


def load_distilled(
    path: Path,
    *,
    num_classes: int | None = None,
    ipc: int | None = None,
    pixel_space: str | None = None,
) -> DistilledSet:
    """Read a distilled set from ``path``, whatever layout it is in (see ``ACCEPTED_LAYOUTS``).

    Args:
        path: a ddr artifact directory, a DD-Ranking/MTT/DATM directory (``images.pt`` ...), a
            single ``.pt`` file, or a class-folder image tree.
        num_classes, ipc: needed only to infer class-major hard labels (``[0]*ipc + [1]*ipc + ...``,
            DD-Ranking's convention) when a ``.pt`` layout has no labels; ``num_classes`` is also
            checked against the class-folder count.
        pixel_space: the space of images read from ``.pt`` layouts, which do not record it
            (default ``normalized``; DATM sets are ``zca``). Ignored for the other layouts.

    ``.pt`` files are read with ``torch.load(weights_only=True)`` only: a file holding arbitrary
    Python objects is refused, never executed. Notes about guesses made while loading (inferred
    labels, a chosen experiment) are appended to ``meta["warnings"]``. The result is not yet
    checked against a dataset: call :func:`validate_distilled` before training on it.
    """
    path = Path(path)
    if pixel_space is not None and pixel_space not in PIXEL_SPACES:
        raise ArtifactError(f"unknown pixel space {pixel_space!r}; expected one of {', '.join(PIXEL_SPACES)}")
    kind = path_kind(path, what="distilled set", error=ArtifactError)
    if kind is None:
        raise ArtifactError(f"distilled set {path} does not exist (or is neither a file nor a folder)\n{ACCEPTED_LAYOUTS}")
    pt_space = pixel_space or "normalized"
    if kind == "file":
        if path.name in (META_FILE, TENSOR_FILE):
            return _load_ddr_format(path.parent)
        if path.suffix in (".pt", ".pth"):
            return _load_pt_file(path, num_classes, ipc, pt_space)
        raise ArtifactError(f"cannot read distilled set {path}: unknown file type\n{ACCEPTED_LAYOUTS}")
    if (path / META_FILE).is_file() or (path / TENSOR_FILE).is_file():
        return _load_ddr_format(path)
    if (path / "images.pt").is_file():
        return _load_pt_directory(path, num_classes, ipc, pt_space)
    class_root = _class_folder_root(path)
    if class_root is not None:
        return _load_class_folders(class_root, num_classes)
    found = sorted(p.name for p in path.iterdir())
    listing = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "nothing (empty directory)"
    raise ArtifactError(f"cannot recognise the distilled-set layout of {path}; found: {listing}\n{ACCEPTED_LAYOUTS}")


def _load_ddr_format(directory: Path) -> DistilledSet:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta_file, tensor_file = directory / META_FILE, directory / TENSOR_FILE
    for required in (meta_file, tensor_file):
        if not required.is_file():
            raise ArtifactError(
                f"incomplete ddr distilled set {directory}: {required.name} is missing\n"
                "  the artifact was not fully written or was copied partially; re-copy it or re-run distillation"
            )
    try:
        record = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: not UTF-8, not JSON, an integer of more than 4300 digits
        raise ArtifactError(
            f"cannot read {meta_file}: {e}\n  the file is corrupt; re-copy it or re-run distillation"
        ) from e
    except RecursionError:
        raise ArtifactError(f"cannot read {meta_file}: its JSON nests too deeply to read\n  the file is corrupt; "
                            "re-copy it or re-run distillation") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ArtifactError(
            f"{meta_file} is not a ddr distilled-set record (format={found!r}, expected {FORMAT_NAME!r})"
        )
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{meta_file} has format_version {version!r}; this ddr reads up to {FORMAT_VERSION}. "
            "Upgrade ddr to read it"
        )
    try:
        tensors = load_file(str(tensor_file), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(
            f"cannot read {tensor_file}: {e}\n  the file is truncated or corrupt; re-copy it or re-run distillation"
        ) from e
    missing = [k for k in ("images", "labels") if k not in tensors]
    if missing:
        raise ArtifactError(f"{tensor_file} lacks tensor(s) {missing}; found {sorted(tensors)}")
    lr = record.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not _finite(lr) or lr <= 0):
        raise ArtifactError(f"{meta_file}: 'lr' is {lr!r}; expected a positive number or null (edit the file, "
                            "or re-run distillation)")
    meta = record.get("meta") or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("warnings", []), list):
        raise ArtifactError(f"{meta_file}: 'meta' must be a JSON object (its 'warnings' a list), got {meta!r:.80}; "
                            "edit the file, or re-run distillation")
    for key, expected in (("pixel_space", PIXEL_SPACES), ("label_strategy", None)):
        value = record.get(key)
        if value is not None and not (isinstance(value, str) and (expected is None or value in expected)):
            allowed = f"one of {', '.join(expected)}" if expected else "a label strategy name or null"
            raise ArtifactError(f"{meta_file}: '{key}' is {value!r:.80}; expected {allowed} (edit the file, or "
                                "re-run distillation)")
    ds = DistilledSet(
        images=tensors["images"],
        labels=tensors["labels"],
        soft_labels=tensors.get("soft_labels"),
        lr=lr,
        pixel_space=record.get("pixel_space", "normalized"),
        label_strategy=record.get("label_strategy"),
        meta=dict(meta),
    )
    expected = record.get("sha256")
    if expected is not None and distilled_sha256(ds) != expected:
        raise ArtifactError(
            f"{tensor_file} does not match the sha256 recorded in {meta_file}: the files were modified "
            "or mixed up; re-copy the artifact or re-run distillation"
        )
    return ds


def _finite(value: float) -> bool:
    """``math.isfinite`` that is False for an int too large for a float instead of raising."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def safe_torch_load(file: Path, what: str = "distilled-set file") -> Any:
    """``torch.load`` restricted to tensors and plain containers; errors become one-line
    ArtifactErrors in ddr's words (never torch's advice to load with ``weights_only=False``)."""
    import pickle

    import torch

    try:
        return torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        text = str(e)
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
        if found is None:  # not a refused object: bytes that are no (complete) pickle at all
            raise ArtifactError(f"cannot read {file}: it is not a torch.save file (or it is truncated); "
                                "re-copy or re-export it") from e
        raise ArtifactError(
            f"refusing to unpickle {file}: it holds a Python object ({found.group(1)}), not only tensors, "
            f"numbers, strings, lists and dicts; ddr never runs code from a {what}. Re-save it with plain "
            "tensors, e.g. torch.save(model.state_dict(), PATH) or torch.save(images.detach().cpu(), PATH)"
        ) from e
    except Exception as e:  # damaged bytes surface as RuntimeError/EOFError/KeyError/IndexError/...
        raise ArtifactError(f"cannot read {file}: it is not a torch.save file (or it is truncated); "
                            "re-copy or re-export it") from e


def _load_pt_directory(directory: Path, num_classes: int | None, ipc: int | None, pixel_space: str) -> DistilledSet:
    images = _expect_tensor(safe_torch_load(directory / "images.pt"), directory / "images.pt")
    labels_file, lr_file = directory / "labels.pt", directory / "lr.pt"
    labels = safe_torch_load(labels_file) if labels_file.is_file() else None
    lr = _as_lr(safe_torch_load(lr_file), lr_file) if lr_file.is_file() else None
    return _assemble(images, labels, lr, pixel_space, num_classes, ipc, directory, "ddranking_dir", [])


def _load_pt_file(file: Path, num_classes: int | None, ipc: int | None, pixel_space: str) -> DistilledSet:
    import torch

    obj = safe_torch_load(file)
    warnings: list[str] = []
    if isinstance(obj, torch.Tensor):
        return _assemble(obj, None, None, pixel_space, num_classes, ipc, file, "pt_tensor", warnings)
    if not isinstance(obj, dict):
        raise ArtifactError(
            f"{file} holds a {type(obj).__name__}; expected a tensor of images or a dict with 'images' and 'labels'"
        )
    data = obj.get("data")
    if isinstance(data, (list, tuple)):  # VICO / DC-DSA-DM res_*.pt: one [images, labels] per experiment
        if not data or not isinstance(data[0], (list, tuple)) or len(data[0]) < 2:
            raise ArtifactError(f"{file}: 'data' should be a list of [images, labels] pairs (VICO res_*.pt layout)")
        if len(data) > 1:
            warnings.append(f"{file.name} holds {len(data)} experiments; using the first one")
        images, labels = data[0][0], data[0][1]
        return _assemble(
            _expect_tensor(images, file), labels, None, pixel_space, num_classes, ipc, file, "vico_res", warnings
        )
    images = _first_key(obj, ("images", "data", "x"))
    if images is None:
        raise ArtifactError(
            f"{file} holds a dict with keys {sorted(map(str, obj))}; expected 'images' (or 'data'/'x'), "
            "optional 'labels' (or 'y') and 'lr'"
        )
    labels = _first_key(obj, ("labels", "y"))
    lr_obj = _first_key(obj, ("lr", "syn_lr"))
    lr = _as_lr(lr_obj, file) if lr_obj is not None else None
    return _assemble(_expect_tensor(images, file), labels, lr, pixel_space, num_classes, ipc, file, "pt_dict", warnings)


def _first_key(obj: dict[Any, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def _expect_tensor(obj: Any, source: Path) -> "torch.Tensor":
    import torch

    if not isinstance(obj, torch.Tensor):
        raise ArtifactError(f"{source}: expected a tensor of images [N,C,H,W], found a {type(obj).__name__}")
    return obj.detach()


def _as_lr(obj: Any, source: Path) -> float:
    import torch

    value: Any = None
    if isinstance(obj, torch.Tensor) and obj.numel() == 1 and not obj.is_complex():
        value = obj.detach().reshape(()).item()
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        value = obj
    if value is not None:  # NaN, Inf and non-positive values are refused by validate_distilled
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            raise ArtifactError(f"{source}: the learning rate is an integer of {value.bit_length()} bits, too large "
                                "for a number; store a positive learning rate") from None
    found = (f"a {obj.dtype} tensor of shape {tuple(obj.shape)}" if isinstance(obj, torch.Tensor)
             else f"a {type(obj).__name__}")
    raise ArtifactError(f"{source}: expected a learning rate (a number or one-element tensor), found {found}")


def _assemble(
    images: "torch.Tensor",
    labels_obj: Any,
    lr: float | None,
    pixel_space: str,
    num_classes: int | None,
    ipc: int | None,
    source: Path,
    source_format: str,
    warnings: list[str],
) -> DistilledSet:
    """Build a set from a ``.pt`` layout, turning ``labels_obj`` into hard (and soft) labels."""
    import torch

    n = int(images.shape[0]) if images.dim() > 0 else 0
    soft = None
    if labels_obj is None:
        hard = _class_major_labels(n, num_classes, ipc, source, "there are no labels")
        warnings.append(f"no labels stored; assumed class-major order ({ipc} images per class)")
    elif not isinstance(labels_obj, torch.Tensor):
        raise ArtifactError(f"{source}: labels should be a tensor, found a {type(labels_obj).__name__}")
    elif labels_obj.dim() == 2 and labels_obj.is_floating_point():
        soft = labels_obj.detach()
        hard = _labels_for_soft(soft, n, num_classes, ipc, source, warnings)
    elif labels_obj.dim() == 1 and not labels_obj.is_floating_point() and not labels_obj.is_complex():
        hard = labels_obj.detach().long()
    elif labels_obj.dim() == 1 and labels_obj.is_floating_point() and bool(torch.all(labels_obj == labels_obj.round())):
        hard = labels_obj.detach().long()
    else:
        raise ArtifactError(
            f"{source}: labels of shape {tuple(labels_obj.shape)} and dtype {labels_obj.dtype} are neither hard "
            "labels [N] (integers) nor soft labels [N, K] (float logits)"
        )
    meta: dict[str, Any] = {"source_format": source_format, "source_path": str(source)}
    if warnings:
        meta["warnings"] = list(warnings)
    return DistilledSet(images=images, labels=hard, soft_labels=soft, lr=lr, pixel_space=pixel_space, meta=meta)


def _class_major_labels(n: int, num_classes: int | None, ipc: int | None, source: Path, why: str) -> "torch.Tensor":
    import torch

    if num_classes is None or ipc is None:
        raise ArtifactError(
            f"{source}: {why}, so hard labels must be inferred as class-major "
            "([0]*ipc + [1]*ipc + ...), which needs num_classes and ipc; pass them (--dataset and --ipc) "
            "or store labels.pt"
        )
    if n != num_classes * ipc:
        raise ArtifactError(
            f"{source}: {why} and the set holds {n} images, but class-major labels need "
            f"num_classes*ipc = {num_classes}*{ipc} = {num_classes * ipc}; store labels.pt or check --ipc"
        )
    return torch.arange(num_classes, dtype=torch.int64).repeat_interleave(ipc)


def _labels_for_soft(
    soft: "torch.Tensor", n: int, num_classes: int | None, ipc: int | None, source: Path, warnings: list[str]
) -> "torch.Tensor":
    """Hard labels for a set that stores only soft logits: class-major (DD-Ranking) when the count
    allows it, else the argmax; disagreement with the argmax is reported."""
    k = int(soft.shape[1])
    if k == 0:
        raise ArtifactError(f"{source}: soft labels of shape {tuple(soft.shape)} have no classes; expected [N, K] "
                            "logits with K >= 1")
    if soft.shape[0] != n:
        raise ArtifactError(f"{source}: {soft.shape[0]} soft labels for {n} images; expected one per image")
    if num_classes is not None and num_classes != k:
        raise ArtifactError(f"{source}: soft labels have {k} classes but the dataset has {num_classes}")
    per_class = ipc if ipc is not None else (n // k if n % k == 0 else None)
    if per_class is not None and n == k * per_class:
        hard = _class_major_labels(n, k, per_class, source, "labels are soft logits only")
        agree = float((soft.argmax(dim=1) == hard).float().mean()) if n else 1.0
        note = f"hard labels assumed class-major ({per_class} per class); soft-label argmax agrees on {agree:.2f}"
        if agree < 0.5:
            note += " of images, so the order may not be class-major"
        warnings.append(note)
        return hard
    warnings.append("hard labels taken as the argmax of the stored soft labels")
    return soft.argmax(dim=1).long()


def _class_folder_root(directory: Path) -> Path | None:
    """The directory whose subfolders are classes (``directory`` or ``directory/train``), if any."""
    for root in (directory / "train", directory):
        if root.is_dir() and any(_image_files(sub) for sub in _subdirs(root)):
            return root
    return None


def _subdirs(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _sorted_class_folders(root: Path) -> list[Path]:
    """Class folders in class-index order: numerically when every name is digits (VICO's
    ``00000/``, also unpadded ``2 < 10``), else by name like torchvision's ImageFolder."""
    folders = _subdirs(root)
    if folders and all(f.name.isdigit() for f in folders):
        return sorted(folders, key=lambda f: (int(f.name), f.name))
    return sorted(folders, key=lambda f: f.name)


def _load_class_folders(root: Path, num_classes: int | None) -> DistilledSet:
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    folders = _sorted_class_folders(root)
    if num_classes is not None and len(folders) != num_classes:
        raise ArtifactError(
            f"{root} has {len(folders)} class folders but the dataset has {num_classes} classes; "
            "each class needs its own folder (empty for none), named so that sorting gives the class order"
        )
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    first_size: tuple[tuple[int, int], Path] | None = None
    for index, folder in enumerate(folders):
        for file in _image_files(folder):
            try:
                with Image.open(file) as img:
                    img.load()
                    grey = img.mode in ("1", "L", "LA", "I", "I;16", "F")
                    array = np.asarray(img.convert("L" if grey else "RGB"), dtype=np.uint8)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
                raise ArtifactError(f"cannot decode image {file}: {e}\n  the file is corrupt; re-export it") from e
            except Exception as e:  # noqa: BLE001 - PIL's decoders fail on damaged bytes with SyntaxError, struct.error, ...
                raise ArtifactError(f"cannot decode image {file}: {type(e).__name__}: {e}\n  the file is corrupt; "
                                    "re-export it") from e
            if first_size is None:
                first_size = (array.shape[:2], file)
            elif array.shape[:2] != first_size[0]:
                raise ArtifactError(
                    f"{file} is {array.shape[1]}x{array.shape[0]} pixels but {first_size[1]} is "
                    f"{first_size[0][1]}x{first_size[0][0]}; all images of a distilled set must have one size"
                )
            pixels.append(array if array.ndim == 3 else array[:, :, None])
            labels.append(index)
    if not pixels:
        raise ArtifactError(f"{root} has class folders but no .png/.jpg/.jpeg images\n{ACCEPTED_LAYOUTS}")
    channels = max(p.shape[2] for p in pixels)
    # A colour set with a few greyscale files: replicate grey to RGB (exact, nothing is invented).
    stacked = np.stack([np.repeat(p, channels // p.shape[2], axis=2) for p in pixels])
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).to(torch.float32).div_(255.0).contiguous()
    meta = {"source_format": "image_folder", "source_path": str(root), "class_names": [f.name for f in folders]}
    return DistilledSet(
        images=images, labels=torch.tensor(labels, dtype=torch.int64), pixel_space="pixel01", meta=meta
    )


