"""Learning curves from history: per-arm means per epoch, finished trials only by default."""

from __future__ import annotations

import pandas as pd
import pytest

from hdc_ray.analysis import AnalysisError, learning_curves


def _history(trial_id: str, values: list[float]) -> list[dict]:
    return [{"sweep": "s", "trial_id": trial_id, "epoch": e, "val_dice_fg": v} for e, v in enumerate(values, start=1)]


@pytest.fixture
def tables(trials_of):
    trials = trials_of(
        [
            {"trial_id": "h1", "test_dice_fg": 0.8},
            {"trial_id": "h2", "seed": 1, "test_dice_fg": 0.8},
            {"trial_id": "s1", "method": "supervised", "test_dice_fg": 0.7},
            {"trial_id": "run", "status": "running", "test_dice_fg": None},
            {"trial_id": "bad", "status": "failed", "test_dice_fg": None},
        ]
    )
    rows = _history("h1", [0.5, 0.7]) + _history("h2", [0.3, 0.5, 0.6]) + _history("s1", [0.4])
    rows += _history("run", [0.9]) + _history("bad", [0.0])
    return trials, pd.DataFrame(rows)


def test_mean_per_arm_and_epoch(tables) -> None:
    trials, history = tables
    curve = learning_curves(history, trials).set_index(["arm", "epoch"])
    assert curve.loc[("hdc", 1), "mean"] == pytest.approx(0.4) and curve.loc[("hdc", 1), "n"] == 2
    assert curve.loc[("hdc", 3), "n"] == 1 and curve.loc[("supervised", 1), "mean"] == pytest.approx(0.4)
    assert len(curve) == 4  # running and failed trials left out


def test_running_trials_on_request(tables) -> None:
    trials, history = tables
    curve = learning_curves(history, trials, include_running=True).set_index(["arm", "epoch"])
    assert curve.loc[("hdc", 1), "n"] == 3 and curve.loc[("hdc", 1), "mean"] == pytest.approx(0.5667, abs=1e-4)


def test_per_trial_without_trials_table(tables) -> None:
    _, history = tables
    assert len(learning_curves(history, by="trial_id").query("trial_id == 'h2'")) == 3


def test_missing_metric_or_history(tables) -> None:
    trials, history = tables
    with pytest.raises(AnalysisError, match="no 'train_loss' column"):
        learning_curves(history, trials, "train_loss")
    with pytest.raises(AnalysisError, match="no history rows"):
        learning_curves(history.iloc[:0], trials)
