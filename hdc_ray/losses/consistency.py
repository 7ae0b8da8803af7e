"""Confidence-masked pixel consistency: teacher hard pseudo-labels supervise the student."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["consistency_loss"]


def consistency_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    threshold: float,
    valid: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """FixMatch/UniMatch pixel consistency with hard, confidence-masked pseudo-labels.

    Shapes: ``student_logits`` (B, C, H, W) on the strong view; ``teacher_logits`` (B, C, H, W) on
    the weak view, already warped into the strong view's geometry; ``valid`` (B, H, W) bool, True
    for pixels inside the image after geometric augmentation (None: all pixels valid). Returns
    ``(loss, confident_fraction)``, both scalars.

    The teacher is detached here. Pseudo-label = argmax of the teacher softmax, confidence = its
    max probability, mask = (confidence >= threshold) & valid (``loss.confidence_threshold``; a
    threshold above 1 masks everything, 0 keeps every valid pixel).
    loss = sum(CE * mask) / number of valid pixels: the UniMatch convention, so a batch with few
    confident pixels contributes a small loss rather than a noisy mean over a handful of pixels.
    ``confident_fraction`` = mask.sum() / valid.sum(), detached, for logging. No valid pixel at
    all gives (0, 0).
    """
    if student_logits.ndim != 4:
        raise ValueError(f"student_logits must be (B, C, H, W), got shape {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits {tuple(teacher_logits.shape)} must match student_logits {tuple(student_logits.shape)}")
    b, _, h, w = student_logits.shape
    if valid is None:
        valid = torch.ones((b, h, w), dtype=torch.bool, device=student_logits.device)
    elif valid.shape != (b, h, w) or valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool (B, H, W) = {(b, h, w)} tensor, got {valid.dtype} {tuple(valid.shape)}")

    with torch.no_grad():
        conf, pseudo = teacher_logits.detach().softmax(dim=1).max(dim=1)  # (B, H, W) each
        mask = (conf >= threshold) & valid  # (B, H, W)
        n_valid = valid.sum().clamp_min(1)

    ce = F.cross_entropy(student_logits, pseudo, reduction="none")  # (B, H, W)
    # where() rather than ce * mask: a non-finite CE outside the mask cannot leak in as inf * 0.
    loss = torch.where(mask, ce, torch.zeros_like(ce)).sum() / n_valid
    confident_fraction = (mask.sum() / n_valid).to(student_logits.dtype).detach()
    return loss, confident_fraction
