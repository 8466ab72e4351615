"""Accuracy and the DD-Ranking scores HLR, IOR, DDRS (LRS) and ARS, as pure functions.

Every accuracy here is a FRACTION in [0, 1], never a percentage (docs/protocol.md §1). Differences of
accuracies (HLR, IOR and the two ARS terms) are therefore in [-1, 1], so the exponents α and β
lie in [-1, 1] and the normalised scores lie in [0, 1]:

- ``HLR = acc_real_hard - acc_syn_hard`` (lower is better)
- ``IOR = acc_syn_any - acc_rdm_any`` (higher is better)
- ``α = w·IOR - (1-w)·HLR`` and ``DDRS = (e^α - e^-1) / (e - e^-1)``
- ``β = λ·(syn_aug - rdm_aug) + (1-λ)·(syn_noaug - rdm_noaug)`` and
  ``ARS = (e^β - e^-1) / (e - e^-1)``

DD-Ranking 0.2.0 feeds percentages into ``exp`` (its scores saturate at -0.1565);
:func:`ddranking_lrs_percent` and :func:`ddranking_ars_percent` reproduce that arithmetic only for
side-by-side comparison. Scores over several students are computed per student index and then
aggregated (:func:`score_table`, :func:`ars_table`), as DD-Ranking does.

This module never imports torch; :func:`accuracy` accepts torch tensors and numpy arrays alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ddr.errors import DdrError
from ddr.records.summary import Summary

_E = math.e
_E_INV = math.exp(-1.0)
_EXP_SCORE_SPAN = _E - _E_INV


# ---------------------------------------------------------------------------------------------
# input validation


def _as_real(name: str, value: Any) -> float:
    """``value`` as a finite Python float, or a DdrError naming ``name``."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise DdrError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: multi-element tensor
        raise DdrError(f"{name} must be a number, got {type(value).__name__} {value!r}") from exc
    if math.isnan(number):
        raise DdrError(f"{name} is NaN; the evaluation that produced it failed (check its log)")
    return number


def _as_fraction(name: str, value: Any) -> float:
    """An accuracy, checked to be a fraction in [0, 1]."""
    number = _as_real(name, value)
    if not 0.0 <= number <= 1.0:
        hint = " — divide percentages by 100" if 1.0 < number <= 100.0 else ""
        raise DdrError(f"{name}: accuracies are fractions in [0,1]; got {number:g}{hint}")
    return number


def _as_difference(name: str, value: Any) -> float:
    """A difference of two accuracies (HLR, IOR), checked to be in [-1, 1]."""
    number = _as_real(name, value)
    if not -1.0 <= number <= 1.0:
        hint = " — divide percentage points by 100" if 1.0 < abs(number) <= 100.0 else ""
        raise DdrError(
            f"{name}: differences of accuracy fractions lie in [-1,1]; got {number:g}{hint}"
        )
    return number


def _as_weight(name: str, value: Any) -> float:
    """A mixing weight (w, λ), checked to be in [0, 1]."""
    number = _as_real(name, value)
    if not 0.0 <= number <= 1.0:
        raise DdrError(f"{name} is a weight in [0,1]; got {number:g}")
    return number


# ---------------------------------------------------------------------------------------------
# accuracy


def accuracy(logits_or_preds: Any, labels: Any) -> float:
    """Fraction of correctly classified samples, in [0, 1].

    Args:
        logits_or_preds: ``[B, K]`` logits or probabilities (the argmax over the last dimension is
            the prediction) or ``[B]`` predicted class indices. A torch tensor (anything with
            ``.detach``; counted on its own device, one host sync) or a numpy array / sequence.
        labels: ``[B]`` true class indices, tensor or array.
    """
    outputs: Any
    truth: Any
    if hasattr(logits_or_preds, "detach"):
        import torch  # already loaded: the caller handed us a tensor

        outputs = logits_or_preds.detach()
        truth = torch.as_tensor(
            labels.detach() if hasattr(labels, "detach") else np.asarray(labels),
            device=outputs.device,
        )
    else:
        outputs = np.asarray(logits_or_preds)
        truth = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)

    if outputs.ndim not in (1, 2):
        raise DdrError(
            f"accuracy expects [B, K] logits or [B] predictions; got shape {tuple(outputs.shape)}"
        )
    if truth.ndim != 1 or truth.shape[0] != outputs.shape[0]:
        raise DdrError(
            f"accuracy expects [B] labels matching {outputs.shape[0]} predictions; "
            f"got labels of shape {tuple(truth.shape)}"
        )
    count = int(outputs.shape[0])
    if count == 0:
        raise DdrError("accuracy of an empty batch is undefined; evaluate on at least one sample")
    predictions = outputs.argmax(-1) if outputs.ndim == 2 else outputs
    correct = (predictions == truth).sum()
    return float(correct.item() if hasattr(correct, "item") else correct) / count


# ---------------------------------------------------------------------------------------------
# scores from fractions


def _exp_score(exponent: float) -> float:
    """``(e^x - e^-1) / (e - e^-1)``: maps x ∈ [-1, 1] monotonically onto [0, 1]."""
    return (math.exp(exponent) - _E_INV) / _EXP_SCORE_SPAN


def _clip_unit(exponent: float) -> float:
    # α and β are convex combinations of values in [-1, 1]; clipping only absorbs float rounding
    # (e.g. 0.3·1 + 0.7·1 = 0.9999999999999999 or 1.0000000000000002).
    return min(1.0, max(-1.0, exponent))


def exp_score(exponent: float) -> float:
    """DDRS/ARS as a function of its exponent (α or β), clipped to [-1, 1]: what an iso-score line
    of a plot is labelled with."""
    return _exp_score(_clip_unit(_as_real("exponent", exponent)))


def fraction(value: float) -> float:
    """An accuracy as it is reported: checked to be a fraction in [0, 1]."""
    return _as_fraction("accuracy", value)


def hlr(acc_real_hard: float, acc_syn_hard: float) -> float:
    """Hard label recovery ``acc_real_hard - acc_syn_hard`` (fractions; lower is better)."""
    return _as_fraction("acc_real_hard", acc_real_hard) - _as_fraction("acc_syn_hard", acc_syn_hard)


def ior(acc_syn_any: float, acc_rdm_any: float) -> float:
    """Improvement over random ``acc_syn_any - acc_rdm_any`` (fractions; higher is better)."""
    return _as_fraction("acc_syn_any", acc_syn_any) - _as_fraction("acc_rdm_any", acc_rdm_any)


def ddrs(hlr: float, ior: float, w: float = 0.5) -> float:
    """DD-Ranking score (LRS in DD-Ranking >= 0.2), in [0, 1].

    ``α = w·IOR - (1-w)·HLR``; ``DDRS = (e^α - e^-1) / (e - e^-1)``. HLR and IOR are differences of
    accuracy fractions, in [-1, 1]; ``w`` in [0, 1] weighs IOR against HLR.
    """
    hlr_value = _as_difference("HLR", hlr)
    ior_value = _as_difference("IOR", ior)
    weight = _as_weight("w", w)
    alpha = weight * ior_value - (1.0 - weight) * hlr_value
    return _exp_score(_clip_unit(alpha))


def ars(
    syn_aug: float, rdm_aug: float, syn_noaug: float, rdm_noaug: float, lam: float = 0.5
) -> float:
    """Augmentation robust score, in [0, 1].

    All four arguments are accuracy fractions: distilled (``syn``) and random (``rdm``) sets,
    each trained with (``aug``) and without (``noaug``) augmentation.
    ``β = λ·(syn_aug - rdm_aug) + (1-λ)·(syn_noaug - rdm_noaug)``;
    ``ARS = (e^β - e^-1) / (e - e^-1)``.
    """
    with_aug = _as_fraction("acc_syn_aug", syn_aug) - _as_fraction("acc_rdm_aug", rdm_aug)
    without_aug = _as_fraction("acc_syn_noaug", syn_noaug) - _as_fraction(
        "acc_rdm_noaug", rdm_noaug
    )
    weight = _as_weight("lam", lam)
    beta = weight * with_aug + (1.0 - weight) * without_aug
    return _exp_score(_clip_unit(beta))


# ---------------------------------------------------------------------------------------------
# DD-Ranking 0.2.0 arithmetic (percent inside exp), for side-by-side comparison only


def _ddranking_exp_score(exponent_percent_points: float) -> float:
    # Deliberately unclipped and unnormalised: this is what DD-Ranking 0.2.0 computes.
    return (math.exp(exponent_percent_points) - _E_INV) / _EXP_SCORE_SPAN


def ddranking_lrs_percent(
    acc_real_hard: float,
    acc_syn_hard: float,
    acc_syn_any: float,
    acc_rdm_any: float,
    w: float = 0.5,
) -> float:
    """LRS exactly as DD-Ranking 0.2.0 computes it: the same formula on percentages.

    Takes accuracy FRACTIONS (like every ddr function), multiplies them by 100 and returns the raw
    0.2.0 value, which is not in [0, 1]: any α <= -10 percentage points gives -0.1565176...,
    α = 10 gives about 9371. Use only to compare with DD-Ranking output.
    """
    hlr_points = 100.0 * hlr(acc_real_hard, acc_syn_hard)
    ior_points = 100.0 * ior(acc_syn_any, acc_rdm_any)
    weight = _as_weight("w", w)
    return _ddranking_exp_score(weight * ior_points - (1.0 - weight) * hlr_points)


def ddranking_ars_percent(
    syn_aug: float, rdm_aug: float, syn_noaug: float, rdm_noaug: float, lam: float = 0.5
) -> float:
    """ARS exactly as DD-Ranking 0.2.0 computes it (percentages inside ``exp``); see
    :func:`ddranking_lrs_percent`. Arguments are accuracy fractions."""
    with_points = 100.0 * (
        _as_fraction("acc_syn_aug", syn_aug) - _as_fraction("acc_rdm_aug", rdm_aug)
    )
    without_points = 100.0 * (
        _as_fraction("acc_syn_noaug", syn_noaug) - _as_fraction("acc_rdm_noaug", rdm_noaug)
    )
    weight = _as_weight("lam", lam)
    return _ddranking_exp_score(weight * with_points + (1.0 - weight) * without_points)


# ---------------------------------------------------------------------------------------------
# aggregation over students


def summarize(values: Sequence[float], name: str = "values") -> Summary:
    """Mean, sample std (ddof=1) and population std (ddof=0) of finite per-student values."""
    numbers = [_as_real(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if not numbers:
        raise DdrError(f"cannot summarize {name}: no values (num_eval must be >= 1)")
    for i, number in enumerate(numbers):
        if math.isinf(number):
            raise DdrError(f"{name}[{i}] is infinite; the evaluation that produced it failed")
    array = np.asarray(numbers, dtype=np.float64)
    count = len(numbers)
    return Summary(
        mean=float(array.mean()),
        std=float(array.std(ddof=1)) if count > 1 else 0.0,
        std_population=float(array.std(ddof=0)),
        values=numbers,
        n=count,
    )


def _student_count(**per_student: Sequence[float]) -> int:
    """The common length of per-student sequences; a DdrError when they disagree or are empty."""
    lengths = {name: len(values) for name, values in per_student.items()}
    count = next(iter(lengths.values()))
    if count == 0 or any(length != count for length in lengths.values()):
        listing = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise DdrError(
            f"per-student accuracy lists must have the same non-zero length (one entry per "
            f"student index); got {listing}"
        )
    return count


def _broadcast_real(acc_real_hard: Sequence[float], count: int) -> list[float]:
    """``acc_real_hard`` of length 1 (the cached real-data accuracy) or ``count``, as a list of
    length ``count``."""
    if len(acc_real_hard) == 1:
        return list(acc_real_hard) * count
    if len(acc_real_hard) == count:
        return list(acc_real_hard)
    raise DdrError(
        f"acc_real_hard must hold 1 value (cached real-data accuracy) or one per student "
        f"({count}); got {len(acc_real_hard)}"
    )


def score_table(
    acc_real_hard: Sequence[float] | float,
    acc_syn_hard: Sequence[float],
    acc_syn_any: Sequence[float],
    acc_rdm_any: Sequence[float],
    w: float = 0.5,
    compat: bool = False,
) -> dict[str, Summary]:
    """HLR, IOR and DDRS per student index, then aggregated (as DD-Ranking does).

    Args:
        acc_real_hard: accuracy fractions of full-data students: one value (the cached real-data
            accuracy, used for every student; a bare number is accepted) or one per student.
        acc_syn_hard, acc_syn_any, acc_rdm_any: one accuracy fraction per student, same length.
        w: IOR weight in α.
        compat: also report ``ddranking_lrs``, DD-Ranking 0.2.0's percent arithmetic per student.

    Returns:
        ``{"acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs"}``
        (plus ``"ddranking_lrs"`` if ``compat``) mapped to :class:`Summary`. ``acc_real_hard``
        summarises the values as given (n=1 when cached).
    """
    count = _student_count(
        acc_syn_hard=acc_syn_hard, acc_syn_any=acc_syn_any, acc_rdm_any=acc_rdm_any
    )
    if not isinstance(acc_real_hard, Sequence):
        acc_real_hard = [acc_real_hard]
    real = _broadcast_real(acc_real_hard, count)
    hlrs = [hlr(real[i], acc_syn_hard[i]) for i in range(count)]
    iors = [ior(acc_syn_any[i], acc_rdm_any[i]) for i in range(count)]
    table = {
        "acc_real_hard": summarize(acc_real_hard, "acc_real_hard"),
        "acc_syn_hard": summarize(acc_syn_hard, "acc_syn_hard"),
        "acc_syn_any": summarize(acc_syn_any, "acc_syn_any"),
        "acc_rdm_any": summarize(acc_rdm_any, "acc_rdm_any"),
        "hlr": summarize(hlrs, "hlr"),
        "ior": summarize(iors, "ior"),
        "ddrs": summarize([ddrs(h, i, w) for h, i in zip(hlrs, iors)], "ddrs"),
    }
    if compat:
        table["ddranking_lrs"] = summarize(
            [
                ddranking_lrs_percent(real[i], acc_syn_hard[i], acc_syn_any[i], acc_rdm_any[i], w)
                for i in range(count)
            ],
            "ddranking_lrs",
        )
    return table


def ars_table(
    syn_aug: Sequence[float],
    rdm_aug: Sequence[float],
    syn_noaug: Sequence[float],
    rdm_noaug: Sequence[float],
    lam: float = 0.5,
    compat: bool = False,
) -> dict[str, Summary]:
    """ARS per student index, then aggregated. Arguments: one accuracy fraction per student.

    Returns:
        ``{"acc_syn_aug", "acc_rdm_aug", "acc_syn_noaug", "acc_rdm_noaug", "with_aug",
        "without_aug", "ars"}`` (plus ``"ddranking_ars"`` if ``compat``) mapped to
        :class:`Summary`; ``with_aug = syn_aug - rdm_aug``, ``without_aug = syn_noaug - rdm_noaug``.
    """
    count = _student_count(
        syn_aug=syn_aug, rdm_aug=rdm_aug, syn_noaug=syn_noaug, rdm_noaug=rdm_noaug
    )
    students = range(count)
    scores = [ars(syn_aug[i], rdm_aug[i], syn_noaug[i], rdm_noaug[i], lam) for i in students]
    table = {
        "acc_syn_aug": summarize(syn_aug, "acc_syn_aug"),
        "acc_rdm_aug": summarize(rdm_aug, "acc_rdm_aug"),
        "acc_syn_noaug": summarize(syn_noaug, "acc_syn_noaug"),
        "acc_rdm_noaug": summarize(rdm_noaug, "acc_rdm_noaug"),
        "with_aug": summarize([syn_aug[i] - rdm_aug[i] for i in students], "with_aug"),
        "without_aug": summarize([syn_noaug[i] - rdm_noaug[i] for i in students], "without_aug"),
        "ars": summarize(scores, "ars"),
    }
    if compat:
        table["ddranking_ars"] = summarize(
            [
                ddranking_ars_percent(syn_aug[i], rdm_aug[i], syn_noaug[i], rdm_noaug[i], lam)
                for i in students
            ],
            "ddranking_ars",
        )
    return table
