"""Mutual Information loss (L_MI) between the student's main and noisy branches.

The HDC paper's equation was not available; ``loss.mi_kind`` selects the interpretation:
"renyi" (default) is ITRD's matrix-based Renyi (alpha = 2) surrogate on feature maps; "iic" is the
IIC mutual information between the two decoders' softmax maps. ``loss.mi_detach`` picks the side
that gets no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hdc_ray.losses._feature_rows import full_precision, sample_rows, sampled_rows, to_rows

__all__ = ["mutual_information_loss"]

KINDS = ("renyi", "iic")
DETACH = ("none", "main", "noisy")


def _renyi(
    main: Tensor,
    noisy: Tensor,
    detach: str,
    max_samples: int | None,
    generator: torch.Generator | None,
    eps: float,
) -> Tensor:
    n = main.shape[0] * main.shape[2] * main.shape[3]
    idx = sample_rows(n, max_samples, generator, main.device)  # same pixels on both sides: row i pairs with row i
    z1, z2 = F.normalize(sampled_rows(main, idx), dim=1), F.normalize(sampled_rows(noisy, idx), dim=1)  # (n, D) each
    g1, g2 = z1 @ z1.T, z2 @ z2.T  # (n, n) pixel Gram matrices
    # ||G / tr G||_F^2 = sum(G^2) / tr(G)^2 and the joint Gram's sum((G1 G2)^2) = sum(G1^2 G2^2): the same values
    # as normalising the (n, n) matrices first, with a third of the full-size temporaries (and their backward).
    sq1, sq2 = g1.square(), g2.square()
    joint = (sq1 * sq2).sum() / ((torch.diagonal(g1) * torch.diagonal(g2)).sum() + eps).square()
    # The learning side takes ITRD's student role (the marginal term): with G2 learnable in
    # ||G1||^2 - ||G1*G2||^2, G2 -> all ones (noisy features collapsed to one direction) gives 0.
    if detach == "main":
        return _marginal(sq2, g2, eps) - joint
    if detach == "noisy":
        return _marginal(sq1, g1, eps) - joint
    return 0.5 * (_marginal(sq1, g1, eps) + _marginal(sq2, g2, eps)) - joint


def _marginal(square: Tensor, g: Tensor, eps: float) -> Tensor:
    """||G / (tr G + eps)||_F^2 from G's element-wise square; eps keeps an all-zero map (trace 0) at 0, not 0 / 0."""
    return square.sum() / (torch.diagonal(g).sum() + eps).square()


def _iic(main: Tensor, noisy: Tensor, eps: float) -> Tensor:
    p1 = to_rows(main).softmax(dim=1)  # (n, C)
    p2 = to_rows(noisy).softmax(dim=1)
    joint = p1.T @ p2 / p1.shape[0]  # (C, C) joint distribution of (main class, noisy class)
    joint = (0.5 * (joint + joint.T)).clamp_min(eps)
    p_i = joint.sum(dim=1, keepdim=True)  # (C, 1) marginals
    p_j = joint.sum(dim=0, keepdim=True)  # (1, C)
    return -(joint * (joint.log() - p_i.log() - p_j.log())).sum()


def mutual_information_loss(
    main: Tensor,
    noisy: Tensor,
    kind: str = "renyi",
    detach: str = "none",
    max_samples: int | None = 1024,
    generator: torch.Generator | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Mutual-information loss between the main and noisy student branches (to be minimised).

    Shapes: ``kind="renyi"``: ``main`` (B, D1, h, w), ``noisy`` (B, D2, h, w) feature maps (the widths may differ:
    only each side's pixel Gram matrix enters, e.g. ``model.noisy_decoder="light"``); ``kind="iic"``: equal
    (B, C, H, W) logits. Returns a scalar.

    ``kind="renyi"`` (``loss.mi_kind``): pixels become n = B*h*w rows (if n > ``max_samples``,
    ``loss.mi_max_samples``, the same rows are drawn on both sides without replacement with
    ``generator``), rows are L2-normalised, G1 = z1 z1^T (main), G2 = z2 z2^T (noisy), G12 = G1*G2
    (element-wise, the joint Gram), each divided by its trace. For unit rows and a trace-normalised
    Gram A, ||A||_F^2 = 2^(-H2(A)) with H2 the matrix Renyi alpha=2 entropy, and H2(G12) >= H2(G1),
    so L(1|2) = ||G1||_F^2 - ||G12||_F^2 >= 0 is 0 exactly when the joint Gram carries no more
    information than the marginal one: the reference branch adds nothing unknown to the learning
    branch (maximal shared information). The learning side plays ITRD's student (the marginal):
    ``detach="noisy"`` -> L(main|noisy); ``detach="main"`` -> L(noisy|main); ``"none"`` -> the
    symmetric mean of both, which, unlike L(main|noisy) with a trainable noisy side, does not
    reward collapsing one branch to a single direction. Identical features do NOT give 0 in
    general: L = (sum G^2 - sum G^4) / n^2; L = 0 needs every pair of pixels parallel or
    orthogonal in both branches. Range [0, 1) when no pixel's feature vector is all zero.

    ``kind="iic"``: p = softmax over classes; joint P = mean over pixels of p_main p_noisy^T
    (C x C), symmetrised, clamped at ``eps``; L = -sum P (log P - log P_i - log P_j), the
    negative mutual information in nats (IIC, Ji et al. 2019): in [-log C, 0] up to eps; -log C
    for confident, agreeing, class-balanced predictions, 0 for independent ones.
    ``max_samples`` and ``generator`` are not used (the C x C joint is cheap on every pixel).

    ``detach`` (``loss.mi_detach``) in {"none", "main", "noisy"}: the side that gets no gradient.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mutual-information kind {kind!r}; expected one of {KINDS}")
    if detach not in DETACH:
        raise ValueError(f"unknown detach {detach!r}; expected one of {DETACH}")
    same = main.shape == noisy.shape if kind == "iic" else main.shape[:1] + main.shape[2:] == noisy.shape[:1] + noisy.shape[2:]
    if main.ndim != 4 or noisy.ndim != 4 or not same:
        what = "equal (B, C, H, W) logits" if kind == "iic" else "(B, D, h, w) feature maps of one batch and size"
        raise ValueError(f"main and noisy must be {what}, got {tuple(main.shape)} and {tuple(noisy.shape)}")
    if detach == "main":
        main = main.detach()
    elif detach == "noisy":
        noisy = noisy.detach()
    with full_precision(main):
        if kind == "iic":
            return _iic(main, noisy, eps)
        return _renyi(main, noisy, detach, max_samples, generator, eps)
