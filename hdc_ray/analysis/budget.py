"""What label budget buys what accuracy, and how many labels a method saves against another.

A budget is a count of labelled images (``n_labeled``) when the results carry it; older results
without counts fall back to the label ratio (share of the training pool).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from hdc_ray.analysis.tables import (
    AnalysisError,
    Direction,
    as_list,
    metric_direction,
    metric_label,
    normalise_ratio,
    require_metric,
    summarise,
    with_arm,
)

_RATIO_ATOL = 1e-4


BUDGET_COLUMNS = ("n_labeled", "label_ratio")  # the x-axis of a label budget, preferred first


def budget_column(trials: pd.DataFrame) -> str:
    """What measures a label budget here? ``n_labeled`` (labelled images) when every row has it.

    Results written before counts were recorded (or with a null ``n_labeled``) fall back to
    ``label_ratio``, the labelled share of the training pool.
    """
    if "n_labeled" in trials.columns and len(trials) and trials["n_labeled"].notna().all():
        return "n_labeled"
    return "label_ratio"


def label_budget_curve(
    trials: pd.DataFrame,
    metric: str = "test_dice_fg",
    *,
    by: str | Sequence[str] = "arm",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """What score does each method reach at each label budget, averaged over seeds?

    The budget is the number of labelled images (``n_labeled``) when the results carry it, else the
    label ratio (see :func:`budget_column`). One row per (``by``..., budget) with ``budget`` (its
    value), ``budget_unit`` (``n_labeled`` or ``label_ratio``), ``n`` (trials), ``n_seeds``,
    ``label_ratio`` and ``n_labeled`` (means), ``mean``, ``std`` and a Student-t
    ``ci_low``/``ci_high`` (NaN for one seed). ``by="arm"`` groups by what was trained (the variant,
    else the method; see ``infer_variant``), so ablated HDC runs never blend into the HDC curve.
    """
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    unit = budget_column(done)
    keys = [*as_list(by), unit]
    missing = [k for k in keys if k not in done.columns]
    if missing:
        raise AnalysisError(f"cannot group the label-budget curve by missing column(s) {missing}")
    grouped = done.groupby(keys, sort=True, dropna=False)
    out = summarise(grouped[metric], confidence)
    out["n_seeds"] = grouped["seed"].nunique()
    for other in BUDGET_COLUMNS:
        if other != unit and other in done.columns:
            out[other] = grouped[other].mean()
    out["metric"] = metric
    out = out.reset_index()
    out["budget"] = out[unit].astype(float)
    out["budget_unit"] = unit
    return out


@dataclass(frozen=True)
class LabelsSaved:
    """``method`` matches ``reference``'s mean score at ``reference_budget`` from budget ``budget``.

    Budgets are in ``unit``: labelled images (``n_labeled``) or label ratio (``label_ratio``);
    ``ratio``/``n_labeled`` give the other measure where the pool size is known (else NaN).
    ``saved = 1 - budget / reference_budget``: the share of labels ``method`` does without
    (negative when it needs more). ``budget``/``saved`` are NaN when the score is never reached;
    ``note`` says why, or gives a caveat (e.g. reached already at the smallest measured budget: an
    upper bound).
    """

    metric: str
    reference: str
    reference_budget: float
    target: float
    method: str
    budget: float
    saved: float
    unit: str
    reference_ratio: float
    ratio: float
    reference_n_labeled: float
    n_labeled: float
    note: str = ""

    @property
    def reached(self) -> bool:
        return not math.isnan(self.budget)

    def sentence(self) -> str:
        """The answer in words, e.g. ``hdc reaches supervised@50 images ... with 35 images: 30% fewer labels``."""
        what = f"{self.reference}@{fmt_budget(self.reference_budget, self.unit)} {metric_label(self.metric)}"
        if math.isnan(self.target):
            return f"{self.method} vs {what}: {self.note}"
        what += f" ({self.target:.3f})"
        if not self.reached:
            return f"{self.method} does not reach {what}: {self.note}"
        if self.unit == "n_labeled":
            amount_of = fmt_budget(self.budget, self.unit)
        else:
            images = f" (~{self.n_labeled:.0f} images)" if not math.isnan(self.n_labeled) else ""
            amount_of = f"{fmt_pct(self.budget)} labels{images}"
        more = f"{self.budget / self.reference_budget:.2g}x as many labels"
        amount = f"{self.saved:.0%} fewer labels" if self.saved >= 0 else more
        text = f"{self.method} reaches {what} with {amount_of}: {amount}"
        return f"{text} ({self.note})" if self.note else text


def labels_saved(
    curve: pd.DataFrame,
    reference: str,
    reference_budget: float,
    method: str,
    *,
    group: str | None = None,
    direction: Direction | None = None,
) -> LabelsSaved:
    """From which budget does ``method`` match ``reference``'s score at ``reference_budget``?

    ``curve`` is a :func:`label_budget_curve`; budgets are in its ``budget_unit`` (labelled images,
    or label ratio for older results). The method's mean curve is interpolated linearly in
    log(budget) between measured budgets (learning curves are close to straight in log n, and
    budgets like 4, 8, 16, all-200 are spaced that way) and the smallest crossing is returned; it is
    never extrapolated. For
    lower-is-better metrics (HD95, ASD) "reaches" means "gets as low as".
    """
    group = group or _group_column(curve)
    metric = str(curve["metric"].iloc[0]) if "metric" in curve.columns and len(curve) else "score"
    sign = 1.0 if (direction or metric_direction(metric)) == "max" else -1.0
    unit = curve_unit(curve)
    ref_curve, curve_m = _arm_curve(curve, group, reference), _arm_curve(curve, group, method)
    target, note = _score_at(ref_curve, reference_budget, unit)
    if math.isnan(target):
        budget = math.nan
    else:
        budget, note = _first_crossing(curve_m, sign * target, sign, unit)
    pool = _pool_size(curve)
    to_ratio = (lambda b: b / pool) if unit == "n_labeled" else (lambda b: b)
    to_count = (lambda b: b) if unit == "n_labeled" else (lambda b: b * pool)
    return LabelsSaved(
        metric=metric,
        reference=reference,
        reference_budget=reference_budget,
        target=target,
        method=method,
        budget=budget,
        saved=1.0 - budget / reference_budget,
        unit=unit,
        reference_ratio=to_ratio(reference_budget),
        ratio=to_ratio(budget),
        reference_n_labeled=to_count(reference_budget),
        n_labeled=to_count(budget),
        note=note,
    )


def labels_saved_table(
    curve: pd.DataFrame,
    baseline: str,
    methods: Sequence[str] | None = None,
    *,
    group: str | None = None,
) -> pd.DataFrame:
    """For every measured budget of ``baseline``: at what budget does each other method match it?"""
    group = group or _group_column(curve)
    arms = list(methods) if methods is not None else sorted(set(curve[group]) - {baseline})
    budgets = sorted(_arm_curve(curve, group, baseline)["budget"])
    rows = []
    for arm in arms:
        for b in budgets:
            res = labels_saved(curve, baseline, b, arm, group=group)
            rows.append({**asdict(res), "sentence": res.sentence()})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MatchInterval:
    """Bootstrap over seeds (= splits) of the budget at which ``method`` matches ``reference``.

    ``low``/``high``: the percentile interval of that budget (``inf`` when, in more than the tail
    share of resamples, the method never reaches the score within its measured budgets).
    ``reached``: share of resamples where it does. NaN bounds when fewer than 2 seeds.
    """

    low: float
    high: float
    reached: float
    n_seeds: int
    n_boot: int
    confidence: float


def match_interval(
    trials: pd.DataFrame,
    metric: str,
    reference: str,
    reference_budget: float,
    method: str,
    *,
    group: str = "arm",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> MatchInterval:
    """How uncertain is :func:`labels_saved`'s budget? Resample seeds with replacement, redo it.

    A resample draws seed ids (shared by both arms: a seed is a split, so the comparison stays
    paired) and recomputes both mean curves and the crossing, exactly as :func:`labels_saved`.
    """
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    unit = budget_column(done)
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    seeds = np.sort(done["seed"].dropna().unique())
    if len(seeds) < 2:
        return MatchInterval(math.nan, math.nan, math.nan, len(seeds), 0, confidence)
    ref_b, ref_m = _seed_matrix(done, group, reference, metric, unit, seeds)
    met_b, met_m = _seed_matrix(done, group, method, metric, unit, seeds)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    found = np.full(n_boot, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a budget no drawn seed measured: nanmean of nothing
        ref_means, met_means = np.nanmean(ref_m[draws], axis=1), np.nanmean(met_m[draws], axis=1)
    for i in range(n_boot):
        target = _interp_at(ref_b, ref_means[i], reference_budget, unit)
        ok = ~np.isnan(met_means[i])
        if math.isnan(target) or not ok.any():
            continue
        found[i] = crossing(met_b[ok], sign * met_means[i][ok], sign * target)
    valid = found[~np.isnan(found)]
    if not len(valid):
        return MatchInterval(math.nan, math.nan, 0.0, len(seeds), n_boot, confidence)
    tail = (1 - confidence) / 2
    low, high = np.quantile(valid, [tail, 1 - tail], method="inverted_cdf")  # inf (never reached) sorts last
    return MatchInterval(float(low), float(high), float(np.isfinite(valid).mean()), len(seeds), n_boot, confidence)


def _seed_matrix(done: pd.DataFrame, group: str, arm: str, metric: str, unit: str, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Budgets of one arm and its (seed, budget) mean scores, NaN where a seed lacks a budget."""
    rows = done[done[group] == arm]
    if rows.empty:
        raise AnalysisError(f"'{arm}' has no finished trials with {metric}")
    table = rows.pivot_table(index="seed", columns=unit, values=metric, aggfunc="mean").reindex(seeds)
    return table.columns.to_numpy(float), table.to_numpy(float)


def fmt_pct(ratio: float) -> str:
    """0.35 -> '35%', 0.125 -> '12.5%'."""
    return f"{ratio * 100:.3g}%"


def fmt_budget(budget: float, unit: str) -> str:
    """A budget in words: ``24 images`` (``~24 images`` when interpolated) or ``35%``."""
    if unit != "n_labeled":
        return fmt_pct(budget)
    if math.isinf(budget):
        return "never"
    whole = abs(budget - round(budget)) < 1e-6
    return f"{'' if whole else '~'}{budget:.0f} images"


def curve_unit(curve: pd.DataFrame) -> str:
    """The budget unit of a :func:`label_budget_curve` table (``label_ratio`` for hand-made tables)."""
    if "budget_unit" in curve.columns and len(curve):
        return str(curve["budget_unit"].iloc[0])
    return "label_ratio"


def _group_column(curve: pd.DataFrame) -> str:
    for col in ("arm", "method", "variant"):
        if col in curve.columns:
            return col
    raise AnalysisError("the curve has no 'arm' or 'method' column; pass group=")


def _arm_curve(curve: pd.DataFrame, group: str, arm: str) -> pd.DataFrame:
    if "budget" not in curve.columns:
        curve = curve.assign(budget=curve["label_ratio"])
    rows = curve[curve[group] == arm].dropna(subset=["mean"]).sort_values("budget")
    if rows.empty:
        present = ", ".join(sorted(map(str, curve[group].unique())))
        raise AnalysisError(f"'{arm}' has no finished trials in the curve; present: {present}")
    return rows


def _score_at(rows: pd.DataFrame, budget: float, unit: str) -> tuple[float, str]:
    """Mean score of a curve at ``budget``: measured, or interpolated inside the measured range."""
    b, m = rows["budget"].to_numpy(float), rows["mean"].to_numpy(float)
    value = _interp_at(b, m, budget, unit)
    if not math.isnan(value):
        return value, ""
    measured = ", ".join(fmt_budget(x, unit) for x in b)
    return math.nan, f"reference budget {fmt_budget(budget, unit)} not measured (measured: {measured})"


def _interp_at(b: np.ndarray, m: np.ndarray, budget: float, unit: str) -> float:
    ok = ~np.isnan(m)
    b, m = b[ok], m[ok]
    if not len(b):
        return math.nan
    hit = np.isclose(b, budget, rtol=1e-9, atol=_RATIO_ATOL)
    if hit.any():
        return float(m[hit][0])
    if b.min() < budget < b.max():
        return float(np.interp(_log(budget), _log(b), m))
    return math.nan


def _log(b: np.ndarray | float) -> np.ndarray:
    """The interpolation axis: log of the budget (budgets are counts >= 1 or ratios > 0)."""
    return np.log(np.maximum(np.asarray(b, dtype=float), 1e-12))


def crossing(b: np.ndarray, m: np.ndarray, target: float) -> float:
    """Smallest budget where ``m`` (larger is better) reaches ``target``, linear in log(budget); inf if never."""
    if m[0] >= target:
        return float(b[0])
    x = _log(b)
    for i in range(1, len(b)):
        if m[i] >= target:
            return float(np.exp(x[i - 1] + (target - m[i - 1]) * (x[i] - x[i - 1]) / (m[i] - m[i - 1])))
    return math.inf


def _first_crossing(rows: pd.DataFrame, target: float, sign: float, unit: str) -> tuple[float, str]:
    """Smallest budget where ``sign * mean`` reaches ``target`` (linear in log budget between measured points)."""
    b, m = rows["budget"].to_numpy(float), sign * rows["mean"].to_numpy(float)
    found = crossing(b, m, target)
    if found == b[0]:
        return found, "already at its smallest measured budget, so it may need fewer"
    if math.isinf(found):
        best = int(np.argmax(m))
        return math.nan, f"never reached up to {fmt_budget(b[-1], unit)} (best {sign * m[best]:.3f} at {fmt_budget(b[best], unit)})"
    return found, ""


def _pool_size(curve: pd.DataFrame) -> float:
    """Training-pool size (labelled images per unit ratio), to turn ratios into image counts."""
    if "n_labeled" not in curve.columns:
        return math.nan
    ok = curve["label_ratio"] > 0
    pools = curve.loc[ok, "n_labeled"] / curve.loc[ok, "label_ratio"]
    return float(pools.median()) if pools.notna().any() else math.nan
