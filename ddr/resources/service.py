"""Resources: what the runs of one (dataset, protocol, seed, device) share, built once, on use.

A :class:`Resources` owns the loaded dataset, the protocol's splits (training pool, validation,
test), the student and teacher architectures, the real-data reference model and the teachers,
the workspaces student jobs resolve against and the cache's assets. The evaluator plans and
scores against it; a method reaches it through its :class:`ddr.method.DistillContext`
(``ctx.teacher()``, ``ctx.asset(...)``); ``ddr teacher`` and ``ddr experts`` use it directly,
with no evaluation in sight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddr.errors import ArtifactError
from ddr.resources.jobs import JobRunner
from ddr.store.assets import Assets

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ddr.engine.data import ImageDataset, Split
    from ddr.execute.workspace import Workspace
    from ddr.protocol.config import Protocol
    from ddr.records.jobs import StudentJob
    from ddr.records.recipe import Recipe
    from ddr.resources.session import Session


class Resources:
    """The shared resources of runs on one dataset under one protocol and seed.

    Args:
        session: the command's session (plugin system, loaded datasets, log, executors).
        protocol: the resolved protocol (its splits, student/teacher architectures, real recipe).
        dataset: the dataset reference; seed: the run seed (the validation split derives from it).
        device: ``cpu``, ``cuda``, ``cuda:N`` or a ``torch.device`` (``None``: the GPU when present).
        zca: ZCA-whiten the dataset; download: fetch a missing dataset.
        teacher: a teacher checkpoint file instead of the trained reference.
        arch, arch_params: the student architecture instead of the protocol's (params are merged
            over the protocol's when ``arch`` is ``None``).
        executor, executor_options, job_cache: how the reference (and student jobs) run.

    ``teacher_path`` and ``teacher_sha256`` are the teacher file and its content hash (hashed once,
    when the file is checked; ``None`` without a file).
    """

    def __init__(self, session: "Session", protocol: "Protocol", *, dataset: str = "digits", seed: int = 0,
                 device: "str | torch.device | None" = None, zca: bool = False, download: bool = False,
                 teacher: str | Path | None = None, arch: str | None = None,
                 arch_params: Mapping[str, Any] | None = None, executor: str = "local",
                 executor_options: Mapping[str, Any] | None = None, job_cache: bool = True) -> None:
        import torch

        from ddr.engine.seeds import check_seed
        from ddr.resources.devices import resolve_device
        from ddr.store.writable import check_cache

        self.session = session
        self.protocol = protocol
        self.dataset_ref = dataset
        self.seed = check_seed(seed)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.zca, self.download = bool(zca), bool(download)
        self.arch, self.arch_params = arch, dict(arch_params or {})
        self.system.executors().get(executor)  # an unknown executor fails here, not after the cached jobs
        check_cache()  # a read-only, full or misplaced DDR_CACHE_DIR fails here, before any work
        path = teacher or protocol.teacher.checkpoint
        self.teacher_path = Path(path) if path else None
        self.teacher_sha256 = self._check_teacher_file()
        for name in {arch, protocol.teacher.arch} - {None}:
            self.system.architectures().resolve(name)
        self.jobs = JobRunner(session, executor, dict(executor_options or {}), job_cache)
        self.assets = Assets(log=session.log)
        self._dataset: ImageDataset | None = None
        self._splits: tuple[Split, Split, Split] | None = None
        self._workspaces: dict[int, Workspace] = {}
        self._teachers: list[Any] | None = None

    @classmethod
    def open(cls, session: "Session | None" = None, *, dataset: str = "digits", protocol: str | None = None,
             overrides: Mapping[str, Any] | None = None, method_protocol: str = "hard", system: Any = None,
             log: Callable[[str], None] | None = None, progress_bars: bool = True, **kwargs: Any) -> "Resources":
        """The resources of ``dataset`` under the protocol ``protocol`` (a name or YAML path;
        ``None``: the dataset's default for ``method_protocol``) with dotted ``overrides``.

        ``session``: the command's (``None``: a new one with the plugin system ``system``, the
        message sink ``log`` and progress bars unless ``progress_bars`` is False, as a plugin's
        command builds it); ``kwargs`` as for the constructor (seed, device, zca, download,
        teacher, arch, arch_params, executor, ...)."""
        from ddr.protocol.config import default_protocol, resolve_protocol
        from ddr.resources.session import Session

        if session is None:
            session = (Session(system=system, progress_bars=progress_bars) if log is None else
                       Session(system=system, log=log, progress_bars=progress_bars))
        resolved = resolve_protocol(protocol or default_protocol(dataset, method_protocol), dict(overrides or {}),
                                    session.system, dataset=dataset)
        return cls(session, resolved, dataset=dataset, **kwargs)

    def _check_teacher_file(self) -> str | None:
        """The teacher file's sha256 (``None`` without one), once it is known to load: the content
        its jobs are keyed by and its run record names."""
        if self.teacher_path is None:
            return None
        if not self.teacher_path.is_file():
            raise ArtifactError(f"teacher checkpoint not found: {self.teacher_path} (or it is not a file); give a "
                                ".safetensors or state-dict .pt file, or leave --teacher out to use the real-data "
                                "reference")
        from ddr.engine.teachers import read_state_dict

        read_state_dict(self.teacher_path)  # an unreadable or unsafe file fails now, not after the distillation
        from ddr.store.hashing import sha256_file

        return sha256_file(self.teacher_path)

    def portable(self) -> dict[str, Any]:
        """The keyword arguments that rebuild these resources in another process (with the
        ``local`` executor, the resolved device type and no teacher file: teachers travel as
        weights), for ``Resources(session, protocol, **portable)``."""
        return {"dataset": self.dataset_ref, "seed": self.seed, "device": self.device.type, "zca": self.zca,
                "download": self.download, "arch": self.arch, "arch_params": dict(self.arch_params)}

    # -- the session's services ----------------------------------------------------------------
    @property
    def system(self) -> Any:
        return self.session.system

    @property
    def log(self) -> Callable[[str], None]:
        return self.session.log

    # -- data ------------------------------------------------------------------------------------
    @property
    def dataset(self) -> "ImageDataset":
        if self._dataset is None:
            self._dataset = self.session.load_dataset(self.dataset_ref, download=self.download, zca=self.zca)
        return self._dataset

    def dataset_spec(self) -> Any:
        return self.system.datasets().get(self.dataset_ref)

    def _split(self) -> "tuple[Split, Split, Split]":
        if self._splits is None:
            from ddr.resources.splits import hold_out_validation

            pool, validation = hold_out_validation(self.dataset, self.protocol.validation_per_class, self.seed,
                                                   self.device)
            self._splits = (pool, validation, self.dataset.test.to(self.device))
        return self._splits

    @property
    def pool(self) -> "Split":
        """The training pool: the train split minus the validation split (on the device)."""
        return self._split()[0]

    @property
    def validation(self) -> "Split":
        return self._split()[1]

    @property
    def test(self) -> "Split":
        return self._split()[2]

    def check_ipc(self, ipc: int) -> None:
        """Refuse an IPC some class of the pool cannot fill."""
        from ddr.resources.splits import check_ipc

        check_ipc(self.pool, self.dataset, ipc, self.protocol.validation_per_class)

    def workspace(self, ipc: int) -> "Workspace":
        """What jobs of an evaluation at ``ipc`` resolve against (one per IPC, built on first use)."""
        if ipc not in self._workspaces:
            from ddr.execute.workspace import Workspace

            self.check_ipc(ipc)
            self._workspaces[ipc] = Workspace(
                system=self.system, device=self.device, dataset=self.dataset, pool=self.pool,
                validation=self.validation, test=self.test, ipc=ipc, seed=self.seed, teachers=self.teachers,
                progress=self.session.progress, teacher_arch=self.teacher_arch())
        return self._workspaces[ipc]

    # -- networks --------------------------------------------------------------------------------
    def student_arch(self) -> tuple[str, dict[str, Any]]:
        """``(name, params)`` of the student: the user's, else the protocol's for the image size."""
        if self.arch:
            return self.arch, dict(self.arch_params)
        arch = self.protocol.student.arch_for(max(self.dataset.image_size))
        return arch, {**dict(self.protocol.student.arch_params), **self.arch_params}

    def teacher_arch(self) -> tuple[str, dict[str, Any]]:
        """``(name, params)`` of the reference and teachers: the protocol's teacher, else the student."""
        if self.protocol.teacher.arch:
            return self.protocol.teacher.arch, dict(self.protocol.teacher.arch_params)
        return self.student_arch()

    def make_model(self, seed: int, arch: str | None = None, params: Mapping[str, Any] | None = None) -> "torch.nn.Module":
        """A fresh seeded network (``arch=None``: the student architecture with ``params`` merged in)."""
        from ddr.engine.build import build_model

        default_arch, default_params = self.student_arch()
        if arch is None:
            arch, merged = default_arch, {**default_params, **dict(params or {})}
        else:
            merged = dict(params or {})
        return build_model(arch, self.dataset, params=merged, seed=seed, device=self.device, system=self.system)

    # -- the reference and the teachers ----------------------------------------------------------
    def job_context(self) -> dict[str, Any]:
        """What every job's data resolves against (part of each job's content key)."""
        ds = self.dataset
        return {"dataset": ds.name, "dataset_version": self.dataset_spec().version, "pixel_space": ds.pixel_space,
                "preprocess": ds.preprocess, "validation_per_class": self.protocol.validation_per_class,
                "seed": self.seed, "device": self.device.type}

    def real_recipe(self) -> "Recipe":
        """The real-data recipe (the dataset's epochs unless the protocol sets them)."""
        return self.protocol.real.with_default_epochs(self.dataset_spec().real_epochs)

    def reference(self) -> "StudentJob":
        """The real-data reference job (its content key names the cached model)."""
        from ddr.protocol.plan import reference_job

        arch, params = self.teacher_arch()
        return reference_job(self.protocol, seed=self.seed, arch=arch, arch_params=params,
                             real=self.real_recipe(), context=self.job_context())

    def teacher_identity(self) -> str:
        """The user's teacher file's sha256, or the reference job's key."""
        if self.teacher_sha256 is not None:
            return "file:" + self.teacher_sha256
        return "reference:" + self.reference().key

    def run_jobs(self, jobs: "list[StudentJob]", ipc: int, reused: dict[str, int]) -> dict[str, Any]:
        """Results of ``jobs`` (an evaluation at ``ipc``) by key: cached, else run by the executor.
        Each job is reported as it finishes (:mod:`ddr.resources.progress`), and each trained one's
        time is recorded for later estimates (:mod:`ddr.store.timings`)."""
        from ddr.resources.progress import JobWatch

        def trained(job: "StudentJob", result: Any) -> None:
            from ddr.store.timings import job_signature, record_timing

            record_timing(job_signature(job.to_dict(), self.job_images(job, ipc)),
                          int(job.recipe.epochs or 0) * len(job.lr_candidates), float(result.seconds))

        return self.jobs.run(jobs, self.workspace(ipc), reused, announce=self._announce,
                             watch=JobWatch(jobs, trained))

    def job_images(self, job: "StudentJob", ipc: int) -> int:
        """Images ``job`` trains on per epoch: the pool for the reference, IPC × classes otherwise."""
        if job.data.kind == "pool":
            return len(self.pool)
        return int(job.data.ipc or ipc) * int(self.dataset.num_classes)

    def _announce(self, job: "StudentJob") -> None:
        if job.role == "real":  # once: it is cached
            self.log(f"training the real-data reference once ({self.dataset.name}, {job.recipe.epochs} epochs, "
                     f"{len(self.pool)} images); it is cached for every later run")

    def real_accuracy(self) -> tuple[float, bool]:
        """``(acc_real_hard, cached?)``: the reference, trained once under the real-data recipe."""
        job = self.reference()
        reused: dict[str, int] = {}
        result = self.jobs.run([job], self._reference_workspace(), reused, announce=self._announce)[job.key]
        return result.accuracy, bool(reused)

    def _reference_workspace(self) -> "Workspace":
        """A workspace for the reference alone (it never draws a random subset, so any IPC does)."""
        return self._workspaces[min(self._workspaces)] if self._workspaces else self.workspace(1)

    def teacher_checkpoint(self) -> Path:
        """The teacher's weights: the user's file, else the cached reference model (trained if needed)."""
        if self.teacher_path is not None:
            return self.teacher_path
        from ddr.store.jobs import model_path

        self.real_accuracy()
        key = self.reference().key
        if key in self.jobs.unstored_models and not model_path(key).is_file():
            return self._rescue_reference(key)
        return model_path(key)

    def _rescue_reference(self, key: str) -> Path:
        """The reference model the cache could not store, saved to a rescue folder (a warning
        says where); an ArtifactError when that fails too."""
        from ddr.store.jobs import MODEL_FILE
        from ddr.store.writable import reason, rescue_dir, save_tensors

        path = rescue_dir(f"reference-{key[:16]}") / MODEL_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_tensors(self.jobs.unstored_models[key], path)
        except OSError as exc:
            raise ArtifactError(f"the real-data reference trained, but neither the cache nor {path.parent} could "
                                f"store its model ({reason(exc)}); free space under DDR_CACHE_DIR (or point it "
                                "elsewhere) and rerun") from None
        self.log(f"warning: the cache could not store the real-data reference; its model is saved at {path}")
        return path

    def use_teachers(self, models: list["torch.nn.Module"]) -> None:
        """Make ``models`` (eval mode, frozen) the teachers, as a worker does with the driver's."""
        self._teachers = list(models)

    def teachers(self) -> list["torch.nn.Module"]:
        """The teacher(s) in eval mode, frozen: a user checkpoint or the reference model."""
        if self._teachers is None:
            from ddr.engine.teachers import load_teacher

            arch, params = self.teacher_arch()
            key = self.reference().key if self.teacher_path is None else ""
            if key in self.jobs.unstored_models:  # trained by this run, but the cache could not store it
                model = self.make_model(0, arch, params)
                model.load_state_dict(self.jobs.unstored_models[key])
                model.eval().requires_grad_(False)
                self._teachers = [model]
            else:
                path = self.teacher_checkpoint()
                self._teachers = [load_teacher(self.make_model(0, arch, params), path)]
        return self._teachers

    # -- assets ----------------------------------------------------------------------------------
    def asset(self, namespace: str, key: Mapping[str, Any] | str, build: Callable[[Path], None], *,
              what: str) -> Path:
        """The cache entry of ``key`` in ``namespace``, built by ``build(folder)`` once (locked,
        atomic, content-keyed: :class:`ddr.store.assets.Assets`)."""
        return self.assets.build(namespace, key, build, what=what)
