"""Label-budget curve (mean, CI over seeds) and labels saved, on hand-built tables with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hdc_ray.analysis import AnalysisError, label_budget_curve, labels_saved, labels_saved_table, read_results

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
    """supervised 0.5@10%, 0.8@50%; hdc 0.6@10%, 0.75@30%, 0.85@50%: hdc reaches 0.8 at 40%."""
    rows = _curve_rows("supervised", {0.1: 0.5, 0.5: 0.8}) + _curve_rows("hdc", {0.1: 0.6, 0.3: 0.75, 0.5: 0.85})
    for r in rows:
        r["n_labeled"] = round(r["label_ratio"] * 200)
    return label_budget_curve(trials_of(rows))


def test_known_crossing_point(crossing_curve) -> None:
    res = labels_saved(crossing_curve, "supervised", 0.5, "hdc")
    assert res.reached and res.target == pytest.approx(0.8)
    assert res.ratio == pytest.approx(0.4) and res.saved == pytest.approx(0.2)
    assert res.n_labeled == pytest.approx(80) and res.reference_n_labeled == pytest.approx(100)
    assert "with 40% labels (~80 images): 20% fewer labels" in res.sentence()


def test_reverse_question_needs_more_labels(crossing_curve) -> None:
    res = labels_saved(crossing_curve, "hdc", 0.1, "supervised")  # supervised reaches 0.6 at 0.1 + 0.4/3
    assert res.ratio == pytest.approx(0.1 + 0.4 / 3) and res.saved < 0
    assert "as many labels" in res.sentence()


def test_never_reached_and_already_reached(crossing_curve) -> None:
    never = labels_saved(crossing_curve, "hdc", 0.5, "supervised")
    assert not never.reached and math.isnan(never.saved) and "never reached up to 50%" in never.note
    assert "does not reach" in never.sentence()
    early = labels_saved(crossing_curve, "supervised", 0.1, "hdc")
    assert early.ratio == pytest.approx(0.1) and "smallest measured budget" in early.note


def test_reference_ratio_interpolated_or_unmeasured(crossing_curve) -> None:
    inside = labels_saved(crossing_curve, "supervised", 0.3, "hdc")
    assert inside.target == pytest.approx(0.65) and inside.ratio == pytest.approx(0.1 + 0.2 * 0.05 / 0.15)
    outside = labels_saved(crossing_curve, "supervised", 0.9, "hdc")
    assert math.isnan(outside.target) and "not measured" in outside.note


def test_lower_is_better_flips_direction(trials_of) -> None:
    rows = [{"method": "supervised", "label_ratio": 0.5, "test_hd95_fg": 10.0}]
    rows += [{"method": "hdc", "label_ratio": r, "test_hd95_fg": v} for r, v in {0.1: 20.0, 0.2: 12.0, 0.5: 6.0}.items()]
    res = labels_saved(label_budget_curve(trials_of(rows), "test_hd95_fg"), "supervised", 0.5, "hdc")
    assert res.ratio == pytest.approx(0.3) and res.saved == pytest.approx(0.4)


def test_unknown_method(crossing_curve) -> None:
    with pytest.raises(AnalysisError, match="'cps' has no finished trials"):
        labels_saved(crossing_curve, "supervised", 0.5, "cps")


def test_saved_table_covers_every_baseline_budget(crossing_curve) -> None:
    table = labels_saved_table(crossing_curve, "supervised")
    assert table["reference_ratio"].tolist() == [0.1, 0.5] and set(table["method"]) == {"hdc"}
    assert table["ratio"].tolist() == pytest.approx([0.1, 0.4])


def test_fake_sweep_answer(fake_results: Path) -> None:
    curve = label_budget_curve(read_results(fake_results, ["budget"]).trials)
    assert curve.set_index(["arm", "label_ratio"]).loc[("hdc", 0.2), "mean"] == pytest.approx(0.84)
    res = labels_saved(curve, "supervised", 0.5, "hdc")
    assert res.ratio == pytest.approx(0.35) and res.saved == pytest.approx(0.3)
