"""FGSM and PGD robustness (``ddr/builtins/metrics/robustness.py``): the pixel-space map and the
attacks' known properties, on a small MLP trained here on ddr's ``digits`` and on linear models
whose FGSM step has a closed form.

FGSM: Goodfellow et al., ICLR 2015. PGD: Madry et al., ICLR 2018.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from ddr.builtins.datasets.digits import load as load_digits
from ddr.builtins.datasets.zca import ZCA, apply_zca, fit_zca
from ddr.builtins.metrics.robustness import PixelSpace, fgsm, measure, pgd, robust_accuracy
from ddr.engine.data import ImageDataset
from ddr.errors import ConfigError, DataError

EPSILONS = (0.0, 2 / 255, 8 / 255, 0.1, 0.5)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these tiny models run many times faster so on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_digits()


def train_mlp(dataset: ImageDataset, seed: int = 0, steps: int = 60, lr: float = 0.5) -> nn.Module:
    """A 256-32-10 MLP with BatchNorm, trained by full-batch gradient descent on the train split
    (no torch.optim: its first use imports torch._dynamo, seconds on a busy machine); weights drawn
    from a seeded generator. Returned in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    parameters = list(model.parameters())
    with torch.no_grad():
        for parameter in parameters:
            if parameter.ndim == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / parameter.shape[1] ** 0.5)
    images, labels = dataset.train.images, dataset.train.labels
    assert images is not None
    for _ in range(steps):
        gradients = torch.autograd.grad(nn.functional.cross_entropy(model(images), labels), parameters)
        with torch.no_grad():
            for parameter, gradient in zip(parameters, gradients):
                parameter.sub_(lr * gradient)
    return model.eval()


@pytest.fixture(scope="module")
def mlp(digits: ImageDataset) -> nn.Module:
    return train_mlp(digits)


@pytest.fixture(scope="module")
def sweep(digits: ImageDataset, mlp: nn.Module) -> dict[str, list[float]]:
    """Robust accuracy of the digits MLP on the 599 test images at :data:`EPSILONS`."""
    space = PixelSpace.of(digits)
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    return {attack: [robust_accuracy(mlp, images, labels, space, attack=attack, epsilon=eps) for eps in EPSILONS]
            for attack in ("fgsm", "pgd")}


def test_pixel_space_maps_normalised_images_to_pixels_and_back(digits: ImageDataset) -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    from ddr.builtins.datasets.digits import pixels01, split_indices

    space = PixelSpace.of(digits)
    x = digits.test.images
    assert x is not None and space.zca is None
    pixels = space.to_pixels(x)
    bunch = sklearn_digits()
    _, test = split_indices(bunch.target)
    torch.testing.assert_close(pixels, pixels01(bunch.images)[torch.from_numpy(test)], atol=1e-6, rtol=0)
    assert pixels.min() > -1e-6 and pixels.max() < 1 + 1e-6
    torch.testing.assert_close(space.to_input(pixels), x, atol=1e-6, rtol=0)


def test_pixel_space_maps_zca_images_to_pixels_and_back(digits: ImageDataset) -> None:
    whitened = apply_zca(digits)
    space = PixelSpace.of(whitened)
    x, fit, normalised = whitened.test.images, whitened.zca, digits.test.images
    assert x is not None and normalised is not None and isinstance(fit, ZCA) and space.zca is fit
    pixels = space.to_pixels(x)
    torch.testing.assert_close(pixels, fit.inverse(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(pixels, PixelSpace.of(digits).to_pixels(normalised), atol=1e-5, rtol=0)
    torch.testing.assert_close(space.to_input(pixels), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(space.to_input(pixels), fit.apply(pixels), atol=1e-6, rtol=0)


def test_to_input_passes_gradients_to_the_pixels() -> None:
    generator = torch.Generator().manual_seed(1)
    pixels = torch.rand(3, 2, 4, 4, generator=generator, dtype=torch.float64)
    normalised = PixelSpace(mean=(0.2, 0.6), std=(0.5, 0.25))
    zca = fit_zca(torch.rand(50, 2, 4, 4, generator=generator))
    for space, expected in ((normalised, torch.tensor([2.0, 4.0], dtype=torch.float64).view(1, 2, 1, 1)
                             .expand(3, 2, 4, 4)),
                            (replace(normalised, zca=zca), zca.transform.double().sum(1).view(1, 2, 4, 4).expand(3, 2, 4, 4))):
        p = pixels.clone().requires_grad_(True)
        space.to_input(p).sum().backward()
        assert p.grad is not None
        torch.testing.assert_close(p.grad, expected)
        assert torch.autograd.gradcheck(space.to_input, (pixels.clone().requires_grad_(True),))


def test_pixel_space_refuses_datasets_it_cannot_invert(digits: ImageDataset) -> None:
    with pytest.raises(DataError, match="no ZCA fit"):
        PixelSpace.of(replace(digits, pixel_space="zca", zca=None))
    with pytest.raises(DataError, match="pixel space 'pixel01'"):
        PixelSpace.of(replace(digits, pixel_space="pixel01"))


@pytest.mark.parametrize("whitened", [False, True], ids=["normalised", "zca"])
def test_fgsm_on_a_linear_model_is_the_closed_form_step(whitened: bool) -> None:
    """Two classes, logits ``x w_k + b_k`` on the model input ``x = (p - mean) / std`` or
    ``(p - mu) W``: the cross-entropy's pixel gradient for label y is
    ``softmax_other * (w_other - w_y) / std`` (times ``W`` for ZCA), so FGSM moves every pixel by
    ``epsilon * sign(w_other - w_y)`` (``sign(W (w_other - w_y))``), clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(2)
    shape, n, epsilon = (1, 4, 4), 8, 0.1
    space = PixelSpace(mean=(0.3,), std=(0.5,))
    if whitened:
        space = replace(space, zca=fit_zca(torch.rand(40, *shape, generator=generator)))
    linear = nn.Linear(16, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(2, 16, generator=generator))
        linear.bias.copy_(torch.randn(2, generator=generator))
    model = nn.Sequential(nn.Flatten(), linear)
    pixels = torch.rand(n, *shape, generator=generator)
    pixels[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # at the borders: the step is clipped there
    labels = torch.tensor([0, 1] * (n // 2))
    direction = linear.weight.detach()[1 - labels] - linear.weight.detach()[labels]  # [n, 16]: w_other - w_y
    if space.zca is not None:
        direction = direction @ space.zca.transform.T  # d x / d p = W (symmetric)
    expected = (pixels + epsilon * direction.sign().view(n, *shape)).clamp(0, 1)
    adversarial = fgsm(model, pixels, labels, space, epsilon)
    torch.testing.assert_close(adversarial, expected, atol=1e-7, rtol=0)
    assert adversarial[0, 0, 0, 0] >= 0 and adversarial[0, 0, 0, 1] <= 1


def test_robust_accuracy_at_epsilon_zero_is_the_clean_accuracy(digits: ImageDataset, mlp: nn.Module,
                                                               sweep: dict[str, list[float]]) -> None:
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    with torch.no_grad():
        clean = (mlp(images).argmax(1) == labels).double().mean().item()
    assert clean > 0.95
    assert sweep["fgsm"][0] == clean and sweep["pgd"][0] == clean


def test_robust_accuracy_falls_with_epsilon_and_pgd_is_at_least_as_strong(sweep: dict[str, list[float]]) -> None:
    fgsm_acc, pgd_acc = sweep["fgsm"], sweep["pgd"]
    for accuracies in (fgsm_acc, pgd_acc):
        assert all(0.0 <= a <= 1.0 for a in accuracies)
        assert all(later <= earlier for earlier, later in zip(accuracies, accuracies[1:])), accuracies
    assert all(p <= f for p, f in zip(pgd_acc, fgsm_acc)), (pgd_acc, fgsm_acc)
    # 8/255 hurts an undefended digits MLP, 0.1 nearly breaks it, and PGD at 0.5 breaks it
    assert pgd_acc[2] < fgsm_acc[0] - 0.05
    assert pgd_acc[3] < 0.2
    assert pgd_acc[4] <= 0.01


def adversaries(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, space: PixelSpace,
                epsilon: float) -> Iterator[tuple[str, torch.Tensor]]:
    yield "fgsm", fgsm(model, pixels, labels, space, epsilon)
    yield "pgd", pgd(model, pixels, labels, space, epsilon, steps=5, generator=torch.Generator().manual_seed(0))
    yield "pgd-no-start", pgd(model, pixels, labels, space, epsilon, steps=3, step_size=epsilon, random_start=False)


@pytest.mark.parametrize("epsilon", [2 / 255, 0.1, 0.5])
def test_adversarial_pixels_stay_in_the_ball_and_in_range(digits: ImageDataset, mlp: nn.Module, epsilon: float) -> None:
    space = PixelSpace.of(digits)
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    pixels = space.to_pixels(images[:128]).clamp(0, 1)
    for name, adversarial in adversaries(mlp, pixels, labels[:128], space, epsilon):
        assert adversarial.shape == pixels.shape and not adversarial.requires_grad, name
        assert (adversarial - pixels).abs().max() <= epsilon + 1e-6, name
        assert adversarial.min() >= 0 and adversarial.max() <= 1, name
        assert (adversarial != pixels).any(), name


def test_attacks_leave_the_model_as_they_found_it(digits: ImageDataset) -> None:
    model = train_mlp(digits, seed=1, steps=5).train()
    next(model.parameters()).requires_grad_(False)  # a frozen parameter stays frozen, the others trainable
    before = {k: v.clone() for k, v in model.state_dict().items()}
    space = PixelSpace.of(digits)
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    pixels = space.to_pixels(images[:64]).clamp(0, 1)
    with torch.no_grad():  # a caller under no_grad still gets gradients for the attack
        list(adversaries(model, pixels, labels[:64], space, 0.1))
        robust_accuracy(model, images[:64], labels[:64], space, attack="pgd", epsilon=0.1, steps=2)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "parameters or BatchNorm statistics moved"
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True, True, True]


def test_pgd_is_reproducible_under_a_seed(digits: ImageDataset, mlp: nn.Module) -> None:
    space = PixelSpace.of(digits)
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    pixels = space.to_pixels(images[:64]).clamp(0, 1)

    def run(seed: int) -> torch.Tensor:
        return pgd(mlp, pixels, labels[:64], space, 0.1, steps=4, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    accuracy = [robust_accuracy(mlp, images[:200], labels[:200], space, attack="pgd", epsilon=0.05, steps=4,
                                seed=seed, batch_size=64) for seed in (5, 5)]
    assert accuracy[0] == accuracy[1]
    with pytest.raises(ConfigError, match="generator"):
        pgd(mlp, pixels, labels[:64], space, 0.1)


def job_test(dataset: ImageDataset, seed: int = 0) -> Any:
    return SimpleNamespace(images=dataset.test.images, labels=dataset.test.labels, dataset=dataset,
                           device=torch.device("cpu"), seed=seed)


def test_measure_reports_clean_and_robust_accuracy(digits: ImageDataset, mlp: nn.Module) -> None:
    test = job_test(digits)
    space = PixelSpace.of(digits)
    images, labels = digits.test.images, digits.test.labels
    assert images is not None
    with torch.no_grad():
        clean = (mlp(images[:200]).argmax(1) == labels[:200]).double().mean().item()
    result = measure(mlp, test, {"attack": "pgd", "epsilon": 8 / 255, "steps": 5, "step_size": None, "max_images": 200})
    assert set(result) == {"clean", "robust"}
    assert result["clean"] == clean
    assert result["robust"] == robust_accuracy(mlp, images[:200], labels[:200], space, attack="pgd", epsilon=8 / 255,
                                               steps=5, seed=0)
    assert result["robust"] < result["clean"]
    fast = measure(mlp, test, {"attack": "fgsm", "epsilon": 8 / 255, "steps": 10, "step_size": None, "max_images": 200})
    assert fast["clean"] == clean and result["robust"] <= fast["robust"] < clean
    assert measure(mlp, test, {"attack": "fgsm", "epsilon": 0.0, "max_images": 200}) == {"clean": clean, "robust": clean}
    with torch.inference_mode():  # a job that measures under inference mode, on tensors made there
        inference_test = SimpleNamespace(**{**vars(test), "images": images * 1.0})
        params = {"attack": "pgd", "epsilon": 8 / 255, "steps": 5, "step_size": None, "max_images": 200}
        assert measure(mlp, inference_test, params) == result


@pytest.mark.parametrize(("params", "message"), [
    ({"epsilon": 0.03}, "needs 'attack'"),
    ({"attack": "pgd"}, "needs 'epsilon'"),
    ({"attack": "cw", "epsilon": 0.03}, "set attack to one of fgsm, pgd"),
    ({"attack": "pgd", "epsilon": 8}, r"0\.\.1 pixel units"),
    ({"attack": "pgd", "epsilon": -0.1}, "must lie in"),
    ({"attack": "pgd", "epsilon": float("nan")}, "epsilon must be a number"),
    ({"attack": "pgd", "epsilon": 0.03, "steps": 0}, "steps"),
    ({"attack": "pgd", "epsilon": 0.03, "steps": 2.5}, "steps"),
    ({"attack": "pgd", "epsilon": 0.03, "step_size": -1.0}, "step_size must be a positive number"),
    ({"attack": "fgsm", "epsilon": 0.03, "step_size": 0.01}, "step_size applies to pgd only"),
    ({"attack": "pgd", "epsilon": 0.03, "max_images": 0}, "max_images"),
    ({"attack": "pgd", "epsilon": 0.03, "max_image": 10}, "did you mean 'max_images'"),
])
def test_measure_refuses_bad_params(digits: ImageDataset, mlp: nn.Module, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        measure(mlp, job_test(digits), params)


def test_a_zca_student_loses_accuracy_under_attack_too(digits: ImageDataset) -> None:
    whitened = apply_zca(digits)
    model = train_mlp(whitened)
    test = job_test(whitened)
    results = [measure(model, test, {"attack": attack, "epsilon": eps, "steps": 10, "step_size": None, "max_images": None})
               for eps in (0.0, 8 / 255, 0.5) for attack in ("fgsm", "pgd")]
    clean = results[0]["clean"]
    assert clean > 0.95 and all(r["clean"] == clean for r in results)
    robust = [r["robust"] for r in results]
    assert robust[0] == robust[1] == clean
    assert robust[3] <= robust[2] < clean - 0.05
    assert robust[5] <= 0.01
