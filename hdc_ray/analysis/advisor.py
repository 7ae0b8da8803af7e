"""Budget advisor: how many labelled images does each method need to reach a target Dice?

Per arm, a saturating learning curve is fitted to every finished trial (score vs labelled images),
the inverse power law ``score(n) = a - b * n**(-c)`` (``a``: the asymptote, at most 1; ``b``: how far
below it a single image leaves you; ``c``: how fast the gap closes), and inverted at the target:
``n = (b / (a - target)) ** (1 / c)``. A bootstrap over seeds (= splits) gives the interval.

The answer is only measured inside the budgets that were run: beyond the largest it is an
**extrapolation** of the fitted curve, and when the fitted asymptote ``a`` is at or below the target
the target is **never reached** by that method on this data (more labels alone will not do it).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from hdc_ray.analysis.budget import budget_column
from hdc_ray.analysis.tables import AnalysisError, metric_direction, metric_label, require_metric, with_arm

MIN_BUDGETS = 3  # three parameters need three distinct budgets
ROUGH_SEEDS = 5  # a bootstrap over fewer seeds has only a handful of distinct resamples
C_BOUNDS = (0.05, 3.0)  # decay exponents seen on learning curves lie well inside (0.1-1 is typical)

INSIDE = "interpolated"  # inside the measured budgets
BEYOND = "extrapolated"  # beyond the largest measured budget
BELOW = "below the smallest measured budget"  # also outside what was measured
NEVER = "never reached"  # the fitted asymptote is at or below the target


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """The fitted learning curve ``a - b * n**(-c)`` at ``n`` labelled images."""
    return a - b * np.power(np.asarray(n, dtype=float), -c)


@dataclass(frozen=True)
class CurveFit:
    """Fitted ``a - b * n**(-c)`` and the residual RMS of the trials around it."""

    a: float
    b: float
    c: float
    rms: float

    def __call__(self, n: np.ndarray | float) -> np.ndarray:
        return power_law(np.asarray(n, dtype=float), self.a, self.b, self.c)

    def labels_for(self, target: float) -> float:
        """Labelled images at which the curve reaches ``target``: ``inf`` when ``a <= target``."""
        return labels_for(self.a, self.b, self.c, target)


def labels_for(a: float, b: float, c: float, target: float) -> float:
    """Invert ``target = a - b * n**(-c)``: ``n = (b / (a - target)) ** (1 / c)``; inf when unreachable."""
    if a <= target:
        return math.inf
    if b <= 0:
        return 0.0  # a flat curve already at a > target
    with np.errstate(over="ignore"):
        return float(np.power(b / (a - target), 1.0 / c))


def fit_learning_curve(n: np.ndarray, score: np.ndarray, p0: tuple[float, float, float] | None = None) -> CurveFit:
    """Least-squares fit of ``score = a - b * n**(-c)`` with ``0 <= a <= 1``, ``b >= 0``, ``c`` in C_BOUNDS.

    Starts from ``p0`` (the bootstrap passes the full fit) or from ``a`` just above the best score,
    ``c = 0.5`` and ``b`` through the smallest budget.
    Raises :class:`AnalysisError` with fewer than :data:`MIN_BUDGETS` distinct budgets.
    """
    n, score = np.asarray(n, dtype=float), np.asarray(score, dtype=float)
    ok = np.isfinite(n) & np.isfinite(score) & (n > 0)
    n, score = n[ok], score[ok]
    if len(np.unique(n)) < MIN_BUDGETS:
        raise AnalysisError(f"a learning curve needs at least {MIN_BUDGETS} distinct budgets, got {len(np.unique(n))}")
    lower, upper = (0.0, 0.0, C_BOUNDS[0]), (1.0, np.inf, C_BOUNDS[1])
    if p0 is None:
        a0, c0 = min(1.0, float(score.max()) + 0.05), 0.5
        p0 = (a0, max(1e-3, (a0 - float(score[n == n.min()].mean())) * float(n.min()) ** c0), c0)
    p0 = tuple(float(np.clip(v, lo, hi)) for v, lo, hi in zip(p0, lower, upper, strict=True))  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # covariance not estimable on exact fits: unused
        params, _ = curve_fit(power_law, n, score, p0=p0, bounds=(lower, upper), maxfev=20_000)
    a, b, c = (float(p) for p in params)
    rms = float(np.sqrt(np.mean((power_law(n, a, b, c) - score) ** 2)))
    return CurveFit(a, b, c, rms)


@dataclass(frozen=True)
class LabelsNeeded:
    """The advisor's answer for one arm: labelled images to reach ``target`` on ``metric``.

    ``n_needed``: from the curve fitted to all seeds (``inf`` when never reached). ``low``/``high``:
    percentile interval over seed resamples (``high = inf`` when enough resamples never reach it).
    ``where``: ``interpolated``, ``extrapolated`` (beyond ``max_measured``), ``below the smallest
    measured budget`` or ``never reached`` (the fitted asymptote ``a`` <= target).
    ``reached_share``: share of resamples whose curve reaches the target at all.
    """

    arm: str
    metric: str
    target: float
    a: float
    b: float
    c: float
    rms: float
    n_needed: float
    low: float
    high: float
    where: str
    min_measured: float
    max_measured: float
    bracket_low: float  # the measured budgets on either side of an interpolated answer (NaN outside)
    bracket_high: float
    n_seeds: int
    n_boot: int
    reached_share: float
    confidence: float

    @property
    def extrapolated(self) -> bool:
        return self.where in (BEYOND, BELOW)

    @property
    def reachable(self) -> bool:
        return self.where != NEVER

    def sentence(self) -> str:
        """E.g. ``hdc needs ~23 labelled images to reach test Dice 0.85 (95% interval 18-31; measured)``."""
        goal = f"{metric_label(self.metric)} {self.target:.3g}"
        curve = f"fitted asymptote {self.a:.3f}" + (", at its bound 1: no saturation seen yet" if self.a > 0.999 else "")
        if self.where == NEVER:
            return (
                f"{self.arm} does not reach {goal}: its fitted curve levels off at {self.a:.3f} "
                f"(more labels alone will not get there; {self.reached_share:.0%} of seed resamples reach it)"
            )
        head = f"{self.arm} needs ~{_count(self.n_needed)} labelled images to reach {goal}"
        spread = self._interval()
        if self.where == BEYOND:
            flag = f"EXTRAPOLATED beyond the largest measured budget ({_count(self.max_measured)}): a guess from the fitted curve"
        elif self.where == BELOW:
            flag = f"below the smallest measured budget ({_count(self.min_measured)}), so extrapolated downwards"
        else:
            flag = f"between the measured budgets {_count(self.bracket_low)} and {_count(self.bracket_high)}"
        return f"{head} ({spread}; {flag}; {curve})"

    def _interval(self) -> str:
        if self.n_seeds < 2 or math.isnan(self.low):
            return "1 seed: no interval"
        share = f"{self.confidence:.0%} interval over {self.n_seeds} seeds" + (", rough with so few" if self.n_seeds < ROUGH_SEEDS else "")
        if math.isinf(self.high):
            return f"{share}: {_count(self.low)} to never ({1 - self.reached_share:.0%} of resamples never reach it)"
        return f"{share}: {_count(self.low)}-{_count(self.high)}"


def labels_needed(
    trials: pd.DataFrame,
    target: float = 0.85,
    metric: str = "test_dice_fg",
    *,
    arm_col: str = "arm",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """How many labelled images does each arm need to reach ``target`` on ``metric``?

    One row per arm (column ``arm_col``; default the inferred arm) with the :class:`LabelsNeeded`
    fields and its ``sentence``. Arms with fewer than :data:`MIN_BUDGETS` distinct budgets are left
    out with their reason in the ``skipped`` column of an otherwise empty row (``where = "not fitted"``).
    Requires labelled-image counts (``n_labeled``) and a higher-is-better metric in [0, 1].
    """
    if metric_direction(metric) != "max":
        raise AnalysisError(f"the budget advisor fits saturating scores (Dice, Jaccard); '{metric}' is lower-is-better")
    if not 0 < target < 1:
        raise AnalysisError(f"target {target} must lie between 0 and 1 (a Dice)")
    done = with_arm(require_metric(trials, metric))
    if arm_col not in done.columns:
        raise AnalysisError(f"no '{arm_col}' column to split the trials by")
    if budget_column(done) != "n_labeled":
        raise AnalysisError("the budget advisor needs labelled-image counts (n_labeled) in the results")
    rows = []
    for arm, sub in done.groupby(arm_col, sort=True):
        try:
            res = _advise(sub, str(arm), target, metric, n_boot, seed, confidence)
        except AnalysisError as exc:
            rows.append({"arm": str(arm), "metric": metric, "target": target, "where": "not fitted", "skipped": str(exc)})
            continue
        rows.append(
            {**asdict(res), "extrapolated": res.extrapolated, "reachable": res.reachable, "sentence": res.sentence(), "skipped": ""}
        )
    return pd.DataFrame(rows)


def _advise(sub: pd.DataFrame, arm: str, target: float, metric: str, n_boot: int, seed: int, confidence: float) -> LabelsNeeded:
    n, y = sub["n_labeled"].to_numpy(float), sub[metric].to_numpy(float)
    fit = fit_learning_curve(n, y)
    n_needed = fit.labels_for(target)
    boot = _bootstrap(sub, metric, target, n_boot, seed, (fit.a, fit.b, fit.c))
    seeds = int(sub["seed"].nunique())
    tail = (1 - confidence) / 2
    if len(boot):
        low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail], method="inverted_cdf"))  # inf sorts last
        reached = float(np.isfinite(boot).mean())
    else:
        low = high = math.nan
        reached = float(math.isfinite(n_needed))
    return LabelsNeeded(
        arm=arm,
        metric=metric,
        target=target,
        a=fit.a,
        b=fit.b,
        c=fit.c,
        rms=fit.rms,
        n_needed=n_needed,
        low=low,
        high=high,
        where=_where(n_needed, float(n.min()), float(n.max())),
        min_measured=float(n.min()),
        max_measured=float(n.max()),
        bracket_low=_bracket(n, n_needed)[0],
        bracket_high=_bracket(n, n_needed)[1],
        n_seeds=seeds,
        n_boot=len(boot),
        reached_share=reached,
        confidence=confidence,
    )


def _bracket(measured: np.ndarray, n_needed: float) -> tuple[float, float]:
    """The largest measured budget <= ``n_needed`` and the smallest >= it (NaN outside the range)."""
    below, above = measured[measured <= n_needed], measured[measured >= n_needed]
    if not len(below) or not len(above):
        return math.nan, math.nan
    return float(below.max()), float(above.min())


def _where(n_needed: float, lo: float, hi: float) -> str:
    if math.isinf(n_needed):
        return NEVER
    if n_needed > hi:
        return BEYOND
    if n_needed < lo:
        return BELOW
    return INSIDE


def _bootstrap(sub: pd.DataFrame, metric: str, target: float, n_boot: int, seed: int, start: tuple[float, float, float]) -> np.ndarray:
    """Labels needed on seed resamples (a seed is a split: its trials at every budget move together).

    Resamples whose curve cannot be fitted (fewer distinct budgets drawn) are dropped; with one seed
    there is nothing to resample and the result is empty.
    """
    seeds = np.sort(sub["seed"].unique())
    if len(seeds) < 2 or n_boot <= 0:
        return np.empty(0)
    by_seed = {s: (g["n_labeled"].to_numpy(float), g[metric].to_numpy(float)) for s, g in sub.groupby("seed")}
    rng = np.random.default_rng(seed)
    out = []
    for draw in rng.integers(0, len(seeds), size=(n_boot, len(seeds))):
        n = np.concatenate([by_seed[seeds[i]][0] for i in draw])
        y = np.concatenate([by_seed[seeds[i]][1] for i in draw])
        try:
            out.append(fit_learning_curve(n, y, start).labels_for(target))
        except (AnalysisError, RuntimeError):  # RuntimeError: curve_fit did not converge
            continue
    return np.asarray(out, dtype=float)


def _count(n: float) -> str:
    if math.isinf(n):
        return "never"
    return f"{n:.0f}" if n >= 10 else f"{n:.1f}".rstrip("0").rstrip(".")
