"""SOURCE resolution: train folders, checkpoint files, Ray checkpoint folders, sweep trials chosen by validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from hdc_ray.inference.sources import SourceError, resolve
from hdc_ray.results.columns import SCHEMA_VERSION
from tests.inference.conftest import TinyRun

# trial id -> (labelled images, val_dice_fg, test_dice_fg, status). "t_test" has the best TEST score and a
# worse validation score: choosing it would be selection on the test set.
TRIALS = {
    "t_val4": (4, 0.70, 0.60, "completed"),
    "t_test": (4, 0.65, 0.90, "completed"),
    "t_val8": (8, 0.80, 0.70, "completed"),
    "t_low8": (8, 0.50, 0.50, "early_stopped"),
    "t_fail": (8, None, None, "failed"),
}


@pytest.fixture
def sweep(tiny_run: TinyRun, tmp_path: Path) -> Path:
    """A sweep folder as ``hdc-ray sweep`` leaves it: trials.parquet + each trial's Tune checkpoint."""
    folder = tmp_path / "results" / "mysweep"
    epoch = sorted((tiny_run.folder / "checkpoints").glob("epoch_*.pt"))[-1]
    rows = []
    for trial_id, (n, val, test, status) in TRIALS.items():
        ckpt = folder / "tune" / trial_id / "checkpoint_000001"
        ckpt.mkdir(parents=True)
        shutil.copy(epoch, ckpt / "state.pt")
        rows.append({"schema_version": SCHEMA_VERSION, "trial_id": trial_id, "status": status, "method": "hdc", "label_ratio": n / 24, "seed": 0,
                     "n_labeled": n, "val_dice_fg": val, "test_dice_fg": test, "checkpoint_path": str(ckpt), "cfg.train.select_metric": "val_dice_fg"})  # fmt: skip
    pd.DataFrame(rows).astype({"schema_version": "int32"}).to_parquet(folder / "trials.parquet")
    return folder


def _trial(resolved: list) -> list[str]:  # type: ignore[type-arg]
    return [r.path.parent.parent.name for r in resolved]


def test_best_is_chosen_by_validation_never_by_test(sweep: Path) -> None:
    assert _trial(resolve(sweep, best=1)) == ["t_val8"]
    assert _trial(resolve(sweep, best=1, labels=4)) == ["t_val4"]  # not t_test, whose test Dice is higher
    assert _trial(resolve(sweep, best=3)) == ["t_val8", "t_val4", "t_test"]
    assert _trial(resolve(sweep.parent, best=1)) == ["t_val8"]  # a results folder holding one sweep
    chosen = resolve(sweep, best=1, labels=4)[0]
    assert "by val_dice_fg 0.7000" in chosen.note and chosen.recorded["test_dice_fg"] == pytest.approx(0.60)


def test_trials_are_named_and_wrong_choices_refused(sweep: Path) -> None:
    assert _trial(resolve(sweep, trials=["t_test", "t_low8"])) == ["t_test", "t_low8"]
    with pytest.raises(SourceError, match="choose a trial with --trial ID, or --best"):
        resolve(sweep)
    with pytest.raises(SourceError, match="the trial is failed, not finished"):
        resolve(sweep, trials=["t_fail"])
    with pytest.raises(SourceError, match="no such trial"):
        resolve(sweep, trials=["nope"])
    with pytest.raises(SourceError, match=r"budgets there: \[4, 8\]"):
        resolve(sweep, best=1, labels=16)
    with pytest.raises(SourceError, match="only 4 finished trial"):
        resolve(sweep, best=5)


def test_a_moved_sweep_finds_its_checkpoints_in_its_own_folder(sweep: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.move(sweep, moved)
    path = resolve(moved, trials=["t_val4"])[0].path
    assert path == moved / "tune" / "t_val4" / "checkpoint_000001" / "state.pt"


def test_train_folders_checkpoint_files_and_ray_folders(tiny_run: TinyRun, tmp_path: Path) -> None:
    assert resolve(tiny_run.folder)[0].path == tiny_run.folder / "best.pt"
    assert resolve(tiny_run.folder)[0].recorded["test_dice_fg"] == pytest.approx(tiny_run.summary["test_dice_fg"])
    epoch = sorted((tiny_run.folder / "checkpoints").glob("epoch_*.pt"))[-1]
    assert resolve(epoch)[0].path == epoch
    ray_run = tmp_path / "ray_run"
    for name in ("checkpoint_2026-01-01_00-00-00.000001", "checkpoint_2026-01-01_00-00-05.000002"):
        (ray_run / name).mkdir(parents=True)
        shutil.copy(epoch, ray_run / name / "state.pt")
    assert resolve(ray_run)[0].path.parent.name.endswith("000002")  # the latest
    with pytest.raises(SourceError, match="not a sweep's results folder"):
        resolve(tiny_run.folder, best=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no checkpoint here"):
        resolve(tmp_path / "empty")
    with pytest.raises(SourceError, match="no such file or folder"):
        resolve(tmp_path / "missing")
