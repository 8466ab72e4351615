"""Matching-based distillation: what DC, DSA (gradient matching) and DM (distribution matching)
share, and the gradient-matching loop itself.

Algorithms and defaults follow the authors' code, VICO-UoE/DatasetCondensation (``main.py``,
``main_DM.py``, ``utils.py``): Zhao, Mopuri & Bilen, *Dataset Condensation with Gradient
Matching* (ICLR 2021); Zhao & Bilen, *Differentiable Siamese Augmentation* (ICML 2021) and
*Distribution Matching* (WACV 2023).

Everything random is drawn from the context's generator (real batches, noise, augmentation) or
comes from ``ctx.make_model`` (network initialisations), so one seed gives one synthetic set.
Synthetic sets are class-major: rows ``c*ipc .. (c+1)*ipc - 1`` hold class ``c``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ddr import ConfigError, DdrError
from ddr.method.distilled import DistilledSet
from ddr.method.helpers import INITS, LossCurve, RealSampler, class_major_labels, distilled_set, init_synthetic
from ddr_methods._matching.params import LOOPS as LOOPS  # re-exported: the loop table lives there, torch-free
from ddr_methods._matching.params import match_loops

if TYPE_CHECKING:  # pragma: no cover
    from ddr.method.context import DistillContext

GRADIENT_METRICS = ("ours", "mse", "cos")
"""``ours``: per output channel ``1 - cos`` summed over layers (DC's layer-wise distance);
``mse``: squared L2 between the concatenated gradients; ``cos``: ``1 - cos`` of the concatenated
gradients."""

BN_IMAGES_PER_CLASS = 16
"""Real images per class used to set BatchNorm running statistics before matching (VICO
``BNSizePC``)."""

_COS_EPS = 1e-6  # VICO adds it to the product of norms, so zero gradients give distance 1, not NaN


# -- distances -----------------------------------------------------------------------------------

def _layer_distance(g_syn: torch.Tensor, g_real: torch.Tensor) -> torch.Tensor:
    """DC's distance for one parameter tensor: ``sum over output channels of (1 - cos)``.

    Conv weights ``[out, in, h, w]``, layer-norm weights ``[C, h, w]`` and linear weights
    ``[out, in]`` are compared row by row after flattening all but the first dimension. 1-D
    parameters (biases, norm scales) contribute 0, as in VICO's ``distance_wb``.
    """
    if g_real.dim() <= 1:
        return torch.zeros((), dtype=g_real.dtype, device=g_real.device)
    g_syn = g_syn.reshape(g_syn.shape[0], -1)
    g_real = g_real.reshape(g_real.shape[0], -1)
    cos = (g_syn * g_real).sum(dim=-1) / (g_syn.norm(dim=-1) * g_real.norm(dim=-1) + _COS_EPS)
    return (1.0 - cos).sum()


def gradient_distance(gw_syn: Sequence[torch.Tensor], gw_real: Sequence[torch.Tensor],
                      metric: str = "ours") -> torch.Tensor:
    """Distance between two lists of per-parameter gradients (same order, same shapes).

    Args:
        gw_syn: gradients from the synthetic batch (may carry a graph to the synthetic images).
        gw_real: gradients from the real batch (detached).
        metric: one of :data:`GRADIENT_METRICS`.

    Returns:
        A scalar tensor. For ``ours`` it lies in ``[0, 2 * total output channels of the >= 2-D
        parameters]``: identical gradients give 0, orthogonal ones 1 per output channel.
    """
    if metric not in GRADIENT_METRICS:
        raise ConfigError(f"unknown gradient distance {metric!r}; expected one of {GRADIENT_METRICS}")
    if len(gw_syn) != len(gw_real):
        raise DdrError(f"gradient lists differ in length ({len(gw_syn)} synthetic vs {len(gw_real)} real); "
                       "both must come from the same parameters")
    if metric == "ours":
        total = torch.zeros((), dtype=gw_real[0].dtype, device=gw_real[0].device)
        for g_syn, g_real in zip(gw_syn, gw_real):
            total = total + _layer_distance(g_syn, g_real)
        return total
    syn = torch.cat([g.reshape(-1) for g in gw_syn])
    real = torch.cat([g.reshape(-1) for g in gw_real])
    if metric == "mse":
        return ((syn - real) ** 2).sum()
    return 1.0 - (syn * real).sum() / (syn.norm() * real.norm() + _COS_EPS)


# -- parameters ----------------------------------------------------------------------------------

class ParamReader:
    """Reads a method's resolved parameters with type and range checks.

    Every check failure is a :class:`ConfigError` naming the method and the parameter; call
    :meth:`check_all_read` last so that a misspelt override is reported instead of ignored.
    """

    def __init__(self, method: str, params: Mapping[str, Any]):
        self.method = method
        self.params = dict(params)
        self._read: set[str] = set()

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise ConfigError(f"method {self.method!r}: parameter {name!r} is missing "
                              "(the method spec's defaults should provide it)")
        self._read.add(name)
        return self.params[name]

    def _fail(self, name: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"method {self.method!r}: parameter {name}={value!r} is invalid; expected {expected}")

    def integer(self, name: str, minimum: int = 0) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(name, value, f"an integer >= {minimum}")
        return value

    def optional_integer(self, name: str, minimum: int = 0) -> int | None:
        """An integer >= ``minimum``, or ``None`` (null: the method derives it)."""
        value = self._get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(name, value, f"an integer >= {minimum} or null")
        return value

    def number(self, name: str, minimum: float = 0.0) -> float:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
            raise self._fail(name, value, f"a finite number >= {minimum}")
        return float(value)

    def choice(self, name: str, choices: Iterable[Any]) -> Any:
        value = self._get(name)
        choices = tuple(choices)
        if value not in choices:
            raise self._fail(name, value, f"one of {choices}")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        value = self._get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(name, value, "a mapping of parameters")
        return dict(value)

    def optional_name(self, name: str) -> str | None:
        """A component name, or None for the values ``None``, ``"none"`` and ``""``."""
        value = self._get(name)
        if value is None or value in ("none", ""):
            return None
        if not isinstance(value, str):
            raise self._fail(name, value, "a component name or none")
        return value

    def check_all_read(self) -> None:
        unknown = sorted(set(self.params) - self._read)
        if unknown:
            raise ConfigError(f"method {self.method!r} has no parameter(s) {unknown}; "
                              f"its parameters are {sorted(self._read)}")


# -- augmentation --------------------------------------------------------------------------------

Augment = Callable[..., Any]


def build_augmentation(ctx: "DistillContext", name: str | None, params: Mapping[str, Any]) -> Augment | None:
    """``ctx.augmentation(name, **params)``, or None when ``name`` is None."""
    return None if name is None else ctx.augmentation(name, **dict(params))


class SiameseAugmentation:
    """Applies an augmentation to a real and a synthetic batch with the SAME random parameters.

    The augmentation must accept ``aug(images, generator, *, siamese=True)`` and then draw one
    parameter set for the whole batch, using the same random draws whatever the batch size.
    The synthetic batch is augmented with a twin generator cloned from the state the real batch
    started from, so both see identical parameters; ``generator`` advances once.
    """

    def __init__(self, augmentation: Augment):
        self.augmentation = augmentation

    def __call__(self, real: torch.Tensor, syn: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        twin = torch.Generator(device=generator.device)
        twin.set_state(generator.get_state())
        real, _ = self.augmentation(real, generator, siamese=True)
        syn, _ = self.augmentation(syn, twin, siamese=True)
        return real, syn


# -- networks ------------------------------------------------------------------------------------

def uses_batch_statistics(net: nn.Module) -> bool:
    """Whether ``net`` has BatchNorm layers (whose output depends on the rest of the batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def fix_batch_norm_on_real(net: nn.Module, sampler: RealSampler, num_classes: int) -> None:
    """VICO's BatchNorm handling for gradient matching: one train-mode forward pass of
    :data:`BN_IMAGES_PER_CLASS` real images per class updates the running statistics (with the
    layers' own momentum, as VICO does), then the BatchNorm layers are put in eval mode so the
    tiny synthetic batches are normalised with those statistics."""
    net.train()
    with torch.no_grad():
        net(torch.cat([sampler.sample(c, BN_IMAGES_PER_CLASS) for c in range(num_classes)]))
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def train_network(ctx: "DistillContext", net: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, lr: float,
                  epochs: int, batch_size: int, augmentation: Augment | None = None) -> None:
    """DC's inner loop: ``epochs`` shuffled epochs of cross-entropy SGD (lr ``lr``, no momentum, no
    weight decay, as VICO's ``optimizer_net``) on the (detached) synthetic set, with a non-Siamese
    augmentation when given, drawing from ``ctx.generator``. Runs the core training loop
    (``ctx.train_model``), so no second copy of it exists; plain SGD keeps no state, so a fresh
    optimizer per call equals VICO's one per iteration."""
    ctx.train_model(net, images, labels, epochs=epochs, lr=lr, batch_size=batch_size, momentum=0.0,
                    weight_decay=0.0, schedule="constant", augmentation=augmentation, generator=ctx.generator)


# -- the gradient-matching method ----------------------------------------------------------------

@dataclass(frozen=True)
class GradientMatchingParams:
    """DC/DSA's checked parameters (see :class:`GradientMatching`); loops already resolved."""

    iterations: int
    lr_img: float
    momentum_img: float
    lr_net: float
    batch_real: int
    batch_train: int
    init: str
    metric: str
    outer_loop: int
    inner_loop: int
    augmentation_params: dict[str, Any]


def read_matching_params(ctx: "DistillContext", method: str, augmentation: str | None) -> GradientMatchingParams:
    """DC/DSA's parameters from ``ctx.params``, checked (``augmentation_params`` only with an
    augmentation); ``outer_loop``/``inner_loop`` null means :func:`match_loops`."""
    reader = ParamReader(method, ctx.params)
    values: dict[str, Any] = {
        "iterations": reader.integer("iterations", 0),
        "lr_img": reader.number("lr_img"),
        "momentum_img": reader.number("momentum_img"),
        "lr_net": reader.number("lr_net"),
        "batch_real": reader.integer("batch_real", 1),
        "batch_train": reader.integer("batch_train", 1),
        "init": reader.choice("init", INITS),
        "metric": reader.choice("metric", GRADIENT_METRICS),
        "augmentation_params": reader.mapping("augmentation_params") if augmentation else {},
    }
    outer, inner = reader.optional_integer("outer_loop", 1), reader.optional_integer("inner_loop", 0)
    reader.check_all_read()
    if (outer is None) != (inner is None):
        raise ConfigError(f"method {method!r}: set both outer_loop and inner_loop, or neither "
                          f"(got outer_loop={outer}, inner_loop={inner})")
    values["outer_loop"], values["inner_loop"] = (outer, inner) if outer is not None else match_loops(ctx.ipc)
    return GradientMatchingParams(**values)


def gradient_matching(ctx: "DistillContext", *, method: str, augmentation: str | None) -> DistilledSet:
    """Dataset condensation by gradient matching: DC with ``augmentation=None``, DSA with ``"dsa"``.

    For each of ``iterations`` freshly initialised networks: ``outer_loop`` times, for every
    class ``c`` match the gradient of the cross-entropy on a real batch of class ``c`` to the one
    on the synthetic images of class ``c`` (the latter differentiated through, second order),
    update the images by SGD on the summed distance, then (except after the last outer step)
    train the network on the synthetic set for ``inner_loop`` epochs.

    Args:
        method: the method's name (messages, progress, parameter errors).
        augmentation: the registered augmentation applied Siamese while matching and plainly in
            the inner loop (``None``: none).

    Parameters (``ctx.params``): ``iterations``, ``lr_img``, ``momentum_img``, ``lr_net``,
    ``batch_real``, ``batch_train``, ``init`` (noise|real), ``metric`` (ours|mse|cos),
    ``outer_loop`` / ``inner_loop`` (null: :func:`match_loops`), and, with an augmentation,
    ``augmentation_params`` (passed to ``ctx.augmentation``).
    """
    cfg = read_matching_params(ctx, method, augmentation)
    sampler = RealSampler(ctx)
    syn = init_synthetic(ctx, sampler, cfg.init)
    labels = class_major_labels(ctx.num_classes, ctx.ipc, ctx.device)
    image_optimizer = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    augment = build_augmentation(ctx, augmentation, cfg.augmentation_params)
    siamese = SiameseAugmentation(augment) if augment is not None else None
    outer_loop, inner_loop = cfg.outer_loop, cfg.inner_loop
    curve = LossCurve(cfg.iterations)

    for _ in ctx.progress(range(cfg.iterations), total=cfg.iterations, desc=method):
        net = ctx.make_model()
        net.train()
        params = [p for p in net.parameters() if p.requires_grad]
        batch_stats = uses_batch_statistics(net)
        total = torch.zeros((), device=ctx.device)
        for step in range(outer_loop):
            if batch_stats:
                fix_batch_norm_on_real(net, sampler, ctx.num_classes)
            loss = matching_loss(ctx, net, params, syn, sampler, siamese, cfg)
            image_optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=[syn])
            image_optimizer.step()
            total = total + loss.detach()
            if step < outer_loop - 1:
                train_network(ctx, net, syn.detach(), labels, lr=cfg.lr_net, epochs=inner_loop,
                              batch_size=cfg.batch_train, augmentation=augment)
        curve.add(total / (ctx.num_classes * outer_loop))

    meta = {**curve.meta(), "outer_loop": outer_loop, "inner_loop": inner_loop, "init": cfg.init,
            "metric": cfg.metric, "augmentation": augmentation}
    return distilled_set(ctx, syn, meta)


def matching_loss(ctx: "DistillContext", net: nn.Module, params: list[torch.Tensor], syn: torch.Tensor,
                  sampler: RealSampler, siamese: SiameseAugmentation | None, cfg: GradientMatchingParams) -> torch.Tensor:
    """Sum over classes of the gradient distance (a scalar with a graph to ``syn``)."""
    loss = torch.zeros((), device=ctx.device)
    ipc = ctx.ipc
    for c in range(ctx.num_classes):
        real = sampler.sample(c, cfg.batch_real)
        fake = syn[c * ipc:(c + 1) * ipc]
        if siamese is not None:
            real, fake = siamese(real, fake, ctx.generator)
        real_loss = F.cross_entropy(net(real), torch.full((len(real),), c, device=real.device))
        g_real = [g.detach() for g in torch.autograd.grad(real_loss, params)]
        fake_loss = F.cross_entropy(net(fake), torch.full((len(fake),), c, device=fake.device))
        g_fake = torch.autograd.grad(fake_loss, params, create_graph=True)
        loss = loss + gradient_distance(g_fake, g_real, cfg.metric)
    return loss
