"""Label-budget curve (mean, CI over seeds) and labels saved, on hand-built tables with known answers."""

from __future__ import annotations

import math

import pytest

from hdc_ray.analysis import AnalysisError, label_budget_curve

T_975_DF2 = 4.302652729911275  # Student-t 97.5% quantile, 2 degrees of freedom


def _curve_rows(method: str, points: dict[float, float]) -> list[dict]:
    return [{"method": method, "label_ratio": r, "seed": 0, "test_dice_fg": v} for r, v in points.items()]


def test_mean_and_t_interval_over_seeds(trials_of) -> None:
    rows = [{"label_ratio": 0.1, "seed": s, "test_dice_fg": v} for s, v in enumerate([0.7, 0.8, 0.9])]
    curve = label_budget_curve(trials_of(rows))
    (row,) = curve.to_dict("records")
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert row["arm"] == "hdc" and row["n"] == 3 and row["n_seeds"] == 3 and row["n_labeled"] == 10
    assert row["mean"] == pytest.approx(0.8) and row["std"] == pytest.approx(0.1)
    assert row["ci_low"] == pytest.approx(0.8 - half) and row["ci_high"] == pytest.approx(0.8 + half)


def test_one_seed_has_no_interval(trials_of) -> None:
    curve = label_budget_curve(trials_of([{"test_dice_fg": 0.8}]))
    assert math.isnan(curve["ci_low"].iloc[0]) and math.isnan(curve["ci_high"].iloc[0])


def test_only_finished_trials_with_the_metric_count(trials_of) -> None:
    rows = [
        {"seed": 0, "test_dice_fg": 0.8},
        {"seed": 1, "test_dice_fg": 0.6, "status": "early_stopped"},
        {"seed": 2, "test_dice_fg": 0.1, "status": "running"},
        {"seed": 3, "test_dice_fg": None, "status": "failed"},
        {"seed": 4, "test_dice_fg": None},
    ]
    curve = label_budget_curve(trials_of(rows))
    assert curve["n"].tolist() == [2] and curve["mean"].iloc[0] == pytest.approx(0.7)


def test_ablated_hdc_is_its_own_arm_and_ratios_are_rounded(trials_of) -> None:
    rows = [
        {"label_ratio": 0.1, "test_dice_fg": 0.8},
        {"label_ratio": 0.100000001, "seed": 1, "test_dice_fg": 0.9},
        {"test_dice_fg": 0.5, "cfg.loss.w_cg": 0.0},
    ]
    rows[0]["cfg.loss.w_cg"] = rows[1]["cfg.loss.w_cg"] = 1.0
    curve = label_budget_curve(trials_of(rows)).set_index("arm")
    assert curve.loc["hdc", "n"] == 2 and curve.loc["hdc-no_cg", "mean"] == pytest.approx(0.5)


def test_group_by_method_and_task(trials_of) -> None:
    rows = [{"task": t, "method": "hdc", "test_dice_fg": 0.5} for t in ("cervix", "psfh")]
    assert len(label_budget_curve(trials_of(rows), by=["task", "method"])) == 2


def test_missing_metric_and_no_finished_trials(trials_of) -> None:
    with pytest.raises(AnalysisError, match=r"'test_hd95_fg' is not in the results; available metrics: test_dice_fg"):
        label_budget_curve(trials_of([{"test_dice_fg": 0.8}]), "test_hd95_fg")
    with pytest.raises(AnalysisError, match=r"no finished trials yet \(1 running\)"):
        label_budget_curve(trials_of([{"test_dice_fg": 0.8, "status": "running"}]))
    with pytest.raises(AnalysisError, match="no finished trial has a value"):
        label_budget_curve(trials_of([{"test_dice_fg": None}]))


@pytest.fixture
def crossing_curve(trials_of):
    """Pool of 200 images. supervised 0.5@20, 0.8@100; hdc 0.6@20, 0.75@60, 0.85@100.

    Interpolation is linear in log(images): hdc reaches 0.8 halfway from 60 to 100, at sqrt(60 * 100) ~ 77.
    """
    rows = _curve_rows("supervised", {0.1: 0.5, 0.5: 0.8}) + _curve_rows("hdc", {0.1: 0.6, 0.3: 0.75, 0.5: 0.85})
    for r in rows:
        r["n_labeled"] = round(r["label_ratio"] * 200)
    return label_budget_curve(trials_of(rows))


def test_budgets_are_labelled_image_counts(crossing_curve) -> None:
    assert set(crossing_curve["budget_unit"]) == {"n_labeled"}
    assert sorted(crossing_curve["budget"].unique()) == [20, 60, 100]
    assert crossing_curve.set_index(["arm", "budget"]).loc[("hdc", 60), "label_ratio"] == pytest.approx(0.3)
