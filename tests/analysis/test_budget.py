"""Label-budget curve (mean, CI over seeds) and labels saved, on hand-built tables with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hdc_ray.analysis import AnalysisError, label_budget_curve, labels_saved, labels_saved_table, read_results
from hdc_ray.analysis.budget import match_interval

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


HALFWAY = math.sqrt(60 * 100)  # 77.46: halfway from 60 to 100 images in log(images)


def test_known_crossing_point(crossing_curve) -> None:
    res = labels_saved(crossing_curve, "supervised", 100, "hdc")
    assert res.reached and res.target == pytest.approx(0.8) and res.unit == "n_labeled"
    assert res.budget == pytest.approx(HALFWAY) and res.saved == pytest.approx(1 - HALFWAY / 100)
    assert res.ratio == pytest.approx(HALFWAY / 200) and res.reference_ratio == pytest.approx(0.5)
    assert res.n_labeled == pytest.approx(HALFWAY) and res.reference_n_labeled == pytest.approx(100)
    assert "supervised@100 images" in res.sentence() and "with ~77 images: 23% fewer labels" in res.sentence()


def test_reverse_question_needs_more_labels(crossing_curve) -> None:
    res = labels_saved(crossing_curve, "hdc", 20, "supervised")  # supervised reaches 0.6 a third of the way (in log) to 100
    assert res.budget == pytest.approx(20 * 5 ** (1 / 3)) and res.saved < 0
    assert "1.7x as many labels" in res.sentence() and "~34 images" in res.sentence()


def test_never_reached_and_already_reached(crossing_curve) -> None:
    never = labels_saved(crossing_curve, "hdc", 100, "supervised")
    assert not never.reached and math.isnan(never.saved) and "never reached up to 100 images" in never.note
    assert "does not reach" in never.sentence()
    early = labels_saved(crossing_curve, "supervised", 20, "hdc")
    assert early.budget == pytest.approx(20) and "smallest measured budget" in early.note


def test_reference_budget_interpolated_or_unmeasured(crossing_curve) -> None:
    inside = labels_saved(crossing_curve, "supervised", 60, "hdc")
    target = 0.5 + 0.3 * math.log(3) / math.log(5)  # supervised at 60, between 20 and 100 in log(images)
    assert inside.target == pytest.approx(target) and inside.budget == pytest.approx(20 * 3 ** ((target - 0.6) / 0.15))
    outside = labels_saved(crossing_curve, "supervised", 180, "hdc")
    assert math.isnan(outside.target) and "not measured" in outside.note


def test_old_results_without_counts_fall_back_to_ratio(trials_of) -> None:
    rows = _curve_rows("supervised", {0.1: 0.5, 0.5: 0.8}) + _curve_rows("hdc", {0.1: 0.6, 0.3: 0.75, 0.5: 0.85})
    for r in rows:
        r["n_labeled"] = None
    curve = label_budget_curve(trials_of(rows))
    assert set(curve["budget_unit"]) == {"label_ratio"}
    res = labels_saved(curve, "supervised", 0.5, "hdc")
    assert res.unit == "label_ratio" and res.ratio == pytest.approx(HALFWAY / 200) and res.saved == pytest.approx(1 - HALFWAY / 100)
    assert math.isnan(res.n_labeled) and "with 38.7% labels: 23% fewer labels" in res.sentence()


def test_lower_is_better_flips_direction(trials_of) -> None:
    rows = [{"method": "supervised", "label_ratio": 0.5, "test_hd95_fg": 10.0}]
    rows += [{"method": "hdc", "label_ratio": r, "test_hd95_fg": v} for r, v in {0.1: 20.0, 0.2: 12.0, 0.5: 6.0}.items()]
    res = labels_saved(label_budget_curve(trials_of(rows), "test_hd95_fg"), "supervised", 50, "hdc")
    assert res.budget == pytest.approx(20 * 2.5 ** (1 / 3)) and res.saved == pytest.approx(1 - 20 * 2.5 ** (1 / 3) / 50)


def test_unknown_method(crossing_curve) -> None:
    with pytest.raises(AnalysisError, match="'cps' has no finished trials"):
        labels_saved(crossing_curve, "supervised", 100, "cps")


def test_saved_table_covers_every_baseline_budget(crossing_curve) -> None:
    table = labels_saved_table(crossing_curve, "supervised")
    assert table["reference_budget"].tolist() == [20, 100] and set(table["method"]) == {"hdc"}
    assert table["budget"].tolist() == pytest.approx([20, HALFWAY])


def test_fake_sweep_answer(fake_results: Path) -> None:
    curve = label_budget_curve(read_results(fake_results, ["budget"]).trials)
    assert curve.set_index(["arm", "budget"]).loc[("hdc", 20), "mean"] == pytest.approx(0.84)
    res = labels_saved(curve, "supervised", 50, "hdc")  # 0.86 halfway (in log) from 0.84@20 to 0.88@50
    assert res.budget == pytest.approx(math.sqrt(20 * 50)) and res.saved == pytest.approx(1 - math.sqrt(20 * 50) / 50)


def _seeded(method: str, points: dict[int, float], offsets: tuple[float, ...]) -> list[dict]:
    return [
        {"method": method, "label_ratio": n / 100, "n_labeled": n, "seed": s, "test_dice_fg": v + off}
        for n, v in points.items()
        for s, off in enumerate(offsets)
    ]


def test_match_interval_brackets_the_answer(trials_of) -> None:
    """Paired seed resampling: equal offsets per seed in both arms leave the crossing unchanged."""
    offsets = (-0.02, 0.0, 0.02)
    rows = _seeded("supervised", {4: 0.5, 8: 0.6, 24: 0.8}, offsets) + _seeded("hdc", {4: 0.6, 8: 0.7, 24: 0.85}, offsets)
    trials = trials_of(rows)
    point = labels_saved(label_budget_curve(trials), "hdc", 8, "supervised")
    assert point.budget == pytest.approx(math.sqrt(8 * 24))  # 0.7 is halfway (in log) from 0.6@8 to 0.8@24
    iv = match_interval(trials, "test_dice_fg", "hdc", 8, "supervised", n_boot=200)
    assert iv.n_seeds == 3 and iv.reached == 1.0
    assert iv.low == pytest.approx(math.sqrt(8 * 24)) and iv.high == pytest.approx(math.sqrt(8 * 24))


def test_match_interval_widens_with_unpaired_noise_and_needs_two_seeds(trials_of) -> None:
    rows = _seeded("supervised", {4: 0.5, 8: 0.6, 24: 0.8}, (0.0, 0.0, 0.0)) + _seeded(
        "hdc", {4: 0.6, 8: 0.7, 24: 0.85}, (-0.04, 0.0, 0.04)
    )
    iv = match_interval(trials_of(rows), "test_dice_fg", "hdc", 8, "supervised", n_boot=300)
    assert iv.low < math.sqrt(8 * 24) < iv.high and iv.low >= 8 and iv.high <= 24
    one = match_interval(trials_of([r for r in rows if r["seed"] == 0]), "test_dice_fg", "hdc", 8, "supervised")
    assert one.n_seeds == 1 and math.isnan(one.low)
