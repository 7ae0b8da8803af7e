"""Ramp-up of the unsupervised terms and the weighted sum of named loss components."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import torch
from torch import Tensor

__all__ = ["sigmoid_rampup", "weighted_total"]


def sigmoid_rampup(step: float, length: float) -> float:
    """Sigmoid-shaped ramp exp(-5 (1 - t/T)^2), t = ``step`` clipped to [0, T], T = ``length``.

    Gives exp(-5) ~ 0.0067 at t = 0 (not 0) and 1 from t = T on (Laine & Aila 2017, Mean
    Teacher). ``length <= 0`` disables the ramp: 1.0.
    """
    if length <= 0:
        return 1.0
    t = min(max(float(step), 0.0), float(length))
    phase = 1.0 - t / length
    return math.exp(-5.0 * phase * phase)


def weighted_total(
    components: Mapping[str, Tensor],
    weights: Mapping[str, float],
    ramp: float,
    unramped: Collection[str] = ("sup",),
) -> Tensor:
    """total = sum_{k in unramped} w_k c_k + ramp * sum_{other k} w_k c_k.

    Shapes: every component is a scalar (0-d) tensor; returns a scalar. Every component needs a
    weight (a missing one raises ValueError, so a term computed but never optimised cannot go
    unnoticed); extra weights are ignored. A term with weight 0, or a ramped term when
    ``ramp == 0``, is skipped rather than multiplied by 0, so an ablated term contributes exactly
    0 and a NaN in it cannot leak into the total. If every term is skipped the result is a zero
    tensor without grad.
    """
    if not components:
        raise ValueError("weighted_total needs at least one loss component")
    if not (math.isfinite(ramp) and ramp >= 0.0):
        raise ValueError(f"ramp must be finite and >= 0, got {ramp}")
    missing = [k for k in components if k not in weights]
    if missing:
        raise ValueError(f"no weight for loss component(s) {missing}; weights: {sorted(weights)}")
    first = next(iter(components.values()))
    total = torch.zeros((), dtype=first.dtype, device=first.device)
    for name, value in components.items():
        if value.ndim != 0:
            raise ValueError(f"loss component {name!r} must be a scalar, got {tuple(value.shape)}")
        factor = weights[name] * (1.0 if name in unramped else ramp)
        if factor != 0.0:
            total = total + factor * value
    return total
