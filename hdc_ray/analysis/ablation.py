"""Which HDC loss terms and noise levels matter: paired differences against full HDC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from hdc_ray.analysis.tables import (
    AnalysisError,
    Direction,
    metric_direction,
    normalise_ratio,
    require_metric,
    summarise,
    t_bounds,
    with_arm,
)

PAIR_KEYS = ("label_ratio", "seed", "split_hash")


def ablation_table(
    trials: pd.DataFrame,
    metric: str = "test_dice_fg",
    *,
    reference: str = "hdc",
    label_ratios: Sequence[float] | None = None,
    confidence: float = 0.95,
    direction: Direction | None = None,
) -> pd.DataFrame:
    """How much does each variant (a term removed, a noise level changed, a baseline) change the metric?

    Each variant is paired with the ``reference`` arm (full HDC) on the same seed and split
    (``seed``, ``split_hash``; repeats within a pair are averaged). One row per (variant,
    label_ratio): ``n`` and ``mean`` (the variant's own trials), ``n_pairs``, ``diff`` (mean of
    variant - reference), its Student-t CI, ``rel_diff`` (diff / reference mean over the pairs),
    a paired t-test ``p_value``, ``kind`` (reference / ablation / baseline) and ``effect`` in words.
    The reference row comes first with ``diff = 0``.
    """
    if "split_hash" not in trials.columns:
        raise AnalysisError("the trials table has no split_hash column: cannot pair trials")
    done = with_arm(require_metric(trials, metric))
    done["label_ratio"] = normalise_ratio(done["label_ratio"])
    if label_ratios is not None:
        done = done[done["label_ratio"].isin(normalise_ratio(pd.Series(label_ratios, dtype=float)))]
    if not (done["arm"] == reference).any():
        present = ", ".join(sorted(done["arm"].unique())) or "none"
        raise AnalysisError(f"no finished '{reference}' trials to compare against; present: {present}")
    sign = 1.0 if (direction or metric_direction(metric)) == "max" else -1.0
    ref_method = done.loc[done["arm"] == reference, "method"].mode().iloc[0]
    pairs = _paired(done, metric, reference)
    rows = _variant_rows(done, pairs, metric, confidence)
    rows["kind"] = np.where(
        rows["variant"] == reference,
        "reference",
        np.where(rows["method"] == ref_method, "ablation", "baseline"),
    )
    rows["effect"] = [_effect(r, sign, reference) for r in rows.to_dict("records")]
    rows["metric"] = metric
    order = rows["kind"].map({"reference": 0, "ablation": 1, "baseline": 2})
    rows = rows.assign(_o=order, _d=sign * rows["diff"]).sort_values(["_o", "label_ratio", "_d"])
    return rows.drop(columns=["_o", "_d"]).reset_index(drop=True)


def _paired(done: pd.DataFrame, metric: str, reference: str) -> pd.DataFrame:
    """One row per (arm, pair key): the arm's mean score there and the reference's."""
    keys = list(PAIR_KEYS)
    per_pair = done.groupby(["arm", *keys], dropna=False)[metric].mean().reset_index()
    ref = per_pair[per_pair["arm"] == reference].drop(columns="arm")
    return per_pair.merge(ref, on=keys, suffixes=("", "_ref"))


def _variant_rows(done: pd.DataFrame, pairs: pd.DataFrame, metric: str, confidence: float) -> pd.DataFrame:
    own = done.groupby(["arm", "label_ratio"])
    rows = own[metric].agg(["count", "mean"]).rename(columns={"count": "n"})
    rows["method"] = own["method"].agg(lambda s: s.mode().iloc[0])
    pairs = pairs.assign(diff=pairs[metric] - pairs[f"{metric}_ref"])
    by = pairs.groupby(["arm", "label_ratio"])
    diff = summarise(by["diff"], confidence)
    rows["n_pairs"] = diff["n"].reindex(rows.index).fillna(0).astype("int64")
    rows["diff"] = diff["mean"]
    rows["diff_ci_low"], rows["diff_ci_high"] = t_bounds(rows["diff"], diff["std"].reindex(rows.index), rows["n_pairs"], confidence)
    rows["rel_diff"] = rows["diff"] / by[f"{metric}_ref"].mean()
    p_values = {key: _paired_p(group, metric) for key, group in by}
    rows["p_value"] = pd.Series(p_values, dtype=float).reindex(rows.index)
    rows.index = rows.index.set_names(["variant", "label_ratio"])
    return rows.reset_index()


def _paired_p(pairs: pd.DataFrame, metric: str) -> float:
    """Two-sided paired t-test p-value (NaN under 2 pairs; 0 or 1 when all differences are equal)."""
    diff = (pairs[metric] - pairs[f"{metric}_ref"]).to_numpy(float)
    if len(diff) < 2:
        return float("nan")
    if np.allclose(diff, diff[0], rtol=0, atol=1e-12):
        return 1.0 if abs(diff[0]) <= 1e-12 else 0.0
    return float(stats.ttest_rel(pairs[metric], pairs[f"{metric}_ref"]).pvalue)


def _effect(row: dict[str, object], sign: float, reference: str) -> str:
    """Plain words: is the variant worse or better than the reference, or is it unclear?"""
    if row["variant"] == reference:
        return "reference"
    if int(row["n_pairs"]) < 2:  # type: ignore[call-overload]
        return "too few pairs"
    lo, hi = sorted((sign * float(row["diff_ci_low"]), sign * float(row["diff_ci_high"])))  # type: ignore[arg-type]
    if hi < 0:
        return f"worse than {reference}"
    if lo > 0:
        return f"better than {reference}"
    return "no clear difference"
