"""Losses of the baseline methods: Mean Teacher's softmax MSE and cross pseudo supervision."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def softmax_mse_loss(student_logits: Tensor, teacher_logits: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean Teacher consistency (Tarvainen & Valpola 2017).

    student_logits, teacher_logits: (B, C, H, W); valid: (B, H, W) bool or None. Squared error between the
    two softmax maps, summed over classes, averaged over valid pixels. The teacher side is detached.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"softmax_mse_loss: shapes differ: {tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}")
    diff = (student_logits.softmax(1) - teacher_logits.detach().softmax(1)).pow(2).sum(1)  # (B, H, W)
    if valid is None:
        return diff.mean()
    return (diff * valid).sum() / valid.sum().clamp_min(1)


def cross_pseudo_loss(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """CPS (Chen et al., CVPR 2021): each network learns the other's hard pseudo-labels.

    logits_a, logits_b: (B, C, H, W). Returns CE(a, argmax b) + CE(b, argmax a), pseudo-labels detached.
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"cross_pseudo_loss: shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    with torch.no_grad():
        y_a, y_b = logits_a.argmax(1), logits_b.argmax(1)
    return F.cross_entropy(logits_a, y_b) + F.cross_entropy(logits_b, y_a)
