"""The students' optimisers give torch.optim's weights bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ddr.engine.optimizers import StudentOptimizer
from ddr.engine.training import Recipe


def _trained(optimizer_factory, recipe: Recipe, steps: int = 25) -> dict[str, torch.Tensor]:
    """A small conv net trained ``steps`` steps on fixed random data, the LR changed mid-way."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.GroupNorm(8, 8), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 10))
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(32, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 10, (32,), generator=generator)
    optimizer = optimizer_factory(model.parameters())
    for step in range(steps):
        if step == steps // 2:
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * 0.1
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


REFERENCE = {
    "sgd": lambda params, r: torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay),
    "adam": lambda params, r: torch.optim.Adam(params, lr=r.lr, betas=(r.momentum, 0.999), weight_decay=r.weight_decay),
    "adamw": lambda params, r: torch.optim.AdamW(params, lr=r.lr, betas=(r.momentum, 0.999),
                                                 weight_decay=r.weight_decay),
}


@pytest.mark.parametrize("kind,lr,momentum,weight_decay", [
    ("sgd", 0.05, 0.9, 5e-4), ("sgd", 0.1, 0.0, 0.0), ("adam", 1e-3, 0.9, 5e-4), ("adamw", 1e-3, 0.9, 0.01)])
def test_the_weights_equal_torch_optims_bit_for_bit(kind: str, lr: float, momentum: float, weight_decay: float) -> None:
    recipe = Recipe(optimizer=kind, lr=lr, momentum=momentum, weight_decay=weight_decay)
    ours = _trained(lambda params: StudentOptimizer(params, recipe), recipe)
    theirs = _trained(lambda params: REFERENCE[kind](params, recipe), recipe)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), f"{kind}: {name} differs from torch.optim's"
    start = _trained(lambda params: StudentOptimizer(params, recipe), recipe, steps=0)
    assert not torch.equal(ours["4.weight"], start["4.weight"])  # the comparison is of trained weights


def test_zero_grad_without_set_to_none_zeroes_in_place() -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    (weight * 2).sum().backward()
    optimizer = StudentOptimizer([weight], Recipe())
    grad = weight.grad
    optimizer.zero_grad(set_to_none=False)
    assert weight.grad is grad and torch.equal(grad, torch.zeros(3))
    optimizer.zero_grad()
    assert weight.grad is None


def test_training_a_student_does_not_import_torch_dynamo() -> None:
    """The point of the module: THE loop (SGD, Adam, AdamW) never pays the torch._dynamo import."""
    code = (
        "import sys, torch\n"
        "from ddr.engine.build import build_label_strategy\n"
        "from ddr.engine.data import Split\n"
        "from ddr.engine.training import Recipe, TrainData, train\n"
        "split = Split(labels=torch.arange(2).repeat(8), images=torch.randn(16, 1, 2, 2))\n"
        "for kind in ('sgd', 'adam', 'adamw'):\n"
        "    strategy = build_label_strategy('hard')\n"
        "    strategy.prepare(hard_labels=split.labels, soft_labels=None, teachers=[], num_classes=2)\n"
        "    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))\n"
        "    train(model, TrainData(split), Recipe(optimizer=kind, epochs=2, batch_size=8),\n"
        "          generator=torch.Generator().manual_seed(0), strategy=strategy)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
