"""Confidence-masked pixel consistency: teacher hard pseudo-labels supervise the student.

The mask's threshold is fixed (``loss.threshold_kind="fixed"``: ``loss.confidence_threshold``) or
self-adaptive (``"adaptive"``). HDC's v2 abstract speaks of "adaptive consistency learning" without an
equation; ``loss.threshold_kind`` picks the reading. "adaptive" is FreeMatch's self-adaptive threshold
(Wang et al., ICLR 2023): a global threshold tau = EMA of the teacher's mean max-probability on
unlabelled pixels, optionally scaled per class (``loss.threshold_per_class``) by the max-normalised EMA
of the teacher's mean class probabilities. The EMA arithmetic is here, as pure functions; the state
that carries it from step to step (and into checkpoints) lives in ``hdc_ray.train.thresholds``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["adaptive_thresholds", "confidence_sums", "consistency_loss", "ema_confidence_update", "initial_confidence", "masked_dice_loss"]

# UniMatch medical DiceLoss smoothing: with no confident pixel a class scores (0 + eps) / (0 + eps) = 1, loss 0.
_DICE_SMOOTH = 1e-5


def consistency_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    threshold: float | Tensor,
    valid: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """FixMatch/UniMatch pixel consistency with hard, confidence-masked pseudo-labels.

    Shapes: ``student_logits`` (B, C, H, W) on the strong view; ``teacher_logits`` (B, C, H, W) on
    the weak view, already warped into the strong view's geometry; ``valid`` (B, H, W) bool, True
    for pixels inside the image after geometric augmentation (None: all pixels valid). Returns
    ``(loss, confident_fraction)``, both scalars.

    The teacher is detached here. Pseudo-label = argmax of the teacher softmax, confidence = its
    max probability, mask = (confidence >= threshold) & valid (``loss.confidence_threshold``; a
    threshold above 1 masks everything, 0 keeps every valid pixel). ``threshold`` may also be a (C,)
    tensor of per-class thresholds (``adaptive_thresholds``): a pixel pseudo-labelled c needs
    confidence >= threshold[c].
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
        mask = (conf >= _pixel_threshold(threshold, pseudo, student_logits.shape[1])) & valid  # (B, H, W)
        n_valid = valid.sum().clamp_min(1)

    ce = F.cross_entropy(student_logits, pseudo, reduction="none")  # (B, H, W)
    # where() rather than ce * mask: a non-finite CE outside the mask cannot leak in as inf * 0.
    loss = torch.where(mask, ce, torch.zeros_like(ce)).sum() / n_valid
    confident_fraction = (mask.sum() / n_valid).to(student_logits.dtype).detach()
    return loss, confident_fraction


def masked_dice_loss(student_logits: Tensor, teacher_logits: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """UniMatch's medical unlabelled loss: Dice of the student softmax against confident hard pseudo-labels.

    Shapes: ``student_logits``, ``teacher_logits`` (B, C, H, W) (the pseudo-label source, detached here;
    after CutMix its logits are mixed alike). Returns ``(loss, confident_fraction)``, scalars.

    pseudo = argmax softmax(teacher), conf = its max; only pixels with conf >= ``threshold``
    (``loss.fixmatch_threshold``) count. Per class c over the whole batch: D_c = (2 sum p_c y_c + eps) /
    (sum p_c^2 + sum y_c^2 + eps), eps 1e-5 (V-Net's squared denominators, as UniMatch's DiceLoss); loss =
    mean over ALL classes, background included, of 1 - D_c. No confident pixel gives 0.
    """
    if student_logits.ndim != 4 or teacher_logits.shape != student_logits.shape:
        raise ValueError(f"student and teacher logits must be equal (B, C, H, W), got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    with torch.no_grad():
        conf, pseudo = teacher_logits.detach().softmax(dim=1).max(dim=1)  # (B, H, W) each
        mask = (conf >= threshold).to(student_logits.dtype)[:, None]  # (B, 1, H, W)
        target = F.one_hot(pseudo, student_logits.shape[1]).permute(0, 3, 1, 2).to(student_logits.dtype) * mask  # (B, C, H, W)
    probs = student_logits.float().softmax(dim=1) * mask
    inter = (probs * target).sum(dim=(0, 2, 3))  # (C,)
    dice = (2 * inter + _DICE_SMOOTH) / (probs.square().sum(dim=(0, 2, 3)) + target.square().sum(dim=(0, 2, 3)) + _DICE_SMOOTH)
    return (1 - dice).mean(), mask.mean().detach()


def _pixel_threshold(threshold: float | Tensor, pseudo: Tensor, num_classes: int) -> float | Tensor:
    """A scalar threshold as it is, or the per-class threshold of each pixel's pseudo-label, (B, H, W)."""
    if not isinstance(threshold, Tensor) or threshold.ndim == 0:
        return threshold
    if threshold.shape != (num_classes,):
        raise ValueError(f"per-class threshold must have shape ({num_classes},), got {tuple(threshold.shape)}")
    return threshold.to(pseudo.device)[pseudo]


def confidence_sums(teacher_logits: Tensor, valid: Tensor | None = None) -> Tensor:
    """Additive confidence statistics of a batch: ``[sum max-prob, sum p_1, ..., sum p_C, n]``, (C + 2,).

    ``teacher_logits`` (B, C, H, W); ``valid`` (B, H, W) bool or None (all pixels). Sums rather than
    means so that summing them over DDP ranks (all-reduce) gives exactly the global batch's statistic.
    float64: the sums run over ~10^5 pixels per step.
    """
    if teacher_logits.ndim != 4:
        raise ValueError(f"teacher_logits must be (B, C, H, W), got shape {tuple(teacher_logits.shape)}")
    with torch.no_grad():
        probs = teacher_logits.detach().double().softmax(dim=1)  # (B, C, H, W)
        weight = torch.ones_like(probs[:, 0]) if valid is None else valid.to(probs.dtype)  # (B, H, W)
        max_sum = (probs.amax(dim=1) * weight).sum()
        class_sums = (probs * weight[:, None]).sum(dim=(0, 2, 3))  # (C,)
        return torch.cat([max_sum[None], class_sums, weight.sum()[None]])


def ema_confidence_update(tau: Tensor, class_conf: Tensor, sums: Tensor, momentum: float) -> tuple[Tensor, Tensor]:
    """One FreeMatch EMA step: tau <- m tau + (1 - m) mean max-prob; p_c <- m p_c + (1 - m) mean p_c.

    ``tau`` scalar, ``class_conf`` (C,), ``sums`` from ``confidence_sums`` (possibly summed over ranks),
    ``momentum`` m in [0, 1) (``loss.threshold_momentum``). A batch without valid pixels leaves both as
    they are. FreeMatch starts from tau = p_c = 1/C (``initial_confidence``).
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if sums.shape != (class_conf.shape[0] + 2,):
        raise ValueError(f"sums must have shape ({class_conf.shape[0] + 2},) for {class_conf.shape[0]} classes, got {tuple(sums.shape)}")
    n = float(sums[-1])
    if n <= 0:
        return tau, class_conf
    mean_max, mean_class = sums[0] / n, sums[1:-1] / n
    new_tau = momentum * tau + (1.0 - momentum) * mean_max.to(tau.dtype)
    new_class = momentum * class_conf + (1.0 - momentum) * mean_class.to(class_conf.dtype)
    return new_tau, new_class


def initial_confidence(num_classes: int) -> tuple[Tensor, Tensor]:
    """FreeMatch's starting point: tau = 1/C and p_c = 1/C (a uniform teacher)."""
    return torch.tensor(1.0 / num_classes, dtype=torch.float64), torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)


def adaptive_thresholds(tau: Tensor, class_conf: Tensor, per_class: bool) -> Tensor:
    """Per-class thresholds (C,): tau for every class, or tau * p_c / max_c p_c (FreeMatch's MaxNorm).

    With ``per_class`` (``loss.threshold_per_class``) the most confident class keeps tau and the others
    get proportionally lower thresholds. In segmentation the background dominates p_c, so the small
    classes' thresholds drop towards 0 (measured: see ``LossConfig.threshold_per_class``).
    """
    if not per_class:
        return tau.expand(class_conf.shape[0]).clone()
    return tau * class_conf / class_conf.max().clamp_min(1e-12)
