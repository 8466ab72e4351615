"""``check_loss`` exercises non-trivial mixes: a hard loss that ignores ``targets.mix`` fails it,
the built-in losses pass it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddr.builtins.losses.functions import BUILTIN_LOSSES, build_loss
from ddr.engine.labels import Targets
from ddr.testing import check_loss


def ignores_mix(logits: torch.Tensor, targets: Targets) -> torch.Tensor:
    """Cross-entropy on the samples' own labels, whatever the mix: wrong under CutMix/Mixup."""
    return F.cross_entropy(logits.float(), targets.hard)


def mixes_the_wrong_way(logits: torch.Tensor, targets: Targets) -> torch.Tensor:
    """Swaps lam and 1 - lam."""
    own = F.cross_entropy(logits.float(), targets.hard, reduction="none")
    if targets.mix is None:
        return own.mean()
    partner = F.cross_entropy(logits.float(), targets.hard[targets.mix.perm], reduction="none")
    lam = targets.mix.lam.float()
    return ((1 - lam) * own + lam * partner).mean()


@pytest.mark.parametrize("loss", [ignores_mix, mixes_the_wrong_way])
def test_a_loss_that_does_not_mix_hard_labels_is_caught(loss) -> None:
    with pytest.raises(AssertionError, match=r"ignores targets.mix|changes under a mix"):
        check_loss(loss)


def test_ignoring_the_mix_names_the_fix() -> None:
    with pytest.raises(AssertionError, match=r"lam \* loss\(y\) \+ \(1 - lam\) \* loss\(y\[mix.perm\]\)"):
        check_loss(ignores_mix)


@pytest.mark.parametrize("name", sorted(BUILTIN_LOSSES))
def test_builtin_losses_pass_the_mix_checks(name: str) -> None:
    check_loss(build_loss(name), zero_at_target=name == "kl")
    if name == "ce":
        check_loss(build_loss(name, label_smoothing=0.1))


def test_contributing_worked_example_passes_and_breaks_without_its_mix_branch() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[3] / "CONTRIBUTING.md").read_text()
    section = text[text.index("## The loss contract"):text.index("## The other component contracts")]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict = {}
    exec(compile(code.group(1), "CONTRIBUTING.md", "exec"), namespace)  # noqa: S102 - our own docs
    focal = namespace["Focal"]()
    check_loss(focal)

    def without_mix(logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        return focal._per_sample(logits.float(), targets.hard).mean()

    with pytest.raises(AssertionError, match="ignores targets.mix"):
        check_loss(without_mix)
