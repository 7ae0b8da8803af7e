"""Budget advisor: learning curves made from known parameters are recovered, and inverted correctly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hdc_ray.analysis import AnalysisError
from hdc_ray.analysis.advisor import BELOW, BEYOND, INSIDE, NEVER, fit_learning_curve, labels_for, labels_needed, power_law

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


def test_target_beyond_the_largest_budget_is_flagged_as_extrapolation() -> None:
    (row,) = labels_needed(_trials(), target=0.86, n_boot=100).to_dict("records")
    truth = _inverse(0.86)  # ~376 images, measured up to 64
    assert row["where"] == BEYOND and row["extrapolated"] and row["reachable"]
    assert row["n_needed"] == pytest.approx(truth, rel=0.35)
    assert "EXTRAPOLATED beyond the largest measured budget (64)" in row["sentence"]


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
    assert "1 seed: no interval" in row["sentence"]


def test_same_seed_same_interval() -> None:
    first = labels_needed(_trials(), target=0.8, n_boot=50, seed=3)
    again = labels_needed(_trials(), target=0.8, n_boot=50, seed=3)
    assert first[["low", "high"]].equals(again[["low", "high"]])


def test_bad_input_is_refused() -> None:
    trials = _trials()
    with pytest.raises(AnalysisError, match="lower-is-better"):
        labels_needed(trials.assign(test_hd95_fg=1.0), metric="test_hd95_fg")
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        labels_needed(trials, target=85)
    with pytest.raises(AnalysisError, match="needs labelled-image counts"):
        labels_needed(trials.assign(n_labeled=None))
