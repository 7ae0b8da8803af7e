"""consistency_loss: confidence masks, UniMatch normalisation, valid pixels, detached teacher; adaptive thresholds."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses import consistency_loss, masked_dice_loss
from hdc_ray.losses.consistency import adaptive_thresholds, confidence_sums, ema_confidence_update, initial_confidence

LOG2 = math.log(2.0)

# Teacher, 3 pixels, 2 classes: [log 9, 0] -> p = (0.9, 0.1), label 0; [0, log 24] -> (0.04, 0.96),
# label 1; [0, log 1.5] -> (0.4, 0.6), label 1. Confidences 0.9, 0.96, 0.6.
TEACHER = [[math.log(9), 0.0], [0.0, math.log(24)], [0.0, math.log(1.5)]]
# A uniform student has CE log 2 on every pixel; [log 3, 0] has CE log(4/3) against label 0.
FLAT = [[0.0, 0.0]] * 3
SKEWED = [[math.log(3), 0.0], [0.0, 0.0], [0.0, 0.0]]


def _logits(pixels: list[list[float]]) -> torch.Tensor:
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, len(pixels))


CASES = [
    # (student, threshold, valid row or None, expected loss, expected confident fraction)
    (FLAT, 0.95, None, LOG2 / 3, 1 / 3),
    (FLAT, 0.85, None, 2 * LOG2 / 3, 2 / 3),
    (FLAT, 0.0, None, LOG2, 1.0),
    (FLAT, 0.99, None, 0.0, 0.0),
    (FLAT, 1.5, None, 0.0, 0.0),
    (SKEWED, 0.85, None, (math.log(4 / 3) + LOG2) / 3, 2 / 3),
    # Invalid pixel 1 leaves both numerator and denominator: divide by 2 valid pixels.
    (FLAT, 0.85, [True, False, True], LOG2 / 2, 1 / 2),
    (SKEWED, 0.0, [True, False, True], (math.log(4 / 3) + LOG2) / 2, 1.0),
    (FLAT, 0.0, [False, False, False], 0.0, 0.0),
]


@pytest.mark.parametrize(("student", "threshold", "valid", "loss", "fraction"), CASES)
def test_values(student, threshold, valid, loss, fraction) -> None:
    v = None if valid is None else torch.tensor([[valid]])
    got, frac = consistency_loss(_logits(student), _logits(TEACHER), threshold, v)
    assert got.item() == pytest.approx(loss, abs=1e-6)
    assert frac.item() == pytest.approx(fraction, abs=1e-6)
    assert frac.ndim == 0 and not frac.requires_grad


def test_teacher_gets_no_gradient() -> None:
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = (3 * torch.randn(2, 3, 4, 4)).requires_grad_()
    loss, _ = consistency_loss(student, teacher, 0.5)
    loss.backward()
    assert teacher.grad is None
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize("fill", [None, 0.0, 5.0])
def test_identical_student_teacher_is_finite(fill: float | None) -> None:
    base = 4 * torch.randn(2, 3, 4, 4) if fill is None else torch.full((2, 3, 4, 4), fill)
    student = base.clone().requires_grad_()
    loss, frac = consistency_loss(student, base.clone(), 0.9)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(frac)
    assert torch.isfinite(student.grad).all()
    if fill is not None:  # constant logits: confidence 1/3 < 0.9, nothing is confident
        assert loss.item() == 0.0 and frac.item() == 0.0


@pytest.mark.parametrize(
    ("student_shape", "teacher_shape", "valid"),
    [
        ((1, 2, 3, 3), (1, 2, 3, 4), None),
        ((2, 3, 3), (2, 3, 3), None),
        ((1, 2, 3, 3), (1, 2, 3, 3), torch.ones(1, 3, 4, dtype=torch.bool)),
        ((1, 2, 3, 3), (1, 2, 3, 3), torch.ones(1, 3, 3)),  # float, not bool
    ],
)
def test_bad_inputs_raise(student_shape, teacher_shape, valid) -> None:
    with pytest.raises(ValueError):
        consistency_loss(torch.zeros(student_shape), torch.zeros(teacher_shape), 0.9, valid)


# ------------------------------------------------------------------ per-class and adaptive thresholds


@pytest.mark.parametrize(
    ("thresholds", "loss", "fraction"),
    [
        # TEACHER labels (0, 1, 1) with confidences (0.9, 0.96, 0.6): pixel i passes if conf_i >= t[label_i].
        ([0.95, 0.5], 2 * LOG2 / 3, 2 / 3),  # pixel 0 fails class 0's 0.95; pixels 1, 2 pass class 1's 0.5
        ([0.5, 0.95], 2 * LOG2 / 3, 2 / 3),  # pixels 0, 1 pass; pixel 2 (0.6) fails 0.95
        ([0.5, 0.97], LOG2 / 3, 1 / 3),
        ([0.85, 0.85], 2 * LOG2 / 3, 2 / 3),  # equal per-class thresholds = the scalar 0.85 case above
    ],
)
def test_per_class_thresholds(thresholds: list[float], loss: float, fraction: float) -> None:
    got, frac = consistency_loss(_logits(FLAT), _logits(TEACHER), torch.tensor(thresholds))
    assert got.item() == pytest.approx(loss, abs=1e-6) and frac.item() == pytest.approx(fraction, abs=1e-6)


def test_per_class_threshold_needs_one_value_per_class() -> None:
    with pytest.raises(ValueError, match="per-class threshold"):
        consistency_loss(_logits(FLAT), _logits(TEACHER), torch.tensor([0.5, 0.5, 0.5]))


def test_confidence_sums_known_values() -> None:
    # TEACHER probabilities: (0.9, 0.1), (0.04, 0.96), (0.4, 0.6).
    sums = confidence_sums(_logits(TEACHER))
    assert sums.tolist() == pytest.approx([0.9 + 0.96 + 0.6, 0.9 + 0.04 + 0.4, 0.1 + 0.96 + 0.6, 3.0])
    masked = confidence_sums(_logits(TEACHER), torch.tensor([[[True, False, True]]]))
    assert masked.tolist() == pytest.approx([1.5, 1.3, 0.7, 2.0])
    # Sums are additive: two halves of a batch (two DDP ranks) add up to the whole batch.
    halves = confidence_sums(_logits(TEACHER[:1])) + confidence_sums(_logits(TEACHER[1:]))
    assert halves.tolist() == pytest.approx(sums.tolist())


def test_ema_update_by_hand() -> None:
    tau, conf = initial_confidence(2)
    assert tau.item() == 0.5 and conf.tolist() == [0.5, 0.5]
    sums = confidence_sums(_logits(TEACHER))  # mean max-prob 2.46 / 3 = 0.82; class means (1.34, 1.66) / 3
    tau, conf = ema_confidence_update(tau, conf, sums, momentum=0.9)
    assert tau.item() == pytest.approx(0.9 * 0.5 + 0.1 * 0.82)  # 0.532
    assert conf.tolist() == pytest.approx([0.45 + 0.1 * 1.34 / 3, 0.45 + 0.1 * 1.66 / 3])
    tau2, conf2 = ema_confidence_update(tau, conf, sums, momentum=0.0)  # no memory: the batch statistic
    assert tau2.item() == pytest.approx(0.82) and conf2.tolist() == pytest.approx([1.34 / 3, 1.66 / 3])
    empty = torch.zeros(4, dtype=torch.float64)  # no valid pixel: unchanged
    assert ema_confidence_update(tau, conf, empty, 0.9) == (tau, conf)
    with pytest.raises(ValueError, match="momentum"):
        ema_confidence_update(tau, conf, sums, momentum=1.0)


def test_adaptive_thresholds_global_and_max_normalised() -> None:
    tau, conf = torch.tensor(0.8, dtype=torch.float64), torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    assert adaptive_thresholds(tau, conf, per_class=False).tolist() == pytest.approx([0.8, 0.8, 0.8])
    assert adaptive_thresholds(tau, conf, per_class=True).tolist() == pytest.approx([0.8, 0.4, 0.8 / 6])


# --------------------------------------------------------------------------- FixMatch / UniMatch medical Dice


def test_masked_dice_known_values() -> None:
    # Two pixels, two classes. Teacher: pixel 0 [2, 0] -> class 0 at 0.881; pixel 1 [0, 0] -> 0.5 (not confident at 0.8).
    teacher = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    student = torch.zeros(1, 2, 1, 2)  # p = 0.5 everywhere
    loss, fraction = masked_dice_loss(student, teacher, threshold=0.8)
    eps = 1e-5
    d0 = (2 * 0.5 + eps) / (0.25 + 1.0 + eps)  # class 0 on pixel 0 only: inter 0.5, sum p^2 0.25, sum y^2 1
    d1 = (0 + eps) / (0.25 + 0 + eps)
    assert float(loss) == pytest.approx(((1 - d0) + (1 - d1)) / 2, rel=1e-6)
    assert float(fraction) == pytest.approx(0.5)
    nothing, none_confident = masked_dice_loss(student, teacher, threshold=0.95)
    assert float(nothing) == pytest.approx(0.0, abs=1e-6) and float(none_confident) == 0.0


def test_masked_dice_gradient_reaches_the_student_only() -> None:
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = (5 * torch.randn(2, 3, 4, 4)).requires_grad_(True)
    loss, _ = masked_dice_loss(student, teacher, threshold=0.5)
    loss.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0 and teacher.grad is None
