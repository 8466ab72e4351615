"""The run record's ``cost`` object: what a distillation and an evaluation cost.

Unit tests of the progress wrapper (which iteration is counted, × total, nested loops, loops
without a total), the teacher counter and the storage arithmetic; then real digits runs: every
key with its type, FLOPs and CPU time of DM, the teacher's forwards of herding, the cached rerun
reporting the original distillation, a distillation in a worker (the Ray executor's task, run
in-process), ``ddr eval``, and the same distilled set with and without FLOP counting. No timing
is asserted (the machine's speed swings).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import ddr.runs.cost as cost
from ddr.method.distilled import DistilledSet, distilled_sha256
from ddr.resources.session import Session
from ddr.runs.cost import COST_KEYS, DistillCost, FlopSampler, TeacherCounter, cost_record, storage
from ddr.runs.evaluate import EvalOptions

FAST = {"train.epochs": 2, "real.epochs": 1, "num_eval": 1}
DM = {"iterations": 3, "batch_real": 8}


# -- the progress wrapper ------------------------------------------------------------------------

class FakeCounter:
    """Stands in for FlopCounterMode: counts its entries, says whether it is active."""

    entered = 0
    active = False

    def __init__(self, flops: int = 7) -> None:
        self.flops = flops

    def __enter__(self) -> "FakeCounter":
        FakeCounter.entered += 1
        FakeCounter.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        FakeCounter.active = False

    def get_total_flops(self) -> int:
        return self.flops


@pytest.fixture
def fake_counter(monkeypatch: pytest.MonkeyPatch) -> type[FakeCounter]:
    FakeCounter.entered, FakeCounter.active = 0, False
    monkeypatch.setattr(cost, "_flop_counter", lambda: FakeCounter())
    return FakeCounter


def plain_progress(iterable: Any, total: int | None = None, desc: str = "") -> Any:
    return iterable


def test_the_second_iteration_is_counted_and_scaled_by_the_total(fake_counter: type[FakeCounter]) -> None:
    sampler = FlopSampler()
    progress = sampler.wrap(plain_progress)
    active = [fake_counter.active for _ in progress(range(5), total=5, desc="dm")]
    assert active == [False, True, False, False, False]
    assert sampler.flops == 7 * 5 and fake_counter.entered == 1
    assert sampler.method == "FlopCounterMode on iteration 2 of 5 ('dm'), × 5 (main loop only)"


def test_a_loop_of_one_iteration_counts_that_one(fake_counter: type[FakeCounter]) -> None:
    sampler = FlopSampler()
    active = [fake_counter.active for _ in sampler.wrap(plain_progress)([0], total=1)]
    assert active == [True] and sampler.flops == 7
    assert sampler.method is not None and "iteration 1 of 1" in sampler.method


def test_only_the_first_top_level_loop_is_counted_never_a_nested_one(fake_counter: type[FakeCounter]) -> None:
    sampler = FlopSampler()
    progress = sampler.wrap(plain_progress)
    seen: list[tuple[int, int, bool]] = []
    for i in progress(range(3), total=3, desc="outer"):
        for j in progress(range(4), total=4, desc="inner"):
            seen.append((i, j, fake_counter.active))
    for _ in progress(range(6), total=6, desc="later"):
        assert not fake_counter.active
    assert [(i, j) for i, j, active in seen if active] == [(1, j) for j in range(4)]  # the outer's 2nd, inner included
    assert fake_counter.entered == 1 and sampler.flops == 7 * 3
    assert sampler.method is not None and "'outer'" in sampler.method


def test_loops_without_a_total_are_never_counted(fake_counter: type[FakeCounter]) -> None:
    sampler = FlopSampler()
    progress = sampler.wrap(plain_progress)
    for _ in progress(range(4)):  # no total: not sampled, and a loop inside it is nested
        for _ in progress(range(3), total=3):
            assert not fake_counter.active
    assert sampler.flops is None and sampler.method is None
    for bad in (0, -2, True, 2.5):
        list(progress(range(3), total=bad))
    assert sampler.flops is None
    list(progress(range(3), total=3))  # the first top-level loop with a total
    assert sampler.flops == 21


def test_no_loop_gives_nulls_and_a_loop_ended_early_leaves_the_next_one_to_count(
        fake_counter: type[FakeCounter]) -> None:
    sampler = FlopSampler()
    assert sampler.flops is None and sampler.method is None
    progress = sampler.wrap(plain_progress)
    for _ in progress(range(10), total=10):
        break  # never reached its 2nd iteration
    assert sampler.flops is None
    for index in progress(range(4), total=4):
        if index == 1:
            assert fake_counter.active
            break  # leaving in the counted iteration closes the counter
    assert not fake_counter.active and sampler.flops == 28


def test_the_wrapper_passes_everything_to_the_wrapped_progress() -> None:
    calls: list[tuple[Any, ...]] = []

    def progress(iterable: Any, total: int | None = None, desc: str = "", leave: bool = True) -> Iterator[Any]:
        calls.append((total, desc, leave))
        yield from iterable

    out = list(FlopSampler().wrap(progress)(iter("abc"), total=3, desc="x", leave=False))
    assert out == ["a", "b", "c"] and calls == [(3, "x", False)]


def test_the_real_counter_counts_a_matmul_exactly() -> None:
    sampler = FlopSampler()
    a, b = torch.ones(8, 16), torch.ones(16, 4)
    for _ in sampler.wrap(plain_progress)(range(5), total=5):
        a @ b
    assert sampler.flops == 2 * 8 * 16 * 4 * 5


# -- the teacher counter -------------------------------------------------------------------------

class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Linear(4, 3)
        self.classifier = nn.Linear(3, 2)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def test_the_teacher_counter_counts_forward_and_embed_once_each_and_unhooks() -> None:
    model = Tiny()
    x = torch.randn(5, 4)
    before = model(x).detach().clone()
    counter = TeacherCounter()
    assert counter.images is None  # never requested
    teacher = counter.wrap(lambda: model)
    assert teacher() is model and teacher() is model and counter.images == 0  # requested, not used
    out = model(x)  # forward calls embed: one pass
    model.embed(x[:2])
    assert counter.images == 7 and torch.equal(out, before)
    twin = copy.deepcopy(model)  # a copy counts too, with its own weights
    with torch.no_grad():
        twin.features.weight.zero_()
    assert torch.equal(twin.embed(x), twin.features.bias.expand(5, 3)) and counter.images == 12
    counter.close()
    model(x), twin(x), model.embed(x)
    assert counter.images == 12
    assert "embed" not in vars(model) and not model._forward_hooks and not model._forward_pre_hooks
    assert torch.equal(model(x), before)


def test_the_meter_measures_a_block_on_the_cpu() -> None:
    meter = cost.DistillMeter(torch.device("cpu"))
    progress = meter.wrap_progress(plain_progress)
    with meter:
        a = torch.ones(64, 64)
        for _ in progress(range(3), total=3, desc="work"):
            for _ in range(20):
                a = (a @ a).clamp(max=1.0)
    measured = meter.cost
    assert measured is not None and measured.wall_seconds is not None and measured.wall_seconds > 0
    assert measured.cpu_seconds is not None and measured.cpu_seconds > 0
    assert measured.gpu_seconds is None and measured.peak_memory_bytes is not None and measured.peak_memory_bytes > 0
    assert measured.flops_estimate == 2 * 64 * 64 * 64 * 20 * 3
    assert measured.teacher_forward_images is None


def test_importing_the_cost_module_imports_no_torch() -> None:
    code = "import sys, ddr.runs.cost, ddr.runs.distill; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- storage and the cost object -----------------------------------------------------------------

def test_storage_counts_soft_labels_a_learned_lr_and_a_needed_teacher() -> None:
    ds = DistilledSet(images=torch.zeros(10, 1, 8, 8), labels=torch.arange(10))
    assert storage(ds) == ({"images": 2560, "soft_labels": 0, "learned_lr": 0, "teacher": 0, "total": 2560},
                           "images (float32); the teacher is not needed")
    ds = DistilledSet(images=torch.zeros(10, 1, 8, 8), labels=torch.arange(10), soft_labels=torch.zeros(10, 10),
                      lr=0.01)
    out, note = storage(ds, teacher_bytes=1000, teacher_needed=True)
    assert out == {"images": 2560, "soft_labels": 400, "learned_lr": 4, "teacher": 1000, "total": 3964}
    assert note.startswith("images + soft labels + learned LR + teacher")
    assert storage(ds, teacher_bytes=1000)[0]["teacher"] == 0
    assert cost.module_bytes([Tiny()]) == (4 * 3 + 3 + 3 * 2 + 2) * 4


def test_the_distilled_sets_meta_carries_the_cost_and_old_entries_give_nulls() -> None:
    measured = DistillCost(1.5, 1.25, None, 100, 10**12, "how", 64)
    assert DistillCost.from_meta(json.loads(json.dumps(measured.to_meta()))) == measured
    assert measured.to_meta()["distill_seconds"] == 1.5 and measured.to_meta()["peak_memory_bytes"] == 100
    old = DistillCost.from_meta({"distill_seconds": 2.0, "peak_memory_bytes": 5})
    assert old == DistillCost(wall_seconds=2.0, peak_memory_bytes=5)


def test_the_cost_object_of_an_evaluation_alone() -> None:
    class Job:
        def __init__(self, seconds: float, epochs: int) -> None:
            self.seconds, self.epochs_trained = seconds, epochs

    record = cost_record(None, eval_seconds=3.21, students=[Job(1.0, 2), Job(0.5, 3)],
                         storage_bytes={"total": 1}, storage_note="n")
    assert tuple(record) == COST_KEYS
    assert all(record[k] is None for k in COST_KEYS if k.startswith("distill_") or k == "teacher_forward_images")
    assert record["eval_student_seconds"] == 1.5 and record["eval_student_epochs"] == 5


# -- real runs on digits -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of this module's own: the first DM run here distils (never a hit of another test's)."""
    return tmp_path_factory.mktemp("cost-cache")


@pytest.fixture
def in_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This module's cache as ``DDR_CACHE_DIR`` for one test (after the autouse per-test one)."""
    monkeypatch.setenv("DDR_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def dm_runs(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """DM distilled and evaluated, then the same run again (the set from the cache)."""
    from ddr.runs.run import run

    out = tmp_path_factory.mktemp("cost-runs")
    session = Session(progress_bars=False)
    options = EvalOptions(overrides=FAST, device="cpu")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DDR_CACHE_DIR", str(cache))
        first, outcome = run("dm", options=options, session=session, method_overrides=DM, out=out,
                             save_distilled_to=out / "dm-set")
        again, cached = run("dm", options=options, session=session, method_overrides=DM)
    yield {"first": first, "outcome": outcome, "again": again, "cached": cached, "out": out, "session": session}


def check_types(record: dict[str, Any]) -> None:
    assert tuple(record) == COST_KEYS
    for key in ("distill_wall_seconds", "distill_cpu_seconds", "distill_gpu_seconds", "eval_wall_seconds",
                "eval_student_seconds"):
        assert record[key] is None or (isinstance(record[key], float) and record[key] >= 0), key
    for key in ("distill_peak_memory_bytes", "distill_flops_estimate", "teacher_forward_images",
                "eval_student_epochs"):
        assert record[key] is None or (isinstance(record[key], int) and record[key] >= 0), key
    assert record["distill_flops_method"] is None or isinstance(record["distill_flops_method"], str)
    assert set(record["storage_bytes"]) == {"images", "soft_labels", "learned_lr", "teacher", "total"}
    assert all(isinstance(v, int) for v in record["storage_bytes"].values())
    assert record["storage_bytes"]["total"] == sum(v for k, v in record["storage_bytes"].items() if k != "total")
    assert isinstance(record["storage_note"], str) and record["storage_note"]


def test_a_dm_run_records_what_it_cost(dm_runs: dict[str, Any]) -> None:
    result = dm_runs["first"]
    record = result.to_json()["cost"]
    check_types(record)
    assert json.loads((Path(result.record_dir) / "metrics.json").read_text())["cost"] == record
    assert result.to_json()["distill_cached"] is False
    assert record["distill_wall_seconds"] > 0 and record["distill_cpu_seconds"] > 0
    assert record["distill_gpu_seconds"] is None  # on the CPU
    assert record["distill_peak_memory_bytes"] > 0
    assert record["distill_flops_estimate"] > 0
    assert record["distill_flops_method"] == "FlopCounterMode on iteration 2 of 3 ('dm'), × 3 (main loop only)"
    assert record["teacher_forward_images"] is None  # DM never asks for the teacher
    assert record["eval_wall_seconds"] == result.to_json()["eval_seconds"]
    students = result.metrics_record()["students"]
    assert record["eval_student_epochs"] == sum(s["epochs_trained"] for s in students) > 0
    assert record["eval_student_seconds"] == pytest.approx(sum(s["seconds"] for s in students), abs=0.01)
    images = dm_runs["outcome"].distilled.images.numel() * 4  # 10 float32 images
    assert record["storage_bytes"] == {"images": images, "soft_labels": 0, "learned_lr": 0, "teacher": 0,
                                       "total": images}
    assert record["storage_note"] == "images (float32); the teacher is not needed"
    meta = dm_runs["outcome"].distilled.meta
    assert meta["distill_flops_estimate"] == record["distill_flops_estimate"]
    assert meta["distill_cpu_seconds"] == dm_runs["outcome"].cost.cpu_seconds


def test_a_cached_set_reports_its_original_distillation(dm_runs: dict[str, Any]) -> None:
    first, again = dm_runs["first"].to_json(), dm_runs["again"].to_json()
    assert again["distill_cached"] is True and first["distill_cached"] is False
    assert dm_runs["cached"].cost == dm_runs["outcome"].cost
    for key in COST_KEYS:
        if key.startswith("distill_") or key == "teacher_forward_images":
            assert again["cost"][key] == first["cost"][key], key
    check_types(again["cost"])


def test_an_old_cache_entry_without_the_measures_gives_nulls(dm_runs: dict[str, Any], in_cache: Path) -> None:
    from ddr.runs.run import run

    folder = dm_runs["cached"].stored_at
    meta_file = folder / "meta.json"
    saved = meta_file.read_text()
    record = json.loads(saved)
    for key in ("distill_cpu_seconds", "distill_gpu_seconds", "distill_flops_estimate", "distill_flops_method",
                "teacher_forward_images"):
        del record["meta"][key]
    meta_file.write_text(json.dumps(record))
    try:
        result, outcome = run("dm", options=EvalOptions(overrides=FAST, device="cpu"), session=dm_runs["session"],
                              method_overrides=DM)
    finally:
        meta_file.write_text(saved)
    got = result.to_json()["cost"]
    assert outcome.cached and got["distill_wall_seconds"] == dm_runs["first"].to_json()["cost"]["distill_wall_seconds"]
    assert got["distill_cpu_seconds"] is None and got["distill_flops_estimate"] is None
    assert got["distill_flops_method"] is None and got["teacher_forward_images"] is None
    check_types(got)


def test_counting_flops_changes_no_distilled_value(dm_runs: dict[str, Any], in_cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ddr.runs.distill import distill
    from ddr.runs.run import prepare_distillation

    choice, _, evaluator = prepare_distillation("dm", EvalOptions(overrides=FAST, device="cpu"), dm_runs["session"],
                                                DM)
    monkeypatch.setattr(cost, "COUNT_FLOPS", False)
    plain = distill(choice, evaluator.resources, evaluator.ipc, use_cache=False)
    assert plain.cost is not None and plain.cost.flops_estimate is None and plain.cost.flops_method is None
    assert distilled_sha256(plain.distilled) == distilled_sha256(dm_runs["outcome"].distilled) \
        == dm_runs["first"].distilled_sha256


def test_a_distillation_in_a_worker_returns_its_cost(dm_runs: dict[str, Any], in_cache: Path) -> None:
    """The Ray executor's task, run in this process: the worker measures, the driver records."""
    from ddr.runs.distill import _run_method, distill_key
    from ddr.runs.remote_distill import distill_task, make_task
    from ddr.runs.run import prepare_distillation

    session = dm_runs["session"]
    choice, _, evaluator = prepare_distillation("dm", EvalOptions(overrides=FAST, device="cpu"), session, DM)
    reply = distill_task(make_task(choice, evaluator.resources, evaluator.ipc, auto_assets=True, timeout=None))["reply"]
    assert reply.cost is not None and reply.cost.cpu_seconds > 0 and reply.cost.flops_estimate > 0
    assert reply.seconds == reply.cost.wall_seconds

    class Pending:  # what an executor's submit returns, already finished
        def wait(self) -> list[Any]:
            return []

        def result(self) -> dict[str, Any]:
            return {"reply": reply}

        def cancel(self) -> None:
            pass

    key = distill_key(choice, evaluator.resources, evaluator.ipc)
    session.prefetched[key] = Pending()
    outcome = _run_method(choice, evaluator.resources, evaluator.ipc, key, auto_assets=True, timeout=None)
    assert outcome.cost == reply.cost and outcome.distilled.meta["distill_cpu_seconds"] == reply.cost.cpu_seconds
    assert distilled_sha256(outcome.distilled) == dm_runs["first"].distilled_sha256


def test_a_teacher_based_method_counts_the_images_it_sends_through_the_teacher(dm_runs: dict[str, Any],
                                                                               in_cache: Path) -> None:
    from ddr.runs.run import run

    result, outcome = run("herding", options=EvalOptions(overrides=FAST, device="cpu"), session=dm_runs["session"])
    record = result.to_json()["cost"]
    check_types(record)
    assert record["teacher_forward_images"] > 0  # the whole pool, embedded in the reference model
    assert outcome.distilled.meta["teacher_forward_images"] == record["teacher_forward_images"]
    assert record["storage_bytes"]["teacher"] == 0  # evaluated with hard labels: no teacher needed


def test_ddr_eval_records_the_evaluation_and_a_needed_teachers_storage(dm_runs: dict[str, Any], in_cache: Path) -> None:
    from ddr.runs.run import eval_path

    result = eval_path(dm_runs["out"] / "dm-set", session=dm_runs["session"],
                       options=EvalOptions(overrides=FAST, device="cpu", label_strategy="teacher"))
    record = result.to_json()["cost"]
    check_types(record)
    assert all(record[k] is None for k in COST_KEYS if k.startswith("distill_") or k == "teacher_forward_images")
    assert record["eval_wall_seconds"] > 0 and record["eval_student_epochs"] > 0
    storage_bytes = record["storage_bytes"]
    assert storage_bytes["teacher"] > 0 and storage_bytes["total"] == storage_bytes["images"] + storage_bytes["teacher"]
    assert "teacher" in record["storage_note"] and "not needed" not in record["storage_note"]


def test_a_suite_estimate_never_prints_a_time_for_jobs_nothing_timed() -> None:
    from ddr.runs.estimate import Estimate, RoleCost, combine

    untimed = [Estimate(f"u{i}", [RoleCost("real", 1, 0, unknown=1), RoleCost("syn_any", 3, 0, unknown=3)],
                        None, "unknown") for i in range(2)]
    line = combine(untimed)
    assert "about 6 student jobs not yet timed on this machine" in line and "≈ 0 s" not in line
    timed = Estimate("t", [RoleCost("real", 1, 1), RoleCost("syn_any", 3, 0, seconds=120.0)], 30.0, "≈ 30 s")
    assert "about 9 student jobs ≈ 2 min on this machine, 8 not yet timed (0 reused" in combine([timed, *untimed])
    assert "about 3 student jobs ≈ 2 min on this machine (0 reused from the cache); distillations: 1 ≈ 30 s" \
        in combine([timed])
