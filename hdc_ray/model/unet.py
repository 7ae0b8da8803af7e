"""U-Net encoder and decoder that expose their intermediate features by name.

Feature names are the vocabulary of ``loss.cg_levels`` / ``loss.mi_level``: ``enc1`` (full resolution) ...
``encD`` (deepest, also called ``bottleneck``), then ``dec1`` (first up-sampling stage, deepest) ...
``dec{D-1}`` (full resolution, also called ``dec_last``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

Features = dict[str, Tensor]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # Group norm normalises per image, so a batch split across DDP ranks gives the same numbers as one rank.
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class ConvBlock(nn.Module):
    """Two 3x3 convolutions; with ``residual`` a ResNet-style identity/1x1 shortcut is added."""

    def __init__(self, c_in: int, c_out: int, norm: str, residual: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            _norm(norm, c_out),
        )
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return F.relu(y)


class Encoder(nn.Module):
    def __init__(self, in_channels: int, widths: list[int], norm: str, residual: bool) -> None:
        super().__init__()
        c_ins = [in_channels, *widths[:-1]]
        self.stages = nn.ModuleList(ConvBlock(ci, co, norm, residual) for ci, co in zip(c_ins, widths, strict=True))
        self.widths = widths

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, C_in, H, W) -> [enc1 (B, w1, H, W), enc2 (B, w2, H/2, W/2), ...]."""
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class Decoder(nn.Module):
    def __init__(self, widths: list[int], num_classes: int, norm: str, residual: bool, dropout: float) -> None:
        super().__init__()
        rev = widths[::-1]  # deepest first
        self.ups = nn.ModuleList(nn.ConvTranspose2d(rev[i], rev[i + 1], 2, stride=2) for i in range(len(rev) - 1))
        self.blocks = nn.ModuleList(ConvBlock(2 * rev[i + 1], rev[i + 1], norm, residual) for i in range(len(rev) - 1))
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, enc: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Encoder features (shallow..deep) -> logits (B, K, H, W) and hidden maps [dec1 (deep) .. dec_last]."""
        x = enc[-1]
        hidden = []
        for up, block, skip in zip(self.ups, self.blocks, enc[-2::-1], strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
            hidden.append(x)
        return self.classifier(self.dropout(x)), hidden


def name_features(enc: list[Tensor], dec: list[Tensor]) -> Features:
    feats = {f"enc{i + 1}": f for i, f in enumerate(enc)}
    feats |= {f"dec{i + 1}": f for i, f in enumerate(dec)}
    feats["bottleneck"] = enc[-1]
    feats["dec_last"] = dec[-1]
    return feats


def stage_widths(base_width: int, depth: int) -> list[int]:
    return [base_width * 2**i for i in range(depth)]
