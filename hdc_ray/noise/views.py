"""Noise levels 1 and 2: the weak view (teacher input) and the strong view (student input).

Geometry is an affine warp per image (``F.affine_grid`` in normalised coordinates), so the same matrix
warps images, masks, logits and feature maps of any resolution. The strong view adds its own warp on top
of the weak one (``noise.strong_geometric``); the teacher's weak-view outputs are then warped with that
matrix into the strong view's frame, and pixels that fell outside the image are masked (``valid``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from hdc_ray.config import NoiseConfig


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, device=g.device))


def random_affine(gens: list[torch.Generator], rotate_deg: float, scale: float, flip_p: float) -> Tensor:
    """(B, 2, 3) matrices: optional horizontal flip, rotation in [-r, r] degrees, isotropic scale in [1-s, 1+s]."""
    thetas = []
    for g in gens:
        angle = math.radians(_uniform(g, -rotate_deg, rotate_deg))
        zoom = _uniform(g, 1.0 - scale, 1.0 + scale)
        flip = -1.0 if _uniform(g, 0.0, 1.0) < flip_p else 1.0
        cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
        thetas.append([[cos * flip, -sin, 0.0], [sin * flip, cos, 0.0]])
    return torch.tensor(thetas, dtype=torch.float32)


def warp(x: Tensor, theta: Tensor, mode: str = "bilinear") -> Tensor:
    """Warp (B, C, H, W) by (B, 2, 3); outside the source image is 0. Returns ``x``'s dtype.

    The sampling grid is float32 even for half-precision ``x`` under autocast: a bfloat16 grid (8
    significant bits) misplaces samples by up to ~1 px at 224 px, so the teacher's warped pseudo-labels
    and features would no longer line up with the strong view and its ``valid`` mask (built in float32).
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        grid = F.affine_grid(theta.to(x.device, torch.float32), list(x.shape), align_corners=False)
        return F.grid_sample(x.float(), grid, mode=mode, padding_mode="zeros", align_corners=False).to(x.dtype)


def warp_mask(mask: Tensor, theta: Tensor) -> Tensor:
    """Warp an integer label map (B, H, W) with nearest sampling; outside becomes background (0)."""
    return warp(mask[:, None].float(), theta, mode="nearest")[:, 0].round().long()


def weak_view(images: Tensor, masks: Tensor | None, gens: list[torch.Generator], cfg: NoiseConfig) -> tuple[Tensor, Tensor | None]:
    """images (B, 1, H, W) in [0, 1], masks (B, H, W) or None -> the same, flipped/rotated/scaled alike."""
    theta = random_affine(gens, cfg.weak_rotate_deg, cfg.weak_scale, cfg.weak_flip_p)
    return warp(images, theta), None if masks is None else warp_mask(masks, theta)


def strong_view(images_w: Tensor, gens: list[torch.Generator], cfg: NoiseConfig) -> tuple[Tensor, Tensor | None, Tensor]:
    """Weak images (B, 1, H, W) -> strong images, the extra warp (B, 2, 3) or None, valid pixels (B, H, W) bool."""
    theta: Tensor | None = None
    valid = torch.ones(images_w.shape[0], *images_w.shape[2:], dtype=torch.bool, device=images_w.device)
    x = images_w
    if cfg.strong_geometric:
        theta = random_affine(gens, cfg.strong_rotate_deg, cfg.strong_scale, flip_p=0.0)
        x = warp(x, theta)
        valid = warp(valid[:, None].float(), theta)[:, 0] > 0.5
    x = torch.stack([_photometric(img, g, cfg) for img, g in zip(x, gens, strict=True)])
    return x, theta, valid


def _photometric(img: Tensor, g: torch.Generator, cfg: NoiseConfig) -> Tensor:
    """One image (1, H, W): contrast, brightness, gamma, blur, speckle, noise, cut-out; stays in [0, 1]."""
    sector = img > 0  # keep the black outside-the-sector region black: the network can rely on it
    x = (img - img.mean()) * _uniform(g, 1 - cfg.strong_contrast, 1 + cfg.strong_contrast) + img.mean()
    x = x + _uniform(g, -cfg.strong_brightness, cfg.strong_brightness) * 0.5
    x = x.clamp(0, 1) ** math.exp(_uniform(g, -cfg.strong_gamma, cfg.strong_gamma))
    if _uniform(g, 0, 1) < cfg.strong_blur_p:
        x = _gaussian_blur(x, _uniform(g, 0.3, 1.5))
    if cfg.strong_speckle_std > 0:
        x = x * (1 + cfg.strong_speckle_std * torch.randn(x.shape, generator=g, device=g.device))
    if cfg.strong_noise_std > 0:
        x = x + cfg.strong_noise_std * torch.randn(x.shape, generator=g, device=g.device)
    if _uniform(g, 0, 1) < cfg.strong_cutout_p:
        x = _cutout(x, g, cfg.strong_cutout_frac)
    return (x * sector).clamp(0, 1)


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(2 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    y = F.conv2d(F.pad(x[None], (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return y[0]


def _cutout(x: Tensor, g: torch.Generator, frac: float) -> Tensor:
    _, h, w = x.shape
    side_h, side_w = max(1, int(h * frac)), max(1, int(w * frac))
    top = int(_uniform(g, 0, h - side_h))
    left = int(_uniform(g, 0, w - side_w))
    x = x.clone()
    x[:, top : top + side_h, left : left + side_w] = 0.0
    return x
