"""Bridges to the model zoos of timm (``timm:<name>``) and torchvision (``torchvision:<name>``).

Both build randomly initialised models (ddr never downloads weights) adapted to the dataset:
``num_classes`` outputs, ``channels`` input channels and, where the model needs it, the image
size. The returned module is the library's own model, unwrapped, so its state-dict keys stay
those of the library's checkpoints; ddr's two extra methods are attached to the instance:

* ``embed(x) -> [B, D]``: timm's ``forward_head(forward_features(x), pre_logits=True)``; for
  torchvision the input of the final linear classifier, captured by a forward pre-hook during a
  normal forward pass;
* ``get_classifier() -> nn.Module``: timm's own method; for torchvision that final linear layer.

Torchvision adaptations: for ``channels != 3`` the first conv is replaced by one taking
``channels`` inputs (same kernel, stride, padding); ResNets (and ResNeXt/Wide-ResNet) on images
of at most 64 px get DD-Ranking's CIFAR stem (3x3 stride-1 ``conv1``, no max-pool) unless
``cifar_stem=False``; ViTs get ``image_size`` and MaxViT ``input_size`` from the dataset.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import torch
from torch import nn

from ddr.builtins.architectures.base import architecture_builder
from ddr.errors import ConfigError, UnknownComponentError

SMALL_IMAGE = 64
"""Torchvision ResNets get the CIFAR stem on images whose longer side is at most this many pixels."""

NO_DOWNLOAD = "ddr builds randomly initialised networks and never downloads weights; " \
              "train a teacher with ddr or load a checkpoint into the model instead"


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return ("; did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else ""


def _require_argument(family: str, argument: str | None, example: str) -> str:
    if not argument:
        raise ConfigError(
            f"architecture '{family}' needs a model name: write '{family}:<name>', e.g. '{family}:{example}'")
    return argument


# -- timm ------------------------------------------------------------------------------------

def _timm_embed(model: Any, x: torch.Tensor) -> torch.Tensor:
    # ``model`` is a timm model: nn.Module does not declare forward_features / forward_head
    return model.forward_head(model.forward_features(x), pre_logits=True)


@architecture_builder("timm")
def build_timm(*, channels: int, num_classes: int, image_size: tuple[int, int], argument: str | None = None,
               **params: Any) -> nn.Module:
    """``timm.create_model(argument, pretrained=False, num_classes=K, in_chans=C, img_size=(H, W))``.

    ``img_size`` is passed only to models that take it (ViTs and other fixed-grid models);
    ``params`` go to ``create_model`` unchanged (e.g. ``drop_rate``).
    """
    name = _require_argument("timm", argument, "resnet18")
    try:
        import timm
    except ImportError as exc:
        raise ConfigError(
            f"architecture 'timm:{name}' needs the timm package, which is not installed: "
            "pip install 'ddr-bench[timm]' (or pip install timm)"
        ) from exc
    if not timm.is_model(name):
        raise UnknownComponentError(
            f"timm has no model '{name}'{_did_you_mean(name, timm.list_models())}\n"
            "  list them with: python -c \"import timm; print(timm.list_models('*resnet*'))\""
        )
    if params.get("pretrained") or "pretrained_cfg_overlay" in params:
        raise ConfigError(f"architecture 'timm:{name}': {NO_DOWNLOAD}")
    params.pop("pretrained", None)
    kwargs = dict(pretrained=False, num_classes=num_classes, in_chans=channels, **params)
    try:
        try:
            model = timm.create_model(name, img_size=tuple(image_size), **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
            model = timm.create_model(name, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ConfigError(
            f"architecture 'timm:{name}' cannot be built for {channels}x{image_size[0]}x{image_size[1]} "
            f"images, {num_classes} classes, params {params}: {type(exc).__name__}: {exc}"
        ) from exc
    # nn.Module.__setattr__ takes any value; torch annotates it as Tensor | Module only
    model.embed = functools.partial(_timm_embed, model)  # type: ignore[assignment, unused-ignore]
    return model


# -- torchvision -----------------------------------------------------------------------------

def _embed_through_head(model: nn.Module, head_path: str, x: torch.Tensor) -> torch.Tensor:
    captured: list[torch.Tensor] = []
    handle = model.get_submodule(head_path).register_forward_pre_hook(
        lambda module, inputs: captured.append(inputs[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[0]


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent_path) if parent_path else model, child, module)


def _head_path(model: nn.Module, num_classes: int) -> str | None:
    """Path of the last ``nn.Linear`` with ``num_classes`` outputs (the classifier)."""
    heads = [path for path, module in model.named_modules()
             if isinstance(module, nn.Linear) and module.out_features == num_classes]
    return heads[-1] if heads else None


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's ``(h, w)`` attribute (torch types them as ``tuple[int, ...]``)."""
    h, w = values
    return h, w


def _retarget_first_conv(model: nn.Module, channels: int) -> None:
    path, conv = next(((p, m) for p, m in model.named_modules() if isinstance(m, nn.Conv2d)), ("", None))
    if conv is None or conv.in_channels == channels:
        return
    if conv.groups != 1:
        raise ConfigError(f"the first conv ({path}) is grouped; cannot adapt it to {channels} input channels")
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    _set_submodule(model, path, nn.Conv2d(channels, conv.out_channels, kernel_size=_pair(conv.kernel_size),
                                          stride=_pair(conv.stride), padding=padding, dilation=_pair(conv.dilation),
                                          bias=conv.bias is not None, padding_mode=conv.padding_mode))


@architecture_builder("torchvision")
def build_torchvision(*, channels: int, num_classes: int, image_size: tuple[int, int],
                      argument: str | None = None, cifar_stem: bool | None = None, **params: Any) -> nn.Module:
    """``torchvision.models.get_model(argument, weights=None, num_classes=K, **params)``, adapted.

    Args:
        cifar_stem: give ResNets a 3x3 stride-1 ``conv1`` and no max-pool; ``None`` (default)
            does so for images of at most 64 px (DD-Ranking's modification).
    """
    import torchvision

    name = _require_argument("torchvision", argument, "resnet18")
    known = torchvision.models.list_models()
    if name not in known:
        raise UnknownComponentError(
            f"torchvision has no model '{name}'{_did_you_mean(name, known)}\n"
            "  list them with: python -c \"import torchvision; print(torchvision.models.list_models())\""
        )
    if params.get("weights") is not None or params.get("pretrained"):
        raise ConfigError(f"architecture 'torchvision:{name}': {NO_DOWNLOAD}")
    params.pop("weights", None)
    params.pop("pretrained", None)
    if name in ("googlenet", "inception_v3"):
        params.setdefault("aux_logits", False)
        params.setdefault("init_weights", True)
    if name.startswith(("vit_", "maxvit_")):
        if image_size[0] != image_size[1]:
            raise ConfigError(f"torchvision:{name} needs square images, got {image_size[0]}x{image_size[1]}")
        params.setdefault("image_size" if name.startswith("vit_") else "input_size",
                          image_size[0] if name.startswith("vit_") else tuple(image_size))
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **params)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ConfigError(
            f"architecture 'torchvision:{name}' cannot be built with {num_classes} classes and params "
            f"{params}: {type(exc).__name__}: {exc}"
        ) from exc
    is_resnet = isinstance(model, torchvision.models.ResNet)
    if cifar_stem is None:
        cifar_stem = is_resnet and max(image_size) <= SMALL_IMAGE
    if cifar_stem:
        if not is_resnet:
            raise ConfigError(f"cifar_stem applies to torchvision ResNets only, not to '{name}'")
        model.conv1 = nn.Conv2d(channels, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    _retarget_first_conv(model, channels)
    head = _head_path(model, num_classes)
    if head is None:
        raise ConfigError(
            f"torchvision:{name} has no linear classifier with {num_classes} outputs (its head is "
            "convolutional), so ddr cannot take its penultimate features; use another model"
        )
    model.embed = functools.partial(_embed_through_head, model, head)
    model.get_classifier = functools.partial(model.get_submodule, head)
    return model
