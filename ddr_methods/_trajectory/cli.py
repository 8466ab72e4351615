"""``ddr experts train|list|import``: build, inspect and import expert trajectories.

``train`` builds exactly the experts a ``ddr run`` of ``mtt``/``datm`` with the same dataset,
architecture, protocol, seed and expert settings looks up, so a run with ``--no-auto-assets``
finds them: ``--optimizer sgd`` (the default) MTT's plain-SGD experts, ``--optimizer gsam`` (with
``--rho-max``/``--rho-min``/``--alpha``, defaults DATM's 0.01/0.01/0.3) DATM's GSAM experts.
Torch is imported inside the command functions only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _resources(args: argparse.Namespace) -> Any:
    """The resources (dataset, training pool, student) a ``ddr run`` with these options distils from."""
    from ddr import Resources

    return Resources.open(system=args.plugin_system, log=_log, progress_bars=not args.no_progress, dataset=args.dataset,
                          protocol=args.protocol, seed=args.seed, device=args.device, zca=args.zca,
                          download=args.download)


def _factory(resources: Any, arch: str | None, arch_params: str | None = None) -> tuple[str, Any]:
    """The architecture name and a factory of fresh networks, with the protocol's arch params when
    ``arch`` is the protocol's student (as ``ddr run`` builds it), updated with ``--arch-params``."""
    import yaml

    from ddr import ConfigError

    protocol_arch, protocol_params = resources.student_arch()
    name = arch or protocol_arch
    params = dict(protocol_params) if name == protocol_arch else {}
    if arch_params:
        extra = yaml.safe_load(arch_params)
        if not isinstance(extra, dict):
            raise ConfigError(f"--arch-params expects a mapping such as '{{width: 16, depth: 2}}', got {arch_params!r}")
        params.update(extra)
    return name, (lambda: resources.make_model(0, name, params))


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from ddr_methods._trajectory.experts import ExpertSettings, model_fingerprint, pool_fingerprint, train_expert

    resources = _resources(args)
    arch, factory = _factory(resources, args.arch, args.arch_params)
    dataset, pool = resources.dataset, resources.pool
    augmentation = None if args.augmentation in ("none", "") else args.augmentation
    settings = ExpertSettings(dataset=dataset.name, pixel_space=dataset.pixel_space, arch=arch,
                              model=model_fingerprint(factory()), pool=pool_fingerprint(pool), epochs=args.epochs,
                              lr=args.lr, batch_size=args.batch_size, augmentation=augmentation,
                              seed=args.expert_seed, num_classes=dataset.num_classes, optimizer=args.optimizer,
                              rho_max=args.rho_max, rho_min=args.rho_min, alpha=args.alpha)
    missing = [i for i in range(args.num_experts) if not settings.has(i)]
    how = (f"GSAM, rho {settings.rho_max:g}, alpha {settings.alpha:g}" if settings.optimizer == "gsam"
           else "plain SGD")
    _log(f"{args.num_experts - len(missing)} of {args.num_experts} experts cached; training {len(missing)} "
         f"x {args.epochs} epochs ({how}; {arch} on {dataset.name}, {len(pool)} images)")
    augment = None
    if missing and augmentation is not None and settings.optimizer == "gsam":
        # GSAM's loop takes the augmentation built, as the run's (the same plugin system builds it)
        augment = resources.workspace(1).augmentation([augmentation])
    start = time.perf_counter()
    rows = []
    for i in resources.session.progress(missing, total=len(missing), desc="experts"):
        t0 = time.perf_counter()
        traj = train_expert(settings, i, factory=factory, pool=pool, device=resources.device, system=resources.system,
                            log=_log, augment=augment)
        rows.append({"index": i, "seconds": time.perf_counter() - t0, "path": str(traj.path.parent)})
    record = {"dataset": dataset.name, "arch": arch, "num_experts": args.num_experts, "epochs": args.epochs,
              "optimizer": settings.optimizer, "trained": len(missing), "seconds": time.perf_counter() - start,
              "experts": rows, "folders": [str(settings.folder(i)) for i in range(args.num_experts)]}
    if settings.optimizer == "gsam":
        record.update(rho_max=settings.rho_max, rho_min=settings.rho_min, alpha=settings.alpha)
    print(json.dumps(record, indent=2) if args.json else
          f"{args.num_experts} experts ready ({len(missing)} trained in {record['seconds']:.1f} s)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ddr_methods._trajectory.experts import list_experts

    rows = list_experts()
    if args.dataset:
        rows = [r for r in rows if r.get("dataset") == args.dataset]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no experts in the cache")
        return 0
    for r in rows:
        if r["kind"] == "trained":
            how = (f"gsam rho {r.get('rho_max')} alpha {r.get('alpha')}" if r.get("optimizer") == "gsam"
                   else "sgd")
            print(f"trained  {r['dataset']:<12} {r['arch']:<12} expert {r['index']:<4} {r['epochs']} epochs "
                  f"{how} lr {r['lr']} aug {r['augmentation']} {r['path']}")
        else:
            print(f"imported {r['dataset']:<12} {r['arch']:<12} {r['experts']} experts x {r['epochs']} epochs "
                  f"from {r['source']}  {r['path']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ddr_methods._trajectory.experts import import_buffers

    resources = _resources(args)
    arch, factory = _factory(resources, args.arch, args.arch_params)
    trajectories = import_buffers(Path(args.source), factory(), dataset=resources.dataset.name, arch=arch, log=_log)
    folder = trajectories[0].path.parent
    record = {"experts": len(trajectories), "epochs": min(t.epochs for t in trajectories), "folder": str(folder)}
    print(json.dumps(record, indent=2) if args.json else
          f"{record['experts']} experts x {record['epochs']} epochs imported into {folder}\n"
          f"use them with: --set method.experts={folder}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits")
    p.add_argument("--arch", default=None, help="student architecture (default: the protocol's, with its params)")
    p.add_argument("--arch-params", default=None, metavar="MAPPING",
                   help="architecture parameters over the protocol's, e.g. '{width: 16, depth: 2}' (as the "
                        "run's --set student.arch_params=...)")
    p.add_argument("--protocol", default=None, help="protocol whose training pool and student are used")
    p.add_argument("--seed", type=int, default=0, help="the run seed whose validation split is held out")
    p.add_argument("--zca", action="store_true", help="ZCA-whiten the dataset (for ZCA-space distillation)")
    p.add_argument("--device", default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")


def add_commands(subparsers: Any) -> None:
    if "experts" in getattr(subparsers, "choices", {}):
        return
    p = subparsers.add_parser("experts", help="expert trajectories for trajectory matching (mtt, datm)")
    sub = p.add_subparsers(dest="experts_command", metavar="SUBCOMMAND", required=True)

    t = sub.add_parser("train", help="train (resumably) expert trajectories into the cache")
    _common(t)
    t.add_argument("--num-experts", type=int, required=True)
    t.add_argument("--epochs", type=int, required=True, help="epochs per expert (snapshots 0..E)")
    t.add_argument("--lr", type=float, default=0.01, help="SGD LR (momentum 0, wd 0, constant)")
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--augmentation", default="dsa", help="augmentation of the real images (none disables)")
    t.add_argument("--expert-seed", type=int, default=0)
    t.add_argument("--optimizer", default="sgd", choices=("sgd", "gsam"),
                   help="sgd: MTT's plain-SGD experts (buffer.py, what mtt uses); gsam: DATM's experts (FTD's "
                        "buffer_FTD.py: adaptive GSAM, two gradient passes a step; what datm uses)")
    t.add_argument("--rho-max", type=float, default=0.01, help="GSAM's radius rho (gsam only; DATM: 0.01)")
    t.add_argument("--rho-min", type=float, default=0.01,
                   help="GSAM's smallest rho; must equal --rho-max, the LR being constant (gsam only)")
    t.add_argument("--alpha", type=float, default=0.3, help="GSAM's surrogate-gap weight (gsam only; DATM: 0.3)")
    t.set_defaults(func=cmd_train)

    ls = sub.add_parser("list", help="list cached and imported experts")
    ls.add_argument("--dataset", default=None)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    i = sub.add_parser("import", help="import official MTT buffers (replay_buffer_*.pt) for an architecture")
    i.add_argument("source", help="directory with replay_buffer_<n>.pt files")
    _common(i)
    i.set_defaults(func=cmd_import)
