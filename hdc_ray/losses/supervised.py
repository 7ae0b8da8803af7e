"""Supervised loss on labelled images, for one or both student decoders: pixel cross-entropy, plus an
optional soft Dice term (``loss.sup_dice``) that keeps small structures from collapsing to background."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["soft_dice_loss", "supervised_loss"]


def _check_logits_target(name: str, logits: Tensor, target: Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(logits.shape)}")
    b, _, h, w = logits.shape
    if target.shape != (b, h, w):
        raise ValueError(f"target must be (B, H, W) = {(b, h, w)} to match {name} {tuple(logits.shape)}, got {tuple(target.shape)}")


def _pixel_ce(logits: Tensor, target: Tensor, ignore_index: int, balanced: bool = False) -> Tensor:
    # Sum / count instead of reduction="mean": an all-ignored batch gives 0, not 0/0 = NaN.
    weight = _balanced_weights(target, logits.shape[1], ignore_index) if balanced else None
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="sum")
    n_valid = (target != ignore_index).sum().clamp_min(1)
    return ce / n_valid


def _balanced_weights(target: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """Per-class CE weights inverse to each class's pixel share in this batch, normalised so that the weighted pixel
    count equals the pixel count (the loss keeps its scale); a class absent from the batch gets weight 1."""
    valid = target[target != ignore_index]
    counts = torch.bincount(valid.clamp(0, num_classes - 1), minlength=num_classes).float()
    present = counts > 0
    inverse = torch.where(present, 1.0 / counts.clamp_min(1.0), torch.zeros_like(counts))
    scale = counts.sum() / (inverse * counts).sum().clamp_min(1e-12) / present.sum().clamp_min(1)
    return torch.where(present, inverse * scale * present.sum(), torch.ones_like(counts)).to(torch.float32)


def supervised_loss(
    logits_main: Tensor,
    logits_noisy: Tensor | None,
    target: Tensor,
    ignore_index: int = 255,
    dice_weight: float = 0.0,
    balanced: bool = False,
) -> Tensor:
    """Pixel cross-entropy (+ ``dice_weight`` x soft Dice loss) of the student's decoders against the labels.

    Shapes: ``logits_main`` and ``logits_noisy`` (B, C, H, W) raw logits; ``target`` (B, H, W) int64
    class indices, ``ignore_index`` marks unlabelled pixels. Returns a scalar.

    Per decoder, cross-entropy is averaged over all non-ignored pixels of all images (images have
    equal size, so this is also the mean over images of the per-image pixel mean when nothing is
    ignored). The result is the mean over the decoders given: main only when ``logits_noisy`` is
    None, otherwise (CE_main + CE_noisy) / 2. A batch whose pixels are all ignored gives 0.
    Label values outside [0, C) other than ``ignore_index`` make torch raise (not checked here, to
    avoid a device sync per step). ``dice_weight > 0`` adds ``dice_weight * soft_dice_loss`` per decoder.
    ``balanced`` (``loss.sup_balance="class"``) weighs each class's pixels inversely to its share of the batch.
    """
    _check_logits_target("logits_main", logits_main, target)
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
    target = target.long()
    loss = _decoder_loss(logits_main, target, ignore_index, dice_weight, balanced)
    if logits_noisy is None:
        return loss
    if logits_noisy.shape != logits_main.shape:
        raise ValueError(f"logits_noisy {tuple(logits_noisy.shape)} must match logits_main {tuple(logits_main.shape)}")
    return 0.5 * (loss + _decoder_loss(logits_noisy, target, ignore_index, dice_weight, balanced))


def _decoder_loss(logits: Tensor, target: Tensor, ignore_index: int, dice_weight: float, balanced: bool = False) -> Tensor:
    ce = _pixel_ce(logits, target, ignore_index, balanced)
    return ce if dice_weight == 0.0 else ce + dice_weight * soft_dice_loss(logits, target, ignore_index)


def soft_dice_loss(logits: Tensor, target: Tensor, ignore_index: int = 255, smooth: float = 1.0) -> Tensor:
    """1 - mean over foreground classes of the batch soft Dice (softmax probabilities vs one-hot labels).

    Shapes: ``logits`` (B, C, H, W), ``target`` (B, H, W). Sums run over the whole batch, so a class
    absent from every image gives ~0 loss (``smooth`` / ``smooth``), not a spurious penalty. Ignored
    pixels count for neither side. Background (class 0) is left out: it is the class that CE alone
    over-predicts on small structures.
    """
    _check_logits_target("logits", logits, target)
    valid = (target != ignore_index).unsqueeze(1).to(logits.dtype)  # (B, 1, H, W)
    probs = torch.softmax(logits.float(), dim=1)[:, 1:] * valid
    onehot = F.one_hot(target.long().clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probs.dtype) * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    dice = (2.0 * inter + smooth) / (probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3)) + smooth)
    return 1.0 - dice.mean()
