"""Budget advisor: how many labelled images does each method need to reach a target Dice?

Per arm, a saturating learning curve is fitted to every finished trial (score vs labelled images),
the inverse power law ``score(n) = a - b * n**(-c)`` (``a``: the asymptote, at most 1; ``b``: how far
below it a single image leaves you; ``c``: how fast the gap closes), and inverted at the target:
``n = (b / (a - target)) ** (1 / c)``. A bootstrap over seeds (= splits) gives the interval.

The answer is only measured inside the budgets that were run: beyond the largest it is an
**extrapolation** of the fitted curve, and when the fitted asymptote ``a`` is at or below the target
the target is **never reached** by that method on this data (more labels alone will not do it).

What it refuses to know (one-shot power-law extrapolation from small budgets misestimates data needs by large
factors: Mahmood et al., CVPR 2022; Jain et al., CVPR 2023; and `bench/advisor_calibration.py` here):

- no answer past :data:`MAX_EXTRAPOLATION` times the largest measured budget (``where = "too far"``);
- no extrapolation from a fit that sits at a bound of its parameters (``where = "unidentified"``): the data do not
  pin the curve down (an asymptote at 1 means no saturation was seen);
- where a ceiling is known (supervised with every label, at the same compute), no arm's asymptote may exceed it by
  more than the arm's own measured scores do (``ceiling``): labels cannot buy more than all labels bought;
- an extrapolated interval is a bootstrap over splits of the fitted curve; how often such intervals cover the
  measured truth is **not established** (:data:`CALIBRATION`: 5 of 5 covered, on 3 splits: 95% 48-100%), and the
  sentence says so.
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
MIN_INTERVAL_SEEDS = 3  # a bootstrap over 2 seeds has 3 distinct resamples: no interval
C_BOUNDS = (0.05, 3.0)  # decay exponents seen on learning curves lie well inside (0.1-1 is typical)
MAX_EXTRAPOLATION = 2.0  # never answer past 2x the largest measured budget
# Between two measured budgets more than 4x apart (16 and all 400, say) the curve is not measured either: an answer
# there extrapolates from the lower one, under the same limits (the calibration found supervised's "interpolated"
# answers between 16 and 400 1.5-2.1x too high: docs/benchmarks.md, "Calibrating the budget advisor").
MAX_GAP = 4.0
# A factor to widen extrapolated intervals by (both sides), for bench/advisor_calibration.py to try others; 1: none. The
# calibration gave no reason to widen, nor enough answers to measure coverage (CALIBRATION).
EXTRAPOLATION_ERROR = 1.0


@dataclass(frozen=True)
class Calibration:
    """What ``bench/advisor_calibration.py`` measured of extrapolated intervals (docs/benchmarks.md, "Calibrating the budget
    advisor", 2026-12-04: both tasks, fit on 4/8/16 labels, truth at 32/64, 3 splits, one collapsed run dropped)."""

    answered: int = 5
    covered: int = 5
    splits: int = 3

    def coverage_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the coverage."""
        from scipy import stats

        tail = (1 - confidence) / 2
        low = 0.0 if self.covered == 0 else float(stats.beta.ppf(tail, self.covered, self.answered - self.covered + 1))
        high = 1.0 if self.covered == self.answered else float(stats.beta.ppf(1 - tail, self.covered + 1, self.answered - self.covered))
        return low, high

    def words(self) -> str:
        low, high = self.coverage_interval()
        return (f"how often such intervals cover the truth is not established (the calibration covered {self.covered} of "
                f"{self.answered}, on {self.splits} splits: 95% {low:.0%}-{high:.0%})")


CALIBRATION = Calibration()

INSIDE = "interpolated"  # inside the measured budgets
BEYOND = "extrapolated"  # beyond the largest measured budget
BELOW = "below the smallest measured budget"  # also outside what was measured
NEVER = "never reached"  # the fitted asymptote is at or below the target
UNIDENTIFIED = "unidentified"  # outside the measured budgets, from a fit that sits at a parameter bound
TOO_FAR = "too far"  # more than MAX_EXTRAPOLATION x the largest measured budget
REFUSED = (UNIDENTIFIED, TOO_FAR)


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
    a_max: float = 1.0  # the asymptote's upper bound in the fit (1, or a known ceiling)

    @property
    def at_bound(self) -> bool:
        """The asymptote at 1 or the exponent at a limit of C_BOUNDS: the data did not pin the curve down.
        (An asymptote held at a known ceiling below 1 is a stated assumption, not a failure: see ``capped``.)"""
        return (self.a_max >= 1.0 and self.a > 0.999) or not C_BOUNDS[0] * 1.001 < self.c < C_BOUNDS[1] * 0.999

    @property
    def capped(self) -> bool:
        return self.a_max < 1.0 and self.a > self.a_max - 1e-3

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


def fit_learning_curve(n: np.ndarray, score: np.ndarray, p0: tuple[float, float, float] | None = None, *, a_max: float = 1.0) -> CurveFit:
    """Least-squares fit of ``score = a - b * n**(-c)`` with ``0 <= a <= a_max``, ``b >= 0``, ``c`` in C_BOUNDS.

    Starts from ``p0`` (the bootstrap passes the full fit) or from ``a`` just above the best score,
    ``c = 0.5`` and ``b`` through the smallest budget.
    Raises :class:`AnalysisError` with fewer than :data:`MIN_BUDGETS` distinct budgets.
    """
    n, score = np.asarray(n, dtype=float), np.asarray(score, dtype=float)
    ok = np.isfinite(n) & np.isfinite(score) & (n > 0)
    n, score = n[ok], score[ok]
    if len(np.unique(n)) < MIN_BUDGETS:
        raise AnalysisError(f"a learning curve needs at least {MIN_BUDGETS} distinct budgets, got {len(np.unique(n))}")
    lower, upper = (0.0, 0.0, C_BOUNDS[0]), (a_max, np.inf, C_BOUNDS[1])
    if p0 is None:
        a0, c0 = min(a_max, float(score.max()) + 0.05), 0.5
        p0 = (a0, max(1e-3, (a0 - float(score[n == n.min()].mean())) * float(n.min()) ** c0), c0)
    p0 = tuple(float(np.clip(v, lo, hi)) for v, lo, hi in zip(p0, lower, upper, strict=True))  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # covariance not estimable on exact fits: unused
        params, _ = curve_fit(power_law, n, score, p0=p0, bounds=(lower, upper), maxfev=20_000)
    a, b, c = (float(p) for p in params)
    rms = float(np.sqrt(np.mean((power_law(n, a, b, c) - score) ** 2)))
    return CurveFit(a, b, c, rms, a_max)


@dataclass(frozen=True)
class LabelsNeeded:
    """The advisor's answer for one arm: labelled images to reach ``target`` on ``metric``.

    ``n_needed``: from the curve fitted to all seeds (``inf`` when never reached). ``low``/``high``:
    percentile interval over seed resamples (``high = inf`` when enough resamples never reach it), widened by
    ``error_factor`` outside the measured budgets; NaN under :data:`MIN_INTERVAL_SEEDS` seeds.
    ``where``: ``interpolated``, ``extrapolated`` (beyond ``max_measured``, within ``MAX_EXTRAPOLATION`` x it),
    ``below the smallest measured budget``, ``never reached`` (the fitted asymptote ``a`` <= target),
    ``unidentified`` (outside the measured budgets, from a fit at a parameter bound) or ``too far`` (beyond
    ``MAX_EXTRAPOLATION`` x the largest budget). The last two are refusals: ``n_needed`` is what the curve said,
    not an answer. ``reached_share``: share of resamples whose curve reaches the target at all.
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
    at_bound: bool = False
    reach_from: float = math.nan  # the measured budget an extrapolated answer reaches out from
    ceiling: float = math.nan  # the asymptote's cap (a known all-labels ceiling), NaN when none
    error_factor: float = 1.0

    @property
    def extrapolated(self) -> bool:
        return self.where in (BEYOND, BELOW, *REFUSED)

    @property
    def reachable(self) -> bool:
        return self.where != NEVER

    @property
    def refused(self) -> bool:
        return self.where in REFUSED

    def sentence(self) -> str:
        """E.g. ``hdc needs ~23 labelled images to reach test Dice 0.85 (95% interval 18-31; measured)``."""
        goal = f"{metric_label(self.metric)} {self.target:.3g}"
        if self.where == NEVER:
            return f"{self.arm} does not reach {goal}: {self._never()}"
        if self.where == UNIDENTIFIED:
            return (f"{self.arm}: labels needed for {goal} not identified: the target lies beyond the measured budgets "
                    f"({_count(self.min_measured)}-{_count(self.max_measured)}) and the fitted curve sits at a bound of its "
                    f"parameters ({self._curve()}), so the data do not pin down where it goes; measure larger budgets")
        if self.where == TOO_FAR:
            return (f"{self.arm}: labels needed for {goal} not answered: the fitted curve puts it at ~{_count(self.n_needed)}, "
                    f"more than {MAX_EXTRAPOLATION:g}x the measured budget it reaches out from ({self._from()}), where "
                    "power-law extrapolation is not to be trusted; measure larger budgets")
        head = f"{self.arm} needs ~{_count(self.n_needed)} labelled images to reach {goal}"
        if self.where == BEYOND:
            widened = f", widened x{self.error_factor:.2g}" if self.error_factor != 1.0 else ""
            flag = f"EXTRAPOLATED beyond the measured budget {self._from()}{widened}; {CALIBRATION.words()}"
        elif self.where == BELOW:
            flag = f"below the smallest measured budget ({_count(self.min_measured)}), so extrapolated downwards"
        else:
            flag = f"between the measured budgets {_count(self.bracket_low)} and {_count(self.bracket_high)}"
        return f"{head} ({self._interval()}; {flag}; {self._curve()})"

    def _from(self) -> str:
        start = self.reach_from if not math.isnan(self.reach_from) else self.max_measured
        if start >= self.max_measured:
            return f"{_count(start)}, the largest"
        return f"{_count(start)}; the next one measured, {_count(self.bracket_high)}, is more than {MAX_GAP:g}x further"

    def _curve(self) -> str:
        text = f"fitted asymptote {self.a:.3f}"
        if self.a > 0.999:
            return text + ", at its bound 1: no saturation seen yet"
        if not math.isnan(self.ceiling) and self.a > self.ceiling - 1e-3:
            return text + ", held at the all-labels ceiling"
        return text + (", exponent at its bound" if self.at_bound else "")

    def _never(self) -> str:
        if not math.isnan(self.ceiling) and self.a > self.ceiling - 1e-3:
            return (f"at this compute even all labels reach only {self.ceiling:.3f} (the fitted curve is held there), so more "
                    "labels alone will not get there: train longer or change the method")
        return (f"its fitted curve levels off at {self.a:.3f} (more labels alone will not get there; "
                f"{self.reached_share:.0%} of seed resamples reach it)")

    def _interval(self) -> str:
        if self.n_seeds < MIN_INTERVAL_SEEDS or math.isnan(self.low):
            return f"{self.n_seeds} seed(s): no interval (it needs {MIN_INTERVAL_SEEDS} splits)"
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
    ceiling: float | None = None,
    max_extrapolation: float = MAX_EXTRAPOLATION,
    error_factor: float = EXTRAPOLATION_ERROR,
    refuse_unidentified: bool = True,
) -> pd.DataFrame:
    """How many labelled images does each arm need to reach ``target`` on ``metric``?

    One row per arm (column ``arm_col``; default the inferred arm) with the :class:`LabelsNeeded`
    fields and its ``sentence``. Arms with fewer than :data:`MIN_BUDGETS` distinct budgets are left
    out with their reason in the ``skipped`` column of an otherwise empty row (``where = "not fitted"``).
    ``ceiling``: the score every label bought at this compute (e.g. the upper end of supervised-at-all-labels'
    interval); no arm's asymptote may exceed it, nor the arm's own best measured mean where that is higher.
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
    limits = _Limits(ceiling, max_extrapolation, error_factor, refuse_unidentified)
    rows = []
    for arm, sub in done.groupby(arm_col, sort=True):
        try:
            res = _advise(sub, str(arm), target, metric, n_boot, seed, confidence, limits)
        except AnalysisError as exc:
            rows.append({"arm": str(arm), "metric": metric, "target": target, "where": "not fitted", "skipped": str(exc)})
            continue
        rows.append({**asdict(res), "extrapolated": res.extrapolated, "reachable": res.reachable, "refused": res.refused,
                     "sentence": res.sentence(), "skipped": ""})  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Limits:
    ceiling: float | None
    max_extrapolation: float
    error_factor: float
    refuse_unidentified: bool = True

    def a_max(self, sub: pd.DataFrame, metric: str) -> float:
        """The asymptote's cap for one arm: the ceiling, or the arm's best per-budget mean where that is higher."""
        if self.ceiling is None or math.isnan(self.ceiling):
            return 1.0
        best = float(sub.groupby("n_labeled")[metric].mean().max())
        return float(min(1.0, max(self.ceiling, best)))


def _advise(sub: pd.DataFrame, arm: str, target: float, metric: str, n_boot: int, seed: int, confidence: float, limits: _Limits) -> LabelsNeeded:
    n, y = sub["n_labeled"].to_numpy(float), sub[metric].to_numpy(float)
    a_max = limits.a_max(sub, metric)
    fit = fit_learning_curve(n, y, a_max=a_max)
    n_needed = fit.labels_for(target)
    seeds = int(sub["seed"].nunique())
    boot = _bootstrap(sub, metric, target, n_boot if seeds >= MIN_INTERVAL_SEEDS else 0, seed, (fit.a, fit.b, fit.c), a_max)
    tail = (1 - confidence) / 2
    where, reach_from = _where(n_needed, np.unique(n), fit, limits)
    widen = limits.error_factor if where == BEYOND else 1.0
    if len(boot):
        low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail], method="inverted_cdf"))  # inf sorts last
        low, high = low / widen, high * widen
        reached = float(np.isfinite(boot).mean())
    else:
        low = high = math.nan
        reached = float(math.isfinite(n_needed))
    return LabelsNeeded(
        arm=arm, metric=metric, target=target, a=fit.a, b=fit.b, c=fit.c, rms=fit.rms, n_needed=n_needed, low=low, high=high,
        where=where, min_measured=float(n.min()), max_measured=float(n.max()),
        bracket_low=_bracket(n, n_needed)[0], bracket_high=_bracket(n, n_needed)[1],
        n_seeds=seeds, n_boot=len(boot), reached_share=reached, confidence=confidence,
        at_bound=fit.at_bound, reach_from=reach_from, ceiling=a_max if a_max < 1.0 else math.nan, error_factor=widen,
    )  # fmt: skip


def _bracket(measured: np.ndarray, n_needed: float) -> tuple[float, float]:
    """The largest measured budget <= ``n_needed`` and the smallest >= it (NaN outside the range)."""
    below, above = measured[measured <= n_needed], measured[measured >= n_needed]
    if not len(below) or not len(above):
        return math.nan, math.nan
    return float(below.max()), float(above.min())


def _where(n_needed: float, measured: np.ndarray, fit: CurveFit, limits: _Limits) -> tuple[str, float]:
    """Where the answer lies, and the measured budget it reaches out from (NaN when it is measured)."""
    lo, hi = float(measured.min()), float(measured.max())
    if math.isinf(n_needed):
        return NEVER, math.nan
    if n_needed < lo:
        return BELOW, lo
    below, above = _bracket(measured, n_needed)
    start = hi if n_needed > hi else below
    if n_needed <= hi and above <= MAX_GAP * below:
        return INSIDE, math.nan
    if fit.at_bound and limits.refuse_unidentified:
        return UNIDENTIFIED, start
    if n_needed > limits.max_extrapolation * start:
        return TOO_FAR, start
    return BEYOND, start


def _bootstrap(sub: pd.DataFrame, metric: str, target: float, n_boot: int, seed: int, start: tuple[float, float, float], a_max: float = 1.0) -> np.ndarray:
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
            out.append(fit_learning_curve(n, y, start, a_max=a_max).labels_for(target))
        except (AnalysisError, RuntimeError):  # RuntimeError: curve_fit did not converge
            continue
    return np.asarray(out, dtype=float)


def _count(n: float) -> str:
    if math.isinf(n):
        return "never"
    return f"{n:.0f}" if n >= 10 else f"{n:.1f}".rstrip("0").rstrip(".")
