"""Shared helpers on the trials table: which rows count, what a metric means, which arm a trial is.

Every analysis answers its question on *finished* trials only (status ``completed`` or
``early_stopped``); ``failed`` and ``running`` rows are counted in the report, never averaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from pandas.api.typing import SeriesGroupBy
from scipy import stats

from hdc_ray.errors import UserError
from hdc_ray.results.columns import FINISHED_STATUSES, METRIC_RE, Direction
from hdc_ray.results.columns import metric_direction as _direction

LOSS_WEIGHTS: tuple[str, ...] = ("w_pc", "w_cg", "w_mi")  # HDC terms, as cfg.loss.<name>
RATIO_DECIMALS = 4  # label ratios equal to 1e-4 are one budget (the ratio is "actual, after rounding")

_METRIC_NAMES = {"dice": "Dice", "jaccard": "Jaccard", "hd95": "HD95", "asd": "ASD"}


class AnalysisError(UserError, ValueError):
    """Input the analysis cannot answer from (missing files, no finished trials, missing metric).

    The message is written for the user of ``hdc-ray report``: it says what is wrong and what to do.
    """


def finished_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Which trials count for analyses? Rows with status ``completed`` or ``early_stopped``."""
    if "status" not in trials.columns:
        raise AnalysisError("the trials table has no 'status' column")
    return trials[trials["status"].isin(FINISHED_STATUSES)].copy()


# A class under this validation Dice is lost, not learnt badly: on the PSFH-like task at 320 steps healthy runs score the
# symphysis well above it and the collapsed ones near 0 (bench/class_collapse.py prints the trajectory).
LOST_DICE = 0.25


def lost_classes(done: pd.DataFrame) -> pd.Series:
    """Per trial (same index): the classes it lost on validation, as ``"name 0.12"`` joined by ``, `` ('' if none).

    Validation, not test: the flag must not select on what is reported.
    """
    columns = [c for c in done.columns if c.startswith("val_dice_") and c != "val_dice_fg" and pd.api.types.is_numeric_dtype(done[c])]

    def lost(row: pd.Series) -> str:
        return ", ".join(f"{c.removeprefix('val_dice_')} {row[c]:.2f}" for c in columns if pd.notna(row[c]) and row[c] < LOST_DICE)

    return done[columns].apply(lost, axis=1) if columns and len(done) else pd.Series("", index=done.index, dtype=object)


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Which metric columns (``<split>_<metric>_<class>``) does this table carry?"""
    return [c for c in df.columns if METRIC_RE.match(str(c))]


def require_metric(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished trials that have a value for ``metric``; raise a clear error when there are none."""
    if metric not in trials.columns:
        available = ", ".join(metric_columns(trials)) or "none"
        raise AnalysisError(f"metric '{metric}' is not in the results; available metrics: {available}")
    done = finished_trials(trials)
    if done.empty:
        raise AnalysisError(f"no finished trials yet ({_status_line(trials)}): nothing to analyse")
    done = done[done[metric].notna()]
    if done.empty:
        raise AnalysisError(f"no finished trial has a value for '{metric}'")
    return done


def _status_line(trials: pd.DataFrame) -> str:
    counts = trials["status"].value_counts()
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "0 trials"


def metric_direction(metric: str) -> Direction:
    """Is a higher or a lower value of this column better?"""
    direction = _direction(metric)
    if direction is not None:
        return direction
    raise AnalysisError(f"cannot tell whether a higher or lower '{metric}' is better; pass the direction explicitly")


def metric_family(metric: str) -> str | None:
    """``dice``, ``jaccard``, ``hd95`` or ``asd`` for a metric column, else None."""
    m = METRIC_RE.match(metric)
    return m.group(2) if m else None


def metric_label(metric: str, unit: str | None = None) -> str:
    """Readable axis label: ``test_dice_fg`` -> ``test Dice (foreground mean)``."""
    m = METRIC_RE.match(metric)
    if not m:
        return {"train_time_s": "training time [s]", "label_ratio": "label ratio", "n_labeled": "labelled images"}.get(metric, metric.replace("_", " "))
    split, name, cls = m.groups()
    cls_text = "foreground mean" if cls == "fg" else cls.replace("_", " ")
    text = f"{split} {_METRIC_NAMES[name]} ({cls_text})"
    if name in ("hd95", "asd") and unit:
        text += f" [{unit}]"
    return text


def distance_unit(trials: pd.DataFrame) -> str | None:
    """The distance unit of HD95/ASD columns (``mm``/``px``), or ``mm/px`` when sweeps mix them."""
    if "distance_unit" not in trials.columns:
        return None
    units = sorted(trials["distance_unit"].dropna().unique())
    return "/".join(units) if units else None


def normalise_ratio(ratio: pd.Series) -> pd.Series:
    """Label ratios rounded so that one budget is one group."""
    return ratio.astype(float).round(RATIO_DECIMALS)


def infer_variant(trials: pd.DataFrame) -> pd.Series:
    """What was trained? The spec's ``variant``; else the method, with zero HDC loss terms named.

    ``hdc`` with ``cfg.loss.w_cg == 0`` becomes ``hdc-no_cg``; all terms on is plain ``hdc``.
    Missing weight columns count as "on".
    """
    method = trials["method"].astype(object)
    arm = method.copy()
    is_hdc = method == "hdc"
    for w in LOSS_WEIGHTS:
        col = f"cfg.loss.{w}"
        if col in trials.columns:
            off = is_hdc & (pd.to_numeric(trials[col], errors="coerce") == 0)
            arm = arm.where(~off, arm + "-no_" + w.removeprefix("w_"))
    if "variant" in trials.columns:
        variant = trials["variant"].astype(object)
        arm = variant.where(variant.notna(), arm)
    return arm.astype(str).rename("arm")


def with_arm(trials: pd.DataFrame) -> pd.DataFrame:
    """The table with an ``arm`` column (see :func:`infer_variant`), unless it already has one."""
    if "arm" in trials.columns:
        return trials
    out = trials.copy()
    out["arm"] = infer_variant(out)
    return out


def as_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def t_bounds(mean: pd.Series, std: pd.Series, n: pd.Series, confidence: float = 0.95) -> tuple[pd.Series, pd.Series]:
    """Student-t confidence interval of a mean from (mean, sample std, n); NaN where n < 2."""
    n_arr = n.to_numpy(dtype=float)
    dof = np.where(n_arr >= 2, n_arr - 1, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, dof) * std.to_numpy(dtype=float) / np.sqrt(n_arr)
    half = pd.Series(half, index=mean.index)
    return mean - half, mean + half


def summarise(values: SeriesGroupBy, confidence: float) -> pd.DataFrame:
    """Mean, std, n and Student-t CI per group of a grouped column."""
    out = values.agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["ci_low"], out["ci_high"] = t_bounds(out["mean"], out["std"], out["n"], confidence)
    return out


def varying_config(trials: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Which ``cfg.*`` columns take more than one value across these trials (seeds excluded)?"""
    skip = set(exclude)
    cols = []
    for c in trials.columns:
        if not str(c).startswith("cfg.") or c in skip or "seed" in str(c):
            continue
        if trials[c].astype(object).map(_hashable).nunique(dropna=False) > 1:
            cols.append(c)
    return cols


def _hashable(value: object) -> object:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (list, np.ndarray)):
        return tuple(np.asarray(value).tolist())
    return value
