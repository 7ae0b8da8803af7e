"""Supervised pixel cross-entropy on labelled images, for one or both student decoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["supervised_loss"]


def _check_logits_target(name: str, logits: Tensor, target: Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(logits.shape)}")
    b, _, h, w = logits.shape
    if target.shape != (b, h, w):
        raise ValueError(f"target must be (B, H, W) = {(b, h, w)} to match {name} {tuple(logits.shape)}, got {tuple(target.shape)}")


def _pixel_ce(logits: Tensor, target: Tensor, ignore_index: int) -> Tensor:
    # Sum / count instead of reduction="mean": an all-ignored batch gives 0, not 0/0 = NaN.
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum")
    n_valid = (target != ignore_index).sum().clamp_min(1)
    return ce / n_valid


def supervised_loss(
    logits_main: Tensor,
    logits_noisy: Tensor | None,
    target: Tensor,
    ignore_index: int = 255,
) -> Tensor:
    """Pixel cross-entropy of the student's decoders against the labels.

    Shapes: ``logits_main`` and ``logits_noisy`` (B, C, H, W) raw logits; ``target`` (B, H, W) int64
    class indices, ``ignore_index`` marks unlabelled pixels. Returns a scalar.

    Per decoder, cross-entropy is averaged over all non-ignored pixels of all images (images have
    equal size, so this is also the mean over images of the per-image pixel mean when nothing is
    ignored). The result is the mean over the decoders given: main only when ``logits_noisy`` is
    None, otherwise (CE_main + CE_noisy) / 2. A batch whose pixels are all ignored gives 0.
    Label values outside [0, C) other than ``ignore_index`` make torch raise (not checked here, to
    avoid a device sync per step).
    """
    _check_logits_target("logits_main", logits_main, target)
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
    target = target.long()
    loss = _pixel_ce(logits_main, target, ignore_index)
    if logits_noisy is None:
        return loss
    if logits_noisy.shape != logits_main.shape:
        raise ValueError(f"logits_noisy {tuple(logits_noisy.shape)} must match logits_main {tuple(logits_main.shape)}")
    return 0.5 * (loss + _pixel_ce(logits_noisy, target, ignore_index))
