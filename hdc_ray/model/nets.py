"""The networks each method trains: a single segmenter, HDC's dual-decoder student, and a CPS pair.

Each trainable module takes ONE forward call per step (labelled and unlabelled images concatenated):
DistributedDataParallel counts parameter uses per forward, and a second forward before ``backward``
would mark parameters ready twice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hdc_ray.config import ModelConfig
from hdc_ray.model.unet import Decoder, Encoder, Features, name_features, stage_widths

# Perturbs the encoder features entering the noisy decoder; gets per-image seeds so that the noise of an
# image does not depend on which DDP rank or batch position it lands on.
Perturbation = Callable[[list[Tensor], Tensor], list[Tensor]]


@dataclass
class SegOutput:
    logits: Tensor  # (B, K, H, W)
    feats: Features


@dataclass
class DualOutput:
    main: SegOutput
    noisy: SegOutput | None  # None: model.noisy_decoder="none"


class SegNet(nn.Module):
    """Encoder + one decoder: the supervised model, the Mean Teacher student, every teacher, a CPS member."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> SegOutput:
        enc = self.encoder(x)
        logits, dec = self.decoder(enc)
        return SegOutput(logits, name_features(enc, dec))


class DualDecoderNet(nn.Module):
    """HDC's student: one shared encoder, a ``main`` decoder and a ``noisy`` decoder fed perturbed features."""

    def __init__(self, encoder: Encoder, main: Decoder, noisy: nn.Module | None, perturb: Perturbation) -> None:
        super().__init__()
        self.encoder = encoder
        self.main = main
        self.noisy = noisy
        self.perturb = perturb

    def forward(self, x: Tensor, noise_seeds: Tensor) -> DualOutput:
        """x (B, 1, H, W); noise_seeds (B,) int64, one per image."""
        enc = self.encoder(x)
        logits_main, dec_main = self.main(enc)
        main = SegOutput(logits_main, name_features(enc, dec_main))
        if self.noisy is None:
            return DualOutput(main, None)
        logits_noisy, dec_noisy = self.noisy(self.perturb(enc, noise_seeds))
        return DualOutput(main, SegOutput(logits_noisy, name_features(enc, dec_noisy)))

    def main_branch(self) -> SegNet:
        """A SegNet sharing this student's encoder and main decoder (no copy): the teacher's EMA source."""
        return SegNet(self.encoder, self.main)


class FPSegNet(nn.Module):
    """UniMatch's network: one encoder-decoder (``net``) that also decodes feature-perturbed copies of some rows.

    One forward call per step (DDP), so the perturbed stream rides along: ``fp_rows`` = (start, stop) picks
    the images (the unlabelled weak view) whose encoder features are perturbed and decoded a second time by
    the same decoder.
    """

    def __init__(self, net: SegNet, perturb: Perturbation) -> None:
        super().__init__()
        self.net = net
        self.perturb = perturb

    def forward(self, x: Tensor, fp_rows: tuple[int, int], noise_seeds: Tensor) -> tuple[SegOutput, Tensor]:
        """x (B, 1, H, W); noise_seeds (stop - start,) int64 -> (output on x, fp logits (stop - start, K, H, W))."""
        enc = self.net.encoder(x)
        logits, dec = self.net.decoder(enc)
        start, stop = fp_rows
        logits_fp, _ = self.net.decoder(self.perturb([f[start:stop] for f in enc], noise_seeds))
        return SegOutput(logits, name_features(enc, dec)), logits_fp


class CPSPair(nn.Module):
    """Two independently initialised segmenters for cross pseudo supervision (the multi-network baseline)."""

    def __init__(self, net_a: SegNet, net_b: SegNet) -> None:
        super().__init__()
        self.net_a = net_a
        self.net_b = net_b

    def forward(self, x: Tensor) -> tuple[SegOutput, SegOutput]:
        return self.net_a(x), self.net_b(x)


def build_encoder_decoder(cfg: ModelConfig, num_classes: int) -> tuple[Encoder, Decoder]:
    widths = stage_widths(cfg.base_width, cfg.depth)
    residual = cfg.backbone == "resunet"
    return Encoder(1, widths, cfg.norm, residual), Decoder(widths, num_classes, cfg.norm, residual, cfg.dropout)


def build_segnet(cfg: ModelConfig, num_classes: int) -> SegNet:
    return SegNet(*build_encoder_decoder(cfg, num_classes))


class LightDecoder(nn.Module):
    """A noisy decoder of half the width (``model.noisy_decoder="light"``): each encoder feature is projected to half
    its channels by a 1x1 convolution, then decoded by a U-Net decoder of half the widths (~1/4 of the FLOPs)."""

    def __init__(self, widths: list[int], num_classes: int, norm: str, residual: bool, dropout: float) -> None:
        super().__init__()
        half = [max(4, w // 2) for w in widths]
        self.project = nn.ModuleList(nn.Conv2d(w, h, 1, bias=False) for w, h in zip(widths, half, strict=True))
        self.decoder = Decoder(half, num_classes, norm, residual, dropout)

    def forward(self, enc: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        return self.decoder([p(f) for p, f in zip(self.project, enc, strict=True)])


def build_dual(cfg: ModelConfig, num_classes: int, perturb: Perturbation) -> DualDecoderNet:
    encoder, main = build_encoder_decoder(cfg, num_classes)
    noisy: nn.Module | None = None
    if cfg.noisy_decoder == "full":
        _, noisy = build_encoder_decoder(cfg, num_classes)
    elif cfg.noisy_decoder == "light":
        noisy = LightDecoder(stage_widths(cfg.base_width, cfg.depth), num_classes, cfg.norm, cfg.backbone == "resunet", cfg.dropout)
    return DualDecoderNet(encoder, main, noisy, perturb)


def make_teacher(source: SegNet) -> SegNet:
    """A frozen deep copy; it is only ever changed by :func:`ema_update`."""
    teacher = copy.deepcopy(source)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student, parameters and floating buffers alike.

    Every DDP rank runs this on identical weights (DDP keeps students in sync), so teachers stay identical
    without being wrapped or broadcast.
    """
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.lerp_(s.detach(), 1.0 - decay)
    for t_buf, s_buf in zip(teacher.buffers(), student.buffers(), strict=True):
        if t_buf.dtype.is_floating_point:
            t_buf.lerp_(s_buf, 1.0 - decay)
        else:
            t_buf.copy_(s_buf)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
