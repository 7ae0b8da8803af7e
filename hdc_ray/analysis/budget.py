"""What label budget buys what accuracy, and how many labels a method saves against another."""

from __future__ import annotations

import math
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


def label_budget_curve(
    trials: pd.DataFrame,
    metric: str = "test_dice_fg",
    *,
    by: str | Sequence[str] = "arm",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """What score does each method reach at each label ratio, averaged over seeds?

    One row per (``by``..., ``label_ratio``) with ``n`` (trials), ``n_seeds``, ``n_labeled`` (mean
    labelled images), ``mean``, ``std`` and a Student-t ``ci_low``/``ci_high`` (NaN for one seed).
    ``by="arm"`` groups by what was trained (the variant, else the method; see ``infer_variant``),
    so ablated HDC runs never blend into the HDC curve.
    """
    keys = [*as_list(by), "label_ratio"]
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    missing = [k for k in keys if k not in done.columns]
    if missing:
        raise AnalysisError(f"cannot group the label-budget curve by missing column(s) {missing}")
    grouped = done.groupby(keys, sort=True, dropna=False)
    out = summarise(grouped[metric], confidence)
    out["n_seeds"] = grouped["seed"].nunique()
    if "n_labeled" in done.columns:
        out["n_labeled"] = grouped["n_labeled"].mean()
    out["metric"] = metric
    return out.reset_index()


@dataclass(frozen=True)
class LabelsSaved:
    """``method`` matches ``reference``'s mean score at ``reference_ratio`` from label ratio ``ratio``.

    ``saved = 1 - ratio / reference_ratio``: the share of labels ``method`` does without (negative
    when it needs more). ``ratio``/``saved`` are NaN when the score is never reached; ``note`` says
    why, or gives a caveat (e.g. reached already at the smallest measured budget: an upper bound).
    """

    metric: str
    reference: str
    reference_ratio: float
    target: float
    method: str
    ratio: float
    saved: float
    reference_n_labeled: float
    n_labeled: float
    note: str = ""

    @property
    def reached(self) -> bool:
        return not math.isnan(self.ratio)

    def sentence(self) -> str:
        """The answer in words, e.g. ``hdc reaches supervised@50% ... with 35% labels: 30% fewer``."""
        what = f"{self.reference}@{fmt_pct(self.reference_ratio)} {metric_label(self.metric)}"
        if math.isnan(self.target):
            return f"{self.method} vs {what}: {self.note}"
        what += f" ({self.target:.3f})"
        if not self.reached:
            return f"{self.method} does not reach {what}: {self.note}"
        images = f" (~{self.n_labeled:.0f} images)" if not math.isnan(self.n_labeled) else ""
        more = f"{self.ratio / self.reference_ratio:.2g}x as many labels"
        amount = f"{self.saved:.0%} fewer labels" if self.saved >= 0 else more
        text = f"{self.method} reaches {what} with {fmt_pct(self.ratio)} labels{images}: {amount}"
        return f"{text} ({self.note})" if self.note else text


def labels_saved(
    curve: pd.DataFrame,
    reference: str,
    reference_ratio: float,
    method: str,
    *,
    group: str | None = None,
    direction: Direction | None = None,
) -> LabelsSaved:
    """From which label ratio does ``method`` match ``reference``'s score at ``reference_ratio``?

    ``curve`` is a :func:`label_budget_curve`. The method's mean curve is linearly interpolated
    between measured ratios and the smallest crossing is returned; it is never extrapolated. For
    lower-is-better metrics (HD95, ASD) "reaches" means "gets as low as".
    """
    group = group or _group_column(curve)
    metric = str(curve["metric"].iloc[0]) if "metric" in curve.columns and len(curve) else "score"
    sign = 1.0 if (direction or metric_direction(metric)) == "max" else -1.0
    ref_curve, curve_m = _arm_curve(curve, group, reference), _arm_curve(curve, group, method)
    target, note = _score_at(ref_curve, reference_ratio)
    pool = _pool_size(curve)
    if math.isnan(target):
        ratio = math.nan
    else:
        ratio, note = _first_crossing(curve_m, sign * target, sign)
    return LabelsSaved(
        metric=metric,
        reference=reference,
        reference_ratio=reference_ratio,
        target=target,
        method=method,
        ratio=ratio,
        saved=1.0 - ratio / reference_ratio,
        reference_n_labeled=reference_ratio * pool,
        n_labeled=ratio * pool,
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
    ratios = sorted(_arm_curve(curve, group, baseline)["label_ratio"])
    rows = []
    for arm in arms:
        for r in ratios:
            res = labels_saved(curve, baseline, r, arm, group=group)
            rows.append({**asdict(res), "sentence": res.sentence()})
    return pd.DataFrame(rows)


def fmt_pct(ratio: float) -> str:
    """0.35 -> '35%', 0.125 -> '12.5%'."""
    return f"{ratio * 100:.3g}%"


def _group_column(curve: pd.DataFrame) -> str:
    for col in ("arm", "method", "variant"):
        if col in curve.columns:
            return col
    raise AnalysisError("the curve has no 'arm' or 'method' column; pass group=")


def _arm_curve(curve: pd.DataFrame, group: str, arm: str) -> pd.DataFrame:
    rows = curve[curve[group] == arm].dropna(subset=["mean"]).sort_values("label_ratio")
    if rows.empty:
        present = ", ".join(sorted(map(str, curve[group].unique())))
        raise AnalysisError(f"'{arm}' has no finished trials in the curve; present: {present}")
    return rows


def _score_at(rows: pd.DataFrame, ratio: float) -> tuple[float, str]:
    """Mean score of a curve at ``ratio``: measured, or interpolated inside the measured range."""
    r, m = rows["label_ratio"].to_numpy(float), rows["mean"].to_numpy(float)
    hit = np.isclose(r, ratio, atol=_RATIO_ATOL)
    if hit.any():
        return float(m[hit][0]), ""
    if r.min() < ratio < r.max():
        return float(np.interp(ratio, r, m)), ""
    measured = ", ".join(fmt_pct(x) for x in r)
    return math.nan, f"reference budget {fmt_pct(ratio)} not measured (measured: {measured})"


def _first_crossing(rows: pd.DataFrame, target: float, sign: float) -> tuple[float, str]:
    """Smallest ratio where ``sign * mean`` reaches ``target`` (linear between measured points)."""
    r, m = rows["label_ratio"].to_numpy(float), sign * rows["mean"].to_numpy(float)
    if m[0] >= target:
        return float(r[0]), "already at its smallest measured budget, so it may need fewer"
    for i in range(1, len(r)):
        if m[i] >= target:
            return float(r[i - 1] + (target - m[i - 1]) * (r[i] - r[i - 1]) / (m[i] - m[i - 1])), ""
    best = int(np.argmax(m))
    return math.nan, (f"never reached up to {fmt_pct(r[-1])} (best {sign * m[best]:.3f} at {fmt_pct(r[best])})")


def _pool_size(curve: pd.DataFrame) -> float:
    """Training-pool size (labelled images per unit ratio), to turn ratios into image counts."""
    if "n_labeled" not in curve.columns:
        return math.nan
    ok = curve["label_ratio"] > 0
    pools = curve.loc[ok, "n_labeled"] / curve.loc[ok, "label_ratio"]
    return float(pools.median()) if pools.notna().any() else math.nan
