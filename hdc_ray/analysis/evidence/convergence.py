"""Had the runs stopped improving? Per task, arm and budget: trials whose best epoch was their last, and trials whose
validation score still rose over their last epochs. An answer holds for the compute its runs had."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RISING_EPOCHS = 3  # "the last few epochs still improve": the validation score's slope over the last 3 epochs


@dataclass(frozen=True)
class Convergence:
    """``peaked_last``: trials whose best epoch is their last; ``rising``: still rising at the end (-1: no history)."""

    task: str
    arm: str
    budget: float
    unit: str
    n_trials: int
    peaked_last: int
    rising: int

    @property
    def still_rising(self) -> bool:
        return 2 * max(self.peaked_last, self.rising) >= self.n_trials > 0


def convergence(done: pd.DataFrame, history: pd.DataFrame | None, unit: str, arm_col: str = "arm") -> list[Convergence]:
    if "best_epoch" not in done.columns or "epochs_done" not in done.columns:
        return []
    rising = rising_trials(history)
    many = "task" in done.columns and done["task"].nunique() > 1
    tasks = done["task"].fillna("").astype(str) if many else pd.Series("", index=done.index)
    out = []
    for (task, arm, budget), rows in done.groupby([tasks, arm_col, unit]):
        last = int((pd.to_numeric(rows["best_epoch"]) >= pd.to_numeric(rows["epochs_done"])).sum())
        up = -1 if rising is None else int(rows["trial_id"].map(lambda t: rising.get(str(t), False)).sum())
        out.append(Convergence(str(task), str(arm), float(budget), unit, len(rows), last, up))
    return out


def rising_trials(history: pd.DataFrame | None, metric: str = "val_dice_fg") -> dict[str, bool] | None:
    """trial_id -> whether its validation score still rose over its last :data:`RISING_EPOCHS` epochs."""
    if history is None or history.empty or metric not in history.columns:
        return None
    out = {}
    for trial, rows in history.dropna(subset=[metric]).groupby("trial_id"):
        tail = rows.sort_values("epoch")[metric].to_numpy(float)[-RISING_EPOCHS:]
        out[str(trial)] = len(tail) == RISING_EPOCHS and float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) > 0
    return out


def compute_of(done: pd.DataFrame) -> dict[str, int] | None:
    """The training compute of the trials as numbers: steps (min and max), epochs, iterations, batches; None if unrecorded."""
    cols = ("cfg.train.epochs", "cfg.train.iters_per_epoch")
    if not all(c in done.columns for c in cols) or done[list(cols)].isna().all().any():
        return None
    steps = (pd.to_numeric(done[cols[0]]) * pd.to_numeric(done[cols[1]])).dropna().astype(int)
    out = {"steps_min": int(steps.min()), "steps_max": int(steps.max()), "epochs": int(done[cols[0]].mode().iloc[0]),
           "iters": int(done[cols[1]].mode().iloc[0])}  # fmt: skip
    if {"cfg.train.batch_labeled", "cfg.train.batch_unlabeled"} <= set(done.columns):
        out |= {"batch_labeled": int(done["cfg.train.batch_labeled"].mode().iloc[0]), "batch_unlabeled": int(done["cfg.train.batch_unlabeled"].mode().iloc[0])}
    return out


__all__ = ["RISING_EPOCHS", "Convergence", "compute_of", "convergence", "rising_trials"]
