"""What label budget buys what accuracy: the mean curve per arm, and the budget's units and words.

A budget is a count of labelled images (``n_labeled``) when the results carry it; older results
without counts fall back to the label ratio (share of the training pool). How many labels a method
saves is answered split by split, under the study's error control: ``analysis.evidence.saved``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from hdc_ray.analysis.tables import (
    AnalysisError,
    as_list,
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
