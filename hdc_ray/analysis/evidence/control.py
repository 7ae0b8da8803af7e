"""Error control over every look and every comparison of a study: anytime-valid t confidence sequences + Holm.

A study looks at its paired differences after every round, and a user may look again (another ``hdc-ray report``,
a raised ``max_seeds``, a resume). A 95% t-interval per look claims more than 5% of the time when nothing is there
(``bench/study_rule.py``). Here each comparison (an arm against the baseline at one budget) gets a *confidence
sequence*: intervals that hold at every number of splits at once, so looking, stopping and going on never spend
more than the level. The family of comparisons (arm x budget) is corrected with Holm's step-down, applied to
anytime-valid p-values, which keeps the chance that *any* claim is wrong under ``alpha`` at every look.

The sequence for the mean ``mu`` of per-split differences ``x_1, x_2, ...`` (taken in split order: seeds are
added in order, never chosen on the data) is the scale-invariant normal-mixture test of the t-statistic:
with ``nu = n - 1`` and a N(0, ``g``) mixture over the standardised effect ``mu / sigma``,

    E_n(mu) = (1 + n g)^(-1/2) * [(1 + t^2 / nu) / (1 + t^2 / (nu (1 + n g)))]^((nu + 1) / 2),   t = t-statistic of x - mu

is a test martingale in the filtration of the t-statistics when ``mu`` is the true mean (Lai 1976, "On confidence
sequences", Ann. Statist.; Perez-Ortiz, Lardy, de Heide, Grunwald 2024, "E-statistics, group invariance and anytime
valid testing", Ann. Statist.; Howard, Ramdas, McAuliffe, Sekhon 2021 for confidence sequences in general). By
Ville's inequality ``P(sup_n E_n(mu) >= 1 / a) <= a``, so ``{mu : E_k(mu) < 1 / a for every k <= n}`` covers ``mu``
at every ``n`` with probability ``1 - a``, and ``p_n = min(1, 1 / max_k E_k(0))`` is an anytime-valid p-value.
It assumes roughly normal per-split differences; the level is checked by simulation in tests/analysis/test_control.py.

The price is width: at 6 splits a sequence is wider than the fixed-n t-interval, and with 3 splits nothing can
be claimed at 5% (``E_3`` is at most ``1 + 3 g``). ``PRIOR_SCALE`` was chosen with ``bench/study_rule.py``
(docs/benchmarks.md, "The study's decision rule").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # the family-wise error rate every Answer controls
PROCEDURE = "anytime-valid t confidence sequences (normal mixture, g = {g:g}) + Holm's step-down over the comparisons"
# g: variance of the standardised effect mu/sigma in the mixture. Large g favours large effects and few splits; small g
# narrows late intervals. 2.0 decides gains of 1-2 sd within 6-12 splits and keeps 6-split intervals usable
# (bench/study_rule.py, docs/benchmarks.md "The study's decision rule").
PRIOR_SCALE = 2.0
MIN_SPLITS = 2  # a t-statistic needs two splits


def e_value(t: np.ndarray | float, n: np.ndarray | float, g: float = PRIOR_SCALE) -> np.ndarray:
    """``E_n`` for t-statistic(s) ``t`` of ``n`` splits (``n >= 2``)."""
    t, n = np.asarray(t, float), np.asarray(n, float)
    nu, grow = n - 1.0, 1.0 + n * g
    return np.exp(-0.5 * np.log(grow) + 0.5 * (nu + 1.0) * (np.log1p(t * t / nu) - np.log1p(t * t / (nu * grow))))


def critical_t(n: np.ndarray | float, level: np.ndarray | float, g: float = PRIOR_SCALE) -> np.ndarray:
    """The ``|t|`` at which ``E_n`` reaches ``1 / level`` (inf where it never can: too few splits for that level)."""
    n = np.asarray(n, float)
    nu, grow = n - 1.0, 1.0 + n * g
    r = np.exp(2.0 * (np.log(1.0 / np.asarray(level, float)) + 0.5 * np.log(grow)) / (nu + 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (r - 1.0) / (1.0 - r / grow)
    return np.where(r < grow, np.sqrt(np.maximum(u, 0.0) * nu), np.inf)


def _prefix_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, sample sds and counts of every prefix of the last axis (prefixes of 2 splits and more)."""
    n = np.arange(1, x.shape[-1] + 1, dtype=float)
    mean = np.cumsum(x, axis=-1) / n
    sq = np.cumsum(x * x, axis=-1)
    var = np.maximum(sq - n * mean * mean, 0.0) / np.maximum(n - 1.0, 1.0)
    return mean[..., 1:], np.sqrt(var[..., 1:]), n[1:]


def anytime_p(x: np.ndarray, g: float = PRIOR_SCALE) -> np.ndarray:
    """``min(1, 1 / max_k E_k(0))`` over the prefixes of the last axis (NaN under 2 splits): valid at every look."""
    x = np.asarray(x, float)
    if x.shape[-1] < MIN_SPLITS:
        return np.full(x.shape[:-1], np.nan)
    mean, sd, n = _prefix_stats(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, mean / (sd / np.sqrt(n)), np.where(mean == 0, 0.0, np.inf * np.sign(mean)))
    e = np.where(np.isinf(t), (1.0 + n * g) ** ((n - 1.0) / 2.0), e_value(np.where(np.isinf(t), 0.0, t), n, g))
    return np.minimum(1.0, 1.0 / np.max(e, axis=-1))


def sequence_bounds(x: np.ndarray, level: np.ndarray | float, g: float = PRIOR_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Low and high ends of the confidence sequences of the rows of ``x`` (splits on the last axis) at ``level``
    (broadcast against the rows): the intersection of every prefix's interval. Under 2 splits: NaN."""
    x = np.asarray(x, float)
    if x.shape[-1] < MIN_SPLITS:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan
    mean, sd, n = _prefix_stats(x)
    crit = critical_t(n, np.asarray(level, float)[..., None], g)
    with np.errstate(invalid="ignore"):  # no spread: a point where the level can be reached, else unbounded
        half = np.where(sd > 0, crit * sd / np.sqrt(n), np.where(np.isfinite(crit), 0.0, np.inf))
    with np.errstate(invalid="ignore"):  # inf - inf where a prefix can exclude nothing
        low, high = np.max(mean - half, axis=-1), np.min(mean + half, axis=-1)
    crossed = low > high  # the prefixes disagree more than the model allows (far from normal): the last prefix alone
    low = np.where(crossed, mean[..., -1] - half[..., -1], low)
    high = np.where(crossed, mean[..., -1] + half[..., -1], high)
    return low, high


def confidence_sequence(x: Sequence[float] | np.ndarray, level: float, g: float = PRIOR_SCALE) -> tuple[float, float]:
    """The sequence's interval after all of ``x`` (in split order) at error ``level``: (-inf, inf) where too few splits
    can exclude anything at that level; NaN under 2 splits."""
    low, high = sequence_bounds(np.asarray(x, float), level, g)
    return float(low), float(high)


@dataclass(frozen=True)
class Holm:
    """Holm's step-down over a family of anytime p-values: which are claimed, and at what level each was tested.

    ``levels[i]``: ``alpha / (m - rank + 1)`` for a claimed comparison (its step), ``alpha / (m - r)`` for the rest
    (the step where the procedure stopped, ``r`` claims before it). A comparison's confidence sequence at its level
    excludes zero exactly when it is claimed, so intervals and verdicts never disagree.
    """

    claimed: tuple[bool, ...]
    levels: tuple[float, ...]
    alpha: float

    @property
    def m(self) -> int:
        return len(self.claimed)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> Holm:
    """Holm (1979) over ``p_values``; NaN p-values (too few splits) are never claimed but count in the family."""
    p = np.asarray(p_values, float)
    m = len(p)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    claimed = np.zeros(m, bool)
    rank = 0
    for rank, i in enumerate(order):
        if not (p[i] <= alpha / (m - rank)):
            break
        claimed[i] = True
    else:
        rank = m
    levels = np.full(m, alpha / max(1, m - rank))
    for step, i in enumerate(order[:rank]):
        levels[i] = alpha / (m - step)
    return Holm(tuple(bool(c) for c in claimed), tuple(float(v) for v in levels), alpha)


def holm_batch(p: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Holm's claims for many families at once: ``p`` is (studies, m); NaN never claimed. For simulations."""
    p = np.where(np.isnan(p), np.inf, p)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    passes = sorted_p <= alpha / (m - np.arange(m))
    keep = np.cumprod(passes, axis=-1).astype(bool)  # claimed up to the first failure
    claimed = np.zeros_like(keep)
    np.put_along_axis(claimed, order, keep, axis=-1)
    return claimed


def splits_to_decide(sd: float, width: float, level: float, g: float = PRIOR_SCALE, limit: int = 200) -> int | None:
    """Splits at which the sequence at ``level`` would be about ``width`` wide for per-split sd ``sd`` (None: > limit)."""
    if not sd > 0 or not width > 0:
        return None
    n = np.arange(MIN_SPLITS, limit + 1, dtype=float)
    wide = 2.0 * critical_t(n, level, g) * sd / np.sqrt(n)
    hit = np.nonzero(wide <= width)[0]
    return int(n[hit[0]]) if len(hit) else None


__all__ = ["ALPHA", "PRIOR_SCALE", "Holm", "anytime_p", "confidence_sequence", "critical_t", "e_value", "holm", "holm_batch", "sequence_bounds", "splits_to_decide"]
