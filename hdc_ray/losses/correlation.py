"""Correlation Guidance loss (L_CG): align teacher and student-main features, level by level.

The HDC paper's equation was not available; ``loss.cg_kind`` selects the interpretation:
"itrd" (default) is the correlation loss of ITRD (Miles et al., BMVC 2022); "gram" matches
normalised pixel-affinity matrices on a down-sampled map. For "itrd", ``loss.cg_form`` picks how the
per-dimension mismatch S = sum_d |1 - c_d|^(2 alpha) becomes a loss: ITRD's "log" (log2 S), or a form
whose gradient stays bounded as the student reaches the teacher ("log1p": log2(1 + S), "linear": S / D).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hdc_ray.losses._feature_rows import full_precision, sample_rows, sampled_rows

__all__ = ["correlation_guidance_loss"]

KINDS = ("itrd", "gram")
# d log2(S) / dS = 1 / (S ln 2): with an EMA teacher (equal to the student at step 0) S -> 0 and ITRD's
# log form multiplies its own gradient without bound. log1p keeps ITRD's log compression far from the
# optimum (S >> 1) and is S / ln 2 near it (gradient factor <= 1 / ln 2); linear is the plain mean.
FORMS = ("log", "log1p", "linear")
# Inside the sqrt of the standardisation: a constant (zero-std) dimension becomes 0 with a finite
# gradient, where dividing by std + eps would leave d std / d var = 1 / (2 sqrt(0)) = inf.
_STD_EPS = 1e-6
# Inside the log2: identical features give sum_d |1 - c_d|^(2 alpha) ~ 0, so L ~ log2(1e-8) ~ -26.6
# instead of -inf.
_LOG_EPS = 1e-8


def _check_levels(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> None:
    if len(student_feats) == 0:
        raise ValueError("correlation_guidance_loss needs at least one feature level, got none")
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f"{len(student_feats)} student feature levels but {len(teacher_feats)} teacher levels")
    for i, (s, t) in enumerate(zip(student_feats, teacher_feats, strict=True)):
        if s.ndim != 4:
            raise ValueError(f"level {i}: features must be (B, D, h, w), got {tuple(s.shape)}")
        if s.shape != t.shape:
            raise ValueError(f"level {i}: student {tuple(s.shape)} and teacher {tuple(t.shape)} shapes differ")


def _standardise(z: Tensor) -> Tensor:
    """(n, D) -> (n, D), each column with mean 0 and (population) std 1."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + _STD_EPS)


def _itrd_level(s: Tensor, t: Tensor, alpha: float, max_samples: int | None, generator: torch.Generator | None, form: str) -> Tensor:
    idx = sample_rows(s.shape[0] * s.shape[2] * s.shape[3], max_samples, generator, s.device)
    zs, zt = sampled_rows(s, idx), sampled_rows(t.detach(), idx)  # (n, D) each: the same rows on both sides
    c = (_standardise(zs) * _standardise(zt)).mean(dim=0)  # (D,) per-dimension correlation
    mismatch = (1.0 - c).abs().pow(2.0 * alpha)  # (D,)
    if form == "linear":
        return mismatch.mean()
    if form == "log1p":
        return torch.log1p(mismatch.sum()) / math.log(2.0)
    return torch.log2(_LOG_EPS + mismatch.sum())


def _gram_level(s: Tensor, t: Tensor, gram_size: int) -> Tensor:
    # Maps smaller than gram_size are used as they are: up-sampling would only duplicate pixels.
    size = (min(gram_size, s.shape[2]), min(gram_size, s.shape[3]))
    ps = F.adaptive_avg_pool2d(s.float(), size).flatten(2).transpose(1, 2)  # (B, h*w, D)
    pt = F.adaptive_avg_pool2d(t.detach().float(), size).flatten(2).transpose(1, 2)
    ps, pt = F.normalize(ps, dim=2), F.normalize(pt, dim=2)
    a_s = ps @ ps.transpose(1, 2)  # (B, h*w, h*w) cosine affinity between pixels
    a_t = pt @ pt.transpose(1, 2)
    return F.mse_loss(a_s, a_t)  # equal-size images: mean over images of the per-image MSE


def correlation_guidance_loss(
    student_feats: Sequence[Tensor],
    teacher_feats: Sequence[Tensor],
    kind: str = "itrd",
    alpha: float = 1.5,
    max_samples: int | None = 4096,
    generator: torch.Generator | None = None,
    gram_size: int = 16,
    form: str = "log",
) -> Tensor:
    """Hierarchical feature alignment between teacher and student main branch; mean over levels.

    Shapes: ``student_feats[i]`` and ``teacher_feats[i]`` (B, D_i, h_i, w_i), equal per level.
    Returns a scalar. The teacher side is detached.

    ``kind="itrd"`` (``loss.cg_kind``): per level, pixels become n = B*h*w rows of D features; if
    n > ``max_samples`` (``loss.cg_max_samples``) the same ``max_samples`` rows are drawn without
    replacement on both sides with ``generator``. Each dimension is standardised over the rows
    (population std, eps 1e-6 under the sqrt), c_d = mean_n(zs_hat * zt_hat) and
    L = log2(1e-8 + sum_d |1 - c_d|^(2 alpha)), alpha = ``loss.cg_alpha`` (>= 0.5 so the gradient
    at c_d = 1 stays finite). L is NEGATIVE near its minimum: identical non-constant features give
    c_d ~ 1 and L ~ log2(1e-8) ~ -26.6. A constant dimension (zero std) standardises to 0, so
    c_d = 0 and it adds 1 to the sum: identical constant features give log2(D). That is
    ``form="log"`` (``loss.cg_form``); with S = sum_d |1 - c_d|^(2 alpha), ``form="log1p"`` gives
    log2(1 + S) (>= 0, 0 at a perfect match) and ``form="linear"`` gives S / D (the mean over
    dimensions, in [0, 2^(2 alpha)]). Both have a gradient that stays bounded as S -> 0, unlike the
    log form's 1 / (S ln 2).

    ``kind="gram"``: each map is average-pooled to ``gram_size`` x ``gram_size`` (smaller maps are
    kept as they are), rows are L2-normalised pixels, A = z z^T is the (h*w, h*w) cosine affinity
    per image, and L = MSE(A_student, A_teacher), 0 for identical features.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown correlation kind {kind!r}; expected one of {KINDS}")
    if not (math.isfinite(alpha) and alpha >= 0.5):
        raise ValueError(f"alpha must be finite and >= 0.5, got {alpha}")
    if form not in FORMS:
        raise ValueError(f"unknown correlation form {form!r}; expected one of {FORMS}")
    if gram_size < 1:
        raise ValueError(f"gram_size must be >= 1, got {gram_size}")
    _check_levels(student_feats, teacher_feats)
    pairs = zip(student_feats, teacher_feats, strict=True)
    with full_precision(student_feats[0]):
        if kind == "itrd":
            losses = [_itrd_level(s, t, alpha, max_samples, generator, form) for s, t in pairs]
        else:
            losses = [_gram_level(s, t, gram_size) for s, t in pairs]
        return torch.stack(losses).mean()
