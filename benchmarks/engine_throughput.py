"""Speed benchmark: students·epochs per second of ConvNet-3, local (one at a time) vs batched.

ConvNet-3 (ddr's ``convnet``: width 128, instance norm, avg pooling) on a CIFAR-10-shaped random
tensor dataset (3x32x32, 10 classes, ``ipc * 10`` training images; ``--shape digits``: 1x16x16,
width 64, the embedded digits protocol's shapes), the ``hard`` protocol's
recipe (SGD 0.01, momentum 0.9, weight decay 5e-4, batch 256) and its DSA augmentation; no test
passes. ``local`` is THE training loop (:func:`ddr.engine.training.train`) per student, one after
another; ``batched`` is the batched executor's loop (:func:`ddr.execute.group_training.train_group`
on a :class:`ddr.execute.stacked.StackedModel`), every student with its own seed and generator.

Each figure: students·epochs/s (wall time, the augmentation included), the speed-up over local,
the achieved FLOP/s of the network's forward+backward (conv and linear FLOPs per image counted
with ``torch.utils.flop_counter.FlopCounterMode``; augmentation and optimizer FLOPs not counted)
as a fraction of the device's assumed peak, and the peak memory while it ran (host RSS sampled
every 5 ms from /proc; on CUDA also the allocator's peak).

Local throughput does not depend on how many students run one after another, so local is timed
over ``min(students, --local-students)`` students and reported for the row's student count.
Every figure is the best of ``--repeats`` runs, local and batched interleaved, so that other load
on a shared machine disturbs the comparison less; the load average is printed with the table.

    python benchmarks/engine_throughput.py [--device cpu] [--quick] [--ipc 1 10 50]
        [--students 1 8 32 128] [--epochs N] [--variants] [--json PATH]

``--variants`` instead measures, at IPC 10, whether channels_last, bf16 autocast or
``torch.compile`` speed up the local per-student loop, and channels_last/bf16 in the batched one.
``--profile fp32|bf16|compile`` prints torch.profiler's top operators of one local student in
that variant (the "before and after" of a kernel change).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

QUICK = {1: ([1, 8, 32], 4), 10: ([1, 8], 1)}
"""``--quick``: IPC -> (student counts, epochs); local timed over at most 2 students."""
FULL = {1: ([1, 8, 32, 128], 20), 10: ([1, 8, 32, 128], 5), 50: ([1, 8, 32, 128], 2)}

SHAPES = {"cifar10": {"channels": 3, "size": 32, "width": 128, "dsa": "color_crop_cutout_flip_scale_rotate"},
          "digits": {"channels": 1, "size": 16, "width": 64, "dsa": "color_crop_cutout_scale_rotate"}}
"""``--shape``: the random dataset and network: CIFAR-10's (ConvNet-3 width 128, the hard protocol)
or the embedded digits protocol's (1x16x16, width 64, DSA without flips)."""
SHAPE = dict(SHAPES["cifar10"])

GPU_PEAKS: tuple[tuple[str, float, float, str], ...] = (
    ("H100 PCIe", 756e12, 51e12, "NVIDIA H100 datasheet, H100 PCIe: BF16 Tensor Core 1,513 TFLOPS with sparsity"),
    ("H100", 989e12, 67e12, "NVIDIA H100 datasheet, H100 SXM: BF16 Tensor Core 1,979 TFLOPS with sparsity"),
    ("H200", 989e12, 67e12, "NVIDIA H200 datasheet, H200 SXM: BF16 Tensor Core 1,979 TFLOPS with sparsity"),
)
"""(words every one of which the device name holds, BF16 dense peak FLOP/s, FP32 peak FLOP/s without
tensor cores, source), most specific first. Dense is half the datasheets' "with sparsity" figure.
NVL variants and the GH200 have other figures and are not listed: they get no peak."""


def gpu_peak(name: str) -> tuple[float, float, str] | None:
    """(BF16 dense peak FLOP/s, FP32 peak FLOP/s, source) of a CUDA device named ``name``
    (``torch.cuda.get_device_name``, e.g. "NVIDIA H100 80GB HBM3"), or ``None`` when :data:`GPU_PEAKS`
    does not know it. Words are matched whole, so "GH200" is not an "H200"."""
    words = set(name.replace("-", " ").split())
    if "NVL" in words:
        return None
    for key, bf16, fp32, source in GPU_PEAKS:
        if set(key.split()) <= words:
            return bf16, fp32, source
    return None


# -- the machine ----------------------------------------------------------------------------------------

def cpu_peak() -> tuple[float, str]:
    """An estimate of the CPU's float32 peak: cores × clock × FLOPs/cycle (AVX-512: 2 FMA units ×
    16 lanes × 2 = 64; AVX2: 32)."""
    cores = os.cpu_count() or 1
    flags, mhz = "", 0.0
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
    except OSError:
        pass
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 8
    ghz = (mhz or 2000.0) / 1000.0
    return cores * ghz * 1e9 * per_cycle, (f"estimate: {cores} logical cores x {ghz:.2f} GHz x {per_cycle} fp32 "
                                           "FLOP/cycle (AVX-512: 2 FMA x 16 lanes x 2); logical cores that are "
                                           "hyper-threads of one physical core would halve it")


def device_peak(device: Any) -> tuple[float | None, str]:
    import torch

    if device.type != "cuda":
        return cpu_peak()
    name = torch.cuda.get_device_name(device)
    known = gpu_peak(name)
    if known is None:
        return None, f"{name}: peak unknown"
    bf16, fp32, source = known
    return bf16, (f"{name}: BF16 dense {bf16 / 1e12:.0f} TFLOPS ({source}, halved; fp32 without tensor cores "
                  f"{fp32 / 1e12:.0f} TFLOPS)")


def machine() -> dict[str, Any]:
    import torch

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "logical_cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}


@contextmanager
def peak_memory(device: Any) -> Iterator[dict[str, int]]:
    """Peak host RSS (sampled every 5 ms) and, on CUDA, the allocator's peak while the block runs."""
    import torch

    out = {"host": 0, "device": 0}
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    stop = threading.Event()

    def rss() -> int:
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * page
        except OSError:
            import resource

            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    def sample() -> None:
        while not stop.is_set():
            out["host"] = max(out["host"], rss())
            stop.wait(0.005)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["host"] = max(out["host"], rss())
        if device.type == "cuda":
            out["device"] = int(torch.cuda.max_memory_allocated(device))


# -- the workload -------------------------------------------------------------------------------------------

def dataset(ipc: int, device: Any, seed: int = 0) -> Any:
    """Random training set of :data:`SHAPE`: ``[ipc*10, C, H, W]`` float32 and class-major labels."""
    import torch

    from ddr.engine.data import Split
    from ddr.engine.training import TrainData

    gen = torch.Generator().manual_seed(seed)
    side = SHAPE["size"]
    images = torch.randn(ipc * 10, SHAPE["channels"], side, side, generator=gen)
    labels = torch.arange(10).repeat_interleave(ipc)
    return TrainData(Split(labels=labels.to(device), images=images.to(device)))


def make_model(seed: int, device: Any) -> Any:
    import torch

    from ddr.builtins.architectures.convnet import build_convnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_convnet(channels=SHAPE["channels"], num_classes=10, image_size=(SHAPE["size"], SHAPE["size"]),
                              width=SHAPE["width"])
    return model.to(device)


def flops_per_image(device: Any) -> float:
    """Forward+backward conv/linear FLOPs of the ConvNet-3 of :data:`SHAPE` for one image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(0, device)
    x = torch.randn(4, SHAPE["channels"], SHAPE["size"], SHAPE["size"], device=device)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / 4


def strategy_for(data: Any) -> Any:
    from ddr.builtins.labels.strategies import HardLabels

    strategy = HardLabels()
    strategy.prepare(hard_labels=data.split.labels, soft_labels=None, teachers=[], num_classes=10)
    return strategy


def augmentation() -> Any:
    from ddr.builtins.augmentations.dsa import DSA
    from ddr.engine.augment import Pipeline

    return Pipeline([DSA(SHAPE["dsa"])], ["dsa"])


def run_local(data: Any, students: int, epochs: int, device: Any, *, wrap: Callable[[Any], Any] | None = None,
              bf16: bool = False) -> None:
    """Train ``students`` students one after another with THE training loop."""
    from ddr.engine.seeds import torch_generator
    from ddr.engine.training import Recipe, train

    for s in range(students):
        model = make_model(1000 + s, device)
        if wrap is not None:
            model = wrap(model)
        train(model, data, Recipe(epochs=epochs), generator=torch_generator(1000 + s, device),
              strategy=strategy_for(data), augmentation=augmentation(), device=device, bf16=bf16)


def run_batched(data: Any, students: int, epochs: int, device: Any, *, channels_last: bool = False,
                bf16: bool = False) -> None:
    """Train ``students`` students with the batched executor's loop, in groups of the size the
    executor forms (:meth:`BatchedExecutor.members_per_group`), one group after another."""
    from ddr.engine.seeds import torch_generator
    from ddr.engine.training import Recipe
    from ddr.execute.batched import BatchedExecutor
    from ddr.execute.group_training import Stream, train_group
    from ddr.execute.stacked import StackedModel

    recipe = Recipe(epochs=epochs)
    cap = BatchedExecutor().members_per_group(min(recipe.batch_size, len(data)), device)
    for first in range(0, students, cap):
        seeds = [1000 + s for s in range(first, min(students, first + cap))]
        stacked = StackedModel([make_model(seed, device) for seed in seeds], channels_last=channels_last)
        streams = [Stream(data, torch_generator(seed, device), augmentation(), strategy_for(data), loss_key="ce")
                   for seed in seeds]
        train_group(stacked, streams, list(range(len(seeds))), [recipe] * len(seeds), device=device, bf16=bf16)


def timed(device: Any, work: Callable[[], None]) -> tuple[float, dict[str, int]]:
    import torch

    with peak_memory(device) as memory:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, memory


# -- the tables ------------------------------------------------------------------------------------------------

def figure(kind: str, ipc: int, students: int, measured: int, epochs: int, seconds: float, memory: dict[str, int],
           flops: float, peak: float | None) -> dict[str, Any]:
    rate = measured * epochs / seconds
    achieved = rate * ipc * 10 * flops
    return {"executor": kind, "ipc": ipc, "students": students, "measured_students": measured, "epochs": epochs,
            "seconds": round(seconds, 3), "students_epochs_per_s": rate, "flops_per_s": achieved,
            "fraction_of_peak": achieved / peak if peak else None,
            "peak_host_bytes": memory["host"], "peak_device_bytes": memory["device"]}


def markdown(rows: list[dict[str, Any]], cuda: bool) -> str:
    head = "| IPC | students | executor | students·epochs/s | vs local | GFLOP/s | of peak | peak host MiB |"
    rule = "|---:|---:|---|---:|---:|---:|---:|---:|"
    if cuda:
        head += " peak device MiB |"
        rule += "---:|"
    lines = [head, rule]
    local = {(r["ipc"], r["students"]): r["students_epochs_per_s"] for r in rows if r["executor"] == "local"}
    for r in rows:
        base = local.get((r["ipc"], r["students"]))
        speed = f"{r['students_epochs_per_s'] / base:.2f}x" if base else "-"
        frac = f"{100 * r['fraction_of_peak']:.1f}%" if r["fraction_of_peak"] is not None else "-"
        name = r["executor"] + (f" ({r['measured_students']} timed)" if r["measured_students"] != r["students"] else "")
        line = (f"| {r['ipc']} | {r['students']} | {name} | {r['students_epochs_per_s']:.2f} | {speed} | "
                f"{r['flops_per_s'] / 1e9:.1f} | {frac} | {r['peak_host_bytes'] / 2**20:.0f} |")
        if cuda:
            line += f" {r['peak_device_bytes'] / 2**20:.0f} |"
        lines.append(line)
    return "\n".join(lines)


def throughput(args: argparse.Namespace, device: Any, flops: float, peak: float | None) -> list[dict[str, Any]]:
    preset = QUICK if args.quick else FULL
    local_students = args.local_students or (2 if args.quick else 4)
    rows = []
    for ipc in args.ipc or list(preset):
        data = dataset(ipc, device)
        counts, default_epochs = preset.get(ipc, FULL[10])
        epochs = args.epochs or default_epochs
        for students in args.students or counts:
            measured = min(students, local_students)
            local = functools.partial(run_local, data, measured, epochs, device)
            batched = functools.partial(run_batched, data, students, epochs, device,
                                        channels_last=args.channels_last, bf16=args.bf16)
            best: dict[str, tuple[float, dict[str, int]]] = {}
            for _ in range(args.repeats):  # interleaved, best of N: robust to other load on the machine
                for kind, work in (("local", local), ("batched", batched)):
                    seconds, memory = timed(device, work)
                    if kind in best:
                        memory = {k: max(v, best[kind][1][k]) for k, v in memory.items()}
                        seconds = min(seconds, best[kind][0])
                    best[kind] = (seconds, memory)
            for kind, count in (("local", measured), ("batched", students)):
                rows.append(figure(kind, ipc, students, count, epochs, *best[kind], flops, peak))
                print(markdown(rows[-1:], device.type == "cuda").splitlines()[-1], flush=True)
    return rows


def variants(args: argparse.Namespace, device: Any, flops: float, peak: float | None) -> list[dict[str, Any]]:
    """IPC 10: local fp32 / channels_last / bf16 autocast / torch.compile; batched (8 students)
    fp32 / channels_last / bf16."""
    import torch

    ipc = args.ipc[0] if args.ipc else 10
    epochs = args.epochs or 3
    students = args.students[0] if args.students else 8
    data = dataset(ipc, device)
    local_students = min(students, args.local_students or 4)

    def channels_last(model: Any) -> Any:
        return model.to(memory_format=torch.channels_last)

    cases: list[tuple[str, int, Callable[[], None]]] = [
        ("local fp32", local_students, lambda: run_local(data, local_students, epochs, device)),
        ("local channels_last", local_students,
         lambda: run_local(data, local_students, epochs, device, wrap=channels_last)),
        ("local bf16 autocast", local_students, lambda: run_local(data, local_students, epochs, device, bf16=True)),
        ("local torch.compile", local_students,
         lambda: run_local(data, local_students, epochs, device, wrap=torch.compile)),
        ("batched fp32", students, lambda: run_batched(data, students, epochs, device)),
        ("batched channels_last", students, lambda: run_batched(data, students, epochs, device, channels_last=True)),
        ("batched bf16 autocast", students, lambda: run_batched(data, students, epochs, device, bf16=True)),
    ]
    rows = []
    for name, measured, work in cases:
        if name == "local torch.compile":  # compile once outside the timing (its cost is reported apart)
            start = time.perf_counter()
            run_local(data, 1, 1, device, wrap=torch.compile)
            compile_seconds = time.perf_counter() - start
        seconds, memory = min((timed(device, work) for _ in range(args.repeats)), key=lambda t: t[0])
        row = figure(name, ipc, students, measured, epochs, seconds, memory, flops, peak)
        if name == "local torch.compile":
            row["first_student_seconds_incl_compile"] = round(compile_seconds, 1)
        rows.append(row)
        print(f"{name}: {row['students_epochs_per_s']:.3f} students·epochs/s, "
              f"peak host {memory['host'] / 2**20:.0f} MiB", flush=True)
    return rows


def profile(args: argparse.Namespace, device: Any) -> None:
    """torch.profiler of one local student (IPC ``--ipc``, ``--epochs`` epochs) in THE loop as
    ``--profile`` says (fp32, bf16 autocast, torch.compile), after one untimed warm-up student:
    the top operators by self CPU time and their share of the total."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    ipc = args.ipc[0] if args.ipc else 10
    epochs = args.epochs or 10
    data = dataset(ipc, device)
    wrap = torch.compile if args.profile == "compile" else None
    bf16 = args.profile == "bf16"
    run_local(data, 1, 1, device, wrap=wrap, bf16=bf16)  # kernels, allocator, compilation
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        run_local(data, 1, epochs, device, wrap=wrap, bf16=bf16)
    wall = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\n{args.profile}: one student, IPC {ipc}, {epochs} epochs: {wall:.2f} s wall under the profiler "
          f"(self CPU in all {total / 1e6:.2f} s)\n")
    print("| op | self CPU | share | calls |\n|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]:
        print(f"| `{e.key}` | {e.self_cpu_time_total / 1e6:.2f} s | {100 * e.self_cpu_time_total / total:.1f} % "
              f"| {e.count} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true",
                        help="IPC 1 (1/8/32 students, 6 epochs) and IPC 10 (1/8 students, 2 epochs)")
    parser.add_argument("--ipc", type=int, nargs="*", default=None)
    parser.add_argument("--students", type=int, nargs="*", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per figure (default: by IPC)")
    parser.add_argument("--local-students", type=int, default=None,
                        help="most students local is timed over (default 4; 2 with --quick)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="cifar10",
                        help="cifar10: 3x32x32, width 128 (default); digits: 1x16x16, width 64")
    parser.add_argument("--repeats", type=int, default=2, help="each figure is the best of this many runs")
    parser.add_argument("--channels-last", action="store_true", help="batched: channels-last feature maps")
    parser.add_argument("--bf16", action="store_true", help="batched: bfloat16 autocast")
    parser.add_argument("--variants", action="store_true", help="channels_last / bf16 / torch.compile study")
    parser.add_argument("--profile", choices=("fp32", "bf16", "compile"), default=None,
                        help="instead: torch.profiler's top operators of one local student in that variant")
    parser.add_argument("--json", default=None, help="write the figures and the machine here")
    args = parser.parse_args()

    import torch

    device = torch.device(args.device)
    SHAPE.update(SHAPES[args.shape])
    flops = flops_per_image(device)
    peak, peak_source = device_peak(device)
    info = {**machine(), "device": str(device), "shape": args.shape, "peak_flops": peak, "peak_source": peak_source,
            "flops_per_image_fwd_bwd": flops}
    print(f"# {info['cpu']}, torch {info['torch']}, {info['threads']} threads, device {device}, "
          f"load average {info['load_average']}")
    print(f"# peak {peak / 1e9 if peak else float('nan'):.1f} GFLOP/s ({peak_source})")
    print(f"# {args.shape}-shaped ConvNet-3 (width {SHAPE['width']}) forward+backward: {flops / 1e6:.1f} MFLOP "
          f"per {SHAPE['channels']}x{SHAPE['size']}x{SHAPE['size']} image")
    if args.profile:
        profile(args, device)
        return
    run_local(dataset(1, device), 1, 1, device)  # warm-up: kernels, allocator, thread pool
    run_batched(dataset(1, device), 2, 1, device)
    rows = variants(args, device, flops, peak) if args.variants else throughput(args, device, flops, peak)
    if not args.variants:
        print()
        print(markdown(rows, device.type == "cuda"))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
