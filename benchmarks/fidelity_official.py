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
  labels; DATM's soft-label initialisation against ddr's ``_init_datm``;
- with ``--rded``: RDED's ``MultiRandomCrop``, ``selector`` and ``mix_images``
  (``synthesize/utils.py``) against ddr's ``RDED.distill`` on the same BatchNorm ConvNet teacher,
  real images and crop boxes: once with RDED's crops fed to both (scores, selection, stitching),
  once with each side resampling the boxes itself.

The official code is not part of ddr: check it out anywhere and pass its folder (any subset)::

    python benchmarks/fidelity_official.py --dc PATH/TO/DatasetCondensation --sre2l PATH/TO/SRe2L \
        --mtt PATH/TO/mtt-distillation --datm PATH/TO/DATM --rded PATH/TO/RDED [--json out.json]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dc", type=Path, default=None, help="a checkout of VICO-UoE/DatasetCondensation")
    parser.add_argument("--sre2l", type=Path, default=None, help="a checkout of VILA-Lab/SRe2L")
    parser.add_argument("--mtt", type=Path, default=None, help="a checkout of GeorgeCazenavette/mtt-distillation")
    parser.add_argument("--datm", type=Path, default=None, help="a checkout of NUS-HPC-AI-Lab/DATM")
    parser.add_argument("--rded", type=Path, default=None, help="a checkout of LINs-lab/RDED")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest relative difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if all(getattr(args, k) is None for k in ("dc", "sre2l", "mtt", "datm", "rded")):
        parser.error("name at least one official checkout (--dc, --sre2l, --mtt, --datm, --rded)")
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
    if args.rded is not None:
        results.extend(compare_rded(args.rded, args.tol))
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
