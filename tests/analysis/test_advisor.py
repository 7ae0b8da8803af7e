"""Budget advisor: learning curves made from known parameters are recovered, and inverted correctly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hdc_ray.analysis import AnalysisError
from hdc_ray.analysis.evidence.advisor import (
    BELOW,
    BEYOND,
    INSIDE,
    NEVER,
    TOO_FAR,
    UNIDENTIFIED,
    fit_learning_curve,
    labels_for,
    labels_needed,
    power_law,
)

A, B, C = 0.88, 0.7, 0.6  # dice(n) = 0.88 - 0.7 n^-0.6: 0.60 at 4 images, 0.80 at ~37
BUDGETS = (4, 8, 16, 32, 64)  # labelled images; the largest plays the 100% reference


def _trials(
    a: float = A, b: float = B, c: float = C, *, seeds: int = 5, noise: float = 0.004, budgets=BUDGETS, method: str = "hdc"
) -> pd.DataFrame:
    """One finished trial per (seed, budget) on the known curve, plus a per-seed shift and Gaussian noise."""
    rng = np.random.default_rng(7)
    rows = []
    for s in range(seeds):
        shift = rng.normal(0, noise)  # a seed is a split: some splits are easier at every budget
        for n in budgets:
            dice = float(power_law(np.array([n]), a, b, c)[0]) + shift + rng.normal(0, noise)
            rows.append({"status": "completed", "method": method, "label_ratio": n / 64, "n_labeled": n, "seed": s, "test_dice_fg": dice})
    return pd.DataFrame(rows)


def _inverse(target: float, a: float = A, b: float = B, c: float = C) -> float:
    return (b / (a - target)) ** (1 / c)


def test_exact_curve_is_recovered() -> None:
    n = np.array(BUDGETS, dtype=float)
    fit = fit_learning_curve(n, power_law(n, A, B, C))
    assert (fit.a, fit.b, fit.c) == pytest.approx((A, B, C), rel=1e-4)
    assert fit.rms < 1e-6


@pytest.mark.parametrize(("a", "b", "c"), [(0.88, 0.7, 0.6), (0.8, 0.5, 0.8), (0.95, 1.2, 1.0)])
def test_noisy_seeds_recover_the_parameters(a: float, b: float, c: float) -> None:
    trials = _trials(a, b, c)
    fit = fit_learning_curve(trials["n_labeled"].to_numpy(), trials["test_dice_fg"].to_numpy())
    assert fit.a == pytest.approx(a, abs=0.02)
    assert fit.b == pytest.approx(b, rel=0.15)
    assert fit.c == pytest.approx(c, rel=0.15)


def test_labels_for_is_the_analytic_inverse() -> None:
    for target in (0.65, 0.8, 0.87):
        n = labels_for(A, B, C, target)
        assert n == pytest.approx(_inverse(target))
        assert power_law(np.array([n]), A, B, C)[0] == pytest.approx(target)
    assert labels_for(A, B, C, A) == math.inf and labels_for(A, B, C, 0.9) == math.inf


def test_labels_needed_matches_the_inverse_inside_the_measured_budgets() -> None:
    (row,) = labels_needed(_trials(), target=0.8, n_boot=200).to_dict("records")
    truth = _inverse(0.8)  # ~37 images: between 32 and 64
    assert row["arm"] == "hdc" and row["where"] == INSIDE and not row["extrapolated"] and row["reachable"]
    assert row["n_needed"] == pytest.approx(truth, rel=0.1)
    assert row["low"] < truth < row["high"] and row["n_seeds"] == 5 and row["n_boot"] == 200
    assert "hdc needs ~" in row["sentence"] and "between the measured budgets 32 and 64" in row["sentence"]
    assert "95% interval over 5 seeds:" in row["sentence"]


def test_target_beyond_the_largest_budget_is_flagged_as_extrapolation_and_its_interval_widened() -> None:
    trials = _trials(budgets=(4, 8, 16, 32))  # 0.80 needs ~37 images: beyond 32, within 2x of it
    (plain,) = labels_needed(trials, target=0.8, n_boot=100, error_factor=1.0).to_dict("records")
    (wide,) = labels_needed(trials, target=0.8, n_boot=100, error_factor=1.5).to_dict("records")
    assert plain["where"] == BEYOND and plain["extrapolated"] and plain["reachable"] and not plain["refused"]
    assert plain["n_needed"] == pytest.approx(_inverse(0.8), rel=0.35)
    assert "EXTRAPOLATED beyond the measured budget 32, the largest" in plain["sentence"]
    assert wide["low"] == pytest.approx(plain["low"] / 1.5) and wide["high"] == pytest.approx(plain["high"] * 1.5)
    assert "widened x1.5" in wide["sentence"]


def test_no_answer_past_twice_the_largest_measured_budget() -> None:
    (row,) = labels_needed(_trials(), target=0.86, n_boot=50).to_dict("records")  # truth ~376, measured up to 64
    assert row["where"] == TOO_FAR and row["refused"] and row["extrapolated"]
    assert "not answered" in row["sentence"] and "more than 2x the measured budget it reaches out from (64, the largest)" in row["sentence"]
    assert "needs ~" not in row["sentence"]


def test_an_answer_across_a_wide_gap_between_budgets_is_an_extrapolation_from_the_lower_one() -> None:
    # supervised measured at 4, 8, 16 and all 400: 0.80 needs ~37, inside 16-400 but 25x from 16 to 400
    trials = _trials(budgets=(4, 8, 16, 400))
    (near,) = labels_needed(trials, target=0.78, n_boot=50).to_dict("records")  # ~28: within 2x of 16
    (far,) = labels_needed(trials, target=0.80, n_boot=50).to_dict("records")  # ~37: more than 2x of 16
    assert near["where"] == BEYOND and near["reach_from"] == 16
    assert "EXTRAPOLATED beyond the measured budget 16; the next one measured, 400, is more than 4x further" in near["sentence"]
    assert far["where"] == TOO_FAR and far["refused"] and far["reach_from"] == 16
    (dense,) = labels_needed(_trials(), target=0.8, n_boot=50).to_dict("records")  # 32 and 64 measured: 2x apart
    assert dense["where"] == INSIDE


def test_an_extrapolation_from_a_fit_at_its_bound_is_refused_as_unidentified() -> None:
    # A straight line in log n never saturates: the asymptote runs to its bound 1.
    rows = [{"status": "completed", "method": "hdc", "label_ratio": n / 64, "n_labeled": n, "seed": s,
             "test_dice_fg": 0.5 + 0.08 * math.log2(n / 4) + 0.005 * s} for s in range(3) for n in (4, 8, 16)]  # fmt: skip
    (row,) = labels_needed(pd.DataFrame(rows), target=0.7, n_boot=50).to_dict("records")
    assert row["a"] > 0.999 and row["at_bound"]
    assert row["where"] == UNIDENTIFIED and row["refused"]
    assert "not identified" in row["sentence"] and "at its bound 1" in row["sentence"]
    (inside,) = labels_needed(pd.DataFrame(rows), target=0.6, n_boot=50).to_dict("records")  # inside 4-16: still answered
    assert inside["where"] == INSIDE and not inside["refused"]


def test_a_known_ceiling_caps_the_asymptote() -> None:
    free = labels_needed(_trials(), target=0.85, n_boot=30).iloc[0]
    capped = labels_needed(_trials(), target=0.85, n_boot=30, ceiling=0.84).iloc[0]
    assert free["a"] == pytest.approx(A, abs=0.02) and free["where"] != NEVER
    # the arm's own best mean (~0.83 at 64) is below 0.84, so the cap is the ceiling itself
    assert capped["a"] <= 0.84 + 1e-9 and capped["where"] == NEVER
    assert "even all labels reach only 0.840" in capped["sentence"]


def test_the_ceiling_never_cuts_below_what_the_arm_measured() -> None:
    capped = labels_needed(_trials(), target=0.7, n_boot=30, ceiling=0.5).iloc[0]
    best = _trials().groupby("n_labeled")["test_dice_fg"].mean().max()
    assert capped["ceiling"] == pytest.approx(best) and capped["a"] <= best + 1e-9


def test_fewer_than_three_seeds_give_no_interval() -> None:
    (row,) = labels_needed(_trials(seeds=2), target=0.8, n_boot=50).to_dict("records")
    assert math.isnan(row["low"]) and math.isnan(row["high"]) and row["n_boot"] == 0
    assert "2 seed(s): no interval (it needs 3 splits)" in row["sentence"]


def test_target_below_the_smallest_budget_is_flagged() -> None:
    (row,) = labels_needed(_trials(), target=0.3, n_boot=50).to_dict("records")
    assert row["where"] == BELOW and row["extrapolated"] and row["n_needed"] < 4
    assert "below the smallest measured budget (4)" in row["sentence"]


def test_target_above_the_asymptote_is_never_reached() -> None:
    (row,) = labels_needed(_trials(), target=0.95, n_boot=100).to_dict("records")
    assert row["where"] == NEVER and not row["reachable"] and math.isinf(row["n_needed"])
    assert row["a"] == pytest.approx(A, abs=0.02) and row["reached_share"] == 0.0
    assert math.isinf(row["low"]) and math.isinf(row["high"])
    assert "does not reach test Dice (foreground mean) 0.95: its fitted curve levels off at 0.88" in row["sentence"]


def test_one_arm_per_row_and_too_few_budgets_are_skipped() -> None:
    trials = pd.concat([_trials(), _trials(0.8, 0.6, 0.5, method="supervised"), _trials(budgets=(8, 16), method="cps")])
    table = labels_needed(trials, target=0.75, n_boot=30).set_index("arm")
    assert list(table.index) == ["cps", "hdc", "supervised"]
    assert table.loc["cps", "where"] == "not fitted" and "at least 3 distinct budgets" in table.loc["cps", "skipped"]
    assert table.loc["supervised", "n_needed"] == pytest.approx(_inverse(0.75, 0.8, 0.6, 0.5), rel=0.15)
    assert table.loc["hdc", "n_needed"] < table.loc["supervised", "n_needed"]


def test_one_seed_gives_an_answer_without_interval() -> None:
    (row,) = labels_needed(_trials(seeds=1), target=0.8).to_dict("records")
    assert row["n_needed"] == pytest.approx(_inverse(0.8), rel=0.15) and math.isnan(row["low"])
    assert "1 seed(s): no interval" in row["sentence"]


def test_same_seed_same_interval() -> None:
    """Issue 31: this once passed with NaN bounds (``DataFrame.equals`` calls NaN equal to NaN)."""
    first = labels_needed(_trials(), target=0.8, n_boot=50, seed=3)
    again = labels_needed(_trials(), target=0.8, n_boot=50, seed=3)
    bounds = first[["low", "high"]].to_numpy(float)
    assert np.isfinite(bounds).all() and (bounds[:, 0] < bounds[:, 1]).all()
    assert first[["low", "high"]].equals(again[["low", "high"]])
    other = labels_needed(_trials(), target=0.8, n_boot=50, seed=4)
    assert not first[["low", "high"]].equals(other[["low", "high"]])  # the seed does move the resamples


def test_extrapolated_intervals_say_their_coverage_is_not_established() -> None:
    from hdc_ray.analysis.evidence.advisor import CALIBRATION

    assert CALIBRATION.coverage_interval() == pytest.approx((0.478, 1.0), abs=0.001)  # 5 of 5: Clopper-Pearson
    (row,) = labels_needed(_trials(budgets=(4, 8, 16, 32)), target=0.8, n_boot=30).to_dict("records")
    assert row["where"] == BEYOND and "how often such intervals cover the truth is not established (the calibration covered 5 of 5" in row["sentence"]
    assert "widened" not in row["sentence"]


def test_bad_input_is_refused() -> None:
    trials = _trials()
    with pytest.raises(AnalysisError, match="lower-is-better"):
        labels_needed(trials.assign(test_hd95_fg=1.0), metric="test_hd95_fg")
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        labels_needed(trials, target=85)
    with pytest.raises(AnalysisError, match="needs labelled-image counts"):
        labels_needed(trials.assign(n_labeled=None))
