"""Noise level 3: structured perturbations of the encoder features entering the noisy decoder.

Three CCT-style perturbations (Ouali et al., CVPR 2020): multiplicative uniform feature noise, dropout of
the most-attended locations, and channel dropout. ``noise.feature_perturbation`` selects whether each image
gets one of the enabled perturbations at random (UniMatch-like, default) or all of them stacked.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hdc_ray.config import NoiseConfig
from hdc_ray.noise.seeds import generators


class FeaturePerturbation(nn.Module):
    def __init__(self, cfg: NoiseConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.kinds = [k for k, on in (("noise", cfg.feature_noise > 0), ("drop", cfg.feature_dropout > 0), ("channel", cfg.channel_dropout > 0)) if on]

    def forward(self, feats: list[Tensor], seeds: Tensor) -> list[Tensor]:
        """feats: encoder maps [(B, C_l, H_l, W_l)]; seeds (B,) int64 -> perturbed maps, same shapes."""
        if not self.kinds:
            return feats
        gens = generators(seeds, feats[0].device)
        chosen = [self._choose(g) for g in gens]
        return [torch.stack([self._perturb_one(f[i], kinds, gens[i]) for i, kinds in enumerate(chosen)]) for f in feats]

    def _choose(self, g: torch.Generator) -> list[str]:
        if self.cfg.feature_perturbation == "all":
            return self.kinds
        pick = int(torch.randint(len(self.kinds), (), generator=g, device=g.device).item())
        return [self.kinds[pick]]

    def _perturb_one(self, x: Tensor, kinds: list[str], g: torch.Generator) -> Tensor:
        for kind in kinds:
            if kind == "noise":
                x = feature_noise(x, self.cfg.feature_noise, g)
            elif kind == "drop":
                x = feature_dropout(x, self.cfg.feature_dropout)
            else:
                x = channel_dropout(x, self.cfg.channel_dropout, g)
        return x


def feature_noise(x: Tensor, r: float, g: torch.Generator) -> Tensor:
    """x (C, H, W) -> x + x * u with u ~ U(-r, r) per element."""
    u = (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * r
    return x + x * u


def feature_dropout(x: Tensor, share: float) -> Tensor:
    """Zero the ``share`` most-attended locations (attention = channel mean), pushing the decoder to use context."""
    attention = x.mean(dim=0)  # (H, W)
    k = round(share * attention.numel())
    if k == 0:
        return x
    threshold = attention.flatten().topk(k).values[-1]
    return x * (attention < threshold).to(x.dtype)


def channel_dropout(x: Tensor, p: float, g: torch.Generator) -> Tensor:
    """Dropout2d for one image: whole channels zeroed with probability p, survivors scaled by 1/(1-p)."""
    keep = (torch.rand(x.shape[0], 1, 1, generator=g, device=x.device) >= p).to(x.dtype)
    return x * keep / (1.0 - p)
