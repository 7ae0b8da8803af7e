"""How training went: learning curves (a history metric per epoch), averaged per arm."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hdc_ray.analysis.tables import (
    FINISHED_STATUSES,
    AnalysisError,
    as_list,
    summarise,
    with_arm,
)

TRIAL_KEYS = ["sweep", "trial_id"]


def learning_curves(
    history: pd.DataFrame,
    trials: pd.DataFrame | None = None,
    metric: str = "val_dice_fg",
    *,
    by: str | Sequence[str] = "arm",
    include_running: bool = False,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """How does ``metric`` evolve over epochs for each arm (or any trial column in ``by``)?

    History rows are joined to ``trials`` on (sweep, trial_id) to learn each trial's arm and
    status; only finished trials count unless ``include_running``. Without ``trials``, ``by`` must
    name history columns (e.g. ``"trial_id"`` for one curve per trial). One row per (``by``...,
    ``epoch``) with ``n`` trials, ``mean``, ``std`` and a Student-t CI; ``n`` falls at late epochs
    when trials were stopped early, so late means describe the survivors.
    """
    keys = as_list(by)
    if history.empty or metric not in history.columns:
        have = "no history rows" if history.empty else f"no '{metric}' column in the history"
        raise AnalysisError(f"no learning curve for '{metric}': {have}")
    rows = history.dropna(subset=[metric])
    if trials is not None:
        rows = _join_trials(rows, trials, keys, include_running)
    missing = [k for k in [*keys, "epoch"] if k not in rows.columns]
    if missing:
        raise AnalysisError(f"cannot group learning curves by missing column(s) {missing}")
    if rows.empty:
        raise AnalysisError(f"no finished trial has '{metric}' in its history")
    out = summarise(rows.groupby([*keys, "epoch"], sort=True)[metric], confidence)
    out["metric"] = metric
    return out.reset_index()


def _join_trials(rows: pd.DataFrame, trials: pd.DataFrame, keys: list[str], include_running: bool) -> pd.DataFrame:
    statuses = (*FINISHED_STATUSES, "running") if include_running else FINISHED_STATUSES
    info = with_arm(trials[trials["status"].isin(statuses)])
    cols = [*TRIAL_KEYS, *(k for k in keys if k in info.columns and k not in TRIAL_KEYS)]
    drop = [c for c in cols if c in rows.columns and c not in TRIAL_KEYS]
    return rows.drop(columns=drop).merge(info[cols], on=TRIAL_KEYS, how="inner")
