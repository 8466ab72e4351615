"""Trajectory matching (mtt, datm) and its expert trajectories (ddr_methods._trajectory).

End-to-end runs use the CLI in a subprocess on digits IPC 1 with a small student (ConvNet depth 2,
width 16) so experts and unrolls are cheap; the digits ``reduced`` budget preset applies
automatically. Both runs share the session cache, so the experts are trained once.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ddr.errors import ArtifactError, DdrError

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("ddr_methods._trajectory", "ddr_methods.mtt", "ddr_methods.datm")
SMALL_NET = {"width": 16, "depth": 2}
EVAL_SETTINGS = ["--protocol", "digits", "--set", "train.epochs=100", "--set", "num_eval=2", "--set", "real.epochs=10",
                 "--set", "student.arch_params={width: 16, depth: 2}", "--no-progress", "--json"]


def _installed_modules() -> set[str]:
    return {ep.value.split(":")[0] for ep in md.entry_points(group="ddr")}


def _plugin_env(cache: Path | None = None, data: Path | None = None) -> dict[str, str]:
    """Environment for a ``python -m ddr`` subprocess that sees this checkout's plugins."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "plugins")]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    missing = [m for m in MODULES if m not in _installed_modules()]
    if missing:  # not installed as entry points (a development checkout): load them by module name
        env["DDR_PLUGINS"] = ",".join(missing)
    env["OMP_NUM_THREADS"] = "1"
    if cache is not None:
        env["DDR_CACHE_DIR"] = str(cache)
    if data is not None:
        env["DDR_DATA_DIR"] = str(data)
    return env


def _use_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "plugins"))
    missing = [m for m in MODULES if m not in _installed_modules()]
    if missing:
        monkeypatch.setenv("DDR_PLUGINS", ",".join(missing))


def _ddr(args: list[str], cwd: Path, cache: Path | None = None, timeout: int = 300,
         data: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddr", *args], cwd=cwd, env=_plugin_env(cache, data),
                          capture_output=True, text=True, timeout=timeout)


def _run_json(method: str, tmp: Path, *extra: str) -> dict[str, Any]:
    proc = _ddr(["run", "--method", method, "--ipc", "1", *EVAL_SETTINGS, *extra], cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _mean(record: dict[str, Any], metric: str) -> float:
    value = record["scores"][metric] if "scores" in record else record[metric]
    return float(value["mean"] if isinstance(value, dict) else value[0] if isinstance(value, list) else value)


# -- end to end: better than random real images --------------------------------------------------

@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_mtt_beats_random_on_digits(tmp_path: Path) -> None:
    record = _run_json("mtt.reduced", tmp_path)  # digits applies it by itself once budgets are wired
    syn, rdm = _mean(record, "acc_syn_hard"), _mean(record, "acc_rdm_any")
    assert record["method_params"]["num_experts"] == 2
    assert syn > rdm + 0.08, (syn, rdm)
    assert syn > 0.8


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_datm_beats_random_and_round_trips(tmp_path: Path) -> None:
    from ddr.store.formats import load_distilled, save_distilled

    saved = tmp_path / "datm-set"
    record = _run_json("datm.reduced", tmp_path, "--save-distilled", str(saved))
    syn, rdm = _mean(record, "acc_syn_any"), _mean(record, "acc_rdm_any")
    assert syn > rdm + 0.08, (syn, rdm)

    ds = load_distilled(saved)
    assert ds.label_strategy == "stored_soft"
    assert ds.soft_labels is not None and tuple(ds.soft_labels.shape) == (10, 10)
    assert ds.lr is not None and ds.lr > 0 and ds.lr != 0.01  # learned
    assert (ds.soft_labels.argmax(1) == ds.labels).float().mean() >= 0.8  # initialised from correct experts
    again = tmp_path / "again"
    save_distilled(ds, again)
    back = load_distilled(again)
    assert torch.equal(back.images, ds.images) and torch.equal(back.soft_labels, ds.soft_labels)
    assert back.lr == ds.lr and back.label_strategy == "stored_soft"


# -- in-process: a digits context with the small student --------------------------------------------

@pytest.fixture
def small_context() -> Any:
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator

    torch.set_num_threads(1)
    evaluator = Evaluator(dataset="digits", ipc=1, seed=0, device="cpu", arch="convnet", arch_params=SMALL_NET)

    def build(params: dict[str, Any], *, seed: int = 0, ipc: int = 1) -> Any:
        return build_context(evaluator.resources, ipc=ipc, seed=seed, params=params)

    return build


SMOKE = {"num_experts": 1, "expert_train_epochs": 3, "expert_augmentation": "none", "augmentation": "dsa.noflip",
         "iterations": 3, "syn_steps": 4, "expert_epochs": 1, "max_start_epoch": 2, "lr_img": 100.0}


def test_same_seed_same_images_and_checkpointing_is_exact(small_context: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr_methods._trajectory.matching import DATM, MTT

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    messages: list[str] = []
    a = MTT().distill(dataclasses.replace(small_context(dict(SMOKE)), log=messages.append))
    assert any("training 1 expert trajectories x 3 epochs" in m for m in messages), messages
    b = MTT().distill(small_context(dict(SMOKE)))
    assert torch.equal(a.images, b.images) and a.lr == b.lr
    c = MTT().distill(small_context({**SMOKE, "checkpoint_segments": 2}))
    assert torch.allclose(a.images, c.images, atol=1e-5) and abs(a.lr - c.lr) < 1e-7
    other = MTT().distill(small_context(dict(SMOKE), seed=1))
    assert not torch.equal(a.images, other.images)
    d1 = DATM().distill(small_context(dict(SMOKE)))
    d2 = DATM().distill(small_context(dict(SMOKE)))
    assert torch.equal(d1.images, d2.images) and torch.equal(d1.soft_labels, d2.soft_labels)
    assert d1.label_strategy == "stored_soft" and a.label_strategy == "hard"
    assert a.meta["iterations"] == 3 and a.meta["experts_source"] == "trained"


def test_unroll_matches_plain_sgd(small_context: Any) -> None:
    import torch.nn.functional as F

    from ddr_methods._trajectory.functional import FunctionalStudent, flat_parameters, unroll

    ctx = small_context({})
    model = ctx.make_model()
    student = FunctionalStudent(model)
    theta0 = flat_parameters(model)
    x, y = ctx.train.images[:8], ctx.train.labels[:8]
    assert torch.allclose(student(theta0, x), model(x), atol=1e-6)
    final = unroll(student, theta0, x, y, torch.tensor(0.1), steps=1, batch_size=8,
                   generator=torch.Generator().manual_seed(0))
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = theta0 - 0.1 * torch.cat([g.reshape(-1) for g in grads])
    assert torch.allclose(final.detach(), expected, atol=1e-5)


def test_batchnorm_students_are_refused() -> None:
    from ddr.engine.build import build_model, load_dataset
    from ddr_methods._trajectory.functional import FunctionalStudent

    model = build_model("convnet", load_dataset("digits"), params={**SMALL_NET, "norm": "batch"}, seed=0)
    with pytest.raises(DdrError, match="BatchNorm"):
        FunctionalStudent(model, "convnet")


# -- official buffers ---------------------------------------------------------------------------------

def _official_buffer(ctx: Any, folder: Path, experts: int = 2, epochs: int = 3) -> None:
    """An official-format buffer (list of experts of per-epoch lists of tensors) trained here."""
    import torch.nn.functional as F

    folder.mkdir(parents=True, exist_ok=True)
    buffer = []
    for e in range(experts):
        torch.manual_seed(e)
        model = ctx.make_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        timestamps = [[p.detach().clone() for p in model.parameters()]]
        for _ in range(epochs):
            order = torch.randperm(len(ctx.train))
            for start in range(0, len(order), 256):
                idx = order[start:start + 256]
                loss = F.cross_entropy(model(ctx.train.images[idx]), ctx.train.labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            timestamps.append([p.detach().clone() for p in model.parameters()])
        buffer.append(timestamps)
    torch.save(buffer, folder / "replay_buffer_0.pt")


def test_official_buffers_import_and_drive_mtt(small_context: Any, tmp_path: Path) -> None:
    from ddr_methods._trajectory.experts import import_buffers
    from ddr_methods._trajectory.matching import MTT

    ctx = small_context({})
    source = tmp_path / "buffers"
    _official_buffer(ctx, source)
    trajectories = import_buffers(source, ctx.make_model(), dataset="digits", arch="convnet")
    assert len(trajectories) == 2 and trajectories[0].epochs == 3
    first = torch.load(source / "replay_buffer_0.pt", weights_only=True)[1][2]
    assert torch.equal(trajectories[1].params(2), torch.cat([t.reshape(-1) for t in first]))

    params = {**SMOKE, "experts": str(source), "max_start_epoch": 2, "expert_epochs": 1, "iterations": 4}
    ds = MTT().distill(small_context(params))
    assert ds.meta["experts_source"] == "imported" and ds.meta["experts"] == 2
    assert torch.isfinite(ds.images).all() and ds.lr > 0
    init = MTT().distill(small_context({**params, "iterations": 0}))
    assert not torch.equal(init.images, ds.images)  # the imported trajectories moved the images


def test_buffer_of_another_architecture_is_refused(small_context: Any, tmp_path: Path) -> None:
    from ddr.engine.build import build_model, load_dataset
    from ddr_methods._trajectory.experts import import_buffers

    ctx = small_context({})
    source = tmp_path / "buffers"
    _official_buffer(ctx, source, experts=1, epochs=1)
    wider = build_model("convnet", load_dataset("digits"), params={"width": 32, "depth": 2}, seed=0)
    with pytest.raises(ArtifactError, match="shape"):
        import_buffers(source, wider, dataset="digits", arch="convnet")
    with pytest.raises(ArtifactError, match="replay_buffer"):
        import_buffers(tmp_path, wider)


def test_a_buffer_that_is_no_tensors_gets_the_distilled_set_loaders_messages(small_context: Any,
                                                                             tmp_path: Path) -> None:
    """Random bytes are "not a torch.save file (or truncated)", a pickled object is refused by
    name; never torch's raw message with its advice to load with ``weights_only=False``."""
    import os

    from ddr_methods._trajectory.experts import import_buffers

    ctx = small_context({})
    source = tmp_path / "buffers"
    source.mkdir()
    (source / "replay_buffer_0.pt").write_bytes(os.urandom(512))
    with pytest.raises(ArtifactError) as info:
        import_buffers(source, ctx.make_model(), dataset="digits", arch="convnet")
    assert str(info.value) == (f"cannot read {source / 'replay_buffer_0.pt'}: it is not a torch.save file (or it is "
                               "truncated); re-copy or re-export it")
    torch.save([[torch.nn.Linear(2, 2)]], source / "replay_buffer_0.pt")
    with pytest.raises(ArtifactError) as info:
        import_buffers(source, ctx.make_model(), dataset="digits", arch="convnet")
    text = str(info.value)
    assert "holds a Python object (torch.nn.modules.linear.Linear)" in text and "expert buffer" in text
    assert "weights_only" not in text and "\n" not in text


def test_import_cli(small_context: Any, tmp_path: Path) -> None:
    from ddr_methods._trajectory.matching import MTT

    ctx = small_context({})
    source = tmp_path / "buffers"
    _official_buffer(ctx, source, experts=1, epochs=2)
    # the CLI builds the protocol's student (digits: ConvNet width 64, depth 3) updated with --arch-params
    proc = _ddr(["experts", "import", str(source), "--arch-params", "{width: 16, depth: 2}", "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert record["experts"] == 1 and record["epochs"] == 2
    ds = MTT().distill(small_context({**SMOKE, "experts": record["folder"], "iterations": 2}))
    assert ds.meta["experts_source"] == "imported" and torch.isfinite(ds.images).all()


# -- no building on demand -----------------------------------------------------------------------------

def test_no_auto_assets_gives_the_command_that_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator
    from ddr_methods._trajectory.experts import experts_for

    cache = tmp_path / "cache"
    monkeypatch.setenv("DDR_CACHE_DIR", str(cache))
    torch.set_num_threads(1)
    evaluator = Evaluator(dataset="digits", ipc=1, seed=0, device="cpu")  # the protocol's student
    ctx = dataclasses.replace(build_context(evaluator.resources, ipc=1, seed=0, params={}), auto_assets=False)
    with pytest.raises(ArtifactError) as info:
        experts_for(ctx, num_experts=1, epochs=1, augmentation="none")
    message = str(info.value)
    command = "ddr experts train --dataset digits --arch convnet --num-experts 1 --epochs 1 --augmentation none"
    assert command in message
    assert not (cache / "experts").exists()

    proc = _ddr([*command.split()[1:], "--no-progress", "--json"], cwd=tmp_path, cache=cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["trained"] == 1
    experts = experts_for(ctx, num_experts=1, epochs=1, augmentation="none")  # found: no training, no error
    assert experts[0].epochs == 1
    assert not torch.equal(experts[0].params(0), experts[0].params(1))

    # in-process from here on (cheaper than more subprocesses): listing, and resuming trains nothing
    from ddr.cli.main import main

    _use_plugins(monkeypatch)
    capsys.readouterr()
    assert main(["experts", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["epochs"] == 1
    assert main([*command.split()[1:], "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trained"] == 0


def test_registration_modules_do_not_import_torch() -> None:
    code = ("import sys; import ddr_methods._trajectory, ddr_methods.mtt, ddr_methods.datm; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "print(len(ddr_methods.mtt.ddr_methods()[0].params), len(ddr_methods.datm.ddr_methods()[0].params))")
    proc = subprocess.run([sys.executable, "-c", code], env=_plugin_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- ZCA: experts, distillation and evaluation in ZCA space (CIFAR-10's on-disk format) ----------------

TINY_NET = "{width: 8, depth: 2}"


@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_zca_experts_mtt_and_evaluation_share_one_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.dataset_files import class_cifar10

    import ddr
    from ddr.builtins.datasets import zca as zca_module
    from ddr.engine.build import load_dataset
    from ddr.store.formats import load_distilled
    from ddr_methods._trajectory.experts import list_experts

    cache, data = tmp_path / "cache", tmp_path / "data"
    class_cifar10(data, train_per_class=12, test_per_class=3)  # 120 / 30 images; the pool keeps 2 per class
    experts = ["experts", "train", "--dataset", "cifar10", "--arch-params", TINY_NET, "--num-experts", "1",
               "--epochs", "3", "--no-progress", "--json"]
    records = {}
    for space, flags in (("zca", ["--zca"]), ("normalized", [])):
        proc = _ddr([*experts, *flags], cwd=tmp_path, cache=cache, data=data)
        assert proc.returncode == 0, proc.stderr[-2000:]
        records[space] = json.loads(proc.stdout)
        assert records[space]["trained"] == 1  # the ZCA experts do not stand in for the plain ones, nor back
    assert records["zca"]["folders"] != records["normalized"]["folders"]
    monkeypatch.setenv("DDR_CACHE_DIR", str(cache))
    monkeypatch.setenv("DDR_DATA_DIR", str(data))
    assert sorted(r["pixel_space"] for r in list_experts()) == ["normalized", "zca"]

    saved = tmp_path / "mtt-zca"
    overrides = {"student.arch_params": {"width": 8, "depth": 2}, "train.epochs": 5, "num_eval": 1, "real.epochs": 2}
    settings = [arg for key, value in overrides.items()
                for arg in ("--set", f"{key}={TINY_NET if isinstance(value, dict) else value}")]
    method = ["--set", "method.num_experts=1", "--set", "method.expert_train_epochs=3", "--set", "method.iterations=3",
              "--set", "method.syn_steps=3", "--set", "method.expert_epochs=1", "--set", "method.max_start_epoch=2"]
    # no --zca: MTT's recipe for CIFAR-10 IPC 1 whitens (its table's ZCA column); --no-auto-assets:
    # the run must find the ZCA experts `ddr experts train --zca` made
    proc = _ddr(["run", "--method", "mtt", "--dataset", "cifar10", "--ipc", "1", "--no-auto-assets",
                 *settings, *method, "--save-distilled", str(saved), "--no-progress", "--json"],
                cwd=tmp_path, cache=cache, data=data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mtt: the authors' 'cifar10 IPC 1' recipe for cifar10 IPC 1 (ZCA on)" in proc.stderr
    record = json.loads(proc.stdout)
    assert record["run_spec"]["zca"] is True and record["run_spec"]["recipe"]["name"] == "cifar10 IPC 1"
    for metric in ("acc_real_hard", "acc_syn_hard", "acc_rdm_any", "ddrs"):
        assert all(0.0 <= v <= 1.0 for v in record[metric]["values"]), (metric, record[metric])
    distilled = load_distilled(saved)
    assert distilled.pixel_space == "zca" and tuple(distilled.images.shape) == (10, 3, 32, 32)
    assert torch.isfinite(distilled.images).all() and distilled.lr is not None and distilled.lr > 0

    # one fit for the three processes that whitened (ZCA experts, the run's distillation and evaluation)
    fits = list((cache / "zca").glob("cifar10-*.safetensors"))
    assert len(fits) == 1
    monkeypatch.setattr(zca_module, "fit_zca", lambda *a, **k: pytest.fail("ZCA refit instead of the cached fit"))
    _use_plugins(monkeypatch)
    plain, white = load_dataset("cifar10"), load_dataset("cifar10", zca=True)
    fit = zca_module.ZCA.load(fits[0])
    assert white.preprocess["zca"]["key"].startswith(fits[0].stem.split("-")[1])
    whitened, normalised = white.test.images, plain.test.images
    assert whitened is not None and normalised is not None
    # the real test data as 0..1 pixels (MTT's ToTensor() images), whitened by that fit
    pixels = normalised * torch.tensor(plain.std).view(1, -1, 1, 1) + torch.tensor(plain.mean).view(1, -1, 1, 1)
    assert torch.allclose(whitened, fit.apply(pixels), atol=1e-5)
    assert torch.allclose(fit.inverse(whitened), pixels, atol=1e-4)
    assert not torch.allclose(whitened, normalised, atol=1e-2)

    # evaluated again in-process: every student job (keyed by the ZCA fit) is the run's; without --zca, refused
    torch.set_num_threads(1)
    again = ddr.evaluate(saved, dataset="cifar10", ipc=1, protocol="hard", zca=True, overrides=overrides, device="cpu")
    assert again.reused == {"real": 1, "syn_hard": 1, "rdm_any": 1}, again.reused  # (hard labels: syn_any is syn_hard)
    assert again.to_json()["acc_syn_hard"]["values"] == record["acc_syn_hard"]["values"]
    with pytest.raises(DdrError, match="--zca"):
        ddr.evaluate(saved, dataset="cifar10", ipc=1, protocol="hard", overrides=overrides, device="cpu")


# -- datasets that stream from disk (an ImageNet subset in its ImageFolder layout) ----------------------

def test_experts_mtt_and_datm_on_a_streamed_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.dataset_files import write_imagenet

    from ddr.builtins.datasets.images import ImageFileSource
    from ddr.runs.distill import build_context
    from ddr.runs.evaluate import Evaluator
    from ddr_methods._trajectory.experts import experts_for
    from ddr_methods._trajectory.matching import DATM, MTT

    wnids = ["n01440764", "n02102040", "n02979186"]
    write_imagenet(tmp_path / "data", wnids, per_class=12, val_per_class=2)
    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DDR_DATA_DIR", str(tmp_path / "data"))
    torch.set_num_threads(1)
    evaluator = Evaluator(dataset="imagenet-subset:" + ",".join(wnids), ipc=1, seed=0, device="cpu", arch="convnet",
                          arch_params={"width": 8, "depth": 2})
    params = {**SMOKE, "expert_augmentation": "dsa", "syn_steps": 2, "iterations": 2}
    ctx = build_context(evaluator.resources, ipc=1, seed=0, params=params)
    assert not ctx.train.in_memory and len(ctx.train) == 6 and ctx.dataset.image_size == (128, 128)

    trajectories = experts_for(ctx, num_experts=1, epochs=3, augmentation="dsa")  # the shared loop, via a DataLoader
    assert trajectories[0].epochs == 3 and not torch.equal(trajectories[0].params(0), trajectories[0].params(3))
    # DATM's GSAM experts (its default) stream through their own loop's DataLoader too; trained here, before
    # the decode count below, which is about what DATM's initialisation decodes
    gsam = experts_for(ctx, num_experts=1, epochs=3, augmentation="dsa", optimizer="gsam")
    assert gsam[0].epochs == 3 and gsam[0].path != trajectories[0].path
    assert torch.isfinite(gsam[0].params(3)).all() and not torch.equal(gsam[0].params(3), trajectories[0].params(3))
    decoded: list[int] = []
    original = ImageFileSource.__getitem__

    def counting(self: Any, index: int) -> Any:
        decoded.append(index)
        return original(self, index)

    monkeypatch.setattr(ImageFileSource, "__getitem__", counting)
    mtt = MTT().distill(ctx)
    assert len(decoded) == 3  # ipc images per class, drawn by index: nothing else is decoded
    assert mtt.meta["experts_source"] == "trained" and tuple(mtt.images.shape) == (3, 3, 128, 128)
    assert torch.isfinite(mtt.images).all()
    datm = DATM().distill(build_context(evaluator.resources, ipc=1, seed=0, params=params))
    assert datm.meta["expert_optimizer"] == "gsam" and mtt.meta["expert_optimizer"] == "sgd"
    assert datm.soft_labels is not None and tuple(datm.soft_labels.shape) == (3, 3)
    assert torch.isfinite(datm.images).all() and torch.isfinite(datm.soft_labels).all()
    assert len(decoded) <= 3 + 6  # DATM looks at no more than each class's pool images


# -- DATM's defaults: its official configs ----------------------------------------------------------------

def test_datm_table_pins_the_official_configs() -> None:
    from ddr_methods._trajectory.defaults import table_value
    from ddr_methods.datm import datm_params

    def datm(dataset: str, ipc: int, key: str) -> Any:
        return table_value(dataset, ipc, key, "datm")

    # NUS-HPC-AI-Lab/DATM configs/CIFAR-10/ConvIN/IPC1.yaml: Sequential_Generation False, threshold 1.1
    assert [datm("cifar10", 1, k) for k in ("syn_steps", "expert_epochs", "max_start_epoch", "lr_img", "lr_lr",
                                             "batch_syn", "lr_y", "threshold")] == [80, 2, 4, 100, 1e-07, 10, 5.0, 1.1]
    assert datm("cifar10", 1, "current_max_start_epoch") == 4  # a fixed window
    # configs/CIFAR-10/ConvIN/IPC10.yaml: the window grows 10 -> 20 over 1000 iterations
    assert [datm("cifar10", 10, k) for k in ("min_start_epoch", "current_max_start_epoch", "max_start_epoch",
                                              "expansion_end_epoch", "lr_y", "batch_syn")] == [0, 10, 20, 1000, 2.0, 100]
    # configs/CIFAR-100/ConvIN/IPC1.yaml and IPC50.yaml (pix_init real, min_start_epoch 20)
    assert [datm("cifar100", 1, k) for k in ("syn_steps", "expert_epochs", "lr_y")] == [40, 3, 10.0]
    assert [datm("cifar100", 50, k) for k in ("min_start_epoch", "max_start_epoch", "init")] == [20, 70, "real"]
    # configs/TinyImageNet/ConvIN/IPC10.yaml: lr_img 100 (MTT's table: 10000), start epochs 10..50
    assert [datm("tinyimagenet", 10, k) for k in ("lr_img", "min_start_epoch", "max_start_epoch")] == [100, 10, 50]
    assert table_value("tinyimagenet", 10, "lr_img") == 10000  # MTT keeps its own table
    assert all(datm(d, i, "iterations") == 10000 for d in ("cifar10", "cifar100", "tinyimagenet") for i in (1, 10, 50))
    # MTT's row as DD-Ranking's methods/MTT/readme.md gives it (CIFAR-100 IPC 1 is also MTT's readme command)
    assert [table_value("cifar100", 1, k) for k in ("syn_steps", "expert_epochs", "max_start_epoch", "lr_img",
                                                     "lr_lr", "lr_teacher")] == [20, 3, 20, 1000, 1e-05, 0.01]
    defaults = {spec.name: spec.default for spec in datm_params()}
    assert defaults["expert_train_epochs"] == 100 and defaults["momentum_y"] == 0.9 and defaults["iterations"] is None


def test_datm_resolves_its_table_and_skips_updates_above_the_threshold(small_context: Any, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr_methods._trajectory.matching import DATM

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "cache"))
    params = {**SMOKE, "current_max_start_epoch": None, "min_start_epoch": None}
    kept = DATM().distill(small_context(dict(params)))
    assert kept.meta["resolved"]["threshold"] == 1.0 and kept.meta["resolved"]["init"] == "correct"
    assert kept.meta["resolved"]["current_max_start_epoch"] is None  # digits has no row: a fixed window
    frozen = DATM().distill(small_context({**params, "threshold": 0.0}))  # every loss exceeds 0: nothing moves
    init = DATM().distill(small_context({**params, "iterations": 0}))
    assert frozen.meta["skipped_iterations"] == 3
    assert torch.equal(frozen.images, init.images) and torch.equal(frozen.soft_labels, init.soft_labels)
    assert frozen.lr == init.lr and not torch.equal(kept.images, init.images)
