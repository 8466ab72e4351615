"""Expert trajectories: networks trained on the real training pool, parameters saved every epoch.

MTT (Cazenavette et al., CVPR 2022, ``buffer.py``) trains every expert with plain SGD (lr 0.01,
momentum 0, weight decay 0, constant LR, batch 256) with DSA on the real images and saves the
parameters before training (epoch 0) and after every epoch. ddr does the same with its one training
loop (:func:`ddr.engine.training.train`; its per-epoch callback takes the snapshots): the expert
optimizer ``sgd``. DATM (Guo et al., ICLR 2024) trains its experts with FTD's ``buffer_FTD.py``
instead: the same data, LR and snapshots, but every step a GSAM step (two gradient passes; rho 0.01,
alpha 0.3, adaptive): the expert optimizer ``gsam``, :mod:`ddr_methods._trajectory.gsam`.

Each expert is one content-addressed cache entry ``<cache>/experts/<key>/`` holding
``trajectory.safetensors`` (tensors ``epoch_0000`` ... ``epoch_EEEE``: flat float32 parameter
vectors in ``named_parameters()`` order) and ``meta.json``. The key covers the dataset, its pixel
space (ZCA or not), the architecture (name and a fingerprint of the built network), a fingerprint of
the training pool (its pixels; for a dataset that streams from disk, its file list, sizes and
modification times: :func:`pool_fingerprint`), epochs, learning rate, batch size, augmentation,
seed and the expert's index, and for GSAM experts the optimizer, rho and alpha (a plain-SGD
expert's key is the one it had before GSAM existed), so training is resumable expert by expert and
never mixes experts of different settings. Streamed pools train through a DataLoader batch source.

Official MTT buffers (``replay_buffer_<n>.pt``: a list of experts, each a list of per-epoch lists
of parameter tensors) are imported with :func:`import_buffers`; they are read with
``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ddr import ArtifactError, ConfigError
from ddr.method.assets import Assets, content_key, file_sha256, tensor_sha256
from ddr_methods._trajectory.defaults import EXPERT_OPTIMIZERS
from ddr_methods._trajectory.functional import ParamLayout, check_functional, flat_parameters
from ddr_methods._trajectory.gsam import ADAPTIVE, DEFAULT_ALPHA, DEFAULT_RHO_MAX, DEFAULT_RHO_MIN, ProportionalRho

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method import DistillContext, Split

EXPERT_FORMAT = 1
NAMESPACE = "experts"
IMPORTED_NAMESPACE = "experts-imported"
DEFAULT_LR = 0.01
DEFAULT_BATCH = 256
DEFAULT_AUGMENTATION = "dsa"
OPTIMIZERS = EXPERT_OPTIMIZERS
"""Expert optimizers: ``sgd`` (MTT's ``buffer.py``), ``gsam`` (DATM's, FTD's ``buffer_FTD.py``)."""
DEFAULT_OPTIMIZER = "sgd"
_BUFFER_RE = re.compile(r"^replay_buffer_(\d+)\.pt$")


# -- fingerprints ----------------------------------------------------------------------------------

def model_fingerprint(model: nn.Module) -> str:
    """sha256 of the network's structure (its repr) and parameter names/shapes."""
    return content_key({"repr": repr(model), "layout": ParamLayout.of(model).to_json()})


def pool_fingerprint(pool: "Split") -> str:
    """sha256 identifying the training pool: its images and labels when in memory; for a split that
    streams from disk, its labels and the identity of its source (:func:`source_fingerprint`)."""
    if pool.in_memory:
        return tensor_sha256(pool.images, pool.labels)
    return content_key({"streamed": source_fingerprint(pool.source), "labels": tensor_sha256(pool.labels)})


def source_fingerprint(source: Any) -> str:
    """sha256 of a streaming source without decoding it where possible.

    A ``torch.utils.data.Subset`` (the training pool of a streamed dataset) is its indices plus its
    dataset's fingerprint; a source of image files (``paths`` and ``geometry``, as
    :class:`ddr.builtins.datasets.images.ImageFileSource`) is its file list with sizes and
    modification times, its geometry and its normalisation; any other source is hashed image by
    image (one pass over it).
    """
    import hashlib
    import os

    from torch.utils.data import Subset

    if isinstance(source, Subset):
        return content_key({"subset": tensor_sha256(torch.as_tensor(list(source.indices), dtype=torch.int64)),
                            "of": source_fingerprint(source.dataset)})
    paths, geometry = getattr(source, "paths", None), getattr(source, "geometry", None)
    if paths is not None and geometry is not None:
        digest = hashlib.sha256(repr((type(source).__name__, repr(geometry), tensor_sha256(
            getattr(source, "mean", None), getattr(source, "std", None)))).encode())
        for path in paths:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    digest = hashlib.sha256(type(source).__name__.encode())
    for i in range(len(source)):
        image = source[i][0]
        digest.update(tensor_sha256(image).encode())
    return digest.hexdigest()


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """Re-draw every parameter from the architecture's own initialisers under ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and any(True for _ in module.parameters(recurse=False)):
                reset()
    return model


# -- the settings of a set of experts ----------------------------------------------------------------

@dataclass(frozen=True)
class ExpertSettings:
    """Everything that determines an expert's trajectory (its cache key, plus the index)."""

    dataset: str
    pixel_space: str
    arch: str
    model: str
    pool: str
    epochs: int
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH
    augmentation: str | None = DEFAULT_AUGMENTATION
    seed: int = 0
    num_classes: int = 0
    optimizer: str = DEFAULT_OPTIMIZER
    """``sgd`` (MTT's plain SGD) or ``gsam`` (DATM's GSAM, :mod:`ddr_methods._trajectory.gsam`)."""
    rho_max: float = DEFAULT_RHO_MAX
    """GSAM's largest perturbation radius (``gsam`` only)."""
    rho_min: float = DEFAULT_RHO_MIN
    """GSAM's smallest radius; equals ``rho_max`` since the expert LR is constant (``gsam`` only)."""
    alpha: float = DEFAULT_ALPHA
    """GSAM's surrogate-gap weight (``gsam`` only)."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown expert optimizer {self.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}")
        if self.optimizer == "gsam":
            self.rho_schedule()  # refuses what the official scheduler refuses
            if not (isinstance(self.alpha, (int, float)) and math.isfinite(self.alpha) and self.alpha >= 0):
                raise ConfigError(f"GSAM alpha must be a finite number >= 0 (got {self.alpha!r})")

    def rho_schedule(self) -> ProportionalRho:
        """GSAM's radius as a function of the (constant) expert LR."""
        return ProportionalRho(max_lr=float(self.lr), min_lr=float(self.lr), max_rho=float(self.rho_max),
                               min_rho=float(self.rho_min))

    def key_fields(self) -> dict[str, Any]:
        """What the cache key covers: every field; for ``sgd`` without the GSAM fields (so a plain
        expert keeps the key it had before GSAM existed), for ``gsam`` with them and ``adaptive``."""
        fields = asdict(self)
        gsam = {name: fields.pop(name) for name in ("optimizer", "rho_max", "rho_min", "alpha")}
        if self.optimizer == "gsam":
            fields.update(gsam, adaptive=ADAPTIVE)
        return fields

    def key(self, index: int) -> str:
        return content_key({"format": EXPERT_FORMAT, **self.key_fields(), "index": int(index)})

    def folder(self, index: int) -> Path:
        return Assets().path(NAMESPACE, self.key(index))

    def has(self, index: int) -> bool:
        """Whether expert ``index`` is cached and matches its checksums."""
        return Assets().get(NAMESPACE, self.key(index)) is not None

    def command(self, num_experts: int) -> str:
        """The ``ddr experts train`` command that builds ``num_experts`` of these experts."""
        parts = ["ddr", "experts", "train", "--dataset", self.dataset, "--arch", self.arch,
                 "--num-experts", str(num_experts), "--epochs", str(self.epochs)]
        if self.lr != DEFAULT_LR:
            parts += ["--lr", repr(float(self.lr))]
        if self.batch_size != DEFAULT_BATCH:
            parts += ["--batch-size", str(self.batch_size)]
        if self.augmentation != DEFAULT_AUGMENTATION:
            parts += ["--augmentation", self.augmentation or "none"]
        if self.seed:
            parts += ["--expert-seed", str(self.seed)]
        if self.optimizer != DEFAULT_OPTIMIZER:
            parts += ["--optimizer", self.optimizer]
            if self.rho_max != DEFAULT_RHO_MAX:
                parts += ["--rho-max", repr(float(self.rho_max))]
            if self.rho_min != DEFAULT_RHO_MIN:
                parts += ["--rho-min", repr(float(self.rho_min))]
            if self.alpha != DEFAULT_ALPHA:
                parts += ["--alpha", repr(float(self.alpha))]
        if self.pixel_space == "zca":
            parts.append("--zca")
        return " ".join(shlex.quote(p) for p in parts)


# -- one stored trajectory ---------------------------------------------------------------------------

@dataclass
class Trajectory:
    """One expert: ``num_epochs + 1`` flat parameter vectors in a safetensors file."""

    path: Path
    layout: ParamLayout
    num_snapshots: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return self.num_snapshots - 1

    def params(self, epoch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Flat parameters ``[P]`` after ``epoch`` epochs (0: the initialisation)."""
        from safetensors import safe_open

        if not 0 <= epoch < self.num_snapshots:
            raise ConfigError(f"expert {self.path} has epochs 0..{self.epochs}; epoch {epoch} was asked for "
                              "(lower max_start_epoch + expert_epochs, or train longer experts)")
        with safe_open(str(self.path), framework="pt", device="cpu") as handle:
            flat = handle.get_tensor(f"epoch_{epoch:04d}")
        return flat.to(device=device, dtype=torch.float32)


def _write_trajectory(path: Path, snapshots: list[torch.Tensor]) -> None:
    from ddr.method.assets import save_tensors

    save_tensors({f"epoch_{e:04d}": s.detach().to("cpu", torch.float32).contiguous() for e, s in enumerate(snapshots)},
                 path)


def _read_json(path: Path) -> Any:
    """The JSON at ``path``, or ``None`` when missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _read_trajectory(folder: Path, file: str = "trajectory.safetensors") -> Trajectory:
    meta = _read_json(folder / "meta.json")
    if not isinstance(meta, dict) or "layout" not in meta:
        raise ArtifactError(f"expert entry {folder} has no readable meta.json; delete the folder to retrain it")
    layout = ParamLayout(tuple(meta["layout"]["names"]), tuple(tuple(s) for s in meta["layout"]["shapes"]))
    return Trajectory(folder / file, layout, int(meta["snapshots"]), meta)


# -- training ----------------------------------------------------------------------------------------

def train_expert(settings: ExpertSettings, index: int, *, factory: Callable[[], nn.Module], pool: "Split",
                 device: torch.device | str, system: Any = None, progress: Any = None,
                 log: Callable[[str], None] | None = None, augment: Any = None) -> Trajectory:
    """Train expert ``index`` (or return it from the cache) and store its trajectory.

    The expert is an asset (:meth:`ddr.method.assets.Assets.build`): locked while it trains, so a
    ddr process training the same expert on the same cache is waited for (``log`` says so) and
    its trajectory read; written atomically, so an entry is never half a trajectory.

    ``augment`` is ``settings.augmentation`` built (``ctx.augmentation(name)``, or a workspace's
    pipeline): GSAM experts need it (their loop is not ddr's training loop, which builds it from
    the name and ``system``); plain-SGD experts use it when given, else the name.
    """
    def build(folder: Path) -> None:
        _train_into(folder, settings, index, factory=factory, pool=pool, device=device, system=system,
                    progress=progress, augment=augment)

    what = "GSAM expert" if settings.optimizer == "gsam" else "expert"
    folder = Assets(log=log).build(NAMESPACE, settings.key(index), build,
                                   what=f"{what} trajectory {index} ({settings.arch} on {settings.dataset})")
    return _read_trajectory(folder)


def _train_into(folder: Path, settings: ExpertSettings, index: int, *, factory: Callable[[], nn.Module],
                pool: "Split", device: torch.device | str, system: Any, progress: Any, augment: Any = None) -> None:
    from ddr.method.training import Recipe, derive_seed, torch_generator, train_hard

    seed = derive_seed(settings.seed, "expert", index)
    model = reinitialise(factory(), seed).to(device)
    check_functional(model, settings.arch)
    layout = ParamLayout.of(model)
    snapshots = [flat_parameters(model).cpu()]

    def snapshot(net: nn.Module) -> None:
        snapshots.append(flat_parameters(net).cpu())

    generator = torch_generator(derive_seed(seed, "batches"), device)
    start = time.perf_counter()
    if settings.optimizer == "gsam":
        from ddr_methods._trajectory.gsam import train_gsam

        if settings.augmentation is not None and augment is None:
            raise ConfigError(f"GSAM experts need their augmentation '{settings.augmentation}' built by the caller "
                              "(train_expert(..., augment=ctx.augmentation(name)))")
        final_loss = train_gsam(model, pool, epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                                rho_max=settings.rho_max, rho_min=settings.rho_min, alpha=settings.alpha,
                                generator=generator, augmentation=augment if settings.augmentation else None,
                                device=device, on_epoch=snapshot, progress=progress)
    else:
        recipe = Recipe(optimizer="sgd", lr=settings.lr, momentum=0.0, weight_decay=0.0, epochs=settings.epochs,
                        batch_size=settings.batch_size, schedule="constant")
        augmentation = settings.augmentation if augment is None or not settings.augmentation else augment
        final_loss = train_hard(model, pool, recipe, generator=generator, num_classes=settings.num_classes,
                                augmentation=augmentation, device=device, system=system, on_epoch=snapshot,
                                progress=progress).final_loss
    seconds = time.perf_counter() - start
    _write_trajectory(folder / "trajectory.safetensors", snapshots)
    _write_json(folder / "meta.json", {
        "format": EXPERT_FORMAT, "kind": "trained", "settings": settings.key_fields(), "index": index,
        "snapshots": len(snapshots), "layout": layout.to_json(), "seconds": seconds,
        "final_loss": final_loss, "key": settings.key(index),
    })


def settings_for_context(ctx: "DistillContext", *, epochs: int, lr: float = DEFAULT_LR,
                         batch_size: int = DEFAULT_BATCH, augmentation: str | None = DEFAULT_AUGMENTATION,
                         seed: int = 0, optimizer: str = DEFAULT_OPTIMIZER, rho_max: float = DEFAULT_RHO_MAX,
                         rho_min: float = DEFAULT_RHO_MIN,
                         alpha: float = DEFAULT_ALPHA) -> tuple[ExpertSettings, Callable[[], nn.Module]]:
    """The expert settings a run's context implies, and a factory of fresh student networks."""
    probe = ctx.make_model()
    augmentation = None if augmentation in (None, "", "none") else str(augmentation)
    settings = ExpertSettings(
        dataset=ctx.dataset.name, pixel_space=ctx.dataset.pixel_space, arch=ctx.arch, model=model_fingerprint(probe),
        pool=pool_fingerprint(ctx.train), epochs=int(epochs), lr=float(lr), batch_size=int(batch_size),
        augmentation=augmentation, seed=int(seed), num_classes=int(ctx.num_classes), optimizer=str(optimizer),
        rho_max=float(rho_max), rho_min=float(rho_min), alpha=float(alpha),
    )
    return settings, ctx.make_model


def experts_for(ctx: "DistillContext", *, num_experts: int, epochs: int, lr: float = DEFAULT_LR,
                batch_size: int = DEFAULT_BATCH, augmentation: str | None = DEFAULT_AUGMENTATION,
                seed: int = 0, optimizer: str = DEFAULT_OPTIMIZER, rho_max: float = DEFAULT_RHO_MAX,
                rho_min: float = DEFAULT_RHO_MIN, alpha: float = DEFAULT_ALPHA) -> list[Trajectory]:
    """``num_experts`` trajectories of ``epochs`` epochs for the run's dataset, pool and student,
    trained with ``optimizer`` (``sgd``: MTT's plain SGD; ``gsam``: DATM's GSAM with ``rho_max``,
    ``rho_min`` and ``alpha``).

    Cached experts are reused; missing ones are trained now (with a ``ctx.log`` line saying how
    many), unless ``ctx.auto_assets`` is False: then an :class:`ArtifactError` gives the command
    that trains them.
    """
    if num_experts < 1 or epochs < 1:
        raise ConfigError(f"need at least one expert of at least one epoch (got num_experts={num_experts}, "
                          f"expert training epochs={epochs})")
    settings, factory = settings_for_context(ctx, epochs=epochs, lr=lr, batch_size=batch_size,
                                             augmentation=augmentation, seed=seed, optimizer=optimizer,
                                             rho_max=rho_max, rho_min=rho_min, alpha=alpha)
    kind = "GSAM expert" if settings.optimizer == "gsam" else "expert"
    missing = [i for i in range(num_experts) if not settings.has(i)]
    if missing:
        if not getattr(ctx, "auto_assets", True):
            raise ArtifactError(
                f"{len(missing)} of {num_experts} {kind} trajectories ({epochs} epochs, {settings.arch} on "
                f"{settings.dataset}) are not in the cache and building assets on demand is off "
                f"(--no-auto-assets); train them first with:\n  {settings.command(num_experts)}\n"
                "  (add the run's --protocol/--seed when they are not the defaults: experts are keyed by the "
                "training pool)"
            )
        cost = " (two gradient passes a step)" if settings.optimizer == "gsam" else ""
        ctx.log(f"training {len(missing)} {kind} trajectories x {epochs} epochs{cost} ({settings.arch} on "
                f"{settings.dataset}, {len(ctx.train)} images); they are cached for later runs")
        # GSAM's loop takes the augmentation built; plain SGD experts hand its name to ddr's loop, as always
        gsam_aug = settings.optimizer == "gsam" and settings.augmentation
        augment = ctx.augmentation(settings.augmentation) if gsam_aug else None
        for i in ctx.progress(missing, total=len(missing), desc="experts"):
            train_expert(settings, i, factory=factory, pool=ctx.train, device=ctx.device, log=ctx.log, augment=augment)
    return [_read_trajectory(settings.folder(i)) for i in range(num_experts)]


# -- listing -----------------------------------------------------------------------------------------

def list_experts() -> list[dict[str, Any]]:
    """One row per cached expert entry (trained) or imported collection."""
    rows = []
    assets = Assets()
    for namespace in (NAMESPACE, IMPORTED_NAMESPACE):
        for entry in assets.entries(namespace):
            meta_path = entry / "meta.json"
            meta = _read_json(meta_path)
            if not isinstance(meta, dict):
                continue
            if namespace == NAMESPACE:
                s = meta.get("settings", {})
                optimizer = s.get("optimizer", "sgd")
                gsam = ({"rho_max": s.get("rho_max"), "rho_min": s.get("rho_min"), "alpha": s.get("alpha")}
                        if optimizer == "gsam" else {})
                rows.append({"kind": "trained", "dataset": s.get("dataset"), "arch": s.get("arch"),
                             "pixel_space": s.get("pixel_space"), "epochs": s.get("epochs"), "lr": s.get("lr"),
                             "augmentation": s.get("augmentation"), "seed": s.get("seed"), "optimizer": optimizer,
                             **gsam, "index": meta.get("index"), "seconds": meta.get("seconds"),
                             "path": str(meta_path.parent)})
            else:
                rows.append({"kind": "imported", "dataset": meta.get("dataset"), "arch": meta.get("arch"),
                             "experts": meta.get("experts"), "epochs": meta.get("epochs"),
                             "source": meta.get("source"), "path": str(meta_path.parent)})
    return rows


# -- import of official MTT buffers ------------------------------------------------------------------

def buffer_files(source: Path) -> list[Path]:
    """The ``replay_buffer_<n>.pt`` files of ``source``, in numeric order."""
    if not source.is_dir():
        raise ArtifactError(f"expert buffer directory not found: {source}")
    files = sorted((p for p in source.iterdir() if _BUFFER_RE.match(p.name)),
                   key=lambda p: int(_BUFFER_RE.match(p.name).group(1)))  # type: ignore[union-attr]
    return files


def _load_buffer(file: Path) -> Any:
    """An official ``replay_buffer_<n>.pt`` (a list of experts, each a list of per-epoch parameter
    lists), read as the distilled-set loader reads a ``.pt``: tensors and plain containers only,
    its errors in ddr's words."""
    from ddr.method.assets import safe_torch_load

    return safe_torch_load(file, what="expert buffer")


def _epoch_vector(entry: Any, layout: ParamLayout, where: str) -> torch.Tensor:
    if isinstance(entry, torch.Tensor) and entry.dim() == 1:
        if entry.numel() != layout.size:
            raise ArtifactError(f"{where} is a flat vector of {entry.numel()} values but the architecture has "
                                f"{layout.size} parameters; import with the architecture the buffer was trained with")
        return entry.to(torch.float32)
    if not isinstance(entry, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in entry):
        raise ArtifactError(f"{where} is a {type(entry).__name__}, not a list of parameter tensors "
                            "(official MTT buffers: list of experts, each a list of epochs, each a list of tensors)")
    if len(entry) != len(layout.names):
        raise ArtifactError(f"{where} has {len(entry)} parameter tensors but the architecture has "
                            f"{len(layout.names)} ({', '.join(layout.names[:6])}{' ...' if len(layout.names) > 6 else ''}); "
                            "import with the architecture (--arch, width/depth/norm) the buffer was trained with")
    for i, (tensor, name, shape) in enumerate(zip(entry, layout.names, layout.shapes)):
        if tuple(tensor.shape) != tuple(shape):
            raise ArtifactError(f"{where}: parameter {i} has shape {tuple(tensor.shape)} but the architecture's "
                                f"'{name}' has shape {tuple(shape)}; import with the architecture (--arch, "
                                "width/depth/norm, dataset channels/size) the buffer was trained with")
    return torch.cat([t.detach().reshape(-1).to(torch.float32) for t in entry])


def import_buffers(source: Path, model: nn.Module, *, dataset: str = "", arch: str = "",
                   log: Callable[[str], None] | None = None) -> list[Trajectory]:
    """Convert the official buffers in ``source`` for ``model``'s parameters (cached by content).

    Returns the imported trajectories, in file order then expert order.
    """
    source = Path(source)
    files = buffer_files(source)
    if not files:
        raise ArtifactError(f"{source} holds no replay_buffer_<n>.pt files (official MTT expert buffers); "
                            "point at the directory buffer.py wrote, e.g. buffers/CIFAR10/ConvNet")
    check_functional(model, arch)
    layout = ParamLayout.of(model)
    key = content_key({"format": EXPERT_FORMAT, "files": [[f.name, file_sha256(f)] for f in files],
                       "layout": layout.to_json(), "model": model_fingerprint(model)})
    assets = Assets(log=log)
    built: list[int] = []

    def build(folder: Path) -> None:
        count, epochs = 0, []
        for file in files:
            experts = _load_buffer(file)
            if not isinstance(experts, (list, tuple)):
                raise ArtifactError(f"{file} holds a {type(experts).__name__}, not a list of experts")
            for e, expert in enumerate(experts):
                if not isinstance(expert, (list, tuple)) or len(expert) < 2:
                    raise ArtifactError(f"{file}, expert {e}: expected a list of at least 2 per-epoch parameter lists")
                snapshots = [_epoch_vector(entry, layout, f"{file.name}, expert {e}, epoch {k}")
                             for k, entry in enumerate(expert)]
                _write_trajectory(folder / f"expert_{count:05d}.safetensors", snapshots)
                epochs.append(len(snapshots))
                count += 1
        if count == 0:
            raise ArtifactError(f"the buffers in {source} hold no experts")
        _write_json(folder / "meta.json", {
            "format": EXPERT_FORMAT, "kind": "imported", "source": str(source.resolve()), "dataset": dataset,
            "arch": arch, "experts": count, "snapshots_per_expert": epochs, "epochs": min(epochs) - 1,
            "layout": layout.to_json(), "files": [f.name for f in files], "key": key})
        built.append(count)

    folder = assets.build(IMPORTED_NAMESPACE, key, build, what=f"the experts imported from {source}")
    if built and log:
        log(f"imported {built[0]} experts from {source} into {folder}")
    return _read_imported(folder)


def _read_imported(folder: Path) -> list[Trajectory]:
    meta = _read_json(folder / "meta.json")
    if not isinstance(meta, dict):
        raise ArtifactError(f"imported experts {folder} have no readable meta.json; import them again")
    layout = ParamLayout(tuple(meta["layout"]["names"]), tuple(tuple(s) for s in meta["layout"]["shapes"]))
    return [Trajectory(folder / f"expert_{i:05d}.safetensors", layout, int(n), meta)
            for i, n in enumerate(meta["snapshots_per_expert"])]


def experts_from_path(path: str | Path, ctx: "DistillContext") -> list[Trajectory]:
    """Experts from a directory: official ``replay_buffer_*.pt`` files (imported, cached by content)
    or an imported collection made by ``ddr experts import``."""
    path = Path(path).expanduser()
    if (path / "meta.json").is_file() and any(path.glob("expert_*.safetensors")):
        trajectories = _read_imported(path)
    else:
        trajectories = import_buffers(path, ctx.make_model(), dataset=ctx.dataset.name, arch=ctx.arch, log=ctx.log)
    layout = ParamLayout.of(ctx.make_model())
    if trajectories and (trajectories[0].layout.shapes != layout.shapes):
        raise ArtifactError(f"the experts in {path} were imported for another architecture "
                            f"({len(trajectories[0].layout.names)} parameter tensors) than the run's '{ctx.arch}'")
    return trajectories
