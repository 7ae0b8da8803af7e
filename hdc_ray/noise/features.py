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
        """feats: encoder maps [(B, C_l, H_l, W_l)]; seeds (B,) int64 -> perturbed maps, same shapes.

        Per level, each image's draws come from its own generator in the order of the per-image definitions
        (``feature_noise``, ``feature_dropout``, ``channel_dropout``), and are then applied to the whole batch
        as one multiplier per kind: the same numbers as perturbing image by image, without a per-image
        slice and stack (whose backward writes a full-batch gradient per image).
        """
        if not self.kinds:
            return feats
        gens = generators(seeds, feats[0].device)
        chosen = [self._choose(g) for g in gens]
        return [self._perturb_level(f, chosen, gens) for f in feats]

    def _choose(self, g: torch.Generator) -> list[str]:
        if self.cfg.feature_perturbation == "all":
            return self.kinds
        pick = int(torch.randint(len(self.kinds), (), generator=g, device=g.device).item())
        return [self.kinds[pick]]

    def _perturb_level(self, x: Tensor, chosen: list[list[str]], gens: list[torch.Generator]) -> Tensor:
        """x (B, C, H, W) -> x * m: every image's chosen kinds (in the kinds' order) folded into one multiplier
        m (built without grad), so the perturbation costs one product and its backward, not one per kind.

        x + x u = x (1 + u) and (x keep) / (1 - p) = x (keep / (1 - p)) up to rounding; feature dropout ranks
        locations on the features as perturbed so far, as when the kinds are applied one after the other.
        """
        with torch.no_grad():
            m = torch.ones_like(x)
            for kind in self.kinds:
                on = [kind in kinds for kinds in chosen]
                if not any(on):
                    continue
                rows = [i for i, o in enumerate(on) if o]
                if kind == "noise":
                    u = torch.stack([_uniform_noise(x.shape[1:], self.cfg.feature_noise, gens[i], x.dtype) for i in rows])
                    m[rows] = m[rows] * (1 + u)
                elif kind == "drop":
                    m[rows] = m[rows] * _keep_least_attended(x[rows] * m[rows], self.cfg.feature_dropout)
                else:
                    keep = torch.stack([_channel_keep(x.shape[1], self.cfg.channel_dropout, gens[i], x.dtype) for i in rows])
                    m[rows] = m[rows] * (keep / (1.0 - self.cfg.channel_dropout))
        return x * m


def _uniform_noise(shape: torch.Size, r: float, g: torch.Generator, dtype: torch.dtype) -> Tensor:
    return (torch.rand(shape, generator=g, device=g.device, dtype=dtype) * 2 - 1) * r


def _keep_least_attended(x: Tensor, share: float) -> Tensor:
    """(B, C, H, W) -> (B, 1, H, W) 0/1: per image, 0 on the ``share`` most-attended locations (channel mean)."""
    attention = x.detach().mean(dim=1)  # (B, H, W)
    k = round(share * attention[0].numel())
    if k == 0:
        return torch.ones_like(attention)[:, None]
    threshold = attention.flatten(1).topk(k, dim=1).values[:, -1]  # (B,)
    return (attention < threshold[:, None, None]).to(x.dtype)[:, None]


def _channel_keep(channels: int, p: float, g: torch.Generator, dtype: torch.dtype) -> Tensor:
    return (torch.rand(channels, 1, 1, generator=g, device=g.device) >= p).to(dtype)


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
