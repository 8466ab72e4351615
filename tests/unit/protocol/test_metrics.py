"""ddr.protocol.metrics: hand-computed HLR/IOR/DDRS/ARS, validation, DD-Ranking compat, aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddr.errors import DdrError
from ddr.protocol import metrics

# ---------------------------------------------------------------------------------------------
# accuracy


def test_accuracy_from_logits_numpy():
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.2], [0.0, 5.0]])
    labels = np.array([1, 0, 1, 1])
    assert metrics.accuracy(logits, labels) == 0.75


def test_accuracy_from_predictions_and_tensors_agree():
    preds = torch.tensor([0, 1, 2, 2, 1])
    labels = torch.tensor([0, 1, 1, 2, 0])
    assert metrics.accuracy(preds, labels) == pytest.approx(0.6)
    assert metrics.accuracy(preds.numpy(), labels.numpy()) == pytest.approx(0.6)
    logits = torch.nn.functional.one_hot(preds, 3).float()
    assert metrics.accuracy(logits, labels.numpy()) == pytest.approx(0.6)
    assert metrics.accuracy(logits.numpy(), labels) == pytest.approx(0.6)


def test_accuracy_is_a_python_float_and_ignores_autograd():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    value = metrics.accuracy(logits, torch.tensor([0, 0]))
    assert type(value) is float and value == 0.5


@pytest.mark.parametrize(
    "outputs, labels",
    [
        (np.zeros((0, 3)), np.zeros(0, dtype=int)),  # empty batch
        (np.zeros((4, 3)), np.zeros(3, dtype=int)),  # length mismatch
        (np.zeros((2, 3, 4)), np.zeros(2, dtype=int)),  # 3-D outputs
        (np.zeros((2, 3)), np.zeros((2, 1), dtype=int)),  # 2-D labels
    ],
)
def test_accuracy_rejects_bad_shapes(outputs, labels):
    with pytest.raises(DdrError):
        metrics.accuracy(outputs, labels)


# ---------------------------------------------------------------------------------------------
# HLR / IOR / DDRS


def test_hlr_and_ior_are_differences_of_fractions():
    assert metrics.hlr(0.9, 0.7) == pytest.approx(0.2)
    assert metrics.ior(0.5, 0.2) == pytest.approx(0.3)
    assert metrics.hlr(0.6, 0.8) == pytest.approx(-0.2)  # distilled beats real: negative HLR


def test_ddrs_hand_value():
    # α = 0.5·0.3 − 0.5·0.2 = 0.05; (e^0.05 − e^−1)/(e − e^−1) = 0.683391655 / 2.350402387
    assert metrics.ddrs(0.2, 0.3, w=0.5) == pytest.approx(0.290755, abs=1e-6)
    # α = 0: (1 − e^−1)/(e − e^−1)
    assert metrics.ddrs(0.0, 0.0) == pytest.approx(0.268941, abs=1e-6)


def test_ddrs_weight_moves_alpha():
    # w = 0.8: α = 0.8·0.3 − 0.2·0.2 = 0.2 → (e^0.2 − e^−1)/(e − e^−1) = 0.363139
    assert metrics.ddrs(0.2, 0.3, w=0.8) == pytest.approx(0.363139, abs=1e-6)


def test_ddrs_bounds_are_exact():
    # real = syn_hard = syn_any = 1, rdm = 0, w = 1: α = IOR = 1 → exactly 1.0
    top = metrics.ddrs(metrics.hlr(1.0, 1.0), metrics.ior(1.0, 0.0), w=1.0)
    assert top == 1.0
    # w = 0 and HLR = 1: α = −1 → exactly 0.0
    bottom = metrics.ddrs(metrics.hlr(1.0, 0.0), metrics.ior(0.3, 0.3), w=0.0)
    assert bottom == 0.0


def test_ddrs_stays_in_unit_interval_under_rounding():
    # 0.3·1 + 0.7·1 is not exactly 1 in floating point; the score must still be within [0, 1].
    for w in np.linspace(0.0, 1.0, 11):
        assert 0.0 <= metrics.ddrs(-1.0, 1.0, w=float(w)) <= 1.0
        assert 0.0 <= metrics.ddrs(1.0, -1.0, w=float(w)) <= 1.0
    assert metrics.ddrs(-1.0, 1.0, w=0.3) == 1.0


def test_ddrs_monotone():
    assert metrics.ddrs(0.1, 0.3) > metrics.ddrs(0.2, 0.3) > metrics.ddrs(0.2, 0.2)


# ---------------------------------------------------------------------------------------------
# ARS


def test_ars_hand_values():
    # with = 0.6 − 0.5 = 0.1, without = 0.4 − 0.45 = −0.05
    # λ = 0.5: β = 0.025 → (e^0.025 − e^−1)/(e − e^−1) = 0.279712
    assert metrics.ars(0.6, 0.5, 0.4, 0.45) == pytest.approx(0.279712, abs=1e-6)
    # λ = 0.8: β = 0.08 − 0.01 = 0.07 → 0.299791
    assert metrics.ars(0.6, 0.5, 0.4, 0.45, lam=0.8) == pytest.approx(0.299791, abs=1e-6)


def test_ars_bounds():
    assert metrics.ars(1.0, 0.0, 1.0, 0.0) == 1.0
    assert metrics.ars(0.0, 1.0, 0.0, 1.0) == 0.0


# ---------------------------------------------------------------------------------------------
# validation


def test_percent_input_is_rejected_with_a_hint():
    expected = (
        r"acc_real_hard: accuracies are fractions in \[0,1\]; got 87.5 — divide percentages by 100"
    )
    with pytest.raises(DdrError, match=expected):
        metrics.hlr(87.5, 0.5)
    with pytest.raises(DdrError, match="acc_rdm_aug"):
        metrics.ars(0.5, 45.0, 0.5, 0.5)


@pytest.mark.parametrize("bad", [-0.01, 1.0001, 250.0])
def test_out_of_range_accuracy_is_rejected(bad):
    with pytest.raises(DdrError, match="fractions"):
        metrics.ior(bad, 0.5)


def test_nan_and_non_numbers_are_rejected():
    with pytest.raises(DdrError, match="NaN"):
        metrics.ior(float("nan"), 0.5)
    with pytest.raises(DdrError, match="NaN"):
        metrics.ddrs(float("nan"), 0.1)
    with pytest.raises(DdrError, match="number"):
        metrics.hlr("0.9", 0.5)
    with pytest.raises(DdrError, match="number"):
        metrics.hlr(True, 0.5)
    with pytest.raises(DdrError, match="number"):
        metrics.hlr(torch.tensor([0.9, 0.8]), 0.5)


def test_differences_in_percentage_points_are_rejected():
    with pytest.raises(DdrError, match="divide percentage points by 100"):
        metrics.ddrs(49.0, -36.5)


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_weights_outside_unit_interval_are_rejected(weight):
    with pytest.raises(DdrError):
        metrics.ddrs(0.1, 0.1, w=weight)
    with pytest.raises(DdrError):
        metrics.ars(0.5, 0.5, 0.5, 0.5, lam=weight)


def test_numpy_and_tensor_scalars_are_accepted():
    assert metrics.hlr(np.float32(0.75), torch.tensor(0.25)) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# DD-Ranking 0.2.0 compatibility (percent inside exp)

DDRANKING_FLOOR = -math.exp(-1.0) / (math.e - math.exp(-1.0))


def test_ddranking_saturates_for_negative_alpha():
    # reference/ddranking-0.2.0-notes.md §2, run hard_randn: syn 15.00 %, real 64.00 %,
    # random 51.50 % → HLR 49.0, IOR −36.5, LRS −0.1565176427496657.
    value = metrics.ddranking_lrs_percent(0.64, 0.15, 0.15, 0.515)
    assert value == pytest.approx(-0.1565176427496657, abs=1e-12)
    assert value == pytest.approx(-0.1565176, abs=1e-7)
    assert value == pytest.approx(DDRANKING_FLOOR, abs=1e-12)
    # the same accuracies on ddr's fraction scale give a score inside [0, 1]
    fraction_score = metrics.ddrs(metrics.hlr(0.64, 0.15), metrics.ior(0.15, 0.515))
    # α = 0.5·(−0.365) − 0.5·0.49 = −0.4275 → (e^−0.4275 − e^−1)/(e − e^−1) = 0.120940
    assert fraction_score == pytest.approx(0.120940, abs=1e-6)


def test_ddranking_reference_runs_reproduced():
    # run hard_real: syn 44.50, real 64.00, random 51.50 → −0.1565169
    assert metrics.ddranking_lrs_percent(0.64, 0.445, 0.445, 0.515) == pytest.approx(
        -0.1565169, abs=1e-7
    )
    # ARS run: syn aug 44.5 / noaug 32.5, rdm aug 56.0 / noaug 55.5 → −0.1565176
    assert metrics.ddranking_ars_percent(0.445, 0.56, 0.325, 0.555) == pytest.approx(
        -0.1565176, abs=1e-7
    )


def test_ddranking_is_not_normalised_for_positive_alpha():
    # IOR of 2 percentage points, HLR 0, w = 0.5 → α = 1 (percent) → exactly ddr's upper bound;
    # 20 points → α = 10 → about 9371 (the "α = 10 gives 9371" of the notes).
    assert metrics.ddranking_lrs_percent(0.5, 0.5, 0.52, 0.5) == pytest.approx(1.0, abs=1e-9)
    assert metrics.ddranking_lrs_percent(0.5, 0.5, 0.7, 0.5) == pytest.approx(9371.2, abs=0.1)


def test_ddranking_compat_still_takes_fractions():
    with pytest.raises(DdrError, match="divide percentages by 100"):
        metrics.ddranking_lrs_percent(64.0, 15.0, 15.0, 51.5)


# ---------------------------------------------------------------------------------------------
# aggregation


def test_summary_sample_and_population_std():
    summary = metrics.summarize([0.5, 0.6, 0.7])
    assert summary.mean == pytest.approx(0.6)
    assert summary.std == pytest.approx(0.1)  # ddof=1: sqrt(0.02 / 2)
    assert summary.std_population == pytest.approx(0.0816497, abs=1e-7)  # ddof=0: sqrt(0.02 / 3)
    assert summary.n == 3
    assert summary.to_dict() == {
        "mean": summary.mean,
        "std": summary.std,
        "std_population": summary.std_population,
        "n": 3,
        "values": [0.5, 0.6, 0.7],
    }


def test_summary_of_one_value_has_zero_spread():
    summary = metrics.summarize([0.42])
    assert (summary.mean, summary.std, summary.std_population, summary.n) == (0.42, 0.0, 0.0, 1)


def test_summary_rejects_empty_and_non_finite():
    with pytest.raises(DdrError, match="no values"):
        metrics.summarize([])
    with pytest.raises(DdrError, match="NaN"):
        metrics.summarize([0.1, float("nan")])
    with pytest.raises(DdrError, match="infinite"):
        metrics.summarize([0.1, float("inf")])


def test_score_table_aggregates_per_student_not_means():
    # w = 1 so α = IOR. Student 0: IOR = +1 → DDRS 1; student 1: IOR = −1 → DDRS 0.
    table = metrics.score_table([1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], w=1.0)
    assert table["ddrs"].values == [1.0, 0.0]
    assert table["ddrs"].mean == 0.5
    assert table["ddrs"].std == pytest.approx(0.7071068, abs=1e-7)
    assert table["ddrs"].std_population == 0.5
    # DDRS of the mean accuracies (mean IOR = 0) would be (1 − e^−1)/(e − e^−1) instead:
    of_means = metrics.ddrs(table["hlr"].mean, table["ior"].mean, w=1.0)
    assert of_means == pytest.approx(0.268941, abs=1e-6)
    assert table["ior"].values == [1.0, -1.0]
    assert table["hlr"].values == [0.0, 0.0]


def test_score_table_broadcasts_cached_real_accuracy():
    cached = metrics.score_table([0.9], [0.7, 0.8], [0.75, 0.85], [0.5, 0.55])
    scalar = metrics.score_table(0.9, [0.7, 0.8], [0.75, 0.85], [0.5, 0.55])
    explicit = metrics.score_table([0.9, 0.9], [0.7, 0.8], [0.75, 0.85], [0.5, 0.55])
    assert cached["hlr"].values == pytest.approx([0.2, 0.1])
    assert cached["ior"].values == pytest.approx([0.25, 0.3])
    # student 0: α = 0.5·0.25 − 0.5·0.2 = 0.025 → 0.279712; student 1: α = 0.1 → 0.313687
    assert cached["ddrs"].values == pytest.approx([0.279712, 0.313687], abs=1e-6)
    assert cached["ddrs"].values == explicit["ddrs"].values == scalar["ddrs"].values
    assert cached["acc_real_hard"].n == 1 and explicit["acc_real_hard"].n == 2
    assert set(cached) == {
        "acc_real_hard", "acc_syn_hard", "acc_syn_any", "acc_rdm_any", "hlr", "ior", "ddrs"
    }


def test_score_table_compat_adds_ddranking_column():
    table = metrics.score_table([0.64], [0.15, 0.445], [0.15, 0.445], [0.515, 0.515], compat=True)
    assert table["ddranking_lrs"].values == pytest.approx([-0.1565176, -0.1565169], abs=1e-7)
    assert 0.0 <= table["ddrs"].values[0] <= table["ddrs"].values[1] <= 1.0


def test_score_table_length_errors():
    with pytest.raises(DdrError, match="acc_syn_any: 3"):
        metrics.score_table([0.9], [0.5, 0.6], [0.5, 0.6, 0.7], [0.4, 0.4])
    with pytest.raises(DdrError, match="acc_real_hard must hold 1 value"):
        metrics.score_table([0.9, 0.9, 0.9], [0.5, 0.6], [0.5, 0.6], [0.4, 0.4])
    with pytest.raises(DdrError, match="non-zero length"):
        metrics.score_table([0.9], [], [], [])


def test_score_table_rejects_percentages():
    with pytest.raises(DdrError, match="divide percentages by 100"):
        metrics.score_table([90.0], [50.0], [60.0], [40.0])


def test_ars_table_hand_values():
    table = metrics.ars_table([0.6, 1.0], [0.5, 0.0], [0.4, 1.0], [0.45, 0.0], compat=True)
    assert table["ars"].values == pytest.approx([0.279712, 1.0], abs=1e-6)
    assert table["with_aug"].values == pytest.approx([0.1, 1.0])
    assert table["without_aug"].values == pytest.approx([-0.05, 1.0])
    assert table["ars"].mean == pytest.approx((0.279712 + 1.0) / 2, abs=1e-6)
    # percent arithmetic: student 0 β = 2.5 points → (e^2.5 − e^−1)/(e − e^−1) = 5.026635
    assert table["ddranking_ars"].values[0] == pytest.approx(5.026635, abs=1e-6)
    with pytest.raises(DdrError, match="same non-zero length"):
        metrics.ars_table([0.6], [0.5, 0.5], [0.4], [0.4])
