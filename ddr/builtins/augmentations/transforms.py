"""A bridge to torchvision transform lists written in YAML.

    augmentation:
      - name: transforms
        ops:
          - {name: RandomCrop, args: {size: 32, padding: 4}}   # mapping -> keyword arguments
          - {name: RandomHorizontalFlip, args: [0.5]}          # list -> positional arguments
          - ColorJitter                                         # a bare name: no arguments

Names are looked up in ``torchvision.transforms.v2`` first, then ``torchvision.transforms``.
The composed transform is applied to the whole ``[B, C, H, W]`` batch at once, so its random
parameters are drawn ONCE PER BATCH (every sample gets the same crop, the same flip decision):
torchvision transforms are not per-sample on batches. For per-sample randomness use the
built-in augmentations (``crop_flip``, ``flip``, ``random_resized_crop``, ``dsa``...).

torchvision draws from the global torch RNG; to stay reproducible the call seeds a forked copy
of the CPU RNG (and of the images' CUDA device RNG) from the given generator, so the global RNG
is left untouched and the same generator state gives the same output.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ddr.builtins.augmentations.checks import check_batch, reject_unknown
from ddr.engine.augment import Mix
from ddr.errors import ConfigError

_EXAMPLE = "ops: [{name: RandomCrop, args: {size: 32, padding: 4}}, {name: RandomHorizontalFlip, args: [0.5]}]"


def _transform_namespaces() -> list[Any]:
    import torchvision.transforms as v1
    import torchvision.transforms.v2 as v2

    return [v2, v1]


def _transform_names(namespaces: Sequence[Any]) -> list[str]:
    names: set[str] = set()
    for namespace in namespaces:
        names.update(name for name, value in vars(namespace).items()
                     if isinstance(value, type) and not name.startswith("_"))
    return sorted(names)


def resolve_transform(name: str) -> type:
    """The torchvision transform class called ``name`` (v2 preferred)."""
    namespaces = _transform_namespaces()
    for namespace in namespaces:
        value = getattr(namespace, name, None)
        if isinstance(value, type):
            return value
    close = difflib.get_close_matches(name, _transform_names(namespaces), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"augmentation 'transforms': no torchvision transform named {name!r}{hint}")


def _yaml_value(value: Any) -> Any:
    # YAML has no tuples; torchvision wants tuples for sizes and ranges in places
    return tuple(value) if isinstance(value, list) else value


def build_transform(op: Any) -> Any:
    """One transform from ``{name: ..., args: {...} | [...] | value}`` or a bare name."""
    if isinstance(op, str):
        name, args = op, None
    elif isinstance(op, Mapping) and "name" in op and set(op) <= {"name", "args"}:
        name, args = op["name"], op.get("args")
    else:
        raise ConfigError(f"augmentation 'transforms': each op must be a name or {{name, args}}, got {op!r}; "
                          f"e.g. {_EXAMPLE}")
    cls = resolve_transform(str(name))
    positional: list[Any]
    keywords: dict[str, Any]
    if args is None:
        positional, keywords = [], {}
    elif isinstance(args, Mapping):
        positional, keywords = [], {str(k): _yaml_value(v) for k, v in args.items()}
    elif isinstance(args, list):
        positional, keywords = [_yaml_value(v) for v in args], {}
    else:
        positional, keywords = [args], {}
    try:
        return cls(*positional, **keywords)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"augmentation 'transforms': {name}({_format_args(positional, keywords)}) failed: "
                          f"{error}") from error


def _format_args(positional: list[Any], keywords: dict[str, Any]) -> str:
    return ", ".join([repr(v) for v in positional] + [f"{k}={v!r}" for k, v in keywords.items()])


class TorchvisionTransforms:
    """A torchvision transform list (see the module docstring), batch-level random parameters.

    Parameters:
        ops: the transforms in order, each ``{name, args}`` or a bare name.
    """

    differentiable = False

    def __init__(self, ops: Sequence[Any] = (), **unknown: Any) -> None:
        reject_unknown("transforms", unknown, ("ops",))
        if isinstance(ops, (str, Mapping)) or not isinstance(ops, Sequence) or not ops:
            raise ConfigError(f"augmentation 'transforms' needs a non-empty list 'ops', got {ops!r}; e.g. {_EXAMPLE}")
        import torchvision.transforms.v2 as v2

        self.ops = [build_transform(op) for op in ops]
        self.transform = v2.Compose(self.ops)

    def __repr__(self) -> str:
        return f"TorchvisionTransforms({self.ops!r})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Mix | None]:
        check_batch("transforms", images, generator)
        seed = int(torch.randint(2**62, (1,), generator=generator, device=images.device))
        # transforms that draw noise like the input (randn_like) use the device's RNG as well
        cuda = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(images.device):
                    torch.cuda.manual_seed(seed)
            try:
                out = self.transform(images)
            except Exception as error:  # any failure of a user-listed transform is a config problem
                raise ConfigError(f"augmentation 'transforms': {self.transform!r} failed on a "
                                  f"{tuple(images.shape)} {images.dtype} batch: {type(error).__name__}: {error}"
                                  ) from error
        if not isinstance(out, torch.Tensor) or out.shape[0] != images.shape[0]:
            raise ConfigError(f"augmentation 'transforms': the transforms must map a [B, C, H, W] tensor to one "
                              f"with the same B; got {type(out).__name__} {getattr(out, 'shape', '')}")
        return out, None
