"""FixMatch / UniMatch strong views: colour jitter and blur on the weak view, then CutMix with another image.

UniMatch (Yang et al., CVPR 2023; its medical code) builds each strong view from the weak one with
photometric changes only, so its pseudo-labels need no warp: the box of a CutMix takes both its pixels
and its pseudo-labels from the partner image. Every draw comes from the image's own generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hdc_ray.config import NoiseConfig
from hdc_ray.noise.views import _gaussian_blur, _uniform

# UniMatch's medical strong view: ColorJitter(0.5, 0.5, 0.5, 0.25) with p 0.8, then a Gaussian blur with
# p 0.5, sigma ~ U(0.1, 2.0). On a grey image saturation and hue are identities, which leaves brightness and
# contrast factors in [1 - 0.5, 1 + 0.5].
JITTER_P, JITTER = 0.8, 0.5
BLUR_P, BLUR_SIGMA = 0.5, (0.1, 2.0)


def jitter_view(images_w: Tensor, gens: list[torch.Generator]) -> Tensor:
    """Weak images (B, 1, H, W) in [0, 1] -> colour-jittered, maybe blurred images, same shape, in [0, 1]."""
    return torch.stack([_jitter_one(img, g) for img, g in zip(images_w, gens, strict=True)])


def _jitter_one(img: Tensor, g: torch.Generator) -> Tensor:
    x = img
    if _uniform(g, 0, 1) < JITTER_P:
        # torchvision's order of the four is random; on a grey image brightness and contrast commute up to
        # clipping, so brightness first. Contrast blends with the image's mean grey value, as torchvision does.
        brightness, contrast = _uniform(g, 1 - JITTER, 1 + JITTER), _uniform(g, 1 - JITTER, 1 + JITTER)
        x = (x * brightness).clamp(0, 1)
        x = (contrast * x + (1 - contrast) * x.mean()).clamp(0, 1)
    if _uniform(g, 0, 1) < BLUR_P:
        x = _gaussian_blur(x, _uniform(g, *BLUR_SIGMA))
    return x.clamp(0, 1)


def cutmix_box(g: torch.Generator, height: int, width: int, cfg: NoiseConfig) -> Tensor:
    """(H, W) bool box, all False with probability 1 - ``noise.cutmix_p``.

    UniMatch's draw: area = U(cutmix_min_area, cutmix_max_area) * H * W, then aspect ratio r ~ U(ratio,
    1 / ratio), w = int(sqrt(area / r)), h = int(sqrt(area * r)) and a corner uniform over the image, both
    redrawn until the box fits.
    """
    box = torch.zeros(height, width, dtype=torch.bool)
    if _uniform(g, 0, 1) >= cfg.cutmix_p:
        return box
    area = _uniform(g, cfg.cutmix_min_area, cfg.cutmix_max_area) * height * width
    while True:
        ratio = _uniform(g, cfg.cutmix_ratio, 1 / cfg.cutmix_ratio)
        w, h = int(math.sqrt(area / ratio)), int(math.sqrt(area * ratio))
        left, top = _randint(g, width), _randint(g, height)
        if left + w <= width and top + h <= height:
            box[top : top + h, left : left + w] = True
            return box


def _randint(g: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=g, device=g.device))


def cutmix(x: Tensor, partner: Tensor, box: Tensor) -> Tensor:
    """x, partner (B, C, H, W) (images, logits) or (B, H, W) (labels, confidences); box (B, H, W) bool ->
    ``partner`` inside each image's box, ``x`` elsewhere."""
    if box.shape != (x.shape[0], *x.shape[-2:]):
        raise ValueError(f"box must be (B, H, W) = {(x.shape[0], *x.shape[-2:])}, got {tuple(box.shape)}")
    inside = box if x.ndim == 3 else box[:, None]
    return torch.where(inside.to(x.device), partner, x)
