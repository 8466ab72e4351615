"""ddr's ConvNet family as one grouped network: M students side by side in the channel dimension.

It applies to every architecture that declares the ConvNet layout (``ArchitectureSpec.grouped``).

Member ``m``'s feature maps are channels ``m*C .. (m+1)*C - 1`` of one ``[B, M*C, H, W]`` tensor:

* ``Conv2d`` becomes one convolution with ``groups=M`` and the members' kernels concatenated
  (``[M*O, C, kh, kw]``); on images shared by all members (a test pass) the first convolution is
  an ordinary one with ``M*O`` output channels.
* ``GroupNorm(G, C)`` (``instance`` is ``GroupNorm(C, C)``) becomes ``GroupNorm(M*G, M*C)``: the
  same groups, the same statistics. ``LayerNorm([C, H, W])`` normalises each member's slice.
* activations and pools act per channel, so they apply unchanged.
* the classifier is one batched matmul ``[M, B, D] @ [M, D, K]``; ``D`` is flattened in the
  ConvNet's own order (channel, row, column).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


def _per_channel_types() -> "tuple[type, ...]":
    from torch import nn

    return (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.SiLU, nn.GELU, nn.Tanh, nn.Identity,
            nn.AvgPool2d, nn.MaxPool2d)


def grouped_reason(model: "nn.Module") -> str | None:
    """Why this program cannot reproduce ``model``'s layers, or ``None`` when it can.

    The program computes ``classifier(features(x).flatten(1))``: that the network's forward is
    this is what its architecture declares (``ArchitectureSpec.grouped``; ddr's ConvNet family
    does), and :meth:`ddr.execute.stacked.StackedModel.verify` compares the two. Checked here:
    ``features`` is an ``nn.Sequential`` of layers with a grouped form, ``classifier`` one
    ``nn.Linear``.
    """
    from torch import nn

    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        return f"{type(model).__name__} has no nn.Sequential 'features' (ddr's ConvNet layout)"
    for name, layer in features.named_children():
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                return f"conv {name}: only groups=1 with zero padding given in pixels"
        elif isinstance(layer, (nn.GroupNorm, nn.LayerNorm)):
            if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) != 3:
                return f"layer norm {name}: only LayerNorm([C, H, W])"
        elif not isinstance(layer, _per_channel_types()):
            return f"layer {name} ({type(layer).__name__}) has no grouped form here"
    if not isinstance(getattr(model, "classifier", None), nn.Linear):
        return "the classifier is not one nn.Linear"
    return None


class GroupedConvNet:
    """The grouped program of one ConvNet layout (built from any member's module).

    Called as ``program(params, images, shared=...)`` with stacked ``params`` (name -> ``[M, ...]``)
    and images ``[B, M, C, H, W]`` (``shared=False``) or ``[B, C, H, W]`` (``shared=True``);
    returns logits ``[M, B, K]``.
    """

    def __init__(self, model: "nn.Module", *, channels_last: bool = False) -> None:
        features: Any = model.features
        self.layers = [(f"features.{name}", layer) for name, layer in features.named_children()]
        self.channels_last = channels_last

    def __call__(self, params: "dict[str, torch.Tensor]", images: "torch.Tensor", *, shared: bool) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F
        from torch import nn

        members = params["classifier.weight"].shape[0]
        if shared:
            h = images
        else:
            batch, m, c, height, width = images.shape
            h = images.reshape(batch, m * c, height, width)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        for name, layer in self.layers:
            if shared and not isinstance(layer, nn.Conv2d):  # a ConvNet starts with a conv; stay general
                h = h.repeat(1, members, 1, 1)
                shared = False
            if isinstance(layer, nn.Conv2d):
                kernel = params[f"{name}.weight"]
                offset = params.get(f"{name}.bias")
                h = F.conv2d(h, kernel.reshape(-1, *kernel.shape[2:]), None if offset is None else offset.reshape(-1),
                             stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                             groups=1 if shared else members)
                shared = False
            elif isinstance(layer, nn.GroupNorm):
                weight, bias = params.get(f"{name}.weight"), params.get(f"{name}.bias")
                h = F.group_norm(h, members * layer.num_groups, None if weight is None else weight.reshape(-1),
                                 None if bias is None else bias.reshape(-1), layer.eps)
            elif isinstance(layer, nn.LayerNorm):
                batch, channels, height, width = h.shape
                split = h.reshape(batch, members, channels // members, height, width)
                split = F.layer_norm(split, tuple(layer.normalized_shape), None, None, layer.eps)
                weight, bias = params.get(f"{name}.weight"), params.get(f"{name}.bias")
                if weight is not None:
                    split = split * weight.unsqueeze(0)
                if bias is not None:
                    split = split + bias.unsqueeze(0)
                h = split.reshape(batch, channels, height, width)
            else:
                h = layer(h)
        features = h.reshape(h.shape[0], members, -1).transpose(0, 1)  # [M, B, D]
        logits = torch.bmm(features, params["classifier.weight"].transpose(1, 2))
        head_bias = params.get("classifier.bias")
        return logits if head_bias is None else logits + head_bias.unsqueeze(1)
