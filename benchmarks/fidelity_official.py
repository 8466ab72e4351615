"""Differential checks against the official code: DC/DSA/DM (VICO-UoE/DatasetCondensation) and
SRe2L's recovery loss (VILA-Lab/SRe2L).

Runs the official implementation's core pieces and ddr's on identical tiny inputs on the CPU and
prints what each computes, side by side:

- the network: VICO's ``ConvNet`` (``networks.py``) and ddr's ``convnet`` with the same weights
  (ddr's state-dict keys are VICO's): logits and embeddings of the same images;
- DC/DSA's gradient-matching distance: VICO's ``match_loss`` (``utils.py``; ``ours``, ``mse``,
  ``cos``) against ddr's ``gradient_distance`` on the same per-parameter gradients, and the
  gradient of each with respect to the synthetic images;
- DM's distribution-matching loss: ``main_DM.py``'s ``sum((mean(embed(real)) - mean(embed(syn)))^2)``
  computed with VICO's network against ddr's DM loss on ddr's network with the same weights;
- with ``--sre2l``: SRe2L's recovery objective on a BatchNorm teacher (torchvision ResNet-18 with
  SRe2L's CIFAR stem, random weights and running statistics): ``CE + r_bn * (10 * L_0 + sum L_l)``
  with its ``BNFeatureHook`` (``SRe2L/*small_dataset/utils.py``) against ddr's ``BNStatistics``
  (``ddr_methods._teacherlib``), and the gradients with respect to the images.

The official code is not part of ddr: check it out anywhere and pass its folder::

    python benchmarks/fidelity_official.py --dc PATH/TO/DatasetCondensation [--sre2l PATH/TO/SRe2L] [--json out.json]

Exit status 1 when any value differs by more than ``--tol`` (default 1e-5, relative).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import torch


def _import_official(folder: Path) -> tuple[Any, Any]:
    """VICO's ``utils`` and ``networks`` modules. ``utils`` imports
    ``scipy.ndimage.interpolation.rotate``, a module path newer scipy removed; it is aliased to
    ``scipy.ndimage.rotate`` (the same function) before the import."""
    import scipy.ndimage

    if "scipy.ndimage.interpolation" not in sys.modules:
        shim = types.ModuleType("scipy.ndimage.interpolation")
        shim.rotate = scipy.ndimage.rotate  # type: ignore[attr-defined]
        sys.modules["scipy.ndimage.interpolation"] = shim
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("utils"), importlib.import_module("networks")
    finally:
        sys.path.remove(str(folder))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-12)
    return float((a - b).abs().max()) / scale


def compare(dc: Path, tol: float) -> dict[str, Any]:
    from ddr.engine.build import build_model
    from ddr_methods._matching.gradient import gradient_distance

    utils, networks = _import_official(dc)
    torch.manual_seed(0)
    official = networks.ConvNet(channel=3, num_classes=10, net_width=128, net_depth=3, net_act="relu",
                                net_norm="instancenorm", net_pooling="avgpooling", im_size=(32, 32))

    class _Cifar:  # the metadata build_model needs: CIFAR-10's shape
        channels, num_classes, image_size = 3, 10, (32, 32)

    ours = build_model("convnet", _Cifar(), seed=0)  # type: ignore[arg-type]
    ours.load_state_dict(official.state_dict(), strict=True)  # the same keys and shapes, or this raises
    g = torch.Generator().manual_seed(1)
    real = torch.randn(20, 3, 32, 32, generator=g)
    labels_real = torch.arange(20) % 10
    syn = torch.randn(10, 3, 32, 32, generator=g)
    labels_syn = torch.arange(10)
    rows: list[dict[str, Any]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor) -> None:
        rows.append({"quantity": what, "official": float(official_value.flatten()[0]),
                     "ddr": float(ddr_value.flatten()[0]), "max_rel_diff": _rel(official_value, ddr_value)})

    with torch.no_grad():
        row("ConvNet logits (20x10)", official(real), ours(real))
        row("ConvNet embed (20x2048)", official.embed(real), ours.embed(real))

    params = list(official.parameters())
    criterion = torch.nn.CrossEntropyLoss()
    gw_real = [g_.detach() for g_ in torch.autograd.grad(criterion(official(real), labels_real), params)]

    class _Args:
        device = "cpu"
        dis_metric = "ours"

    for metric in ("ours", "mse", "cos"):
        syn_o = syn.clone().requires_grad_(True)
        gw_syn = torch.autograd.grad(criterion(official(syn_o), labels_syn), params, create_graph=True)
        args = _Args()
        args.dis_metric = metric
        loss_o = utils.match_loss(gw_syn, gw_real, args)
        grad_o, = torch.autograd.grad(loss_o, syn_o)
        syn_d = syn.clone().requires_grad_(True)
        gw_syn_d = torch.autograd.grad(criterion(official(syn_d), labels_syn), params, create_graph=True)
        loss_d = gradient_distance(gw_syn_d, gw_real, metric)
        grad_d, = torch.autograd.grad(loss_d, syn_d)
        row(f"DC/DSA match_loss ({metric})", loss_o.detach(), loss_d.detach())
        row(f"  d loss / d synthetic images ({metric})", grad_o, grad_d)

    # DM (main_DM.py): loss += torch.sum((torch.mean(output_real, dim=0) - torch.mean(output_syn, dim=0))**2)
    syn_o = syn.clone().requires_grad_(True)
    loss_o = torch.sum((official.embed(real).mean(0) - official.embed(syn_o).mean(0)) ** 2)
    grad_o, = torch.autograd.grad(loss_o, syn_o)
    from ddr_methods.dm.method import DM

    class _OneClass:  # DM's loss for one class: its context and real sampler reduced to fixed inputs
        ipc, num_classes, generator = len(syn), 1, torch.Generator()

        @staticmethod
        def sample(c: int, n: int) -> torch.Tensor:
            return real

    syn_d = syn.clone().requires_grad_(True)
    loss_d = DM._distribution_loss(_OneClass(), ours, syn_d, _OneClass(), None, len(real))  # type: ignore[arg-type]
    grad_d, = torch.autograd.grad(loss_d, syn_d)
    row("DM loss (one class)", loss_o.detach(), loss_d.detach())
    row("  d loss / d synthetic images", grad_o, grad_d)
    worst = max(r["max_rel_diff"] for r in rows)
    return {"official": "VICO-UoE/DatasetCondensation", "commit": _commit(dc), "rows": rows,
            "max_rel_diff": worst, "tolerance": tol, "agree": worst <= tol}


def _commit(folder: Path) -> str | None:
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def compare_sre2l(repo: Path, tol: float) -> dict[str, Any]:
    """SRe2L's recovery loss with its BNFeatureHook against ddr's BNStatistics, same teacher and images."""
    import importlib.util

    import torchvision
    from torch import nn

    from ddr_methods._teacherlib import BNStatistics

    path = repo / "SRe2L" / "*small_dataset" / "utils.py"
    spec = importlib.util.spec_from_file_location("sre2l_small_dataset_utils", path)  # not VICO's `utils`
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    official_utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official_utils)
    torch.manual_seed(0)
    teacher = torchvision.models.get_model("resnet18", num_classes=10)
    teacher.conv1 = nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
    teacher.maxpool = nn.Identity()
    with torch.no_grad():  # non-trivial running statistics: a few training-mode passes over noise
        teacher.train()
        for _ in range(3):
            teacher(torch.randn(16, 3, 32, 32) * 1.5 + 0.2)
    teacher.eval()
    images = torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    targets = torch.arange(10)
    r_bn, first = 0.01, 10.0
    rows: list[dict[str, Any]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor) -> None:
        rows.append({"quantity": what, "official": float(official_value.flatten()[0]),
                     "ddr": float(ddr_value.flatten()[0]), "max_rel_diff": _rel(official_value, ddr_value)})

    # official: recover_cifar.py's loop body (one step), its hooks on every BatchNorm2d
    hooks = [official_utils.BNFeatureHook(m) for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    x_o = images.clone().requires_grad_(True)
    ce_o = nn.CrossEntropyLoss()(teacher(x_o), targets)
    rescale = [first] + [1.0] * (len(hooks) - 1)
    bn_o = torch.stack([h.r_feature * rescale[i] for i, h in enumerate(hooks)]).sum()
    loss_o = ce_o + r_bn * bn_o
    grad_o, = torch.autograd.grad(loss_o, x_o)
    for h in hooks:
        h.close()
    # ddr: the hooks SRe2L's plugin uses, the same objective
    x_d = images.clone().requires_grad_(True)
    with BNStatistics(teacher) as stats:
        ce_d = nn.CrossEntropyLoss()(teacher(x_d), targets)
        bn_d = stats.loss(first_multiplier=first)
    loss_d = ce_d + r_bn * bn_d
    grad_d, = torch.autograd.grad(loss_d, x_d)
    row(f"SRe2L BN statistics loss ({len(hooks)} layers, first x10)", bn_o.detach(), bn_d.detach())
    row("SRe2L recovery loss CE + 0.01 * BN", loss_o.detach(), loss_d.detach())
    row("  d loss / d images", grad_o, grad_d)
    worst = max(r["max_rel_diff"] for r in rows)
    return {"official": "VILA-Lab/SRe2L", "commit": _commit(repo), "rows": rows, "max_rel_diff": worst,
            "tolerance": tol, "agree": worst <= tol}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dc", required=True, type=Path, help="a checkout of VICO-UoE/DatasetCondensation")
    parser.add_argument("--sre2l", type=Path, default=None, help="a checkout of VILA-Lab/SRe2L (optional)")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest relative difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [compare(args.dc, args.tol)]
    if args.sre2l is not None:
        results.append(compare_sre2l(args.sre2l, args.tol))
    for result in results:
        width = max(len(r["quantity"]) for r in result["rows"])
        print(f"{result['official']} @ {result['commit']}")
        print(f"{'quantity':<{width}}  {'official':>14}  {'ddr':>14}  max rel diff")
        for r in result["rows"]:
            print(f"{r['quantity']:<{width}}  {r['official']:>14.8g}  {r['ddr']:>14.8g}  {r['max_rel_diff']:.2e}")
        print(("agree" if result["agree"] else "DIFFER") + f" within {args.tol:g} (largest {result['max_rel_diff']:.2e})\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
