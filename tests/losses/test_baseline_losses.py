"""Mean Teacher's softmax MSE and CPS on tiny tensors with values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from hdc_ray.losses.baselines import cross_pseudo_loss, softmax_mse_loss


def _two_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    # (B=1, C=2, H=1, W=2). Student pixel 0: logits (0, 0) -> p (0.5, 0.5); pixel 1: (ln 3, 0) -> (0.75, 0.25).
    student = torch.tensor([[[[0.0, math.log(3.0)]], [[0.0, 0.0]]]])
    # Teacher pixel 0: (ln 3, 0) -> (0.75, 0.25); pixel 1: (0, 0) -> (0.5, 0.5).
    teacher = torch.tensor([[[[math.log(3.0), 0.0]], [[0.0, 0.0]]]])
    return student, teacher


def test_softmax_mse_known_value() -> None:
    student, teacher = _two_pixels()
    # Each pixel: (0.25)^2 + (0.25)^2 = 0.125, summed over classes; mean over 2 pixels = 0.125.
    assert softmax_mse_loss(student, teacher).item() == pytest.approx(0.125)


def test_softmax_mse_averages_over_valid_pixels_only_and_detaches_the_teacher() -> None:
    student, teacher = _two_pixels()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    valid = torch.tensor([[[True, False]]])
    loss = softmax_mse_loss(student, teacher, valid)
    assert loss.item() == pytest.approx(0.125)  # pixel 0 alone
    loss.backward()
    assert teacher.grad is None and student.grad is not None
    assert torch.all(student.grad[..., 1] == 0)  # the invalid pixel gets no gradient
    same = softmax_mse_loss(student.detach(), student.detach())
    assert same.item() == 0.0
    none_valid = softmax_mse_loss(student.detach(), teacher.detach(), torch.zeros(1, 1, 2, dtype=torch.bool))
    assert none_valid.item() == 0.0  # no valid pixel: zero, not NaN


def test_cross_pseudo_known_value() -> None:
    student, teacher = _two_pixels()
    # argmax a = (0 or tie -> 0, 0); argmax b = (0, 0 tie -> 0). Pseudo-labels are class 0 everywhere.
    # CE(a, 0): pixel 0 -ln 0.5, pixel 1 -ln 0.75 -> mean; same for b with its pixels swapped.
    ce = (-math.log(0.5) - math.log(0.75)) / 2
    assert cross_pseudo_loss(student, teacher).item() == pytest.approx(2 * ce, rel=1e-6)


def test_cross_pseudo_labels_are_detached_and_shapes_checked() -> None:
    a = torch.tensor([[[[2.0]], [[0.0]]]], requires_grad=True)  # predicts class 0
    b = torch.tensor([[[[0.0]], [[2.0]]]], requires_grad=True)  # predicts class 1
    loss = cross_pseudo_loss(a, b)
    # a learns class 1 (b's label), b learns class 0: CE = -log softmax = log(1 + e^2) each.
    assert loss.item() == pytest.approx(2 * math.log(1 + math.e**2), rel=1e-6)
    loss.backward()
    assert a.grad is not None and a.grad[0, 1, 0, 0] < 0  # pushed towards class 1
    with pytest.raises(ValueError, match="shapes differ"):
        cross_pseudo_loss(a, b[:, :1])
    with pytest.raises(ValueError, match="shapes differ"):
        softmax_mse_loss(a, b[:, :1])
