"""ddr_methods._coreset.gradients: closed-form last-layer gradients equal torch autograd's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddr.errors import ConfigError, DataError
from ddr_methods._coreset.gradients import last_layer_gradients


class TinyNet(nn.Module):
    """conv → flatten (D=12) → linear (K=4): ``forward == get_classifier()(embed(x))``."""

    def __init__(self, with_get_classifier: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.classifier = nn.Linear(12, 4)
        if with_get_classifier:
            self.get_classifier = lambda: self.classifier

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def autograd_reference(model: TinyNet, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample, autograd of CE(model(x_i), y_i) w.r.t. (bias, weight), DeepCore's layout."""
    rows = []
    model.eval()
    for x, y in zip(images, labels):
        loss = nn.functional.cross_entropy(model(x[None]), y[None])
        gw, gb = torch.autograd.grad(loss, [model.classifier.weight, model.classifier.bias])
        rows.append(torch.cat([gb, gw.flatten()]))
    return torch.stack(rows)


@pytest.mark.parametrize("with_get_classifier", [True, False])
def test_last_layer_gradients_equal_autograd(with_get_classifier):
    torch.manual_seed(0)
    model = TinyNet(with_get_classifier)
    images = torch.randn(11, 1, 6, 6)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1])
    model.train()
    got = last_layer_gradients(model, images, labels, batch_size=4)
    assert model.training  # mode restored
    assert got.shape == (11, 4 * (12 + 1)) and got.dtype == torch.float32
    expected = autograd_reference(model, images, labels)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    # Batching does not change the result.
    assert torch.allclose(last_layer_gradients(model, images, labels, batch_size=64), got, atol=1e-7, rtol=0)


def test_last_layer_gradients_layout_by_hand():
    # D=1 embedding h, K=2: bias grad (p0 - 1, p1), weight grad (p0 - 1)*h, p1*h.
    class Identity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = nn.Linear(1, 2)
            with torch.no_grad():
                self.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))
                self.classifier.bias.zero_()

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)

        def get_classifier(self) -> nn.Module:
            return self.classifier

    h = 0.5
    p = torch.softmax(torch.tensor([h, -h]), 0)
    got = last_layer_gradients(Identity(), torch.tensor([[h]]), torch.tensor([0]))
    expected = torch.tensor([[p[0] - 1, p[1], (p[0] - 1) * h, p[1] * h]])
    assert torch.allclose(got, expected, atol=1e-7, rtol=0)


def test_last_layer_gradients_reject_bad_input():
    model = TinyNet()
    images = torch.randn(3, 1, 6, 6)
    with pytest.raises(ConfigError, match="batch_size"):
        last_layer_gradients(model, images, torch.tensor([0, 1, 2]), batch_size=0)
    with pytest.raises(DataError, match="labels must lie in 0..3"):
        last_layer_gradients(model, images, torch.tensor([0, 1, 4]))
    with pytest.raises(DataError, match="labels"):
        last_layer_gradients(model, images, torch.tensor([0, 1]))
    with pytest.raises(DataError, match="empty"):
        last_layer_gradients(model, images[:0], torch.tensor([], dtype=torch.int64))
    with pytest.raises(ConfigError, match="embed"):
        last_layer_gradients(nn.Linear(2, 2), torch.zeros(1, 2), torch.tensor([0]))
