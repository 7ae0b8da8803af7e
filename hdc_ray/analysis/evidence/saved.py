"""Labels saved: how many labelled images supervised needs to match an arm, only where the evidence holds it.

Per split, the arm's score at its budget is matched against that split's own supervised curve: the budget at which
the curve (linear in log budget between measured budgets) first reaches the score. A match is *measured* only
between two measured budgets at most ``MAX_GAP`` apart; otherwise the split is censored:

- the curve never reaches the score within the measured budgets: supervised needs more than the largest measured
  budget (``above``: a lower bound);
- it crosses inside a gap wider than ``MAX_GAP`` (16 and all 400, say): more than the budget below the gap (``above``);
- it already reaches the score at the smallest measured budget: at most that budget (``below``: an upper bound).

The interval is the confidence sequence (:mod:`.control`) of ``log(matched / budget)`` over splits, at the level the
claim was tested at, so labels saved carry the same error control as the difference they follow from. With splits
censored above, only the lower end means anything ("at least"); with splits censored below, only the upper end.
A match never exceeds the largest measured budget, so never the pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hdc_ray.analysis.evidence.advisor import MAX_GAP
from hdc_ray.analysis.evidence.control import confidence_sequence


@dataclass(frozen=True)
class SavedLabels:
    """``matched[i]``: split i's matched budget or its bound; ``above``/``below``: splits censored each way."""

    budget: float
    matched: tuple[float, ...]
    above: int
    below: int
    top_budget: float  # the largest supervised budget measured
    level: float  # the error level of the interval (the claim's Holm level)
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.matched)

    @property
    def kind(self) -> str:
        """``interval``, ``at least`` (some splits censored above), ``at most`` (below), or ``not measured``."""
        if self.n < 2 or (self.above and self.below) or (self.above == self.n and self.budget >= self.top_budget):
            return "not measured"
        if self.above:
            return "at least"
        return "at most" if self.below else "interval"

    @property
    def centre(self) -> float:
        """Geometric mean of the matched budgets (bounds where censored)."""
        return float(self.budget * np.exp(np.mean(np.log(np.asarray(self.matched) / self.budget)))) if self.n else math.nan


def saved_labels(curves: pd.DataFrame, arm_scores: pd.Series, budget: float, level: float, sign: float = 1.0) -> SavedLabels:
    """``curves``: supervised scores, budget (index) x seed (columns); ``arm_scores``: the arm's score per seed at ``budget``."""
    budgets = curves.index.to_numpy(float)
    matched, above, below = [], 0, 0
    for seed, score in arm_scores.sort_index().items():
        column = curves[seed].to_numpy(float) if seed in curves.columns else np.full(len(budgets), np.nan)
        ok = ~np.isnan(column)
        value, side = match(budgets[ok], sign * column[ok], sign * float(score))
        matched.append(value)
        above += side == "above"
        below += side == "below"
    logs = np.log(np.asarray(matched, float) / budget)
    low, high = confidence_sequence(logs, level) if len(logs) >= 2 else (math.nan, math.nan)
    return SavedLabels(budget, tuple(matched), above, below, float(budgets.max()), level, budget * math.exp(low), budget * math.exp(high))


def match(b: np.ndarray, m: np.ndarray, target: float) -> tuple[float, str]:
    """Where a curve ``m`` (higher is better) at budgets ``b`` first reaches ``target``: (budget, "") when measured,
    (bound, "above"/"below") when censored (see the module docstring)."""
    if not len(b):
        return math.nan, "above"
    if m[0] >= target:
        return float(b[0]), "below"
    for i in range(1, len(b)):
        if m[i] >= target:
            if b[i] > MAX_GAP * b[i - 1]:  # inside an unmeasured gap: only "more than the budget below it" is known
                return float(b[i - 1]), "above"
            x0, x1 = math.log(b[i - 1]), math.log(b[i])
            return float(math.exp(x0 + (target - m[i - 1]) * (x1 - x0) / (m[i] - m[i - 1]))), ""
    return float(b[-1]), "above"


__all__ = ["SavedLabels", "match", "saved_labels"]
