"""The evaluation protocol through the Python API (ddr.runs.evaluate.Evaluator / evaluate()).

Everything runs on the embedded digits dataset (16x16 grey, 10 classes) with tiny settings:
1-2 students, a few epochs, the real-data reference trained for 1 epoch (and cached in a
per-module cache directory, so it is trained once per architecture/protocol).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

import ddr.engine.training as training_module
from ddr.errors import ArtifactError, DdrError, DistilledSetError
from ddr.method.distilled import DistilledSet, distilled_sha256
from ddr.runs.evaluate import Evaluator, evaluate
from ddr.store.jobs import cached_record

SCORE_KEYS = ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs")
TIMING_KEYS = ("eval_seconds", "real_cached", "reused_jobs", "record_dir")
FAST = {"real.epochs": 1}


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(autouse=True)
def _cache(module_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test of this module shares one cache (real-data models are trained once)."""
    monkeypatch.setenv("DDR_CACHE_DIR", str(module_cache))
    torch.set_num_threads(1)
    return module_cache


def make_evaluator(ipc: int = 2, *, num_eval: int = 2, epochs: int = 5, overrides: dict | None = None,
                   **options: Any) -> Evaluator:
    return Evaluator(dataset="digits", ipc=ipc, num_eval=num_eval, epochs=epochs,
                     overrides={**FAST, **(overrides or {})}, device="cpu", **options)


def real_subset(evaluator: Evaluator, ipc: int) -> DistilledSet:
    """The first ``ipc`` pool images of every class (a 'distilled' set of real images)."""
    pool = evaluator.resources.pool
    index = torch.cat([idx[:ipc] for idx in pool.class_indices(10)])
    return DistilledSet(images=pool.images[index].clone(), labels=pool.labels[index].clone())


def stable(result: Any) -> dict[str, Any]:
    """The metrics record without what legitimately differs between identical runs (timings, cache hits)."""
    record = result.metrics_record()
    for key in TIMING_KEYS:
        record.pop(key, None)
    for student in [*record["students"], record["reference"]]:
        for key in ("seconds", "peak_memory_bytes", "cached"):
            student.pop(key)
    return record


def by_role(result: Any, role: str) -> list[Any]:
    return [s for s in result.students if s.role == role]


# -- the result --------------------------------------------------------------------------------

def test_result_has_every_documented_key_and_consistent_scores() -> None:
    evaluator = make_evaluator()
    distilled = real_subset(evaluator, 2)
    cached_before = cached_record(evaluator.resources.reference().key, needs_model=True) is not None
    result = evaluator.evaluate(distilled)
    data = result.to_json()

    for key in SCORE_KEYS:
        assert set(data[key]) >= {"mean", "std", "values"}, key
    assert data["protocol"] == "digits" and data["protocol_version"] == "1" and data["seed"] == 0
    assert data["test_set_selection"] is False
    assert data["distilled_sha256"] == distilled_sha256(distilled)
    assert data["real_cached"] is cached_before and data["eval_seconds"] > 0
    assert data["reused_jobs"].get("real", 0) == int(cached_before)
    assert data["run_spec"]["dataset"] == "digits" and data["run_spec"]["ipc"] == 2
    assert data["run_spec"]["label_strategy"] == "hard"
    assert data["run_spec"]["protocol_config"]["train"]["epochs"] == 5  # the override is recorded
    assert "ars" not in data

    for key in ("acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "ddrs"):
        assert all(0.0 <= v <= 1.0 for v in data[key]["values"]), key
    for key in SCORE_KEYS[1:]:
        assert data[key]["n"] == 2 and len(data[key]["values"]) == 2, key
    assert data["acc_real_hard"]["n"] == 1  # trained once, cached

    real = data["acc_real_hard"]["values"][0]
    syn_hard, syn_any, rdm = (data[k]["values"] for k in ("acc_syn_hard", "acc_syn_any", "acc_rdm_any"))
    for i in range(2):
        assert data["hlr"]["values"][i] == pytest.approx(real - syn_hard[i], abs=1e-12)
        assert data["ior"]["values"][i] == pytest.approx(syn_any[i] - rdm[i], abs=1e-12)
        alpha = 0.5 * data["ior"]["values"][i] - 0.5 * data["hlr"]["values"][i]
        expected = (math.exp(alpha) - math.exp(-1)) / (math.e - math.exp(-1))
        assert data["ddrs"]["values"][i] == pytest.approx(expected, abs=1e-12)
    for key in SCORE_KEYS[1:]:
        values = data[key]["values"]
        assert data[key]["mean"] == pytest.approx(sum(values) / 2)
        assert data[key]["std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))  # ddof=1

    # the test split has 599 images: every accuracy is a multiple of 1/599
    assert all(abs(v * 599 - round(v * 599)) < 1e-9 for v in syn_hard + rdm)
    # hard labels and the same augmentation for syn_hard and syn_any: one student serves both
    assert syn_any == syn_hard
    assert [s.role for s in result.students] == ["syn_hard", "rdm_any"] * 2
    for student in result.students:
        assert student.epochs_trained == 5 and student.lr == 0.01 and student.selection == {}
    assert len({s.seed for s in result.students}) == 4  # every student has its own derived seed
    assert result.acc_syn_hard.values == syn_hard  # scores are attributes too


def test_same_seed_reproduces_the_result_and_the_real_accuracy_is_cached(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_evaluator(num_eval=1, epochs=3)
    distilled = real_subset(first, 2)
    a = first.evaluate(distilled)
    second = make_evaluator(num_eval=1, epochs=3)  # fresh evaluator, same cache
    b = second.evaluate(distilled)
    assert b.real_cached is True
    assert b.acc_real_hard.values == a.acc_real_hard.values
    assert stable(a) == stable(b)

    monkeypatch.setenv("DDR_CACHE_DIR", str(tmp_path / "fresh-cache"))  # retrained from scratch: same numbers
    c = make_evaluator(num_eval=1, epochs=3).evaluate(distilled)
    assert c.real_cached is False
    assert stable(c) == stable(a)
    assert (tmp_path / "fresh-cache" / "jobs").is_dir()


def test_a_different_seed_gives_different_students_and_random_subsets() -> None:
    zero, one = make_evaluator(num_eval=1, epochs=3), make_evaluator(num_eval=1, epochs=3, seed=1)
    distilled = real_subset(zero, 2)
    a, b = zero.evaluate(distilled), one.evaluate(distilled)
    assert b.seed == 1 and b.to_json()["seed"] == 1
    assert {s.seed for s in a.students}.isdisjoint({s.seed for s in b.students})
    assert not torch.equal(zero.workspace.random_subset(0).images, one.workspace.random_subset(0).images)
    assert torch.equal(zero.workspace.random_subset(0).images, zero.workspace.random_subset(0).images)
    assert (a.acc_syn_hard.values, a.acc_rdm_any.values) != (b.acc_syn_hard.values, b.acc_rdm_any.values)


def test_the_random_baseline_is_class_balanced_from_the_pool_and_not_the_validation_split() -> None:
    evaluator = make_evaluator(ipc=3)
    subset = evaluator.workspace.random_subset(0)
    assert torch.bincount(subset.labels, minlength=10).tolist() == [3] * 10
    assert len(evaluator.resources.validation) == 10 * 10  # digits protocol: 10 per class held out
    assert len(evaluator.resources.pool) + len(evaluator.resources.validation) == len(evaluator.resources.dataset.train)
    pool_rows = {tuple(row.tolist()) for row in evaluator.resources.pool.images.flatten(1)}
    assert all(tuple(row.tolist()) in pool_rows for row in subset.images.flatten(1))


# -- selection ----------------------------------------------------------------------------------

def test_ddranking_selection_is_best_on_test_and_marked() -> None:
    evaluator = make_evaluator(num_eval=1, epochs=3,
                               overrides={"selection": "ddranking", "lr_grid": [0.01, 0.05], "test_interval": 2})
    result = evaluator.evaluate(real_subset(evaluator, 2))
    assert result.test_set_selection is True and result.to_json()["test_set_selection"] is True
    for student in result.students:
        info = student.selection
        assert info["mode"] == "ddranking" and info["best_on_test"] is True
        assert set(info["scores_by_lr"]) == {"0.01", "0.05"}
        assert info["chosen_lr"] in (0.01, 0.05) and student.lr == info["chosen_lr"]
        assert info["scores_by_lr"][repr(info["chosen_lr"])] == max(info["scores_by_lr"].values())
        assert student.accuracy == max(info["scores_by_lr"].values())  # the best test accuracy is reported


def test_validation_selection_picks_the_lr_on_the_validation_split() -> None:
    evaluator = make_evaluator(num_eval=1, epochs=3, overrides={"selection": "validation", "lr_grid": [0.001, 0.05]})
    result = evaluator.evaluate(real_subset(evaluator, 2))
    assert result.test_set_selection is False
    for student in result.students:
        info = student.selection
        assert info["mode"] == "validation" and "best_on_test" not in info
        assert set(info["scores_by_lr"]) == {"0.001", "0.05"}
        assert info["scores_by_lr"][repr(info["chosen_lr"])] == max(info["scores_by_lr"].values())
        assert all(abs(v * 100 - round(v * 100)) < 1e-9 for v in info["scores_by_lr"].values())  # 100 val images
        assert 0.0 <= student.accuracy <= 1.0 and student.lr == info["chosen_lr"]


def test_a_learned_lr_is_used_as_is_and_the_random_baseline_searches() -> None:
    evaluator = make_evaluator(ipc=1, num_eval=1, epochs=2,
                               overrides={"selection": "validation", "lr_grid": [0.001, 0.05]})
    distilled = real_subset(evaluator, 1)
    distilled.lr = 0.02
    result = evaluator.evaluate(distilled)
    syn, rdm = by_role(result, "syn_hard")[0], by_role(result, "rdm_any")[0]
    assert syn.lr == 0.02 and syn.selection == {}
    assert rdm.selection["mode"] == "validation" and rdm.lr in (0.001, 0.05)


# -- ARS -----------------------------------------------------------------------------------------

def test_ars_adds_a_score_in_the_unit_interval() -> None:
    evaluator = make_evaluator(ipc=1, num_eval=1, epochs=2, ars=True)
    result = evaluator.evaluate(real_subset(evaluator, 1))
    data = result.to_json()
    assert 0.0 <= data["ars"]["mean"] <= 1.0
    details = data["ars_details"]
    with_aug = data["acc_syn_any"]["values"][0] - data["acc_rdm_any"]["values"][0]
    without = details["acc_syn_noaug"]["values"][0] - details["acc_rdm_noaug"]["values"][0]
    beta = 0.5 * with_aug + 0.5 * without
    assert data["ars"]["values"][0] == pytest.approx((math.exp(beta) - math.exp(-1)) / (math.e - math.exp(-1)))
    assert {s.role for s in result.students} == {"syn_hard", "rdm_any", "syn_noaug", "rdm_noaug"}


# -- soft labels and teachers ----------------------------------------------------------------------

SOFT_FAST = {"train.epochs": 2, "real.epochs": 1, "student.arch_params": {"width": 16}}


def test_teacher_labels_under_the_soft_protocol_use_the_cached_real_model() -> None:
    from safetensors.torch import load_file

    from ddr.store.jobs import model_path

    evaluator = Evaluator(dataset="digits", ipc=1, protocol="soft", num_eval=1, overrides=SOFT_FAST, device="cpu")
    result = evaluator.evaluate(real_subset(evaluator, 1))
    assert result.protocol == "soft"
    assert result.run_spec["label_strategy"] == "teacher"
    assert result.run_spec["loss"] == {"name": "kl", "temperature": 4.0}
    assert [s.role for s in result.students] == ["syn_hard", "syn_any", "rdm_any"]
    assert all(s.epochs_trained == 2 and s.lr == 0.001 for s in result.students)
    (teacher,) = evaluator.resources.teachers()
    cached = load_file(str(model_path(evaluator.resources.reference().key)))
    state = teacher.state_dict()
    assert set(state) == set(cached)
    assert all(torch.equal(state[k].cpu(), cached[k]) for k in cached)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert teacher.classifier.in_features == 16 * 2 * 2  # the width-16 student architecture


def _digits_convnet(evaluator: Evaluator, **params: Any) -> torch.nn.Module:
    arch, default = evaluator.resources.teacher_arch()
    return evaluator.resources.make_model(123, arch, {**default, **params})


def _assert_same_weights(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    expected = reference.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_a_user_teacher_checkpoint_is_loaded_from_pt_and_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    reference = _digits_convnet(make_evaluator())
    state = reference.state_dict()
    torch.save(state, tmp_path / "teacher.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "teacher.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    for name in ("teacher.pt", "teacher.safetensors", "wrapped.pth"):
        evaluator = make_evaluator(teacher=tmp_path / name)
        (teacher,) = evaluator.resources.teachers()
        _assert_same_weights(teacher, reference)
        assert not teacher.training
        assert not evaluator.resources._workspaces  # a user teacher never trains the real-data model
        assert evaluator.describe()["teacher"] == str(tmp_path / name)


def test_bad_teacher_checkpoints_are_artifact_errors(tmp_path: Path) -> None:
    evaluator = make_evaluator()
    torch.save(_digits_convnet(evaluator, width=8).state_dict(), tmp_path / "narrow.pt")
    with pytest.raises(ArtifactError, match="does not fit the teacher architecture"):
        make_evaluator(teacher=tmp_path / "narrow.pt").resources.teachers()
    torch.save(_digits_convnet(evaluator), tmp_path / "pickled_module.pt")  # a whole module: needs unpickling
    with pytest.raises(ArtifactError, match="refusing to unpickle"):
        make_evaluator(teacher=tmp_path / "pickled_module.pt").resources.teachers()
    with pytest.raises(ArtifactError, match="not found"):
        make_evaluator(teacher=tmp_path / "absent.pt").resources.teachers()
    (tmp_path / "garbage.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="cannot read"):
        make_evaluator(teacher=tmp_path / "garbage.safetensors").resources.teachers()


def test_stored_soft_labels_and_a_teacher_labelled_random_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluator = make_evaluator(ipc=1, num_eval=1, epochs=2)
    distilled = real_subset(evaluator, 1)
    distilled.soft_labels = 4.0 * torch.nn.functional.one_hot(distilled.labels, 10).float()
    assert distilled.label_strategy is None  # stored soft labels alone select 'stored_soft'
    baseline_labels: list[torch.Tensor] = []
    from ddr.execute.workspace import Workspace

    original = Workspace._random_teacher_logits

    def spy(self: Workspace, index: int) -> torch.Tensor:
        logits = original(self, index)
        baseline_labels.append(logits)
        return logits

    monkeypatch.setattr(Workspace, "_random_teacher_logits", spy)
    result = evaluator.evaluate(distilled)
    assert result.run_spec["label_strategy"] == "stored_soft"
    assert [s.role for s in result.students] == ["syn_hard", "syn_any", "rdm_any"]
    (logits,) = baseline_labels
    assert logits.shape == (10, 10) and bool(torch.isfinite(logits).all())
    (teacher,) = evaluator.resources.teachers()  # the cached real-data model labelled the random subset
    with torch.no_grad():
        assert torch.allclose(logits, teacher(evaluator.workspace.random_subset(0).images))
    assert result.distilled_sha256 == distilled_sha256(distilled)  # soft labels are part of the hash
    assert result.distilled_sha256 != distilled_sha256(real_subset(evaluator, 1))


def test_label_strategy_resolution_order() -> None:
    hard_set = DistilledSet(images=torch.zeros(10, 1, 16, 16), labels=torch.arange(10))
    soft_set = DistilledSet(images=torch.zeros(10, 1, 16, 16), labels=torch.arange(10), soft_labels=torch.zeros(10, 10))
    plain, soft_protocol = make_evaluator(ipc=1), make_evaluator(ipc=1, overrides={"loss": "kl"})
    assert plain.resolve_label_strategy(hard_set) == ("hard", None)
    assert plain.resolve_label_strategy(soft_set) == ("stored_soft", None)  # the set's own labels
    assert plain.resolve_label_strategy(hard_set, method_strategy="teacher") == ("teacher", None)
    assert soft_protocol.resolve_label_strategy(soft_set) == ("stored_soft", "kl")
    assert soft_protocol.resolve_label_strategy(hard_set) == ("hard", None)  # a soft loss never applies to hard labels
    assert make_evaluator(ipc=1, label_strategy="hard").resolve_label_strategy(soft_set) == ("hard", None)
    assert make_evaluator(ipc=1, label_strategy="kl").resolve_label_strategy(soft_set) == ("stored_soft", "kl")
    assert make_evaluator(ipc=1, label_strategy="kl").resolve_label_strategy(hard_set) == ("teacher", "kl")
    marked = DistilledSet(images=hard_set.images, labels=hard_set.labels, label_strategy="teacher")
    assert plain.resolve_label_strategy(marked, method_strategy="hard") == ("teacher", None)


def test_stored_soft_strategy_without_soft_labels_is_refused() -> None:
    evaluator = make_evaluator(ipc=1, num_eval=1, epochs=2, label_strategy="stored_soft")
    with pytest.raises(DistilledSetError, match="needs soft labels"):
        evaluator.evaluate(real_subset(evaluator, 1))


# -- bad input is refused before any training ------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a student was trained before the input was checked")

    monkeypatch.setattr(training_module, "train", refuse)


def _broken(kind: str, evaluator: Evaluator) -> DistilledSet:
    ds = real_subset(evaluator, 2)
    if kind == "count":
        ds.labels[0] = 1  # class 0 has 1 image, class 1 has 3
    elif kind == "channels":
        ds.images = ds.images.repeat(1, 3, 1, 1)
    elif kind == "size":
        ds.images = ds.images[:, :, ::2, ::2].contiguous()
    elif kind == "label_range":
        ds.labels[0] = 10
    elif kind == "nan":
        ds.images[3, 0, 5, 5] = float("nan")
    elif kind == "soft_shape":
        ds.soft_labels = torch.zeros(len(ds.labels), 11)
    elif kind == "zca":
        ds.pixel_space = "zca"
    return ds


@pytest.mark.parametrize("kind, error, fragment", [
    ("count", DistilledSetError, "class"),
    ("channels", DistilledSetError, "3 channel"),
    ("size", DistilledSetError, "8x8"),
    ("label_range", DistilledSetError, r"outside \[0, 10\)"),
    ("nan", DistilledSetError, "NaN|non-finite|finite"),
    ("soft_shape", DistilledSetError, "soft"),
    ("zca", DdrError, "pixel space"),
])
def test_bad_distilled_sets_fail_before_training(kind: str, error: type, fragment: str, no_training: None) -> None:
    evaluator = make_evaluator()
    with pytest.raises(error, match=fragment):
        evaluator.evaluate(_broken(kind, evaluator))


def test_a_wrong_ipc_is_refused_before_training(no_training: None) -> None:
    evaluator = make_evaluator(ipc=3)
    with pytest.raises(DistilledSetError):
        evaluator.evaluate(real_subset(evaluator, 2))


def test_stored_soft_without_soft_labels_is_refused_before_training(no_training: None) -> None:
    evaluator = Evaluator(dataset="digits", ipc=2, label_strategy="stored_soft", device="cpu")
    with pytest.raises(DistilledSetError, match="needs soft labels"):
        evaluator.evaluate(real_subset(evaluator, 2))


def test_ipc_zero_on_the_command_line_is_refused_not_defaulted() -> None:
    from ddr.cli.main import main

    assert main(["run", "--method", "random", "--ipc", "0", "--no-progress"]) == 2


def test_resize_makes_a_smaller_set_usable() -> None:
    evaluator = make_evaluator(num_eval=1, epochs=2)
    small = _broken("size", evaluator)
    result = evaluator.evaluate(small, resize=True)
    assert 0.0 <= result.acc_syn_hard.mean <= 1.0
    assert result.students[0].epochs_trained == 2


def test_bad_evaluator_arguments_are_ddr_errors() -> None:
    with pytest.raises(DdrError, match="ipc"):
        Evaluator(dataset="digits", ipc=0, device="cpu")
    with pytest.raises(DdrError, match="seed"):
        Evaluator(dataset="digits", ipc=1, seed=-1, device="cpu")
    with pytest.raises(DdrError, match="num_eval"):
        Evaluator(dataset="digits", ipc=1, num_eval=0, device="cpu")
    with pytest.raises(DdrError, match="validation"):  # 10 held out per class + 200 ipc > ~110 per class
        _ = make_evaluator(ipc=200).workspace


# -- evaluate() ---------------------------------------------------------------------------------

def test_evaluate_function_infers_ipc_and_writes_records(tmp_path: Path) -> None:
    import json

    distilled = real_subset(make_evaluator(), 2)
    result = evaluate(distilled, dataset="digits", num_eval=1, epochs=2, overrides=FAST,
                      device="cpu", out=tmp_path / "record")
    assert result.run_spec["ipc"] == 2
    record = Path(result.record_dir)  # a hashed directory per run under `out`
    assert record.parent == (tmp_path / "record").resolve() and record.name.startswith("eval-digits-ipc2-seed0-")
    metrics = json.loads((record / "metrics.json").read_text())
    assert metrics["acc_syn_hard"]["values"] == result.acc_syn_hard.values
    assert [s["role"] for s in metrics["students"]] == ["syn_hard", "rdm_any"]
    assert json.loads((record / "run_spec.json").read_text())["protocol"] == "digits"
    assert (record / "env.json").is_file()


def test_an_unusable_device_is_a_clear_error() -> None:
    import torch

    from ddr.errors import ConfigError
    from ddr.resources.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="invalid device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available here"):
            resolve_device("cuda:0")
