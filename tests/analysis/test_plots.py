"""Every figure respects its quantities: Dice in [0, 1], distances and times from 0, seeds drawn, units named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection

from hdc_ray.analysis import ablation_table, label_budget_curve, learning_curves, parameter_importance, pareto_front, plots, read_results
from hdc_ray.analysis.evidence.advisor import labels_needed
from hdc_ray.analysis.tables import with_arm


@pytest.fixture(scope="module")
def results(fake_results: Path):
    return read_results(fake_results)


@pytest.fixture(scope="module")
def budget_trials(results) -> pd.DataFrame:
    trials = with_arm(results.trials)
    return trials[(trials["sweep"] == "budget") & trials["status"].isin(["completed", "early_stopped"])]


def _dots(ax: Axes) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_label_budget_dice_in_unit_range_distances_from_zero_and_seed_dots(budget_trials: pd.DataFrame) -> None:
    curves = [label_budget_curve(budget_trials, m) for m in ("test_dice_fg", "test_hd95_fg")]
    fig = plots.draw_label_budget(curves, unit="px", points=budget_trials)
    dice, hd95 = fig.axes
    assert dice.get_ylim() == (0.0, 1.0)
    assert hd95.get_ylim()[0] == 0.0 and hd95.get_ylim()[1] >= budget_trials["test_hd95_fg"].max()
    assert dice.get_xlabel() == hd95.get_xlabel() == "labelled images"
    assert dice.get_ylabel() == "test Dice (foreground mean)" and hd95.get_ylabel() == "test HD95 (foreground mean) [px]"
    assert dice.get_xscale() == "log"  # 5 to 50 images: a decade
    assert [t.get_text() for t in dice.get_xticklabels()] == ["5", "10", "20", "50"]
    assert _dots(dice) == len(budget_trials)  # one dot per trial (seed)


def test_label_budget_without_counts_is_in_percent(budget_trials: pd.DataFrame) -> None:
    curve = label_budget_curve(budget_trials.assign(n_labeled=None))
    ax = plots.draw_label_budget(curve).axes[0]
    assert ax.get_xlabel() == "labelled share of the training pool (%)" and ax.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5%", "10%", "20%", "50%"]


def test_labels_needed_plot(budget_trials: pd.DataFrame) -> None:
    advice = labels_needed(budget_trials, 0.85, n_boot=0)
    ax = plots.draw_labels_needed(budget_trials, advice).axes[0]
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_xscale() == "log"
    assert ax.get_xlabel().startswith("labelled images") and ax.get_ylabel() == "test Dice (foreground mean)"
    assert _dots(ax) == len(budget_trials)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "target 0.85" in legend and any(t.startswith("hdc: needs ~") for t in legend)


def test_pareto_axes_start_at_zero_and_dice_is_bounded(budget_trials: pd.DataFrame) -> None:
    objectives = {"val_dice_fg": "max", "train_time_s": "min"}
    table = pareto_front(budget_trials, objectives, keep_all=True)
    ax = plots.draw_pareto(table, "train_time_s", "val_dice_fg", objectives).axes[0]
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_xlim()[0] == 0.0
    assert ax.get_xlabel() == "training time [s] (lower is better)"
    assert ax.get_ylabel() == "val Dice (foreground mean) (higher is better)"


def test_learning_curves_bound_dice_and_name_the_loss(results) -> None:
    trials = with_arm(results.trials)
    curves = [learning_curves(results.history, trials, m) for m in ("val_dice_fg", "train_loss")]
    dice, loss = plots.draw_learning_curves(curves).axes
    assert dice.get_ylim() == (0.0, 1.0) and dice.get_xlabel() == loss.get_xlabel() == "epoch"
    assert loss.get_ylabel() == "train loss (total, unitless)"  # HDC's loss may go below 0: not bounded


def test_ablation_and_importance_axes(results) -> None:
    ab = ablation_table(results.trials[results.trials["sweep"] == "ablation"], "test_dice_fg")
    ax = plots.draw_ablation(ab).axes[0]
    assert ax.get_xlabel().startswith("change in test Dice (foreground mean) vs hdc (absolute")
    imp = parameter_importance(results.trials, "test_dice_fg")
    ax = plots.draw_importance(imp, metric="test_dice_fg").axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_xlabel() == "importance (share, sums to 1)"


def test_plot_functions_write_what_draw_builds(budget_trials: pd.DataFrame, tmp_path: Path) -> None:
    path = plots.plot_label_budget(label_budget_curve(budget_trials), tmp_path / "b.png", points=budget_trials)
    assert path.read_bytes().startswith(b"\x89PNG")
