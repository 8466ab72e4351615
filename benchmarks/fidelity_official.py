"""Differential checks against the official code: DC/DSA/DM (VICO-UoE/DatasetCondensation),
SRe2L's recovery loss (VILA-Lab/SRe2L), MTT's and DATM's trajectory matching
(GeorgeCazenavette/mtt-distillation, NUS-HPC-AI-Lab/DATM) and RDED's patch selection (LINs-lab/RDED).

Runs the official implementation's core pieces and ddr's on identical tiny inputs on the CPU and
prints what each computes, side by side:

- with ``--dc``: VICO's ``ConvNet`` (``networks.py``) and ddr's ``convnet`` with the same weights
  (ddr's state-dict keys are VICO's): logits and embeddings of the same images; DC/DSA's
  gradient-matching distance: VICO's ``match_loss`` (``utils.py``; ``ours``, ``mse``, ``cos``)
  against ddr's ``gradient_distance`` on the same per-parameter gradients, and the gradient of each
  with respect to the synthetic images; DM's distribution-matching loss: ``main_DM.py``'s
  ``sum((mean(embed(real)) - mean(embed(syn)))^2)`` computed with VICO's network against ddr's DM
  loss on ddr's network with the same weights;
- with ``--sre2l``: SRe2L's recovery objective on a BatchNorm teacher (torchvision ResNet-18 with
  SRe2L's CIFAR stem, random weights and running statistics): ``CE + r_bn * (10 * L_0 + sum L_l)``
  with its ``BNFeatureHook`` (``SRe2L/*small_dataset/utils.py``) against ddr's ``BNStatistics``
  (``ddr_methods._teacherlib``), and the gradients with respect to the images;
- with ``--mtt`` / ``--datm``: one iteration of the matching loop of ``distill.py`` /
  ``distill/DATM.py`` (its computation written from the formula: it runs inside their ``main()``) with the official
  ``ReparamModule`` and ``ConvNet``, from a start epoch of a short expert trajectory in
  ``buffer.py``'s format, against ddr's ``unroll`` + ``trajectory_loss``
  (``ddr_methods._trajectory.functional``) on the same weights, synthetic images, labels and
  learnable LR: the loss and its gradients with respect to the images, the LR and (DATM) the soft
  labels; DATM's soft-label initialisation against ddr's ``_init_datm``; with ``--datm`` also DATM's
  expert training (FTD's ``buffer/buffer_FTD.py``: the official ``GSAM``, ``ProportionScheduler``
  and ``utils/utils_gsam.py``'s ``epoch``) against ddr's ``gsam_step`` / ``train_gsam``
  (``ddr_methods._trajectory.gsam``) on the same ConvNet weights and minibatches: the parameters
  after one step and after each of two epochs, and the radius under a decaying LR;
- with ``--rded``: RDED's ``MultiRandomCrop``, ``selector`` and ``mix_images``
  (``synthesize/utils.py``) against ddr's ``RDED.distill`` on the same BatchNorm ConvNet teacher,
  real images and crop boxes: once with RDED's crops fed to both (scores, selection, stitching),
  once with each side resampling the boxes itself;
- with ``--d4m``: D4M's prototype and generation scripts (``distillation/gen_prototype.py``,
  ``gen_syn_image.py``) with its two diffusers pipelines (``scripts/``) against ddr's
  ``D4M.distill`` on one tiny random Stable Diffusion pipeline and the same real images: the VAE
  inputs, the scaled posterior samples, the MiniBatchKMeans prototypes and the generated images
  (needs diffusers and transformers).

The official code is not part of ddr: check it out anywhere and pass its folder (any subset)::

    python benchmarks/fidelity_official.py --dc PATH/TO/DatasetCondensation --sre2l PATH/TO/SRe2L \
        --mtt PATH/TO/mtt-distillation --datm PATH/TO/DATM --rded PATH/TO/RDED --d4m PATH/TO/D4M [--json out.json]

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


class _Cifar:  # the metadata build_model needs: CIFAR-10's shape
    name, channels, num_classes, image_size = "cifar10", 3, 10, (32, 32)


def compare(dc: Path, tol: float) -> dict[str, Any]:
    from ddr.engine.build import build_model
    from ddr_methods._matching.gradient import gradient_distance

    utils, networks = _import_official(dc)
    torch.manual_seed(0)
    official = networks.ConvNet(channel=3, num_classes=10, net_width=128, net_depth=3, net_act="relu",
                                net_norm="instancenorm", net_pooling="avgpooling", im_size=(32, 32))

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


# -- MTT and DATM: the unrolled student and the trajectory-matching loss ------------------------------

def _load_file(name: str, path: Path) -> Any:
    """The module in ``path`` under its own ``name`` (VICO's, MTT's and DATM's files share the names
    ``networks``/``utils``, so they are never imported by their plain names)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _official_convnet(networks: Any) -> torch.nn.Module:
    """``get_network('ConvNet', 3, 10, (32, 32))``: width 128, depth 3, ReLU, instance norm, average pooling."""
    return networks.ConvNet(channel=3, num_classes=10, net_width=128, net_depth=3, net_act="relu",
                            net_norm="instancenorm", net_pooling="avgpooling", im_size=(32, 32))


def _expert_buffer(networks: Any, real: torch.Tensor, labels: torch.Tensor, *, seeds: tuple[int, ...],
                   epochs: int, lr: float = 0.01, batch: int = 50) -> list[list[list[torch.Tensor]]]:
    """A short replay buffer in ``buffer.py``'s format (per expert, per epoch from 0, the list of
    ``parameters()``): the official ConvNet trained with plain SGD (lr 0.01, no momentum, no weight
    decay) on ``real`` in fixed minibatches, no augmentation."""
    buffer = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = _official_convnet(networks)
        optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0, weight_decay=0)
        timestamps = [[p.detach().clone() for p in net.parameters()]]
        for _ in range(epochs):
            for i in range(0, len(real), batch):
                loss = torch.nn.functional.cross_entropy(net(real[i:i + batch]), labels[i:i + batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            timestamps.append([p.detach().clone() for p in net.parameters()])
        buffer.append(timestamps)
    return buffer


def _official_matching_step(student_net: torch.nn.Module, trajectory: list[list[torch.Tensor]], start_epoch: int,
                            expert_epochs: int, image_syn: torch.Tensor, y_hat: torch.Tensor, syn_lr: torch.Tensor,
                            syn_steps: int, batch_syn: int, criterion: Any,
                            batches: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """What one iteration of the inner loop of ``distill.py`` (MTT) / ``distill/DATM.py`` computes,
    driving the official ``ReparamModule`` around the official ``ConvNet`` (``student_net``, built
    by the caller as ``get_network`` does before the draws). That loop lives inside their
    ``main()`` and cannot be imported, so its computation is written here from the method's
    formula, not copied: ``syn_steps`` SGD steps on the flattened parameters from the start epoch,
    then ``(||theta_T - theta*||^2 / P) / (||theta_0 - theta*||^2 / P)``, ``P`` the parameter
    count; no DSA (``--no_aug``), one GPU. Minibatches are drawn as the official loop draws them (a
    ``randperm`` split into ``batch_syn`` chunks, taken from the last) unless ``batches`` gives
    the indices. Returns the loss (before ``backward``) and the minibatches used."""
    def flat(params: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in params])

    student_net.train()
    start, target = flat(trajectory[start_epoch]), flat(trajectory[start_epoch + expert_epochs])
    theta = start.clone().requires_grad_(True)
    pending: list[torch.Tensor] = []
    used: list[torch.Tensor] = []
    for step in range(syn_steps):
        if batches is not None:
            chosen = batches[step]
        else:
            if not pending:
                pending = list(torch.randperm(len(image_syn)).split(batch_syn))
            chosen = pending.pop()
        used.append(chosen)
        loss = criterion(student_net(image_syn[chosen], flat_param=theta), y_hat[chosen])
        theta = theta - syn_lr * torch.autograd.grad(loss, theta, create_graph=True)[0]
    count = start.numel()
    reached = torch.nn.functional.mse_loss(theta, target, reduction="sum") / count
    initial = torch.nn.functional.mse_loss(start, target, reduction="sum") / count
    return reached / initial, used


def _datm_soft_cross_entropy(inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DATM's soft-label cross-entropy (``SoftCrossEntropy`` in ``distill/DATM.py``'s ``main()``),
    from its formula: the batch mean of ``-sum_k softmax(target)_k * log_softmax(inputs)_k``."""
    per_image = -(torch.nn.functional.softmax(target, dim=1) * torch.nn.functional.log_softmax(inputs, dim=1))
    return per_image.sum() / inputs.shape[0]


def compare_trajectory(repo: Path, tol: float, datm: bool = False) -> dict[str, Any]:
    """MTT's (or DATM's) matching step, official against ddr's ``unroll`` + ``trajectory_loss``."""
    from ddr.engine.build import build_model
    from ddr_methods._trajectory.experts import _epoch_vector
    from ddr_methods._trajectory.functional import (
        FunctionalStudent,
        hard_criterion,
        soft_criterion,
        trajectory_loss,
        unroll,
    )

    tag = "datm" if datm else "mtt"
    networks = _load_file(f"{tag}_official_networks", repo / "networks.py")
    reparam = _load_file(f"{tag}_official_reparam_module", repo / "reparam_module.py")
    g = torch.Generator().manual_seed(3)
    patterns = torch.randn(10, 3, 32, 32, generator=g)  # learnable classes: a pattern per class plus noise
    real_labels = torch.arange(100) % 10
    real = patterns[real_labels] + 2.5 * torch.randn(100, 3, 32, 32, generator=g)
    start_epoch, expert_epochs, syn_steps, lr_value = 1, 2, 10, 0.002
    buffer = _expert_buffer(networks, real, real_labels, seeds=(10, 11), epochs=start_epoch + expert_epochs)
    trajectory = buffer[0]

    ours = build_model("convnet", _Cifar(), seed=0)  # type: ignore[arg-type]
    ours.load_state_dict(_official_convnet(networks).state_dict(), strict=True)  # the same keys, or this raises
    rows: list[dict[str, Any]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor) -> None:
        rows.append({"quantity": what, "official": float(official_value.flatten()[0]),
                     "ddr": float(ddr_value.flatten()[0]), "max_rel_diff": _rel(official_value, ddr_value)})

    class _Recording(FunctionalStudent):
        """ddr's student, noting which synthetic images each step's minibatch holds (exact row match)."""

        def __init__(self, model: torch.nn.Module, images: torch.Tensor):
            super().__init__(model, "convnet")
            self.rows = images.detach().flatten(1)
            self.batches: list[torch.Tensor] = []

        def __call__(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            match = (x.detach().flatten(1)[:, None, :] == self.rows[None]).all(-1)
            if not bool((match.sum(1) == 1).all()):
                raise SystemExit("cannot tell which synthetic images a minibatch holds")
            self.batches.append(match.to(torch.int64).argmax(1))
            return super().__call__(flat, x)

    layout = FunctionalStudent(ours, "convnet").layout
    start_d = _epoch_vector(trajectory[start_epoch], layout, "start")  # ddr's reader of official buffers
    target_d = _epoch_vector(trajectory[start_epoch + expert_epochs], layout, "target")
    start_o = torch.cat([p.data.reshape(-1) for p in trajectory[start_epoch]], 0)
    row("start parameters, flattened (official buffer)", start_o, start_d)
    labels_syn = torch.arange(10).repeat_interleave(2)  # ipc 2, class-major: [0, 0, 1, 1, ...]
    syn = patterns[labels_syn] + 2.5 * torch.randn(20, 3, 32, 32, generator=g)
    with torch.no_grad():
        probe = reparam.ReparamModule(_official_convnet(networks))
        row("student logits at the start parameters", probe(syn, flat_param=start_o), FunctionalStudent(ours)(start_d, syn))
    soft_init = None
    if datm:  # DATM starts from real images its experts classify correctly, labelled with their logits
        syn, soft_init = _compare_datm_labels(reparam, networks, ours, buffer, real, real_labels, row)

    for batch_syn in (len(syn), 8):
        own = batch_syn == len(syn)  # full batch: each side draws its own permutations from the same seeded generator
        label = f"batch_syn {batch_syn}" + (", own draws" if own else ", ddr's draws")
        image_o = syn.clone().requires_grad_(True)
        lr_o = torch.tensor(lr_value).requires_grad_(True)
        image_d = syn.clone().requires_grad_(True)
        lr_d = torch.tensor(lr_value).requires_grad_(True)
        if soft_init is not None:
            y_o = soft_init.clone().requires_grad_(True)
            y_d = soft_init.clone().requires_grad_(True)
        else:
            y_o = y_d = labels_syn
        student = _Recording(ours, syn)
        if own:
            torch.manual_seed(7)
            generator = torch.default_generator
        else:
            generator = torch.Generator().manual_seed(7)
        final = unroll(student, start_d, image_d, y_d, lr_d, steps=syn_steps, batch_size=batch_syn,
                       generator=generator, criterion=soft_criterion if datm else hard_criterion)
        loss_d = trajectory_loss(final, start_d, target_d)
        loss_d.backward()
        student_net = reparam.ReparamModule(_official_convnet(networks))
        if own:
            torch.manual_seed(7)
        loss_o, used = _official_matching_step(
            student_net, trajectory, start_epoch, expert_epochs, image_o, y_o, lr_o, syn_steps, batch_syn,
            _datm_soft_cross_entropy if datm else torch.nn.CrossEntropyLoss(), None if own else student.batches)
        loss_o.backward()
        if own:
            row(f"minibatch indices, {syn_steps} steps ({label})", torch.stack(used), torch.stack(student.batches))
        row(f"matching loss param_loss / param_dist ({label})", loss_o.detach(), loss_d.detach())
        assert image_o.grad is not None and image_d.grad is not None and lr_o.grad is not None and lr_d.grad is not None
        row("  d loss / d synthetic images", image_o.grad, image_d.grad)
        row("  d loss / d syn_lr", lr_o.grad, lr_d.grad)
        if datm:
            assert isinstance(y_o, torch.Tensor) and y_o.grad is not None and isinstance(y_d, torch.Tensor)
            assert y_d.grad is not None
            row("  d loss / d soft labels (logits)", y_o.grad, y_d.grad)
    worst = max(r["max_rel_diff"] for r in rows)
    name = "NUS-HPC-AI-Lab/DATM" if datm else "GeorgeCazenavette/mtt-distillation"
    return {"official": name, "commit": _commit(repo), "rows": rows, "max_rel_diff": worst,
            "tolerance": tol, "agree": worst <= tol}


def _compare_datm_labels(reparam: Any, networks: Any, ours: torch.nn.Module, buffer: list[list[list[torch.Tensor]]],
                         real: torch.Tensor, real_labels: torch.Tensor,
                         row: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """DATM's soft-label initialisation (``pix_init: samples_predicted_correctly``): ddr's
    ``_init_datm`` picks the images; both sides then average, per image, the logits of the experts
    (at their last epoch, ``Label_Model_Timestamp = -1``) that classify it correctly. Returns the
    images and the official labels (the start of the matching step)."""
    from ddr_methods._trajectory.experts import _epoch_vector
    from ddr_methods._trajectory.functional import FunctionalStudent
    from ddr_methods._trajectory.matching import TrajectoryMatching

    student = FunctionalStudent(ours, "convnet")
    flats = [[_epoch_vector(e, student.layout, "expert") for e in expert] for expert in buffer]

    class _Expert:
        def __init__(self, snapshots: list[torch.Tensor]):
            self.snapshots = snapshots
            self.epochs = len(snapshots) - 1

        def params(self, epoch: int, device: Any = "cpu") -> torch.Tensor:
            return self.snapshots[epoch]

    class _Train:
        @staticmethod
        def take(index: torch.Tensor) -> torch.Tensor:
            return real[index]

    class _Ctx:
        ipc, num_classes, device, train = 2, 10, "cpu", _Train()
        generator = torch.Generator().manual_seed(5)

    class _Sampler:
        indices = [torch.nonzero(real_labels == c).flatten() for c in range(10)]

    images, soft_d = TrajectoryMatching._init_datm(_Ctx(), _Sampler(), student,  # type: ignore[arg-type]
                                                   [_Expert(f) for f in flats], None, "correct")  # type: ignore[misc]
    # official (distill/DATM.py, the samples_predicted_correctly branch), on the images ddr chose
    temp_net = reparam.ReparamModule(_official_convnet(networks))
    temp_net.eval()
    label_syn = torch.arange(10).repeat_interleave(2)
    logits = []
    batch_size = 256
    with torch.no_grad():
        for j in buffer:
            temp_logits = None
            for select_times in range((len(images) + batch_size - 1) // batch_size):
                current_data_batch = images[batch_size * select_times: batch_size * (select_times + 1)].detach()
                temp_params = j[-1]
                initialize_labels_params = torch.cat([p.data.reshape(-1) for p in temp_params], 0)
                initialized_labels = temp_net(current_data_batch, flat_param=initialize_labels_params)
                temp_logits = initialized_labels.detach() if temp_logits is None else torch.cat(
                    (temp_logits, initialized_labels.detach()), 0)
            assert temp_logits is not None
            logits.append(temp_logits.detach().cpu())
    logits_tensor = torch.stack(logits)
    predicted_labels = torch.argmax(logits_tensor, dim=2).cpu()
    correct_predictions = predicted_labels == label_syn.view(1, -1)
    mask = correct_predictions.unsqueeze(2)
    correct_logits = logits_tensor * mask.float()
    correct_logits_per_model = correct_logits.sum(dim=0)
    num_correct_images_per_model = correct_predictions.sum(dim=0, dtype=torch.float)
    soft_o = correct_logits_per_model / num_correct_images_per_model.unsqueeze(1)
    right = correct_predictions.sum(0)
    row(f"initial soft labels, {len(images)} images ({int((right == 1).sum())} right for one expert, "
        f"{int((right == 0).sum())} for none)", soft_o, soft_d.detach())
    return images.detach(), soft_o


# -- DATM's experts: GSAM, as FTD's buffer/buffer_FTD.py trains them ----------------------------------

def _import_datm_gsam(repo: Path) -> tuple[Any, Any, Any]:
    """DATM's ``networks``, its ``buffer/gsam`` package (``GSAM``, ``ProportionScheduler``,
    ``CosineScheduler``) and ``utils/utils_gsam.py`` (whose ``epoch`` runs ``buffer_FTD.py``'s
    minibatch loop), each under a name of its own. ``utils_gsam`` imports ``networks`` by its plain
    name (DATM's is put there for the import, then the previous entry restored) and
    ``scipy.ndimage.interpolation.rotate`` (aliased to ``scipy.ndimage.rotate``, as for VICO's)."""
    import importlib.util

    import scipy.ndimage

    networks = _load_file("datm_gsam_official_networks", repo / "networks.py")
    folder = repo / "buffer" / "gsam"
    spec = importlib.util.spec_from_file_location("datm_official_gsam", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None or not (folder / "__init__.py").is_file():
        raise SystemExit(f"cannot import {folder / '__init__.py'}")
    gsam = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gsam  # its relative imports (.gsam, .scheduler, .util) resolve under this name
    spec.loader.exec_module(gsam)
    if "scipy.ndimage.interpolation" not in sys.modules:
        shim = types.ModuleType("scipy.ndimage.interpolation")
        shim.rotate = scipy.ndimage.rotate  # type: ignore[attr-defined]
        sys.modules["scipy.ndimage.interpolation"] = shim
    previous = sys.modules.get("networks")
    sys.modules["networks"] = networks
    try:
        utils = _load_file("datm_official_utils_gsam", repo / "utils" / "utils_gsam.py")
    finally:
        if previous is None:
            sys.modules.pop("networks", None)
        else:
            sys.modules["networks"] = previous
    return gsam, utils, networks


def compare_gsam(repo: Path, tol: float) -> dict[str, Any]:
    """DATM's expert training (FTD's ``buffer_FTD.py``: GSAM + ``ProportionScheduler``) against
    ddr's ``gsam_step`` / ``train_gsam`` (``ddr_methods._trajectory.gsam``).

    The official side is built as ``buffer_FTD.py`` lines 79-88 build it (base SGD, momentum 0,
    weight decay 0; a ``StepLR`` with ``gamma=1``; ``ProportionScheduler(max_lr=min_lr=lr)``;
    ``GSAM(adaptive=True)``) around the official ConvNet-3 (width 128, instance norm), and trained by
    the official ``utils_gsam.epoch`` (``set_closure``, ``step``, ``scheduler.step``,
    ``update_rho_t`` per minibatch) without augmentation; ddr's ``convnet`` starts from the same
    weights (``strict=True``) and trains with ``train_gsam``, whose per-epoch ``randperm`` the
    official DataLoader replays as its sampler (160 images of 10 learnable classes, batch 64:
    minibatches of 64, 64 and 32), two epochs. Two settings: DATM's (rho 0.01, alpha 0.3) and a larger
    radius (rho 0.5, alpha 0.8) that moves the update further from plain SGD. Also: one GSAM step
    on one minibatch, and the radius the official ``ProportionScheduler`` gives under its
    ``CosineScheduler`` against ddr's ``ProportionalRho`` on the same LRs."""
    from ddr.engine.build import build_model
    from ddr.engine.data import Split
    from ddr_methods._trajectory.functional import flat_parameters
    from ddr_methods._trajectory.gsam import ProportionalRho, gsam_step, train_gsam

    gsam, utils, networks = _import_datm_gsam(repo)
    g = torch.Generator().manual_seed(4)
    patterns = torch.randn(10, 3, 32, 32, generator=g)
    labels = torch.arange(160) % 10
    real = patterns[labels] + 2.5 * torch.randn(160, 3, 32, 32, generator=g)
    lr, batch, epochs = 0.01, 64, 2
    per_epoch = (len(real) + batch - 1) // batch
    rows: list[dict[str, Any]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor) -> None:
        rows.append({"quantity": what, "official": float(official_value.flatten()[0]),
                     "ddr": float(ddr_value.flatten()[0]), "max_rel_diff": _rel(official_value, ddr_value)})

    def flat_official(net: torch.nn.Module) -> torch.Tensor:  # buffer_FTD.py's [p for p in parameters()], flattened
        return torch.cat([p.detach().reshape(-1).clone() for p in net.parameters()])

    def pair(seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
        torch.manual_seed(seed)
        official = _official_convnet(networks)
        ours = build_model("convnet", _Cifar(), seed=0)  # type: ignore[arg-type]
        ours.load_state_dict(official.state_dict(), strict=True)
        return official, ours

    def official_optimizer(net: torch.nn.Module, rho: float, alpha: float, steps: int) -> tuple[Any, Any]:
        base = torch.optim.SGD(net.parameters(), lr=lr, momentum=0, weight_decay=0)
        scheduler = torch.optim.lr_scheduler.StepLR(base, step_size=steps, gamma=1)
        rho_scheduler = gsam.ProportionScheduler(pytorch_lr_scheduler=scheduler, max_lr=lr, min_lr=lr,
                                                 max_value=rho, min_value=rho)
        optimizer = gsam.GSAM(params=net.parameters(), base_optimizer=base, model=net, gsam_alpha=alpha,
                              rho_scheduler=rho_scheduler, adaptive=True)
        optimizer.zero_grad()
        return optimizer, scheduler

    class _Args:
        device, dataset, dsa = "cpu", "CIFAR10", False

    # one step on one minibatch (DATM's rho and alpha)
    official, ours = pair(20)
    optimizer, _ = official_optimizer(official, 0.01, 0.3, 1)
    x, y = real[:batch], labels[:batch]
    optimizer.set_closure(torch.nn.CrossEntropyLoss(), x, y)
    _, loss_o = optimizer.step()
    loss_d = gsam_step(ours, lambda net: torch.nn.functional.cross_entropy(net(x), y), lr=lr, rho=0.01, alpha=0.3)
    row("one GSAM step (rho 0.01, alpha 0.3): loss at w", loss_o, loss_d)
    row("  parameters after the step", flat_official(official), flat_parameters(ours))

    sgd_distance = {}
    for rho, alpha in ((0.01, 0.3), (0.5, 0.8)):
        official, ours = pair(21)
        start = flat_parameters(ours)
        optimizer, scheduler = official_optimizer(official, rho, alpha, epochs * per_epoch)
        orders = torch.Generator().manual_seed(9)  # train_gsam's data order: a randperm per epoch
        dataset = utils.TensorDataset(real, labels)
        official_snapshots = [flat_official(official)]
        for _ in range(epochs):
            order = torch.randperm(len(real), generator=orders).tolist()
            loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=order, num_workers=0)
            utils.epoch("train", dataloader=loader, net=official, optimizer=optimizer,
                        criterion=torch.nn.CrossEntropyLoss(), args=_Args(), aug=False, scheduler=scheduler)
            official_snapshots.append(flat_official(official))
        ddr_snapshots = [flat_parameters(ours)]

        def keep(net: torch.nn.Module, into: list[torch.Tensor] = ddr_snapshots) -> None:
            into.append(flat_parameters(net))

        train_gsam(ours, Split(labels=labels, images=real), epochs=epochs, lr=lr, batch_size=batch, rho_max=rho,
                   rho_min=rho, alpha=alpha, generator=torch.Generator().manual_seed(9), on_epoch=keep)
        for epoch in (1, 2):
            row(f"rho {rho}, alpha {alpha}: parameters after epoch {epoch} ({per_epoch * epoch} GSAM steps)",
                official_snapshots[epoch], ddr_snapshots[epoch])
        # for scale: how far plain SGD on the same minibatches ends from the GSAM expert
        plain = build_model("convnet", _Cifar(), seed=0)  # type: ignore[arg-type]
        plain.load_state_dict(pair(21)[0].state_dict(), strict=True)
        sgd = torch.optim.SGD(plain.parameters(), lr=lr)
        orders = torch.Generator().manual_seed(9)
        for _ in range(epochs):
            order = torch.randperm(len(real), generator=orders)
            for i in range(0, len(real), batch):
                index = order[i:i + batch]
                sgd.zero_grad()
                torch.nn.functional.cross_entropy(plain(real[index]), labels[index]).backward()
                sgd.step()
        moved = ddr_snapshots[-1] - start
        sgd_distance[f"rho {rho}, alpha {alpha}"] = _rel(moved, flat_parameters(plain) - start)

    # the radius under a decaying LR: the official ProportionScheduler reading its CosineScheduler
    probe = torch.nn.Linear(2, 2)
    base = torch.optim.SGD(probe.parameters(), lr=0.1)
    cosine = gsam.CosineScheduler(T_max=20, max_value=0.1, min_value=0.001, optimizer=base)
    proportion = gsam.ProportionScheduler(pytorch_lr_scheduler=cosine, max_lr=0.1, min_lr=0.001, max_value=0.05,
                                          min_value=0.01)
    ours_rho = ProportionalRho(max_lr=0.1, min_lr=0.001, max_rho=0.05, min_rho=0.01)
    rho_o, rho_d = [], []
    for _ in range(20):
        cosine.step()
        rho_o.append(proportion.step())
        rho_d.append(ours_rho(float(cosine.lr())))
    row("rho over 20 steps of a cosine LR 0.1 -> 0.001 (rho 0.05 -> 0.01)", torch.tensor(rho_o, dtype=torch.float64),
        torch.tensor(rho_d, dtype=torch.float64))
    worst = max(r["max_rel_diff"] for r in rows)
    note = "for scale, GSAM against plain SGD on the same minibatches (relative difference of the update): " + \
        ", ".join(f"{k}: {v:.2e}" for k, v in sgd_distance.items())
    return {"official": "NUS-HPC-AI-Lab/DATM (GSAM experts, buffer/buffer_FTD.py)", "commit": _commit(repo),
            "rows": rows, "max_rel_diff": worst, "tolerance": tol, "agree": worst <= tol, "note": note}


# -- RDED: patch scores, selection and stitching ---------------------------------------------------

def _import_rded(repo: Path) -> Any:
    """RDED's ``synthesize/utils.py``. It reads ``argument.py``'s parsed command line at import (that
    argparse would parse this script's arguments), so a stand-in ``argument`` module with an empty
    namespace is put in its place for the import; it imports ``synthesize.models`` from the checkout;
    it replaces torchvision's ``WeightsEnum.get_state_dict`` at import, which is restored after."""
    from torchvision.models._api import WeightsEnum

    saved_get_state_dict = WeightsEnum.get_state_dict
    saved_argument = sys.modules.get("argument")
    stand_in = types.ModuleType("argument")
    stand_in.args = argparse.Namespace()  # type: ignore[attr-defined]
    sys.modules["argument"] = stand_in
    sys.path.insert(0, str(repo))
    try:
        return _load_file("rded_official_synthesize_utils", repo / "synthesize" / "utils.py")
    finally:
        sys.path.remove(str(repo))
        WeightsEnum.get_state_dict = saved_get_state_dict  # type: ignore[method-assign]
        if saved_argument is None:
            sys.modules.pop("argument", None)
        else:
            sys.modules["argument"] = saved_argument


def _patch_indices(stitched: torch.Tensor, crops: torch.Tensor, factor: int) -> torch.Tensor:
    """``[n, factor**2]``: which crop (``image * num_crop + crop`` of ``crops [N, m, C, h, w]``) fills
    each grid slot (row-major) of each stitched image; -1 where none matches exactly."""
    n_img, m = crops.shape[:2]
    h, w = crops.shape[-2:]
    flat = crops.reshape(n_img * m, -1)
    out = torch.full((len(stitched), factor * factor), -1, dtype=torch.int64)
    for i, image in enumerate(stitched):
        for k in range(factor * factor):
            r, c = divmod(k, factor)
            part = image[:, r * h:(r + 1) * h, c * w:(c + 1) * w].reshape(1, -1)
            hit = torch.nonzero((flat == part).all(1)).flatten()
            if len(hit):
                out[i, k] = int(hit[0])
    return out


def compare_rded(repo: Path, tol: float) -> list[dict[str, Any]]:
    """RDED's ``MultiRandomCrop`` + ``selector`` + ``mix_images`` against ddr's ``RDED.distill`` on
    the same teacher, real images and crop boxes."""
    from unittest import mock

    from torchvision import transforms

    import ddr_methods.rded.method as rded_method

    official = _import_rded(repo)
    num_classes, per_class, ipc, factor, num_crop, size = 2, 12, 2, 2, 5, 32
    torch.manual_seed(0)
    teacher = sys.modules["synthesize.models"].ConvNet(  # RDED's conv3 observer: BatchNorm ConvNet-3
        num_classes=num_classes, net_norm="batch", net_act="relu", net_pooling="avgpooling", net_depth=3,
        net_width=128, channel=3, im_size=(size, size))
    with torch.no_grad():  # non-trivial running statistics
        teacher.train()
        for _ in range(3):
            teacher(torch.randn(16, 3, size, size) * 1.2 + 0.1)
        teacher.classifier.weight *= 20  # confident, spread scores, as a trained teacher's (not near ln 2)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad = False
    coarse = torch.rand(num_classes * per_class, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    pixels01 = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")  # smooth, as photographs
    normalized = official.normalize(pixels01)  # ddr works in the dataset's (normalised) pixel space
    rows: list[dict[str, Any]] = []
    boxes_seen: list[tuple[int, int, int, int]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor) -> None:
        rows.append({"quantity": what, "official": float(official_value.flatten()[0]),
                     "ddr": float(ddr_value.flatten()[0]),
                     "max_rel_diff": _rel(official_value.double(), ddr_value.double())})

    taken: list[torch.Tensor] = []

    class _Train:
        @staticmethod
        def take(index: torch.Tensor) -> torch.Tensor:
            taken.append(index)
            return normalized[index]

    class _Dataset:
        name, image_size, pixel_space = "rded-check", (size, size), "normalized"

    class _Ctx:
        params = {"factor": factor, "num_crop": num_crop, "mipc": per_class, "scale_min": 0.08, "scale_max": 1.0,
                  "labels": "teacher", "batch_size": 256}
        dataset, train, device = _Dataset(), _Train(), "cpu"
        teacher = staticmethod(lambda: teacher)

        def __init__(self) -> None:
            self.ipc, self.num_classes = ipc, num_classes
            self.generator = torch.Generator().manual_seed(0)

        @staticmethod
        def class_indices() -> list[torch.Tensor]:
            return [torch.arange(c * per_class, (c + 1) * per_class) for c in range(num_classes)]

        @staticmethod
        def progress(items: Any, total: int, desc: str) -> Any:
            return items

    def run(mode: str) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """ddr's RDED with its crops replaced (``official``: RDED's own crops of the same images;
        ``own``: ddr's resampling of the boxes RDED drew), and RDED's pipeline on RDED's crops."""
        taken.clear()
        per_class_out: list[dict[str, torch.Tensor]] = []
        ce_ddr: list[torch.Tensor] = []
        original_crop = rded_method.multi_random_crop

        def crops(images: torch.Tensor, n_crop: int, out_size: tuple[int, int], scale: tuple[float, float],
                  generator: torch.Generator) -> torch.Tensor:
            c = len(per_class_out)
            index = taken[-1]
            boxes: list[tuple[int, int, int, int]] = []
            get_params = transforms.RandomResizedCrop.get_params

            def recording(img: torch.Tensor, scale: list[float], ratio: list[float]) -> tuple[int, int, int, int]:
                box = get_params(img, scale, ratio)
                boxes.append(box)
                return box

            torch.manual_seed(100 + c)
            cropper = official.MultiRandomCrop(num_crop=n_crop, size=size, factor=factor)
            with mock.patch.object(transforms.RandomResizedCrop, "get_params", staticmethod(recording)):
                # the dataset transform, image by image: ToTensor (pixels01), MultiRandomCrop, normalize
                crops_o = torch.stack([official.normalize(cropper(img)) for img in pixels01[index]])  # [N, m, ...]
            n = len(index)
            boxes_seen.extend(boxes)
            box = torch.tensor(boxes, dtype=torch.float32).view(n, n_crop, 4).transpose(0, 1).reshape(-1, 4)
            fixed = (box[:, 0], box[:, 1], box[:, 2], box[:, 3])  # crop j of image n at j * N + n, as ddr's repeat
            with mock.patch.object(rded_method, "sample_crop_boxes", lambda *a, **k: fixed):
                crops_d = original_crop(images, n_crop, out_size, scale, generator)  # [m, N, ...]
            scores: list[torch.Tensor] = []

            def cross_entropy(y_pre: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                out = official_cross_entropy(y_pre, y)
                scores.append(out)
                return out

            official_cross_entropy = official.cross_entropy
            saved_cuda = torch.Tensor.cuda
            torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # selector calls .cuda()
            try:
                with mock.patch.object(official, "cross_entropy", cross_entropy):
                    selected = official.selector(ipc * factor ** 2, teacher, crops_o, torch.full((n,), c),
                                                 size, m=n_crop)
            finally:
                torch.Tensor.cuda = saved_cuda  # type: ignore[method-assign]
            mixed = official.mix_images(selected, size, factor, ipc)
            per_class_out.append({"crops_o": crops_o, "crops_d": crops_d.transpose(0, 1), "mixed": mixed,
                                  "scores_o": scores[0].reshape(n_crop, n)})
            return crops_d if mode == "own" else crops_o.transpose(0, 1)

        class _F:  # ddr's torch.nn.functional, noting the per-crop cross-entropies it computes
            def __getattr__(self, name: str) -> Any:
                return getattr(torch.nn.functional, name)

            @staticmethod
            def cross_entropy(*args: Any, **kwargs: Any) -> torch.Tensor:
                out = torch.nn.functional.cross_entropy(*args, **kwargs)
                ce_ddr.append(out)
                return out

        with mock.patch.object(rded_method, "multi_random_crop", crops), mock.patch.object(rded_method, "F", _F()):
            result = rded_method.RDED().distill(_Ctx())  # type: ignore[arg-type]
        for c, out in enumerate(per_class_out):
            out["scores_d"] = ce_ddr[c].reshape(num_crop, -1)
        return result.images, per_class_out

    commit = _commit(repo)
    results = []
    for mode in ("official", "own"):
        stitched_d, classes = run(mode)
        rows = []  # row() appends to the list bound here
        if mode == "own":
            crops_o = torch.cat([out["crops_o"] for out in classes])  # [N, m, C, h, w], every class
            crops_d = torch.cat([out["crops_d"] for out in classes])
            sides = torch.tensor(boxes_seen[-len(crops_o) * num_crop:])[:, 2].view(len(crops_o), num_crop)
            patch = size // factor
            for what, where in (("larger than the patch (downscaled)", sides > patch),
                                ("smaller than the patch (upscaled)", sides < patch),
                                ("as large as the patch (copied)", sides == patch)):
                if bool(where.any()):
                    row(f"crops, same boxes, {int(where.sum())} {what}", crops_o[where], crops_d[where])
        suffix = "RDED's crops in both" if mode == "official" else "each side's own crops"
        for c, out in enumerate(classes):
            n = out["crops_o"].shape[0]
            crops_ddr = out["crops_o"] if mode == "official" else out["crops_d"]
            row(f"patch scores, teacher CE on class {c} ({num_crop}x{n}; {suffix})", out["scores_o"], out["scores_d"])
            chosen_o = _patch_indices(out["mixed"], out["crops_o"], factor)
            chosen_d = _patch_indices(stitched_d[c * ipc:(c + 1) * ipc], crops_ddr, factor)
            best = int((out["scores_o"].argmin(0) == out["scores_d"].argmin(0)).sum())
            both = len(set(chosen_o.flatten().tolist()) & set(chosen_d.flatten().tolist()))
            same = int((chosen_o == chosen_d).sum())
            row(f"  selected patches, image*{num_crop}+crop (best crop alike for {best}/{n} images; "
                f"{both}/{chosen_o.numel()} in both sets, {same} in the same slot)", chosen_o.double(), chosen_d.double())
            row(f"  stitched images of class {c} ({ipc}x3x{size}x{size})", out["mixed"], stitched_d[c * ipc:(c + 1) * ipc])
        worst = max(r["max_rel_diff"] for r in rows)
        what = ("scoring, selection and stitching on RDED's crops" if mode == "official"
                else "crops (RDED's boxes, each side's resampling) and what follows")
        results.append({"official": f"LINs-lab/RDED ({what})", "commit": commit, "rows": rows,
                        "max_rel_diff": worst, "tolerance": tol, "agree": worst <= tol})
    return results


# -- D4M: the latent prototypes and the generation from them ------------------------------------------

_D4M_PIPELINES = {"StableDiffusionGenLatentsPipeline": "pipeline_stable_diffusion_gen_latents",
                  "StableDiffusionLatents2ImgPipeline": "pipeline_stable_diffusion_latents2img"}


def _import_d4m(repo: Path) -> tuple[Any, Any, list[str]]:
    """D4M's ``distillation/gen_prototype.py`` and ``gen_syn_image.py``, importable as D4M's README
    sets them up, done in memory: its two pipeline files (``scripts/``) are loaded as modules of the
    installed diffusers (``diffusers.pipelines.stable_diffusion.<file>``, so their relative imports
    resolve) and exposed as ``diffusers.StableDiffusionGenLatentsPipeline`` / ``...Latents2ImgPipeline``
    (its "Modify Diffusers Library" steps); diffusers moved ``randn_tensor`` from ``diffusers.utils``
    to ``diffusers.utils.torch_utils`` (the same function, aliased back); both scripts import
    ``ipdb``, unused (a stand-in module), and ``dataset_utils`` from their folder. Returns the two
    modules and the names to remove again (:func:`_forget_d4m`)."""
    import importlib.util

    import diffusers
    import diffusers.utils
    from diffusers.utils.torch_utils import randn_tensor

    added: list[str] = []
    if not hasattr(diffusers.utils, "randn_tensor"):
        diffusers.utils.randn_tensor = randn_tensor  # type: ignore[attr-defined]
        added.append("diffusers.utils.randn_tensor")
    for cls, stem in _D4M_PIPELINES.items():
        name = f"diffusers.pipelines.stable_diffusion.{stem}"
        path = repo / "scripts" / f"{stem}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise SystemExit(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        added.append(name)
        spec.loader.exec_module(module)
        setattr(diffusers, cls, getattr(module, cls))
        added.append(f"diffusers.{cls}")
    if "ipdb" not in sys.modules:
        sys.modules["ipdb"] = types.ModuleType("ipdb")
        added.append("ipdb")
    folder = repo / "distillation"
    sys.path.insert(0, str(folder))
    try:
        gen_prototype = _load_file("d4m_gen_prototype", folder / "gen_prototype.py")
        gen_syn_image = _load_file("d4m_gen_syn_image", folder / "gen_syn_image.py")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("dataset_utils", None)  # bound in both; D4M's name is too generic to leave behind
    return gen_prototype, gen_syn_image, added


def _forget_d4m(added: list[str]) -> None:
    """Undo :func:`_import_d4m`'s additions to diffusers and ``sys.modules``."""
    import diffusers
    import diffusers.utils

    for name in added:
        if name == "diffusers.utils.randn_tensor":
            delattr(diffusers.utils, "randn_tensor")
        elif name.startswith("diffusers.") and name.count(".") == 1:
            delattr(diffusers, name.split(".")[1])
        else:
            sys.modules.pop(name, None)


def _smooth_images(n: int, side: int, seed: int) -> torch.Tensor:
    """``n`` smooth random RGB images, 0..1, ``side`` px: 8x8 noise upsampled bilinearly."""
    noise = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(noise, size=(side, side), mode="bilinear", align_corners=False)


class _Torch:
    """A stand-in for the ``torch`` module one official or ddr module sees: every attribute is
    torch's, except those given."""

    def __init__(self, **replaced: Any) -> None:
        self._replaced = replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(torch, name)


def compare_d4m(repo: Path, tol: float, resolution: int = 64) -> list[dict[str, Any]]:
    """D4M's prototype and generation code (``gen_prototype.py``, ``gen_syn_image.py`` and its two
    diffusers pipelines) against ddr's ``D4M.distill`` on one tiny random Stable Diffusion pipeline
    (:func:`ddr_methods.d4m.smoke.tiny_stable_diffusion`) and the same real images.

    Inputs: 2 classes x 7 smooth random 32 px RGB images written as PNG files in an ImageFolder
    tree, a label file of D4M's format, ipc 2, ``km_expand`` 2 (chunks of 4 latents: one full
    chunk and a remainder of 3 per class), images resized to ``resolution`` px (D4M: 512), strength
    0.7, guidance 8, 50 steps, D4M's negative prompt. The official side runs ``gen_label_list``,
    ``load_dataset`` (shuffled, batch 1), ``prototype_kmeans`` with its ``StableDiffusionGenLatentsPipeline``,
    ``gen_prototype``, ``save_prototype`` and ``load_prototype`` and ``gen_syn_images`` with its
    ``StableDiffusionLatents2ImgPipeline``; ddr's side is ``D4M.distill`` with ``label_file``,
    ``encode_batch`` 1 and ``generate_batch`` 1, given the official loader's images (so the pixels
    encoded are the same) in the official loader's order (its random choice of images replaced by
    that order). The random numbers: ddr's encoder is handed, for each image, a generator in the
    state D4M's global generator had before its posterior draw for that image; D4M's generation is
    seeded, per prototype, with the seed ddr drew for it."""
    import contextlib
    import io
    import tempfile
    import warnings
    from unittest import mock

    import numpy as np
    from PIL import Image

    import ddr_methods.d4m.method as d4m_method
    from ddr_methods.d4m import ddr_methods as d4m_specs
    from ddr_methods.d4m.smoke import tiny_stable_diffusion

    try:
        import diffusers.utils.logging
        import transformers.utils.logging
    except ImportError as exc:
        raise SystemExit(f"the D4M check needs diffusers and transformers: {exc}") from None
    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    gen_prototype, gen_syn_image, added = _import_d4m(repo)
    quiet: list[contextlib.AbstractContextManager[Any]] = [
        mock.patch.object(gen_prototype, "tqdm", lambda items, **kw: items),
        mock.patch.object(gen_syn_image, "tqdm", lambda items, **kw: items),
        contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings()]  # its prints, LoraLoaderMixin's notice
    num_classes, per_class, side, ipc, km_expand = 2, 7, 32, 2, 2
    names = ["tench, Tinca tinca", "goldfish, Carassius auratus"]
    scratch = tempfile.TemporaryDirectory(prefix="ddr-d4m-")
    root = Path(scratch.name)
    rows: list[dict[str, Any]] = []
    gen_rows: list[dict[str, Any]] = []

    def row(what: str, official_value: torch.Tensor, ddr_value: torch.Tensor, *, counted: bool = True,
            into: list[dict[str, Any]] | None = None) -> None:
        a, b = official_value.double(), ddr_value.double()
        mean = float((a - b).abs().mean())
        (rows if into is None else into).append({
            "quantity": what if counted else f"{what} [deviation, not counted; mean |diff| {mean:.1e}]",
            "official": float(a.flatten()[0]), "ddr": float(b.flatten()[0]), "max_rel_diff": _rel(a, b),
            "mean_abs_diff": mean, "counted": counted})

    saved_cuda = torch.Tensor.cuda
    stack = contextlib.ExitStack()
    try:
        for context in quiet:
            stack.enter_context(context)
        warnings.simplefilter("ignore", FutureWarning)
        folder = tiny_stable_diffusion(root / "sd", sample_size=resolution)
        files: list[Path] = []
        pngs = (_smooth_images(num_classes * per_class, side, seed=3) * 255).round().to(torch.uint8)
        for split in ("train", "val"):  # load_dataset opens val too
            for c in range(num_classes):
                (root / "data" / split / f"class{c}").mkdir(parents=True)
                for j in range(per_class):
                    path = root / "data" / split / f"class{c}" / f"{j}.png"
                    Image.fromarray(pngs[c * per_class + j].permute(1, 2, 0).numpy()).save(path)
                    if split == "train":
                        files.append(path)
        label_file = root / "labels.txt"
        label_file.write_text(f"{names[0]}\tn01440764\n{names[1]}\tn01443537\n")
        args = argparse.Namespace(batch_size=1, data_dir=str(root / "data"), dataset="imagenet", ipc=ipc,
                                  km_expand=km_expand, label_file_path=str(label_file), num_workers=0,
                                  save_prototype_path=str(root / "prototypes"), size=resolution, device="cpu",
                                  strength=0.7, guidance_scale=8.0, save_init_image_path=str(root / "syn"),
                                  prototype_path=str(root / "prototypes" / f"imagenet-ipc{ipc}-kmexpand{km_expand}.json"))

        # -- official: gen_prototype.py's main(), on the CPU in float32 (D4M: CUDA, float16) ----------
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # prototype_kmeans calls .cuda()
        label_list = gen_prototype.gen_label_list(args)
        torch.manual_seed(0)
        trainloader, _ = gen_prototype.load_dataset(args)
        transform = trainloader.dataset.transform
        loaded = [transform(Image.open(f).convert("RGB")) for f in files]  # what load_dataset gives for each file
        latents_pipe = gen_prototype.StableDiffusionGenLatentsPipeline.from_pretrained(str(folder))
        latents_pipe.set_progress_bar_config(disable=True)
        official: dict[str, Any] = {"order": [], "state": {}, "latents": {}, "encoded": {}}

        def encoding(encode: Any, record: dict[int, torch.Tensor], current: list[int]) -> Any:
            def wrapped(x: torch.Tensor, *a: Any, **k: Any) -> Any:
                record[current[-1]] = x.detach().clone()
                return encode(x, *a, **k)
            return wrapped

        current_o: list[int] = []
        latents_pipe.vae.encode = encoding(latents_pipe.vae.encode, official["encoded"], current_o)

        class GenLatents:  # prototype_kmeans' `pipe`: the official pipeline, watched
            def __call__(self, **kwargs: Any) -> Any:
                image = kwargs["image"]
                index = next(i for i, x in enumerate(loaded) if torch.equal(x, image[0]))
                official["order"].append(index)
                official["state"][index] = torch.get_rng_state()  # its first draw is the posterior sample
                current_o.append(index)
                init_latents, noised = latents_pipe(**kwargs)
                official["latents"][index] = init_latents[0].detach().clone()
                return init_latents, noised

        km_models = gen_prototype.initialize_km_models(label_list, args)
        fitted = gen_prototype.prototype_kmeans(pipe=GenLatents(), data_loader=trainloader, label_list=label_list,
                                                km_models=km_models, args=args)
        prototype = gen_prototype.gen_prototype(label_list, fitted)
        gen_prototype.save_prototype(prototype, args)
        torch.Tensor.cuda = saved_cuda  # type: ignore[method-assign]
        order = {c: [i for i in official["order"] if i // per_class == c] for c in range(num_classes)}
        finished = official["order"][-1] // per_class  # the class whose remainder prototype_kmeans fits

        # -- ddr: D4M.distill on the loader's images in the loader's order ---------------------------
        spec = d4m_specs()[0]
        params = spec.check_params({**spec.defaults, "generator": str(folder), "resolution": resolution,
                                    "km_expand": km_expand, "encode_batch": 1, "generate_batch": 1,
                                    "label_file": str(label_file)})
        pool = torch.stack(loaded)  # [N, 3, R, R], 0..1
        taken: list[int] = []
        ddr_rec: dict[str, Any] = {"latents": {}, "encoded": {}, "generate": []}

        class Dataset:
            class_names = ("class0", "class1")
            image_size, channels, pixel_space = (resolution, resolution), 3, "pixel01"
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

        class Train:
            @staticmethod
            def take(index: torch.Tensor) -> torch.Tensor:
                taken.extend(int(i) for i in index)
                return pool[index]

        class Ctx:
            params: dict[str, Any] = {}
            dataset, train, device = Dataset(), Train(), torch.device("cpu")
            ipc = 0
            num_classes = 2
            generator = torch.Generator()

            @staticmethod
            def class_indices() -> list[torch.Tensor]:
                return [torch.tensor(order[c]) for c in range(num_classes)]

            @staticmethod
            def progress(items: Any, total: int, desc: str) -> Any:
                return items

            @staticmethod
            def log(message: str) -> None:
                pass

        ctx = Ctx()
        ctx.params, ctx.ipc, ctx.num_classes = params, ipc, num_classes
        ctx.generator = torch.Generator().manual_seed(0)
        real_generator = d4m_method.DiffusersGenerator(folder, "cpu")
        current_d: list[int] = []
        real_generator.pipe.vae.encode = encoding(real_generator.pipe.vae.encode, ddr_rec["encoded"], current_d)

        class Watched:  # ddr's generator object: the real one, watched; posterior noise replayed from D4M's
            def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
                index = taken[-1]
                current_d.append(index)
                replay = torch.Generator()
                replay.set_state(official["state"][index])
                out = real_generator.encode(images, generator=replay)
                ddr_rec["latents"][index] = out[0].clone()
                return out

            def generate(self, latents: torch.Tensor, prompts: list[str], **kw: Any) -> torch.Tensor:
                out = real_generator.generate(latents, prompts, **kw)
                ddr_rec["generate"].append({"latents": latents.clone(), "prompts": list(prompts), **kw,
                                            "images": out.clone()})
                return out

        with mock.patch.object(d4m_method, "resolve_generator", lambda ref, device: Watched()), \
                mock.patch.object(d4m_method, "torch", _Torch(randperm=lambda n, **k: torch.arange(n))):
            distilled = d4m_method.D4M().distill(ctx)  # type: ignore[arg-type]

        # -- compare the prototype side ----------------------------------------------------------------
        ddr_prompts = [g["prompts"][0] for g in ddr_rec["generate"][::ipc]]
        row(f"class prompts {label_list!r} (gen_label_list / label_file), equal", torch.ones(1),
            torch.tensor(float(ddr_prompts == label_list)))
        n = len(files)
        ids = official["order"]
        row(f"VAE input, {n} images x 3x{resolution}x{resolution} in [-1, 1] (ToTensor + VaeImageProcessor / "
            "_to_generator)", torch.stack([official["encoded"][i] for i in ids]),
            torch.stack([ddr_rec["encoded"][i] for i in ids]))
        row("VAE scaling factor", torch.tensor(latents_pipe.vae.config.scaling_factor),
            torch.tensor(real_generator.scaling))
        lat_o = torch.stack([official["latents"][i] for i in ids])
        lat_d = torch.stack([ddr_rec["latents"][i] for i in ids])
        shape = "x".join(map(str, lat_o.shape[1:]))
        row(f"latents, scaled posterior samples ({n}x{shape})", lat_o, lat_d)
        protos_d = [g["latents"][0] for g in ddr_rec["generate"]]
        for c, name in enumerate(label_list):
            proto_o = torch.tensor(prototype[name], dtype=torch.float64)  # gen_prototype's reshaped centres
            proto_d = torch.stack(protos_d[c * ipc:(c + 1) * ipc]).double()
            chunks = f"{per_class // (km_expand * ipc)} chunk of {km_expand * ipc} + {per_class % (km_expand * ipc)}"
            if c == finished:
                row(f"prototypes of class {c} ({ipc}x{shape}; {chunks}: both fit the remainder)", proto_o, proto_d)
            else:
                row(f"prototypes of class {c} ({chunks}: only ddr fits the remainder)", proto_o, proto_d,
                    counted=False)
                full = (per_class // (km_expand * ipc)) * km_expand * ipc
                cut = d4m_method.minibatch_prototypes(lat_d[[ids.index(i) for i in order[c]]][:full].flatten(1),
                                                      ipc, km_expand).reshape(proto_o.shape)
                row(f"  ddr's minibatch_prototypes on the full chunk{'s' if full > km_expand * ipc else ''} only",
                    proto_o, cut)
        # ddr's own resize of the original 32 px images against load_dataset's Resize + ToTensor
        originals = pngs.float() / 255
        resized_d = d4m_method.D4M._to_generator(Ctx(), originals, resolution)  # type: ignore[arg-type]
        resized_o = torch.stack(loaded) * 2 - 1
        row(f"VAE input from the {side} px files: ddr's antialiased bilinear resize of float pixels / PIL's of the "
            "8-bit file (Resize((size, size)) + ToTensor)", resized_o, resized_d, counted=False)

        # -- official: gen_syn_image.py's gen_syn_images on ddr's prototypes and seeds -----------------
        seeds = [g["seed"] for g in ddr_rec["generate"]]
        l2i = gen_syn_image.StableDiffusionLatents2ImgPipeline.from_pretrained(str(folder))
        l2i.set_progress_bar_config(disable=True)
        decoded: list[torch.Tensor] = []
        postprocess = l2i.image_processor.postprocess

        def watched_postprocess(image: torch.Tensor, **kw: Any) -> Any:
            decoded.append(postprocess(image.detach().clone(), output_type="pt")[0])
            return postprocess(image, **kw)

        l2i.image_processor.postprocess = watched_postprocess
        calls: list[dict[str, Any]] = []

        class Latents2Img:  # gen_syn_images' `pipe`: the official pipeline, seeded with ddr's seed
            def __call__(self, **kwargs: Any) -> Any:
                torch.manual_seed(seeds[len(calls)])  # D4M seeds nothing: its global generator runs on
                calls.append({k: v for k, v in kwargs.items() if k != "latents"})
                return l2i(**kwargs)

        cpu_randn = _Torch(randn=lambda *a, **k: torch.randn(*a, **{**k, "device": "cpu"}))  # its cuda draw
        float_protos = {name: torch.stack(protos_d[c * ipc:(c + 1) * ipc]) for c, name in enumerate(label_list)}
        with mock.patch.object(gen_syn_image, "torch", cpu_randn):
            gen_syn_image.gen_syn_images(pipe=Latents2Img(), prototypes=float_protos, label_list=label_list, args=args)
        images_d = torch.stack([g["images"][0] for g in ddr_rec["generate"]])
        for c in range(num_classes):
            row(f"generated images of class {c} ({ipc}x3x{resolution}x{resolution}, float before 8 bits)",
                torch.stack(decoded[c * ipc:(c + 1) * ipc]), images_d[c * ipc:(c + 1) * ipc], into=gen_rows)
        row(f"distilled set: ddr's images at a {resolution} px dataset (no resize)", torch.stack(decoded),
            distilled.images, into=gen_rows)
        same_call = all(k["negative_prompt"] == "cartoon, anime, painting" and k["strength"] == 0.7
                        and k["guidance_scale"] == 8.0 and "num_inference_steps" not in k for k in calls)
        row("gen_syn_images' call: negative prompt, strength 0.7, guidance 8, default 50 steps (1: as ddr's)",
            torch.ones(1), torch.tensor(float(same_call)), into=gen_rows)
        saved = []
        for c in range(num_classes):
            for i in range(ipc):
                path = next((root / "syn").glob(f"*/{c}/{c}-image{i}0.png"))
                saved.append(torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1))
        png = torch.stack(saved).float() / 255

        at224 = d4m_method.D4M._to_dataset(Ctx(), images_d, 3, (224, 224))  # type: ignore[arg-type]
        row(f"saved 224 px images ({resolution} px generated): PIL bicubic resize of the 8-bit image, PNG / ddr's "
            "antialiased bilinear of the float image", png, at224, counted=False, into=gen_rows)
        smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)),
                                                 size=(512, 512), mode="bicubic", align_corners=False).clamp(0, 1)
        eight = (smooth * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # postprocess's 8 bits
        pil = [np.array(Image.fromarray(x).resize((224, 224))) for x in eight]  # gen_syn_image.py:69
        row("the same at D4M's sizes, 512 -> 224 px, on smooth images (2x3x512x512)",
            torch.from_numpy(np.stack(pil)).permute(0, 3, 1, 2).float() / 255,
            d4m_method.D4M._to_dataset(Ctx(), smooth, 3, (224, 224)), counted=False,  # type: ignore[arg-type]
            into=gen_rows)
        # D4M's generation reads the prototypes back from its JSON file as float16 (load_prototype):
        # ddr's prototypes through that round trip
        args.prototype_path = str(root / "ddr-prototypes.json")
        Path(args.prototype_path).write_text(json.dumps({k: v.double().tolist() for k, v in float_protos.items()}))
        half = gen_syn_image.load_prototype(args)
        row("prototypes after load_prototype (JSON, then float16) / float32", torch.cat(list(half.values())),
            torch.stack(protos_d), counted=False, into=gen_rows)
        decoded.clear()
        calls.clear()
        args.save_init_image_path = str(root / "syn16")
        with mock.patch.object(gen_syn_image, "torch", cpu_randn):
            gen_syn_image.gen_syn_images(pipe=Latents2Img(), prototypes=half, label_list=label_list, args=args)
        row("generated images from those float16 prototypes / from float32", torch.stack(decoded), images_d,
            counted=False, into=gen_rows)
    finally:
        stack.close()
        torch.Tensor.cuda = saved_cuda  # type: ignore[method-assign]
        _forget_d4m(added)
        scratch.cleanup()

    commit = _commit(repo)
    results = []
    for what, table in (("latents and prototypes, gen_prototype.py", rows),
                        ("generation from the prototypes, gen_syn_image.py", gen_rows)):
        counted = [r["max_rel_diff"] for r in table if r["counted"]]
        worst = max(counted) if counted else 0.0
        results.append({"official": f"suduo94/D4M ({what})", "commit": commit, "rows": table,
                        "max_rel_diff": worst, "tolerance": tol, "agree": worst <= tol})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dc", type=Path, default=None, help="a checkout of VICO-UoE/DatasetCondensation")
    parser.add_argument("--sre2l", type=Path, default=None, help="a checkout of VILA-Lab/SRe2L")
    parser.add_argument("--mtt", type=Path, default=None, help="a checkout of GeorgeCazenavette/mtt-distillation")
    parser.add_argument("--datm", type=Path, default=None, help="a checkout of NUS-HPC-AI-Lab/DATM")
    parser.add_argument("--rded", type=Path, default=None, help="a checkout of LINs-lab/RDED")
    parser.add_argument("--d4m", type=Path, default=None, help="a checkout of suduo94/D4M")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest relative difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if all(getattr(args, k) is None for k in ("dc", "sre2l", "mtt", "datm", "rded", "d4m")):
        parser.error("name at least one official checkout (--dc, --sre2l, --mtt, --datm, --rded, --d4m)")
    torch.set_num_threads(1)
    results = []
    if args.dc is not None:
        results.append(compare(args.dc, args.tol))
    if args.sre2l is not None:
        results.append(compare_sre2l(args.sre2l, args.tol))
    if args.mtt is not None:
        results.append(compare_trajectory(args.mtt, args.tol))
    if args.datm is not None:
        results.append(compare_trajectory(args.datm, args.tol, datm=True))
        results.append(compare_gsam(args.datm, args.tol))
    if args.rded is not None:
        results.extend(compare_rded(args.rded, args.tol))
    if args.d4m is not None:
        results.extend(compare_d4m(args.d4m, args.tol))
    for result in results:
        width = max(len(r["quantity"]) for r in result["rows"])
        print(f"{result['official']} @ {result['commit']}")
        print(f"{'quantity':<{width}}  {'official':>14}  {'ddr':>14}  max rel diff")
        for r in result["rows"]:
            print(f"{r['quantity']:<{width}}  {r['official']:>14.8g}  {r['ddr']:>14.8g}  {r['max_rel_diff']:.2e}")
        if result.get("note"):
            print(result["note"])
        print(("agree" if result["agree"] else "DIFFER") + f" within {args.tol:g} (largest {result['max_rel_diff']:.2e})\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["agree"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
