"""`ddr eval`, `ddr run`, `ddr show` and `ddr teacher train` as a user runs them (subprocesses).

Every command runs on digits with 1 student of 3 epochs and a 1-epoch real-data reference; the
cache directory is shared by the tests of this module, so that reference is trained once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ddr.method.distilled import DistilledSet
from ddr.store.formats import save_distilled

FAST = ["--num-eval", "1", "--epochs", "3", "--set", "real.epochs=1", "--no-progress", "--json"]
SCORE_KEYS = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
VARYING = ("eval_seconds", "real_cached", "reused_jobs", "record_dir", "distill_seconds", "distill_cached",
           "distill_peak_memory_bytes", "cost")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture
def ddr(ddr_cli: Any, cache: Path) -> Any:
    """``ddr(*args)``: run ``python -m ddr ARGS`` with the module's cache directory."""
    def run(*args: str, timeout: float = 300) -> Any:
        return ddr_cli(*[str(a) for a in args], env={"DDR_CACHE_DIR": str(cache)}, timeout=timeout)

    return run


@pytest.fixture(scope="module")
def digits_set(cache: Path) -> dict[str, Any]:
    """One real pool image per digits class (normalised), plus the dataset's mean and std."""
    import os

    from ddr.runs.evaluate import Evaluator

    previous = os.environ.get("DDR_CACHE_DIR")
    os.environ["DDR_CACHE_DIR"] = str(cache)
    try:
        evaluator = Evaluator(dataset="digits", ipc=1, device="cpu")
        pool = evaluator.resources.pool
        index = torch.cat([idx[:1] for idx in pool.class_indices(10)])
        return {"images": pool.images[index].clone(), "labels": pool.labels[index].clone(),
                "mean": evaluator.resources.dataset.mean, "std": evaluator.resources.dataset.std}
    finally:
        if previous is not None:
            os.environ["DDR_CACHE_DIR"] = previous


def one_json(proc: Any) -> dict[str, Any]:
    """stdout must be exactly one JSON object."""
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def check_result(data: dict[str, Any]) -> None:
    for key in SCORE_KEYS:
        assert {"mean", "std", "values"} <= set(data[key]), key
        assert len(data[key]["values"]) == 1
    for key in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "ddrs"):
        assert 0.0 <= data[key]["mean"] <= 1.0, key
    assert data["hlr"]["mean"] == pytest.approx(data["acc_real_hard"]["mean"] - data["acc_syn_hard"]["mean"])
    assert data["ior"]["mean"] == pytest.approx(data["acc_syn_any"]["mean"] - data["acc_rdm_any"]["mean"])
    alpha = 0.5 * data["ior"]["mean"] - 0.5 * data["hlr"]["mean"]
    assert data["ddrs"]["mean"] == pytest.approx((math.exp(alpha) - math.exp(-1)) / (math.e - math.exp(-1)))
    assert data["protocol"] == "digits" and data["protocol_version"] == "1" and data["seed"] == 0
    assert data["test_set_selection"] is False
    assert len(data["distilled_sha256"]) == 64


def without_varying(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without timings, cache hits and the evaluated path (which names the input)."""
    out = {k: v for k, v in data.items() if k not in VARYING}
    out["run_spec"] = {k: v for k, v in data["run_spec"].items() if k != "source"}
    return out


# -- formats ---------------------------------------------------------------------------------------

@pytest.mark.slow  # the default suite's time budget (issue: ~12 min on 2 cores); CI runs it under -m slow
def test_ddr_and_ddranking_layouts_give_the_same_json_and_records(ddr: Any, digits_set: dict, tmp_path: Path) -> None:
    images, labels = digits_set["images"], digits_set["labels"]
    lr = torch.tensor(0.01)  # DD-Ranking stores a float32 tensor: the ddr set gets that exact value
    save_distilled(DistilledSet(images=images, labels=labels, lr=float(lr)), tmp_path / "ddr-set")
    ranking = tmp_path / "ddranking-set"
    ranking.mkdir()
    torch.save(images, ranking / "images.pt")
    torch.save(labels, ranking / "labels.pt")
    torch.save(lr, ranking / "lr.pt")

    out = tmp_path / "records"
    first = one_json(ddr("eval", tmp_path / "ddr-set", *FAST, "--out", out))
    second = one_json(ddr("eval", ranking, *FAST))
    check_result(first)
    assert first["distilled_sha256"] == second["distilled_sha256"]
    assert second["real_cached"] is True  # trained by the first command, reused by the second
    assert without_varying(first) == without_varying(second)  # same seed, same tensors: same numbers

    # --out: the three record files
    record = Path(first["record_dir"])  # one hashed directory per distinct run, under --out
    assert record.parent == out.resolve() and record.name.startswith("eval-digits-ipc1-seed0-")
    spec = json.loads((record / "run_spec.json").read_text())
    assert spec["dataset"] == "digits" and spec["ipc"] == 1 and spec["seed"] == 0
    assert spec["protocol_config"]["train"]["epochs"] == 3 and spec["protocol_config"]["real"]["epochs"] == 1
    metrics = json.loads((record / "metrics.json").read_text())
    assert metrics["acc_syn_hard"] == first["acc_syn_hard"]
    assert [s["role"] for s in metrics["students"]] == ["syn_hard", "rdm_any"]
    for student in metrics["students"]:
        assert {"accuracy", "lr", "epochs_trained", "seconds", "seed"} <= set(student)
        assert student["epochs_trained"] == 3 and 0.0 <= student["accuracy"] <= 1.0
    assert metrics["students"][0]["lr"] == float(lr)  # the set's stored lr
    assert metrics["students"][0]["accuracy"] == first["acc_syn_hard"]["values"][0]
    env = json.loads((record / "env.json").read_text())
    assert env and isinstance(env, dict)

    # ddr show prints the stored metrics
    shown = ddr("show", record)
    assert shown.returncode == 0, shown.stderr
    assert f"acc syn (hard) ↑                      {first['acc_syn_hard']['mean']:.4f} (n=1)" in shown.stdout
    assert f"DDRS (LRS) ↑                          {first['ddrs']['mean']:.4f} (n=1)" in shown.stdout
    assert "· digits · IPC 1 · digits v1 + num_eval=1, real.epochs=1, train.epochs=3" in shown.stdout
    assert "seed 0, 1 student per accuracy" in shown.stdout
    assert json.loads(ddr("show", record, "--json").stdout)["metrics"]["seed"] == 0


def test_class_folder_png_tree(ddr: Any, digits_set: dict, tmp_path: Path) -> None:
    from PIL import Image

    mean, std = digits_set["mean"][0], digits_set["std"][0]
    root = tmp_path / "png-set"
    for image, label in zip(digits_set["images"], digits_set["labels"].tolist()):
        pixels = (image[0] * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
        folder = root / str(label)
        folder.mkdir(parents=True)
        Image.fromarray(np.ascontiguousarray(pixels), mode="L").save(folder / "0.png")
    data = one_json(ddr("eval", root, *FAST))
    check_result(data)
    assert data["run_spec"]["ipc"] == 1


# -- bad input ---------------------------------------------------------------------------------------

def _nan_folder(tmp_path: Path, digits_set: dict) -> Path:
    folder = tmp_path / "nan-set"
    folder.mkdir()
    images = digits_set["images"].clone()
    images[2, 0, 3, 3] = float("nan")
    torch.save(images, folder / "images.pt")
    torch.save(digits_set["labels"], folder / "labels.pt")
    return folder


@pytest.mark.parametrize("case", ["wrong_ipc", "nan_images", "missing_path"])
def test_bad_input_exits_2_with_one_error_line(case: str, ddr: Any, digits_set: dict, tmp_path: Path) -> None:
    if case == "wrong_ipc":
        save_distilled(DistilledSet(images=digits_set["images"], labels=digits_set["labels"]), tmp_path / "set")
        proc = ddr("eval", tmp_path / "set", "--ipc", "2", *FAST)
        fragment = "ipc=2"
    elif case == "nan_images":
        proc = ddr("eval", _nan_folder(tmp_path, digits_set), *FAST)
        fragment = "NaN"
    else:
        proc = ddr("eval", tmp_path / "absent", *FAST)
        fragment = "does not exist"
    assert proc.returncode == 2
    assert proc.stderr.startswith("ddr: error:"), proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


# -- teacher -------------------------------------------------------------------------------------

def test_teacher_train_writes_a_checkpoint_that_loads_as_a_teacher(ddr: Any, tmp_path: Path, cache: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    from ddr.runs.evaluate import Evaluator

    protocol = tmp_path / "tiny.yaml"
    protocol.write_text("name: tiny\nversion: 1\ninclude: ddr.builtins.protocols:_base.yaml\n"
                        "student: {arch: convnet, arch_params: {width: 16}}\n"
                        "real: {epochs: 1, augmentation: []}\n")
    output = tmp_path / "teachers" / "tiny.safetensors"
    proc = ddr("teacher", "train", "--dataset", "digits", "--protocol", protocol, "--output", output, "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["dataset"] == "digits" and record["arch"] == "convnet"
    assert record["cached"] is False and 0.0 <= record["accuracy"] <= 1.0
    assert record["checkpoint"] == str(output)
    assert load_file(str(output))["classifier.weight"].shape == (10, 16 * 2 * 2)

    monkeypatch.setenv("DDR_CACHE_DIR", str(cache))
    (teacher,) = Evaluator(dataset="digits", ipc=1, protocol=str(protocol), teacher=output,
                           device="cpu").resources.teachers()
    assert torch.equal(teacher.classifier.weight, load_file(str(output))["classifier.weight"])


# -- ddr run ---------------------------------------------------------------------------------------

def test_run_random_end_to_end_then_from_the_cache(ddr: Any, tmp_path: Path) -> None:
    args = ("run", "--method", "random", *FAST)
    first = ddr(*args)
    data = one_json(first)
    check_result(data)
    assert data["method"] == "random" and isinstance(data["method_params"], dict)
    assert data["distill_seconds"] >= 0 and data["distill_cached"] is False
    assert "skipping distillation" not in first.stderr
    record = Path(data["record_dir"])  # absolute
    assert record.parent == (tmp_path / "ddr-runs").resolve() and record.name.startswith("random-digits-ipc1-seed0-")
    assert json.loads((record / "metrics.json").read_text())["method"] == "random"

    second = ddr(*args)
    again = one_json(second)
    assert "skipping distillation" in second.stderr
    assert again["distill_cached"] is True and again["real_cached"] is True
    assert again["distilled_sha256"] == data["distilled_sha256"]
    for key in SCORE_KEYS:
        assert again[key]["values"] == data[key]["values"], key
    assert without_varying(again) == without_varying(data)
