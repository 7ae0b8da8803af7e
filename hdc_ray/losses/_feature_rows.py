"""Shared helpers: feature maps to pixel rows, and reproducible row sub-sampling."""

from __future__ import annotations

import torch
from torch import Tensor


def to_rows(x: Tensor) -> Tensor:
    """(B, D, h, w) feature map -> (B*h*w, D) float32 matrix, one row per pixel.

    float32 because the statistics built on it (variances, eps 1e-8, traces) underflow in half
    precision under autocast.
    """
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).float()


def sampled_rows(x: Tensor, idx: Tensor | None) -> Tensor:
    """``to_rows(x)[idx]`` (all rows for None), gathered straight from the (B, D, h, w) map: the same numbers
    without copying the whole permuted map, and a backward that scatters ``len(idx)`` rows, not all of them."""
    if idx is None:
        return to_rows(x)
    hw = x.shape[2] * x.shape[3]
    return x.flatten(2)[idx // hw, :, idx % hw].float()  # (n, D): advanced indices around a slice go first


def full_precision(x: Tensor) -> torch.autocast:
    """Context that turns autocast off on ``x``'s device, so Gram matrices stay float32.

    ``to_rows`` casts to float32, but an enclosing autocast would run the matmuls in half
    precision again (3 significant digits in bfloat16: too coarse for these small differences).
    """
    return torch.autocast(device_type=x.device.type, enabled=False)


def sample_rows(n: int, max_samples: int | None, generator: torch.Generator | None, device: torch.device) -> Tensor | None:
    """Indices of ``max_samples`` rows out of ``n`` drawn WITHOUT replacement, or None for all.

    Draws on the generator's own device (CPU unless a CUDA generator is passed), so a seeded CPU
    generator gives the same rows whatever device the features live on.
    """
    if max_samples is not None and max_samples < 2:
        raise ValueError(f"max_samples must be >= 2 or None, got {max_samples}")
    if max_samples is None or n <= max_samples:
        return None
    gen_device = generator.device if generator is not None else torch.device("cpu")
    idx = torch.randperm(n, generator=generator, device=gen_device)[:max_samples]
    return idx.to(device)
