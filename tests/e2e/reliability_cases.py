"""Every bad input ddr was tried with, as data: what was tried, the message fragment it must
print, the exit status, and what it must leave on disk.

``tests/e2e/test_reliability_cases.py`` runs each case in-process through ``ddr.cli.main.main`` and
asserts all four; ``docs/reliability.md`` is the table generated from this list, and a test keeps
the two equal. After adding or changing a case, regenerate the table with::

    python tests/e2e/reliability_cases.py --write

Arguments and messages may name ``{tmp}`` (the test's temporary directory), ``{out}`` (the
``--out`` folder, ``{tmp}/runs``), ``{cache}`` (the case's own ``DDR_CACHE_DIR``, ``{tmp}/cache``),
``{rescue}`` (the rescue folder, ``{tmp}/tmp/ddr-rescued``) and ``{long}`` (a file name of 300
characters, longer than Linux and macOS file systems allow).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
FAST = ("--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1", "--no-progress", "--out", "{out}")
METHODS_MODULE = "ddr_reliability_methods"


@dataclass
class Env:
    """What a case's setup and check work with: the temporary directory and pytest's monkeypatch."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    modules: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.tmp / "runs"

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    @property
    def rescue(self) -> Path:
        return self.tmp / "tmp" / "ddr-rescued"

    def fields(self) -> dict[str, str]:
        return {"tmp": str(self.tmp), "out": str(self.out), "cache": str(self.cache), "rescue": str(self.rescue),
                "long": "a" * 300}

    def module(self, name: str, source: str) -> None:
        """Write an importable plugin module ``name`` (for ``-p name``)."""
        folder = self.tmp / "modules"
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        self.monkeypatch.syspath_prepend(str(folder))
        sys.modules.pop(name, None)
        self.modules.append(name)


@dataclass(frozen=True)
class Case:
    """One tried bad input.

    Attributes:
        id: the test id.
        tried: what was tried, in words (the table's first column).
        argv: the ``ddr`` arguments (placeholders allowed).
        message: a fragment the output must contain (placeholders allowed).
        exit_code: the exit status (2: bad input; 1: ``ddr doctor`` found problems; 0: handled).
        left: what is left on disk, in words.
        setup: prepares files, plugins and simulated faults.
        check: asserts the disk state ``left`` describes.
    """

    id: str
    tried: str
    argv: tuple[str, ...]
    message: str
    exit_code: int = 2
    left: str = "nothing: no run record, no cache entry"
    setup: Callable[[Env], None] | None = None
    check: Callable[[Env], None] | None = None


# -- disk-state checks -------------------------------------------------------------------------------

def records(env: Env) -> list[Path]:
    """Run record folders (and any hidden half-written ones) under ``--out``."""
    return sorted(env.out.iterdir()) if env.out.is_dir() else []


def valid_entries(env: Env, namespace: str) -> list[Path]:
    """Cache entries of ``namespace`` that a reader accepts (``meta.json`` / ``result.json`` present)."""
    base = env.cache / namespace
    marker = "result.json" if namespace == "jobs" else "meta.json"
    return sorted(p.parent for p in base.glob(f"*/*/{marker}")) if base.is_dir() else []


def nothing(env: Env) -> None:
    assert records(env) == [], records(env)
    assert valid_entries(env, "distilled") == [] and valid_entries(env, "jobs") == []


def no_record(env: Env) -> None:
    assert records(env) == [], records(env)


def one_record(env: Env) -> None:
    (folder,) = records(env)
    assert {p.name for p in folder.iterdir()} >= {"run_spec.json", "metrics.json", "env.json"}


# -- setups ------------------------------------------------------------------------------------------

def fresh_cache(env: Env) -> None:
    """A cache of the case's own, and a temp dir inside ``tmp`` (where rescued results go)."""
    env.monkeypatch.setenv("DDR_CACHE_DIR", str(env.cache))
    (env.tmp / "tmp").mkdir(exist_ok=True)
    import tempfile

    env.monkeypatch.setattr(tempfile, "tempdir", str(env.tmp / "tmp"))


def simulate_disk_fault(env: Env, under: Path, code: int = errno.ENOSPC, *, probe: bool = True,
                        files: bool = True) -> None:
    """Make ddr's low-level writes below ``under`` fail with ``OSError(code)``: the write check
    (``probe``), and JSON, safetensors (which raises its own ``SafetensorError`` naming the OS
    error, as it does on a real full disk) and copied files (``files``). Paths are matched as string
    prefixes, so the temporary siblings ddr writes first (``DIR.tmp-PID``) fail too."""
    import safetensors.torch

    import ddr.store.cache
    import ddr.store.writable

    prefix = str(under)

    def fault(path: Any) -> None:
        if str(path).startswith(prefix):
            raise OSError(code, os.strerror(code), str(path))

    if probe:
        real_probe = ddr.store.writable.probe

        def probe_(directory: Path) -> None:
            fault(Path(directory) / ".ddr-write-check")
            real_probe(directory)

        env.monkeypatch.setattr(ddr.store.writable, "probe", probe_)
    if files:
        real_text, real_save, real_copy = ddr.store.cache.atomic_write_text, safetensors.torch.save_file, shutil.copyfile

        def text(path: Path, content: str) -> None:
            fault(path)
            real_text(path, content)

        def save(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
            # what safetensors really raises on a full disk (measured on a 64 KiB tmpfs), not an OSError
            try:
                fault(filename)
            except OSError as exc:
                from safetensors import SafetensorError

                raise SafetensorError(f"Error while serializing: I/O error: {exc.strerror} (os error {exc.errno})") \
                    from None
            real_save(tensors, filename, *args, **kwargs)

        def copy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            fault(dst)
            return real_copy(src, dst, *args, **kwargs)

        env.monkeypatch.setattr(ddr.store.cache, "atomic_write_text", text)
        env.monkeypatch.setattr(safetensors.torch, "save_file", save)
        env.monkeypatch.setattr(shutil, "copyfile", copy)


def read_only(path_of: Callable[[Env], Path]) -> Callable[[Env], None]:
    """chmod a directory read-only; skip where that does not stop writes (running as root)."""
    def setup(env: Env) -> None:
        fresh_cache(env)
        path = path_of(env)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        env.cleanups.append(lambda: path.chmod(0o755))
        if os.access(path, os.W_OK):
            pytest.skip("chmod does not stop writes here (running as root)")

    return setup


def methods_plugin(env: Env) -> None:
    fresh_cache(env)
    env.module(METHODS_MODULE, '''
        import time

        import torch

        from ddr import hookimpl
        from ddr.method import DistilledSet
        from ddr.plugin.specs import MethodSpec


        def _set(ctx, images=None):
            k = ctx.num_classes
            if images is None:
                images = torch.zeros(k * ctx.ipc, ctx.dataset.channels, *ctx.dataset.image_size)
            return DistilledSet(images=images, labels=torch.arange(k).repeat_interleave(ctx.ipc),
                                pixel_space=ctx.dataset.pixel_space)


        class Quitter:
            def distill(self, ctx):
                import sys
                sys.exit(0)


        class Crasher:
            def distill(self, ctx):
                raise ValueError("boom")


        class HardQuitter:
            def distill(self, ctx):
                import os
                os._exit(0)


        class CExit:
            def distill(self, ctx):
                import ctypes
                ctypes.CDLL(None)._exit(0)  # ends the process from C: no Python code can stop it


        class FakeCtrlC:
            def distill(self, ctx):
                raise KeyboardInterrupt


        class WrongType:
            def distill(self, ctx):
                return {"images": None}


        class NaNImages:
            def distill(self, ctx):
                distilled = _set(ctx)
                distilled.images[0, 0, 0, 0] = float("nan")
                return distilled


        class WrongShape:
            def distill(self, ctx):
                return _set(ctx, torch.zeros(ctx.num_classes * ctx.ipc, 3, 32, 32))


        class Sleeper:
            def distill(self, ctx):
                try:
                    time.sleep(600)
                except Exception:  # a broad except must not swallow the timeout
                    pass
                return _set(ctx)


        @hookimpl
        def ddr_methods():
            return [MethodSpec(name=n, target=t, summary=n) for n, t in (
                ("quitter", Quitter), ("hardquitter", HardQuitter), ("fakectrlc", FakeCtrlC), ("cexit", CExit),
                ("crasher", Crasher), ("wrongtype", WrongType), ("nanimages", NaNImages),
                ("wrongshape", WrongShape), ("sleeper", Sleeper))]
    ''')


def bad_preset_plugin(env: Env) -> None:
    env.module("ddr_reliability_presets", '''
        from ddr import hookimpl
        from ddr.method import ParamSpec
        from ddr.plugin.specs import MethodSpec


        @hookimpl
        def ddr_methods():
            return [MethodSpec(name="presetbug", target="x:Y", summary="a preset with a typo",
                               params=(ParamSpec("iterations", 10, "steps", minimum=1),),
                               presets={"fast": {"iteratons": 2}})]
    ''')


def exiting_import_plugin(env: Env) -> None:
    fresh_cache(env)
    env.module("ddr_reliability_exits", '''
        import sys

        sys.exit(3)
    ''')


def broken_import_plugin(env: Env) -> None:
    fresh_cache(env)
    env.module("ddr_reliability_broken", '''
        import ddr_reliability_missing_dependency  # noqa: F401
    ''')


def distilled_set(env: Env, images: Any = None, labels: Any = None, **meta: Any) -> Path:
    import torch

    from ddr.method import DistilledSet
    from ddr.store.formats import save_distilled

    images = torch.zeros(10, 1, 16, 16) if images is None else images
    labels = torch.arange(10) if labels is None else labels
    folder = save_distilled(DistilledSet(images=images, labels=labels), env.tmp / "set")
    if meta:
        record = json.loads((folder / "meta.json").read_text())
        record.update(meta)
        (folder / "meta.json").write_text(json.dumps(record))
    return folder


def set_with(**kwargs: Any) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        fresh_cache(env)
        distilled_set(env, **kwargs)

    return setup


def wrong_shape_set(env: Env) -> None:
    import torch

    fresh_cache(env)
    distilled_set(env, images=torch.zeros(10, 3, 32, 32))


def bad_labels_set(env: Env) -> None:
    import torch

    fresh_cache(env)
    distilled_set(env, labels=torch.arange(10) + 5)


def nan_set(env: Env) -> None:
    import torch

    fresh_cache(env)
    images = torch.zeros(10, 1, 16, 16)
    images[3, 0, 1, 1] = float("inf")
    images[4, 0, 2, 2] = float("nan")
    distilled_set(env, images=images)


def corrupt_meta(env: Env) -> None:
    fresh_cache(env)
    (distilled_set(env) / "meta.json").write_text("{not json")


def pickle_pt(env: Env) -> None:
    import torch

    fresh_cache(env)
    (env.tmp / "set").mkdir()
    torch.save({"images": torch.zeros(10, 1, 16, 16), "hook": os.system}, env.tmp / "set" / "images.pt")


def teacher_file(kind: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        import torch

        fresh_cache(env)
        path = env.tmp / f"teacher.{'safetensors' if kind == 'safetensors' else 'pt'}"
        if kind == "random":
            path.write_bytes(os.urandom(256))
        elif kind == "module":
            torch.save(torch.nn.Linear(2, 2), path)
        else:
            from safetensors.torch import save_file

            save_file({"weight": torch.zeros(2, 2)}, str(path))

    return setup


def record_folder(kind: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        folder = env.tmp / "run"
        folder.mkdir()
        for name in ("run_spec", "env"):
            (folder / f"{name}.json").write_text("{}")
        if kind == "corrupt":
            (folder / "metrics.json").write_text("{not json")
        elif kind == "incomplete":
            (folder / "metrics.json").write_text("{}")
        else:
            for p in folder.iterdir():
                p.unlink()

    return setup


def protocol_yaml(body: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        fresh_cache(env)
        (env.tmp / "protocol.yaml").write_text(textwrap.dedent(body))

    return setup


QUICK_PROTOCOL = """\
    name: quick
    version: 1
    include: ddr.builtins.protocols:digits.yaml
    real:
      epochs: 1
"""


def blocker_file(env: Env) -> None:
    fresh_cache(env)
    (env.tmp / "afile").write_text("not a folder")


def cache_is_a_file(env: Env) -> None:
    fresh_cache(env)
    env.cache.write_text("not a folder")


def corrupt_results_db(env: Env) -> None:
    fresh_cache(env)
    env.cache.mkdir()
    (env.cache / "results.sqlite").write_bytes(b"not sqlite" * 400)


def cache_full(env: Env) -> None:
    fresh_cache(env)
    simulate_disk_fault(env, env.cache)


def out_read_only_fs(env: Env) -> None:
    fresh_cache(env)
    simulate_disk_fault(env, env.out, errno.EROFS)


def out_fills_up(env: Env) -> None:
    fresh_cache(env)
    simulate_disk_fault(env, env.out, probe=False)


def cache_fills_up(env: Env) -> None:
    fresh_cache(env)
    env.cache.mkdir()
    simulate_disk_fault(env, env.cache / "distilled", probe=False)
    simulate_disk_fault(env, env.cache / "jobs", probe=False)


def save_dir_fills_up(env: Env) -> None:
    fresh_cache(env)
    simulate_disk_fault(env, env.tmp / "saved", probe=False)


def teacher_output_fills_up(env: Env) -> None:
    protocol_yaml(QUICK_PROTOCOL)(env)
    simulate_disk_fault(env, env.tmp / "teacher", probe=False)


def corrupt_cache_entry(env: Env) -> None:
    """A distilled set in the cache whose files were damaged after it was written."""
    from ddr.cli.main import main

    fresh_cache(env)
    assert main(["run", "--method", "random", "--num-eval", "1", "--epochs", "2", "--set", "real.epochs=1",
                 "--no-progress", "--out", str(env.tmp / "first")]) == 0
    (entry,) = valid_entries(env, "distilled")
    (entry / "images.safetensors").write_bytes(b"\x00" * 64)


def downloaded(archive: Callable[[Path], None], filename: str) -> Callable[[Env], None]:
    """``--download`` receives ``archive`` (written by the callable) instead of the official file."""
    def setup(env: Env) -> None:
        import torchvision.datasets.utils as tv_utils

        fresh_cache(env)
        data = env.tmp / "data"
        data.mkdir()
        env.monkeypatch.setenv("DDR_DATA_DIR", str(data))
        source = env.tmp / filename
        archive(source)

        def download_url(url: str, root: str, filename: str | None = None, md5: str | None = None,
                         max_redirect_hops: int = 3) -> None:
            shutil.copyfile(source, Path(root) / (filename or Path(url).name))

        env.monkeypatch.setattr(tv_utils, "download_url", download_url)

    return setup


def zip_escaping(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tiny-imagenet-200/wnids.txt", "n01\n")
        z.writestr("../evil.txt", "outside the data folder")


def zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("tiny-imagenet-200/wnids.txt", b"\0" * (16 * 2**20))


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> None:
    with tarfile.open(path, mode) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)


def tar_symlink(path: Path) -> None:
    folder = tarfile.TarInfo("cifar-10-batches-py")
    folder.type = tarfile.DIRTYPE
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar(path, [(folder, None), (link, None)])


def tar_huge_member(path: Path) -> None:
    """A tar whose member header declares 1 TiB (the data is not there: the header is the attack)."""
    info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    info.size = 2**40
    with open(path, "wb") as f:
        f.write(info.tobuf(format=tarfile.GNU_FORMAT))
        f.write(b"\0" * 4096)


def tar_device(path: Path) -> None:
    device = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    _tar(path, [(device, None)])


def no_data(env: Env) -> None:
    fresh_cache(env)
    env.monkeypatch.setenv("DDR_DATA_DIR", str(env.tmp / "data"))


def no_extraction(env: Env) -> None:
    nothing(env)
    data = env.tmp / "data"
    assert not (env.tmp / "evil.txt").exists()
    assert [p.name for p in data.iterdir()] in (["tiny-imagenet-200.zip"], ["cifar-10-python.tar.gz"]), \
        list(data.iterdir())


# -- more disk-state checks --------------------------------------------------------------------------

def rescued_record(env: Env) -> None:
    assert records(env) == [], records(env)  # no half-written record (nor its temporary sibling)
    (folder,) = (env.rescue).iterdir()
    assert {p.name for p in folder.iterdir()} >= {"run_spec.json", "metrics.json", "env.json"}
    assert valid_entries(env, "distilled") and valid_entries(env, "jobs")


def kept_in_memory_and_rescued(env: Env) -> None:
    one_record(env)
    assert valid_entries(env, "distilled") == [] and valid_entries(env, "jobs") == []
    assert not list((env.cache / "distilled").glob("*/*.tmp-*")) and not list((env.cache / "jobs").glob("*/*/.*"))
    (rescued,) = env.rescue.glob("distilled-*")
    assert {p.name for p in rescued.iterdir()} == {"meta.json", "images.safetensors"}


def set_safe_in_cache(env: Env) -> None:
    no_record(env)
    assert len(valid_entries(env, "distilled")) == 1
    assert not (env.tmp / "saved").exists() and not list(env.tmp.glob("saved.tmp-*"))


def checkpoint_safe_in_cache(env: Env) -> None:
    assert len(valid_entries(env, "jobs")) == 1
    assert not (env.tmp / "teacher").exists() or not list((env.tmp / "teacher").iterdir())


def redistilled(env: Env) -> None:
    assert len(list(env.out.iterdir())) == 1
    (entry,) = valid_entries(env, "distilled")
    from ddr.store.formats import load_distilled

    load_distilled(entry)  # the damaged entry was replaced by a readable one


# -- the cases ---------------------------------------------------------------------------------------

RUN = ("run", "--method", "random")
CASES: list[Case] = [
    # names
    Case("unknown-method", "`--method dmm` (a typo)", ("run", "--method", "dmm", *FAST),
         "unknown method 'dmm'; did you mean 'dm' or 'd4m'?", setup=fresh_cache, check=nothing),
    Case("unknown-preset", "`--method dm.papr` (a misspelt preset)", ("run", "--method", "dm.papr", *FAST),
         "method 'dm' has no preset 'papr' (presets: paper, reduced, smoke)", setup=fresh_cache, check=nothing),
    Case("unknown-dataset", "`--dataset digitz`", (*RUN, "--dataset", "digitz", *FAST),
         "unknown dataset 'digitz'; did you mean 'digits'?", setup=fresh_cache, check=nothing),
    Case("unknown-protocol", "`--protocol hrad`", (*RUN, "--protocol", "hrad", *FAST),
         "unknown protocol 'hrad'; did you mean 'hard'?", setup=fresh_cache, check=nothing),
    Case("unknown-arch", "`--arch convnett`", (*RUN, "--arch", "convnett", *FAST),
         "unknown architecture 'convnett'; did you mean 'convnet'", setup=fresh_cache, check=nothing),
    Case("unknown-label-strategy", "`--label-strategy techer`", (*RUN, "--label-strategy", "techer", *FAST),
         "unknown label strategy 'techer'; did you mean 'teacher' or 'teacher_views'?", setup=fresh_cache, check=nothing),
    Case("unknown-loss", "`--loss kll`", (*RUN, "--loss", "kll", *FAST),
         "unknown loss 'kll'; did you mean 'kl'?", setup=fresh_cache, check=nothing),
    Case("unknown-executor", "`--executor lokal`", (*RUN, "--executor", "lokal", *FAST),
         "unknown executor 'lokal'; did you mean 'local'?", setup=fresh_cache, check=nothing),
    Case("unknown-describe", "a misspelt name given to `ddr describe`", ("describe", "method", "dmm"),
         "unknown method 'dmm'; did you mean 'dm' or 'd4m'?", left="nothing", check=no_record),
    # values
    Case("method-param-typo", "`--set method.iteratons=3` (a misspelt method parameter)",
         ("run", "--method", "dm", "--set", "method.iteratons=3", *FAST),
         "method 'dm' has no parameter 'iteratons'; did you mean 'iterations'?", setup=fresh_cache, check=nothing),
    Case("method-param-range", "`--set method.iterations=-3`",
         ("run", "--method", "dm", "--set", "method.iterations=-3", *FAST),
         "parameter iterations=-3 is invalid; expected an integer >= 0", setup=fresh_cache, check=nothing),
    Case("method-param-type", "`--set method.iterations=abc`",
         ("run", "--method", "dm", "--set", "method.iterations=abc", *FAST),
         "parameter iterations='abc' is invalid; expected an integer >= 0", setup=fresh_cache, check=nothing),
    Case("protocol-key-typo", "`--set train.epoch=3` (a misspelt protocol key)", (*RUN, "--set", "train.epoch=3", *FAST),
         "unknown key 'train.epoch'; did you mean 'train.epochs'?", setup=fresh_cache, check=nothing),
    Case("negative-lr", "`--lr -1`", (*RUN, "--lr", "-1", *FAST),
         "--lr must be a positive learning rate, got -1.0", setup=fresh_cache, check=nothing),
    Case("zero-ipc", "`--ipc 0`", (*RUN, "--ipc", "0", *FAST),
         "ipc must be a positive integer, got 0", setup=fresh_cache, check=nothing),
    Case("zero-num-eval", "`--num-eval 0`", (*RUN, *FAST, "--num-eval", "0"),
         "num_eval must be >= 1", setup=fresh_cache, check=nothing),
    Case("zero-epochs", "`--epochs 0`", (*RUN, *FAST, "--epochs", "0"),
         "train.epochs must be >= 1, got 0", setup=fresh_cache, check=nothing),
    Case("huge-num-eval", "`--num-eval 5000` (a typo for 50)", (*RUN, *FAST, "--num-eval", "5000"),
         "num_eval = 5,000 is above ddr's bound of 1,000 students per accuracy, which guards against a mistyped "
         "count that would run for days; if you mean it, set DDR_MAX_NUM_EVAL=5000", setup=fresh_cache, check=nothing),
    Case("negative-seed", "`--seed -1`", (*RUN, "--seed", "-1", *FAST),
         "seed must be an integer in [0, 2**63); got -1", setup=fresh_cache, check=nothing),
    Case("missing-device", "`--device cuda:7` (no such GPU)", (*RUN, "--device", "cuda:7", *FAST),
         "device 'cuda:7' is not available here", setup=fresh_cache, check=nothing),
    Case("zero-timeout", "`--timeout 0`", (*RUN, "--timeout", "0", *FAST),
         "--timeout must be a positive number of seconds, got 0.0; leave --timeout out for no limit",
         setup=fresh_cache, check=nothing),
    # protocol files
    Case("protocol-file-typo", "`ddr validate` on a protocol YAML with the key `trian`",
         ("validate", "{tmp}/protocol.yaml"), "{tmp}/protocol.yaml: unknown key 'trian'; did you mean 'train'?",
         left="nothing", setup=protocol_yaml("name: p\nversion: 1\ninclude: ddr.builtins.protocols:digits.yaml\n"
                                             "trian: {epochs: 3}\n"), check=nothing),
    Case("protocol-file-syntax", "`--protocol FILE` that is not valid YAML", (*RUN, "--protocol", "{tmp}/protocol.yaml",
                                                                             *FAST),
         "{tmp}/protocol.yaml", setup=protocol_yaml("name: [unclosed\n"), check=nothing),
    # distilled sets given to ddr eval
    Case("eval-missing-path", "`ddr eval` on a path that does not exist", ("eval", "{tmp}/nothing-here", *FAST),
         "distilled set {tmp}/nothing-here does not exist", setup=fresh_cache, check=nothing),
    Case("eval-long-path", "`ddr eval` on a name longer than the file system allows", ("eval", "{tmp}/{long}", *FAST),
         "cannot look at distilled set {tmp}/{long}: File name too long; give a shorter path", setup=fresh_cache,
         check=nothing),
    Case("teacher-long-path", "`--teacher` naming a file longer than the file system allows (any command's path "
         "too long for it ends the same way)", (*RUN, "--teacher", "{tmp}/{long}", *FAST),
         "cannot use the path {tmp}/{long}: File name too long; give a shorter path", setup=fresh_cache,
         check=nothing),
    Case("eval-corrupt-meta", "`ddr eval` on a set whose meta.json is not JSON", ("eval", "{tmp}/set", *FAST),
         "{tmp}/set/meta.json", setup=corrupt_meta, check=nothing),
    Case("eval-meta-lr", "`ddr eval` on a set whose meta.json has `\"lr\": \"fast\"`", ("eval", "{tmp}/set", *FAST),
         "'lr' is 'fast'; expected a positive number or null", setup=set_with(lr="fast"), check=nothing),
    Case("eval-pickle", "`ddr eval` on an images.pt holding a pickled function (code execution)",
         ("eval", "{tmp}/set", *FAST), "refusing to unpickle", setup=pickle_pt, check=nothing),
    Case("eval-wrong-shape", "`ddr eval` on 3x32x32 images for digits (1x16x16)",
         ("eval", "{tmp}/set", "--ipc", "1", *FAST), "distilled images have 3 channel(s) but the dataset has 1",
         setup=wrong_shape_set, check=nothing),
    Case("eval-nan", "`ddr eval` on images holding NaN and Inf", ("eval", "{tmp}/set", *FAST),
         "1 NaN and 1 Inf value", setup=nan_set, check=nothing),
    Case("eval-bad-labels", "`ddr eval` on labels outside the 10 classes", ("eval", "{tmp}/set", *FAST),
         "label", setup=bad_labels_set, check=nothing),
    # teachers
    Case("teacher-missing", "`--teacher FILE` that does not exist", (*RUN, "--teacher", "{tmp}/nope.pt", *FAST),
         "teacher checkpoint not found: {tmp}/nope.pt", setup=fresh_cache, check=nothing),
    Case("teacher-random-bytes", "`--teacher FILE` holding random bytes (refused before any work)",
         (*RUN, "--teacher", "{tmp}/teacher.pt", "--label-strategy", "teacher", *FAST),
         "it is not a torch.save file (or it is truncated); re-copy or re-export it", setup=teacher_file("random"),
         check=nothing),
    Case("teacher-pickle", "`--teacher FILE` holding a pickled nn.Module (a pickle can run code; never loaded)",
         (*RUN, "--teacher", "{tmp}/teacher.pt", "--label-strategy", "teacher", *FAST),
         "holds a Python object (torch.nn.modules.linear.Linear)", setup=teacher_file("module"),
         check=nothing),
    Case("teacher-wrong-arch", "`--teacher FILE` whose weights do not fit the teacher architecture",
         (*RUN, "--teacher", "{tmp}/teacher.safetensors", "--label-strategy", "teacher", *FAST),
         "does not fit the teacher architecture", setup=teacher_file("safetensors"),
         left="the distilled set and the finished jobs in the cache; no run record", check=no_record),
    # records
    Case("show-corrupt", "`ddr show` on a record whose metrics.json is not JSON", ("show", "{tmp}/run"),
         "cannot read {tmp}/run/metrics.json", left="the record, untouched", setup=record_folder("corrupt")),
    Case("show-incomplete", "`ddr show` on a record whose metrics.json lacks the scores", ("show", "{tmp}/run"),
         "lacks 'protocol'; the record is incomplete", left="the record, untouched", setup=record_folder("incomplete")),
    Case("show-empty", "`ddr show` on a folder holding no records", ("show", "{tmp}/run"),
         "holds no run records", left="the folder, untouched", setup=record_folder("empty")),
    # methods (plugins) that misbehave
    Case("method-sys-exit", "a method that calls `sys.exit(0)`",
         ("-p", METHODS_MODULE, "run", "--method", "quitter", *FAST),
         "method 'quitter' (plugin 'ddr_reliability_methods', no distribution) called sys.exit(0)",
         setup=methods_plugin, check=nothing),
    Case("method-os-exit", "a method that calls `os._exit(0)` (no `finally`, no record, exit 0 if let through)",
         ("-p", METHODS_MODULE, "run", "--method", "hardquitter", *FAST),
         "method 'hardquitter' (plugin 'ddr_reliability_methods', no distribution) called os._exit(0) instead of "
         "returning a DistilledSet", setup=methods_plugin, check=nothing),
    Case("method-c-exit-isolated", "a method that ends its process from C (`_exit(0)` through ctypes), under "
         "`--isolate`", ("-p", METHODS_MODULE, "run", "--method", "cexit", "--isolate", *FAST),
         "the distillation of method 'cexit' (plugin 'ddr_reliability_methods', no distribution) ended its process "
         "(exit status 0) without a result", setup=methods_plugin, check=nothing),
    Case("method-keyboard-interrupt", "a method that raises `KeyboardInterrupt` (nobody pressed Ctrl-C)",
         ("-p", METHODS_MODULE, "run", "--method", "fakectrlc", *FAST),
         "method 'fakectrlc' (plugin 'ddr_reliability_methods', no distribution) raised KeyboardInterrupt (nobody "
         "pressed Ctrl-C)", setup=methods_plugin, check=nothing),
    Case("method-raises", "a method that raises ValueError", ("-p", METHODS_MODULE, "run", "--method", "crasher", *FAST),
         "method 'crasher' (plugin 'ddr_reliability_methods', no distribution) failed: ValueError: boom",
         setup=methods_plugin, check=nothing),
    Case("method-wrong-type", "a method that returns a dict", ("-p", METHODS_MODULE, "run", "--method", "wrongtype",
                                                               *FAST),
         "method 'wrongtype' returned dict, not a DistilledSet", setup=methods_plugin, check=nothing),
    Case("method-nan", "a method whose images hold NaN", ("-p", METHODS_MODULE, "run", "--method", "nanimages", *FAST),
         "returned a distilled set that cannot be evaluated", setup=methods_plugin, check=nothing),
    Case("method-wrong-shape", "a method that returns 3x32x32 images for digits",
         ("-p", METHODS_MODULE, "run", "--method", "wrongshape", *FAST), "returned a distilled set that cannot be "
         "evaluated", setup=methods_plugin, check=nothing),
    Case("method-timeout", "a method still running at `--timeout 1` (it sleeps, inside `except Exception`)",
         ("-p", METHODS_MODULE, "run", "--method", "sleeper", "--timeout", "1", *FAST),
         "method 'sleeper' (plugin 'ddr_reliability_methods', no distribution) ran past --timeout 1 s and was "
         "stopped", setup=methods_plugin, check=nothing),
    Case("plugin-import-error", "`ddr run` while a plugin fails to import",
         ("-p", "ddr_reliability_broken", "run", "--method", "random", *FAST),
         "plugin 'ddr_reliability_broken' failed to load: ModuleNotFoundError: No module named "
         "'ddr_reliability_missing_dependency'", setup=broken_import_plugin,
         check=nothing),
    Case("plugin-import-sys-exit", "`ddr run` while a plugin calls `sys.exit(3)` at import",
         ("-p", "ddr_reliability_exits", "run", "--method", "random", *FAST),
         "plugin 'ddr_reliability_exits' failed to load: called sys.exit(3)", setup=exiting_import_plugin,
         check=nothing),
    Case("doctor-import-sys-exit", "`ddr doctor` while a plugin calls `sys.exit(3)` at import",
         ("-p", "ddr_reliability_exits", "doctor"),
         "PROBLEM failed plugin: ddr_reliability_exits: called sys.exit(3)", exit_code=1, left="nothing",
         setup=exiting_import_plugin, check=no_record),
    Case("doctor-bad-preset", "`ddr doctor` with a plugin whose preset sets an unknown parameter",
         ("-p", "ddr_reliability_presets", "doctor"),
         "PROBLEM failed plugin: ddr_reliability_presets: plugin 'ddr_reliability_presets', hook ddr_methods: "
         "InvalidSpecError: method 'presetbug', preset 'fast', has no parameter 'iteratons'; did you mean "
         "'iterations'?", exit_code=1, left="nothing", setup=bad_preset_plugin, check=no_record),
    Case("doctor-cache-file", "`ddr doctor` while `DDR_CACHE_DIR` is a regular file", ("doctor",),
         "PROBLEM cache: the cache directory {cache} (DDR_CACHE_DIR) is a regular file", exit_code=1,
         left="the file, untouched", setup=cache_is_a_file),
    Case("doctor-corrupt-db", "`ddr doctor` with a results database holding random bytes", ("doctor",),
         "PROBLEM results database: the results database {cache}/results.sqlite is corrupt or not a database",
         exit_code=1, left="the file, untouched", setup=corrupt_results_db),
    Case("run-corrupt-db", "`ddr run` with a results database holding random bytes", (*RUN, *FAST),
         "adding it to the results database failed", exit_code=0, setup=corrupt_results_db,
         left="the run record (the database file untouched)", check=one_record),
    # disks
    Case("out-below-file", "`--out` below a regular file", (*RUN, *FAST, "--out", "{tmp}/afile/runs"),
         "cannot write run records to {tmp}/afile/runs (--out): Not a directory", setup=blocker_file, check=nothing),
    Case("out-read-only", "`--out` a read-only directory (chmod 555)", (*RUN, *FAST),
         "cannot write run records to {out} (--out): Permission denied", setup=read_only(lambda env: env.out),
         check=nothing),
    Case("out-read-only-fs", "`--out` on a read-only file system (EROFS, simulated)", (*RUN, *FAST),
         "cannot write run records to {out} (--out): Read-only file system; make {out} writable", setup=out_read_only_fs,
         check=nothing),
    Case("out-disk-full-late", "the disk of `--out` fills up while the run trains (ENOSPC, simulated)", (*RUN, *FAST),
         "cannot write the run record {out}/random-digits-ipc1-seed0-", setup=out_fills_up,
         left="no record folder (nor a half-written one) under --out; the record in {rescue}; every job in the cache",
         check=rescued_record),
    Case("cache-is-a-file", "`DDR_CACHE_DIR` pointing at a regular file", (*RUN, *FAST),
         "the cache directory {cache} (DDR_CACHE_DIR) is a regular file, not a directory", setup=cache_is_a_file,
         check=no_record),
    Case("cache-read-only", "`DDR_CACHE_DIR` a read-only directory (chmod 555)", (*RUN, *FAST),
         "cannot write to the cache directory {cache} (DDR_CACHE_DIR): Permission denied",
         setup=read_only(lambda env: env.cache), check=nothing),
    Case("cache-disk-full", "`DDR_CACHE_DIR` on a full disk (ENOSPC, simulated)", (*RUN, *FAST),
         "cannot write to the cache directory {cache} (DDR_CACHE_DIR): No space left on device; free space on the "
         "disk holding {cache}", setup=cache_full, check=nothing),
    Case("cache-fills-up", "the cache disk fills up after the write check (ENOSPC, simulated)", (*RUN, *FAST),
         "warning: the cache could not store the distilled set", exit_code=0, setup=cache_fills_up,
         left="the run record; the distilled set in {rescue}; no cache entry read back as valid",
         check=kept_in_memory_and_rescued),
    Case("save-distilled-below-file", "`--save-distilled` below a regular file",
         (*RUN, *FAST, "--save-distilled", "{tmp}/afile/set"),
         "cannot write the distilled set (--save-distilled) to {tmp}/afile: ", setup=blocker_file, check=nothing),
    Case("save-distilled-disk-full", "the disk of `--save-distilled DIR` is full (ENOSPC, simulated)",
         (*RUN, *FAST, "--save-distilled", "{tmp}/saved"),
         "cannot write distilled set to {tmp}/saved: No space left on device; free space on the disk holding {tmp} "
         "(or choose another directory); the distilled set is safe at {cache}/distilled/", setup=save_dir_fills_up,
         left="the distilled set in the cache; nothing under DIR, no DIR.tmp-*", check=set_safe_in_cache),
    Case("teacher-output-below-file", "`ddr teacher train --output` below a regular file",
         ("teacher", "train", "--output", "{tmp}/afile/t.safetensors"),
         "cannot write the teacher checkpoint (--output) to {tmp}/afile: ", setup=blocker_file, check=nothing),
    Case("teacher-output-folder", "`ddr teacher train --output` naming a folder (refused before training)",
         ("teacher", "train", "--output", "{tmp}"), "--output {tmp} is a folder; give the checkpoint's file name",
         check=nothing),
    Case("teacher-output-long-name", "`ddr teacher train --output` with a file name too long (refused before training)",
         ("teacher", "train", "--output", "{tmp}/{long}"),
         "cannot look at --output {tmp}/{long}: File name too long; give a shorter path", check=nothing),
    Case("teacher-output-disk-full", "the disk of `ddr teacher train --output FILE` is full (ENOSPC, simulated)",
         ("teacher", "train", "--protocol", "{tmp}/protocol.yaml", "--output", "{tmp}/teacher/t.safetensors"),
         "cannot write the teacher checkpoint (--output) to {tmp}/teacher/t.safetensors: No space left on device; "
         "free space on the disk holding {tmp}/teacher (or choose a writable --output FILE); it is safe at {cache}",
         setup=teacher_output_fills_up, left="the checkpoint in the cache; no (partial) FILE",
         check=checkpoint_safe_in_cache),
    Case("cache-entry-damaged", "a cached distilled set whose tensor file was damaged", (*RUN, *FAST),
         "is unreadable; distilling again", exit_code=0, setup=corrupt_cache_entry,
         left="a run record; the entry replaced by a readable one", check=redistilled),
    # archives
    Case("zip-escape", "`--download` of a Tiny-ImageNet zip with a member `../evil.txt`",
         (*RUN, "--dataset", "tinyimagenet", "--download", *FAST),
         "refusing to extract {tmp}/data/tiny-imagenet-200.zip: member '../evil.txt' escapes the target directory",
         setup=downloaded(zip_escaping, "tiny-imagenet-200.zip"), left="the archive only: nothing extracted",
         check=no_extraction),
    Case("zip-bomb", "`--download` of a zip whose member expands 1000x", (*RUN, "--dataset", "tinyimagenet", "--download",
                                                                        *FAST),
         "a compression bomb", setup=downloaded(zip_bomb, "tiny-imagenet-200.zip"),
         left="the archive only: nothing extracted", check=no_extraction),
    Case("tar-symlink", "`--download` of a CIFAR-10 tar with a symlink to /etc/passwd",
         (*RUN, "--dataset", "cifar10", "--download", *FAST),
         "member 'cifar-10-batches-py/data_batch_1' is a symbolic link (to '/etc/passwd')",
         setup=downloaded(tar_symlink, "cifar-10-python.tar.gz"), left="the archive only: nothing extracted",
         check=no_extraction),
    Case("tar-huge-member", "`--download` of a CIFAR-10 tar whose member declares 1 TiB",
         (*RUN, "--dataset", "cifar10", "--download", *FAST), "its members declare more than 1.0 GiB uncompressed",
         setup=downloaded(tar_huge_member, "cifar-10-python.tar.gz"), left="the archive only: nothing extracted",
         check=no_extraction),
    Case("tar-device", "`--download` of a CIFAR-10 tar holding a character device",
         (*RUN, "--dataset", "cifar10", "--download", *FAST), "is a device, FIFO or other special file",
         setup=downloaded(tar_device, "cifar-10-python.tar.gz"), left="the archive only: nothing extracted",
         check=no_extraction),
    Case("missing-dataset", "`--dataset cifar10` without the files and without `--download`",
         (*RUN, "--dataset", "cifar10", *FAST), "run again with --download",
         setup=no_data,
         check=nothing),
]


# -- the table ---------------------------------------------------------------------------------------

TITLE = """\
# Reliability: what ddr promises, and what it was tried with

Each promise names the tests that hold it (`tests/e2e/test_reliability_cases.py` checks that every
named test exists); a table row is a case of `tests/e2e/reliability_cases.py`, run by
`tests/e2e/test_reliability_cases.py::test_case`.

"""

HEADER = """\
Every row is a bad input (or a fault) that `tests/e2e/test_reliability_cases.py` feeds to the command
line, asserting the exit status, that the message contains the fragment, that no traceback is
printed, and what is left on disk. Exit status 2 is a bad input (`ddr.errors.DdrError`, one
`ddr: error:` line saying what to do; `--debug` shows the traceback), 1 is `ddr doctor` finding a
problem, 0 is a fault ddr works around and reports. `{tmp}` is the test's folder, `{out}` the
`--out` folder, `{cache}` the `DDR_CACHE_DIR`, `{rescue}` the folder finished results go to when
their own destination cannot take them (`$TMPDIR/ddr-rescued`), and `$FAST` stands for
`--num-eval 1 --epochs 2 --set real.epochs=1 --no-progress --out {out}`. Faults marked *simulated* make
ddr's low-level writes raise `OSError` (ENOSPC, EROFS) in-process; chmod rows are skipped when
the tests run as root.

Concurrent runs, `kill -9` in the middle of a cache write, memory growth over repeated runs and
a tampered cache (a job's accuracy edited by hand, a cached reference model damaged: each is
reported once, moved to `{cache}/quarantine/` and recomputed, and the rerun's DDRS equals the
first run's; `ddr cache verify` exits 1 before and 0 after) are tested in
`tests/e2e/test_reliability.py`; archive extraction in `tests/unit/store/test_archives.py`.

This table is generated from `tests/e2e/reliability_cases.py`; regenerate it with
`python tests/e2e/reliability_cases.py --write`.

"""


@dataclass(frozen=True)
class Promise:
    """What ddr promises, and the tests (``path::name``, or ``case:ID`` for a row of the table
    below) that hold it; a test checks every one of them exists."""

    promise: str
    tests: tuple[str, ...]


REL = "tests/e2e/test_reliability.py"
PROMISES = [
    Promise("Never runs code from a file it reads: pickles are loaded tensors-only, YAML with `safe_load`; a "
            "refused object is named", ("case:eval-pickle", "case:teacher-pickle",
                                        "tests/unit/store/test_artifacts.py::test_malicious_pickle_is_refused_not_executed",
                                        "tests/unit/engine/test_datasets.py::test_cifar_refuses_pickles_that_build_arbitrary_objects",
                                        "tests/methods/test_trajectory.py::test_a_buffer_that_is_no_tensors_gets_the_distilled_set_loaders_messages")),
    Promise("Never writes outside the folder it extracts into (links, `..`, absolute members, bombs refused "
            "before a byte is written)", ("case:zip-escape", "case:zip-bomb", "case:tar-symlink",
                                         "tests/unit/store/test_archives.py::test_zip_members_that_escape_are_refused",
                                         "tests/unit/store/test_archives.py::test_compression_bombs_are_refused")),
    Promise("A bad input is one `ddr: error:` line saying what to do (exit 2), never a traceback, and leaves "
            "nothing behind", ("tests/e2e/test_reliability_cases.py::test_case",)),
    Promise("Every parser a user feeds (protocol and suite YAML, `--set`, meta.json and the other distilled-set "
            "layouts, run records, DD-Ranking configs, archives, image folders) returns a valid result or a "
            "`DdrError` with a message, never another exception, and never writes outside its folder: "
            "property-based tests, 200–750 generated cases each in the default suite, 2,400–9,000 under `-m slow`",
            tuple(f"tests/unit/fuzz/test_fuzz_{f}.py::test_{t}" for f, t in (
                ("protocol", "protocol_file_contents"), ("protocol", "set_overrides"), ("suite", "suite_files"),
                ("distilled", "meta_json"), ("distilled", "pt_layouts"), ("records", "run_records"),
                ("ddranking", "ddranking_configs"), ("archives", "archive_members"),
                ("image_folders", "folder_datasets")))),
    Promise("A cache entry is complete or absent: `kill -9` in the middle of a write leaves no entry a reader "
            "accepts", (f"{REL}::test_kill_9_while_writing_a_cache_entry_leaves_no_valid_entry",)),
    Promise("Every cache entry is checked before use (job records and models against their checksums, "
            "distilled sets against their hash, assets against their manifest); a corrupt one is reported once, "
            "moved to `quarantine/` and rebuilt, and the numbers are those of an intact cache",
            (f"{REL}::test_an_edited_job_accuracy_and_a_damaged_reference_are_caught_reported_and_recomputed",
             "case:cache-entry-damaged",
             "tests/unit/store/test_checksums.py::test_a_job_record_carries_its_checksum_and_an_edit_is_caught",
             "tests/unit/store/test_checksums.py::test_a_tampered_asset_is_reported_moved_aside_and_rebuilt",
             "tests/unit/store/test_checksums.py::test_verify_reports_every_entry_and_quarantines_on_request")),
    Promise("What finished survives a crash: SIGTERM exits 143 keeping every finished job, and the rerun gives "
            "the uninterrupted run's numbers; a suite killed at random points resumes losing and duplicating "
            "nothing", (f"{REL}::test_sigterm_ends_a_run_with_143_and_a_rerun_finishes_it",
                        "tests/unit/runs/test_suites.py::test_kill_9_at_random_points_then_resume_loses_and_duplicates_nothing",
                        "tests/unit/runs/test_suites.py::test_ctrl_c_ends_a_suite_with_130_and_says_how_to_resume")),
    Promise("Concurrent runs on one cache build each asset once (the second waits, says so, and reads it); a "
            "killed holder's lock is released", (f"{REL}::test_two_runs_on_one_empty_cache_build_each_asset_once",
                                                 f"{REL}::test_a_lock_held_by_another_process_is_waited_for_and_said",
                                                 f"{REL}::test_a_killed_holder_releases_its_lock_and_locks_nest")),
    Promise("A full or read-only disk is one message naming the path and the fix; what was computed is kept "
            "(in memory, in the cache or in the rescue folder) and no half-written file is left, on a real full "
            "disk too (safetensors' own error included)",
            ("case:cache-fills-up", "case:out-disk-full-late", "case:save-distilled-disk-full",
             "case:teacher-output-disk-full",
             f"{REL}::test_a_real_full_cache_disk_keeps_the_reference_model_and_the_numbers",
             "tests/unit/store/test_assets.py::test_a_full_disk_while_an_asset_is_built_is_one_message_and_leaves_nothing")),
    Promise("A plugin cannot end ddr silently: `sys.exit`, `os._exit` and a `KeyboardInterrupt` nobody typed, at "
            "import or in `distill()`, are the plugin's failure, named; every other command keeps working. Under "
            "`--isolate` the method runs in a child process, so an exit from C, an abort or a crash is reported too "
            "(with the same set as in-process)",
            ("case:method-sys-exit", "case:method-os-exit", "case:method-keyboard-interrupt",
             "case:method-c-exit-isolated", "tests/unit/execute/test_child.py::test_an_isolated_distillation_equals_a_local_one",
             "case:plugin-import-sys-exit", "case:doctor-import-sys-exit",
             "tests/contracts/test_plugins.py::test_a_plugin_that_ends_the_process_at_import_is_a_failed_plugin_and_ddr_goes_on",
             "tests/contracts/test_plugins.py::test_a_users_ctrl_c_is_not_a_plugin_fault")),
    Promise("A method asked to stop stops: `--timeout` interrupts it even inside its own `except Exception`",
            ("case:method-timeout", f"{REL}::test_time_limit_interrupts_the_block_and_restores_the_previous_handler")),
    Promise("A count or size above a sane bound (students, IPC, epochs, distillation seeds, image side, suite "
            "runs) is refused before any work, naming the bound and the `DDR_MAX_*` variable that raises it",
            ("case:huge-num-eval",
             "tests/unit/protocol/test_bounds.py::test_a_count_above_its_bound_is_refused_before_any_work",
             "tests/unit/protocol/test_bounds.py::test_a_suite_that_expands_past_its_bound_is_refused_at_load",
             "tests/unit/protocol/test_bounds.py::test_an_image_size_above_its_bound_is_refused")),
    Promise("A Ray cluster that does not answer is a clear error within `connect_timeout` (30 s by default), "
            "never a hang; the local Ray ddr starts ends with ddr (exit, SIGTERM, `kill -9`); an option the "
            "chosen executor would ignore (`--address` with `local`) is refused before any work",
            ("tests/unit/execute/test_ray_lifecycle.py::test_a_cluster_nothing_listens_at_is_a_clear_error_not_a_hang",
             "tests/unit/execute/test_ray_lifecycle.py::"
             "test_a_cluster_that_never_answers_is_given_up_after_the_connect_timeout",
             "tests/unit/execute/test_ray_lifecycle.py::test_the_local_ray_ddr_starts_does_not_outlive_it",
             "tests/unit/execute/test_ray_lifecycle.py::"
             "test_an_option_the_executor_would_ignore_is_refused_before_any_work")),
    Promise("Memory does not grow over repeated runs in one process",
            (f"{REL}::test_twenty_runs_in_one_process_do_not_grow_memory",)),
    Promise("A result bundle (`ddr verify`, `ddr import`) never executes anything it holds: only JSON and "
            "safetensors are read (and a `.pt` teacher checkpoint by verify, with `weights_only`), a pickle posing "
            "as tensors or as the teacher is refused unrun; a bundle whose member does not match "
            "its manifest (one changed image byte, an edited accuracy), or that holds a missing, unexpected, unsafe "
            "(`..`, absolute, a link, a duplicate) or oversized member (a compression bomb), is refused with one "
            "line naming the member before any of it is used; a forged number whose manifest was re-sealed does "
            "not verify, because verify re-trains the students; bundles with members renamed, dropped, added, "
            "duplicated or damaged (property-based) give a result or that one-line refusal, and leave nothing behind",
            ("tests/unit/bundle/test_bundle_format.py::test_loading_a_bundle_never_executes_what_it_holds",
             "tests/e2e/test_bundles.py::test_a_teacher_checkpoint_travels_in_the_bundle_and_verify_uses_it",
             "tests/unit/bundle/test_bundle_format.py::"
             "test_a_changed_byte_in_the_set_or_a_record_is_refused_naming_the_member",
             "tests/unit/bundle/test_bundle_format.py::test_unexpected_missing_and_unsafe_members_are_refused",
             "tests/unit/bundle/test_bundle_format.py::"
             "test_oversized_members_and_compression_bombs_are_refused_before_they_are_read",
             "tests/e2e/test_bundles.py::test_a_tampered_bundle_is_refused_and_a_resealed_forgery_does_not_verify",
             "tests/unit/fuzz/test_fuzz_bundles.py::test_bundle_members",
             "tests/unit/fuzz/test_fuzz_bundles.py::test_bundle_bytes")),
]


def render_promises() -> str:
    lines = ["## What ddr promises", "", "| promise | held by |", "|---|---|"]
    for item in PROMISES:
        held = "<br>".join(f"`{t.removeprefix('case:')}` (table row)" if t.startswith("case:") else f"`{t}`"
                           for t in item.tests)
        lines.append(f"| {_cell(item.promise)} | {held} |")
    return "\n".join(lines) + "\n\n## What ddr was tried with\n\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(cases: list[Case] | None = None) -> str:
    """The markdown table of ``cases`` (default: every case)."""
    lines = ["| # | tried | message contains | exit | left on disk |", "|---|---|---|---|---|"]
    for number, case in enumerate(cases if cases is not None else CASES, start=1):
        command = "ddr " + " ".join(case.argv).replace(" ".join(FAST), "$FAST")
        tried = f"{case.tried}<br>`{_cell(command)}`"
        lines.append(f"| {number} | {_cell(tried)} | `{_cell(case.message)}` | {case.exit_code} | {_cell(case.left)} |")
    return "\n".join(lines) + "\n"


def render_doc() -> str:
    return TITLE + render_promises() + HEADER + render_table()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.write_text(render_doc(), encoding="utf-8")
        print(f"wrote {DOC} ({len(CASES)} cases)")
    else:
        sys.stdout.write(render_doc())
